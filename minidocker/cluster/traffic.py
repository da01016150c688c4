"""What a task costs the store: the manager's own pass, against a store that counts.

The simulation (simulate.py) places 100,000 tasks against an in-memory view; it does not run
the manager. Here the manager's real pass (reconcile.py: orphans, slots, scheduling,
dispatch, one transaction) runs against ``CountingStore``, an in-memory store with the API of
store.py's etcd client, which counts what etcd would receive: the requests, the transactions
(``kv/txn``, at most 128 operations each, etcd's ``--max-txn-ops``) and the keys written.
The nodes' daemons are ``SimulatedDaemon``s that "run" a container by remembering it. The
services are created by swarm.py's own ``create_service``, as the CLI does.

Two figures come out, per task, and simulate.py scales its store timeline with them:

- placing: a task is made, placed and started in the same pass, so it is written once;
- rescheduling after a node fails: the old task is marked orphaned and its replacement
  written, in one pass (two keys), once the node's lease has run out.

A pass costs one read of the whole prefix plus its transactions, whatever the number of tasks.
Used by: simulate.py, bench/cluster.py, tests/test_scheduler.py.
"""

import random
from collections import Counter
from dataclasses import dataclass, field

from minidocker.cluster import reconcile
from minidocker.cluster import swarm as records
from minidocker.cluster.engine import EngineError
from minidocker.cluster.model import NANO
from minidocker.cluster.store import MAX_OPERATIONS, prefix_end
from minidocker.state import now

GiB = 2**30


@dataclass
class Counts:
    """What the store received: requests (reads and writes), transactions, keys written."""

    reads: int = 0
    txns: int = 0
    keys: int = 0
    deletes: int = 0

    @property
    def requests(self) -> int:
        return self.reads + self.txns


