"""A node's two swarm processes: its agent (the heartbeat) and, on a manager, the manager loop.

**agent**: the node says it is alive by renewing a lease. It grants a lease of ``TTL`` seconds,
writes ``/minidocker/alive/<node id>`` with it (and what its daemon offers: memory, CPUs) and
renews it every second. If the node is unplugged, partitioned, or its daemon dies, the renewals
stop, etcd drops the key when the lease expires, and the managers see the node ``Down``; once
it is back, the agent finds its lease gone (a TTL of 0) and takes a new one. The TTL is ten
renewals long: a starved machine (an emulated VM, a loaded laptop) whose renewals come late
must not see its nodes go Down and their tasks move (Docker's own default: a heartbeat every
5 s, a node Down after three are missed).

**manager**: an election, then passes of the reconciler. Every manager tries to create
``/minidocker/leader`` with its own lease (a transaction: only if the key does not exist), so
one wins and keeps the key alive while the others wait; if the leader dies, its lease expires
and the next one wins. The leader runs a pass (reconcile.py) whenever the watch on
``/minidocker/`` reports a change, and at least every ``PASS_INTERVAL`` seconds.

The agent also keeps the node's end of the overlay networks (vxlan.py: bridges, VXLAN devices,
their FDB and neighbour entries, the routing mesh's rules) and answers DNS for the swarm's
names (resolver.py), both from etcd, in a thread woken by the same kind of watch.

Each runs as ``python -m minidocker.cluster.agent agent|manager NODE_ID`` inside the node's
network namespace (swarm.py starts them). Docs: etcd.io "Interacting with etcd" (leases,
watches, elections), docs.docker.com "Raft consensus in swarm mode".
"""

import json
import logging
import sys
import threading
import time

from minidocker.cluster import lab as labs
from minidocker.cluster import swarm as records
from minidocker.cluster.engine import Engine, EngineError
from minidocker.cluster.etcd import EtcdError
from minidocker.cluster.store import Store

TTL = 10  # seconds: a node is Down at most this long after its last renewal
RENEW_EVERY = 1.0
CALL_TIMEOUT = 4.0  # seconds an etcd call may take: a slow answer still renews in time
PASS_INTERVAL = 1.0
log = logging.getLogger("minidocker.agent")


def heartbeat(store: Store, node: dict) -> None:
    """Keep the node's lease alive for as long as its daemon is there. A daemon busy starting
    containers on a slow machine may take seconds to answer: it still counts, or the node
    would go Down (and its tasks move) whenever it works hard; a crashed one refuses at once."""
    engine = Engine(node["Socket"], timeout=RENEW_EVERY)
    lease = 0
    while True:
        try:
            if not engine.present():  # gone: no more renewals, the node will be Down
                if lease:
                    store.revoke(lease)
                lease = 0
            elif not lease or store.keepalive(lease) == 0:
                lease = announce(store, node, Engine(node["Socket"]))
        except (EtcdError, EngineError) as exc:
            log.warning("heartbeat: %s", exc)
        time.sleep(RENEW_EVERY)


def announce(store: Store, node: dict, engine: Engine) -> int:
    """A new lease, and the node's key written with it: its address and what its daemon
    offers (``GET /info``: memory, CPUs), for the scheduler."""
    info = engine.call("GET", "/info").json()
    lease = store.grant(TTL)
    status = {"Addr": node["Address"], "At": time.time(),
              "Resources": {"MemoryBytes": info.get("MemTotal", 0),
                            "NanoCPUs": info.get("NCPU", 1) * 1_000_000_000},
              "EngineVersion": info.get("ServerVersion", "")}
    store.put(records.ALIVE + node["ID"], json.dumps(status), lease)
    return lease


def networking(store: Store, node: dict) -> None:
    """The node's overlays and name server, made to match etcd on every change and every
    second."""
    from minidocker.cluster import vxlan
    from minidocker.cluster.resolver import Resolver

    resolver = Resolver().start()
    changed = threading.Event()
    threading.Thread(target=watch, args=(store, changed), daemon=True).start()
    while True:
        changed.wait(PASS_INTERVAL)
        changed.clear()
        try:
            resolver.update(vxlan.sync(store, node))
        except Exception as exc:  # the node's networking is retried at the next change
            log.warning("overlay: %s", exc)


def manage(store: Store, node: dict) -> None:
    """Campaign for leadership; while leader, reconcile on every change and every second."""
    from minidocker.cluster.reconcile import reconcile

    changed = threading.Event()
    threading.Thread(target=watch, args=(store, changed), daemon=True).start()
    leadership = Leadership(store, node)
    threading.Thread(target=leadership.run, daemon=True).start()
    while True:
        changed.wait(PASS_INTERVAL)
        changed.clear()
        if leadership.held.is_set():
            try:
                reconcile(store, node["ID"])
            except EtcdError as exc:
                log.warning("manager: %s", exc)


class Leadership:
    """One election, kept: create the leader key with our lease, then renew the lease every
    second (in its own thread, so a long pass never lets it expire)."""

    def __init__(self, store: Store, node: dict):
        self.store, self.node = store, node
        self.held = threading.Event()

    def run(self) -> None:
        lease = 0
        while True:
            try:
                if lease and self.store.keepalive(lease):
                    self.held.set()
                else:
                    self.held.clear()
                    lease = self.campaign()
            except EtcdError as exc:
                log.warning("election: %s", exc)
                self.held.clear()
                lease = 0
            time.sleep(RENEW_EVERY)

    def campaign(self) -> int:
        """Our lease if we won (the leader key did not exist), else 0."""
        lease = self.store.grant(TTL)
        if self.store.create(records.LEADER, self.node["ID"], lease):
            log.warning("node %s leads the swarm", self.node["Hostname"])
            self.held.set()
            return lease
        self.store.revoke(lease)
        return 0


def watch(store: Store, changed: threading.Event) -> None:
    """Wake the manager on every change under /minidocker/ (and retry if the watch breaks)."""
    while True:
        try:
            for _ in store.watch(records.PREFIX):
                changed.set()
        except EtcdError:
            time.sleep(RENEW_EVERY)


def main(argv: list[str]) -> None:
    role, node_id = argv
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    lab = labs.load()
    store = Store.for_lab(lab, timeout=CALL_TIMEOUT)
    node = None
    while node is None:
        try:
            node = records.read(store, records.NODES + node_id)
        except EtcdError:
            time.sleep(RENEW_EVERY)
    if role == "agent":
        # The overlays' store has connections of its own: a slow sync never holds up a renewal.
        overlays = Store.for_lab(lab, timeout=CALL_TIMEOUT)
        threading.Thread(target=networking, args=(overlays, node), daemon=True).start()
    (heartbeat if role == "agent" else manage)(store, node)


if __name__ == "__main__":
    main(sys.argv[1:])
