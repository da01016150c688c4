"""The monitor host's warm-up (container/monitor.py ``warm_host``) is only a head start: a
host that leaves (idle) while compose's request waits in its backlog must not fail ``compose
up``. Fast: a plain listening socket stands in for the leaving host."""

import select
import socket
import threading

from minidocker.container import monitor


def test_warming_a_host_that_leaves_is_no_error(tmp_path):
    path = tmp_path / "monitor-host.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    failures = []

    def warm():
        try:
            monitor.warm_host(path)
        except Exception as exc:  # noqa: BLE001 - the test's verdict
            failures.append(exc)

    warming = threading.Thread(target=warm)
    warming.start()
    assert select.select([listener], [], [], 10)[0]  # the request waits, never accepted
    listener.close()  # the host leaves: its backlog is reset
    warming.join(10)
    assert not warming.is_alive() and failures == []
