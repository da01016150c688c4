"""viz/servers.py's launcher without a registry: a server interrupted while it starts is
stopped, never left behind (fast: a sleep stands in for the server)."""

import pytest

from minidocker.viz import servers


def test_an_interrupted_start_leaves_no_server(tmp_path, monkeypatch):
    started = []

    def interrupted(self, address):
        started.append(self.proc)
        raise KeyboardInterrupt

    monkeypatch.setattr(servers.Server, "wait_until_listening", interrupted)
    with pytest.raises(KeyboardInterrupt):
        servers.Server(["sleep", "60"], servers.free_port(), tmp_path / "server.log")
    assert started[0].poll() is not None  # stopped and reaped


def test_a_server_that_exits_is_reported_with_its_log(tmp_path):
    with pytest.raises(servers.ServerFailed, match="exited with 3: no config"):
        servers.Server(["sh", "-c", "echo no config; exit 3"], servers.free_port(),
                       tmp_path / "server.log")