class CountingStore:
    """An in-memory key-value map with the calls of store.Store that swarm.py and
    reconcile.py make, each counted as etcd would see it."""

    def __init__(self):
        self.data: dict[str, str] = {}
        self.modified: dict[str, int] = {}
        self.revision = 0
        self.counts = Counts()

    def _put(self, key: str, value: str) -> None:
        self.revision += 1
        self.data[key], self.modified[key] = value, self.revision
        self.counts.keys += 1

    def get(self, key: str) -> str | None:
        self.counts.reads += 1
        return self.data.get(key)

    def get_prefix(self, prefix: str) -> tuple[dict[str, str], int]:
        self.counts.reads += 1
        end = prefix_end(prefix)
        return {k: v for k, v in self.data.items() if prefix <= k < end}, self.revision

    def put(self, key: str, value: str, lease: int = 0) -> int:
        self.counts.txns += 1
        self._put(key, value)
        return self.revision

    def delete(self, key: str, prefix: bool = False) -> int:
        self.counts.txns += 1
        gone = [k for k in self.data if k == key or prefix and key <= k < prefix_end(key)]
        for k in gone:
            del self.data[k]
        self.counts.deletes += len(gone)
        return len(gone)

    def commit(self, puts: dict[str, str], deletes: list[str] = (),
               only_if: tuple[str, str] | None = None, unchanged: list[str] = (),
               since: int = 0) -> bool:
        """store.Store.commit's conditions, and its split into transactions of 128."""
        operations = len(puts) + len(deletes)
        self.counts.txns += -(-operations // MAX_OPERATIONS)  # none sent for nothing
        if only_if and self.data.get(only_if[0]) != only_if[1] or \
                any(self.modified.get(k, since + 1) > since for k in unchanged):
            return False
        for key, value in puts.items():
            self._put(key, value)
        for key in deletes:
            self.data.pop(key, None)
        self.counts.deletes += len(deletes)
        return True

    def reset(self) -> Counts:
        counted, self.counts = self.counts, Counts()
        return counted


class SimulatedDaemon:
    """A node's daemon without containers: the calls of engine.Engine that dispatch makes."""

    def __init__(self, node: str):
        self.node, self.running, self.made = node, {}, 0
        self.up = True

    def containers(self, all: bool = False, label: str | None = None) -> list[dict]:
        if not self.up:
            raise EngineError(f"the daemon of {self.node} did not answer")
        return [{"Id": cid, "Labels": labels, "State": "running"}
                for cid, labels in self.running.items()]

    def run(self, name: str, body: dict) -> str:
        self.made += 1
        cid = f"{self.node}-{self.made}"
        self.running[cid] = body["Labels"]
        return cid

    def remove(self, container: str) -> None:
        self.running.pop(container, None)


@dataclass
class Phase:
    """One measured phase: how many tasks it concerned, the passes it took, what it cost."""

    tasks: int
    passes: int
    counts: Counts

    def per_task(self) -> dict[str, float]:
        n = max(self.tasks, 1)
        return {"keys": self.counts.keys / n, "txns": self.counts.txns / n,
                "requests": self.counts.requests / n}


@dataclass
class Measured:
    nodes: int
    failed: int
    placing: Phase
    rescheduling: Phase
    leftovers: list[str] = field(default_factory=list)  # tasks running twice (none expected)


def make_swarm(store: CountingStore, nodes: int, strategy: str) -> dict[str, SimulatedDaemon]:
    """The records ``swarm init`` and ``join`` write, and each node's lease key, as its agent
    keeps it (64 GiB and 32 CPUs a node)."""
    records.write(store, records.SWARM, {"ID": "sim", "CreatedAt": now(), "Strategy": strategy})
    daemons = {}
    for i in range(nodes):
        node_id = f"node{i:04d}"
        records.write(store, records.NODES + node_id, {
            "ID": node_id, "CreatedAt": now(), "Hostname": f"n{i:04d}",
            "Role": "manager" if i == 0 else "worker", "Availability": "active",
            "Labels": {}, "Address": "", "Socket": node_id})
        records.write(store, records.ALIVE + node_id, {
            "Resources": {"MemoryBytes": 64 * GiB, "NanoCPUs": 32 * NANO}})
        daemons[node_id] = SimulatedDaemon(node_id)
    store.put(records.LEADER, "node0000")
    return daemons


def converge(store: CountingStore, daemons: dict[str, SimulatedDaemon],
             most: int = 10) -> int:
    """Passes of the leader until a pass changes nothing; how many changed something."""
    for passes in range(most):
        state = reconcile.reconcile(store, "node0000", engine=daemons.__getitem__, workers=8)
        if not state.changed:
            return passes
    return most


def running_twice(store: CountingStore, daemons: dict[str, SimulatedDaemon]) -> list[str]:
    """The services whose live nodes run more containers than they have replicas."""
    running = Counter(labels[reconcile.SERVICE_LABEL] for daemon in daemons.values()
                      if daemon.up for labels in daemon.running.values())
    services = records.read_all(store, records.SERVICES).values()
    return sorted(s["Spec"]["Name"] for s in services
                  if running[s["Spec"]["Name"]] > s["Spec"]["Mode"]["Replicated"]["Replicas"])


def measure(nodes: int = 50, services: int = 40, replicas: int = 25, fraction: float = 0.1,
            strategy: str = "spread", seed: int = 14) -> Measured:
    """Create ``services`` of ``replicas`` tasks on ``nodes`` simulated nodes, converge, fail
    ``fraction`` of the nodes (their leases gone, their daemons silent), converge again."""
    store = CountingStore()
    daemons = make_swarm(store, nodes, strategy)
    for s in range(services):
        spec = records.service_spec(f"svc{s}", "busybox", [], replicas, "replicated", [], [],
                                    [], [], 0, 256 * 2**20, NANO // 10)
        records.create_service(store, spec)
    store.reset()
    placing = Phase(services * replicas, converge(store, daemons), store.reset())
    failed = random.Random(seed).sample(sorted(daemons)[1:], round(nodes * fraction))
    orphans = 0
    for node_id in failed:
        store.data.pop(records.ALIVE + node_id)  # the lease ran out
        daemons[node_id].up = False
        orphans += len(daemons[node_id].running)
    store.reset()
    rescheduling = Phase(orphans, converge(store, daemons), store.reset())
    return Measured(nodes, len(failed), placing, rescheduling, running_twice(store, daemons))
