"""A cluster of 1,000 nodes and 100,000 tasks, in memory: is the scheduler fast and good enough?

No container runs here: the nodes are ``NodeView``s, the tasks ``TaskSpec``s, and the
scheduler (scheduler.py) places them against the view exactly as it would on a real cluster.
What a real cluster adds is time: the store's writes, a node's lease running out, containers
starting. Those are *simulated*, with the constants of ``Timing`` (each stated with its
reason).

**Store traffic per task (measured).** How many keys a task costs is not a guess: traffic.py
runs the manager's own pass (reconcile.py) on 50 simulated nodes against a store with etcd's
API that counts what it receives (``StoreCost``). A task is made, placed and started in one
pass, so it is written once; a failed node's task costs two keys (the old one marked
orphaned, its replacement). The manager writes a pass in transactions of up to 128 operations
(etcd's ``--max-txn-ops``); here those per-task figures are scaled to 100,000 tasks.

**Quality.** binpack should use few nodes: the lower bound is the total reservations over one
node's capacity (memory and CPU, whichever needs more nodes); spread should balance: the most
and least loaded nodes differ by at most one task.

Used by: bench/cluster.py, notebook 15-scheduling, tests/test_scheduler.py.
"""

import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import cache

from minidocker.cluster.model import NANO, NodeView, Resources, TaskSpec
from minidocker.cluster.scheduler import Scheduler
from minidocker.cluster.strategies import strategy
from minidocker.cluster.view import ClusterView

GiB, MiB = 2**30, 2**20
ZONES = ("a", "b", "c")
# The task sizes, one per service: (reserve-memory, reserve-cpu), chosen uniformly.
SIZES = [Resources(128 * MiB, NANO // 20), Resources(256 * MiB, NANO // 10),
         Resources(512 * MiB, NANO // 4), Resources(1 * GiB, NANO // 2)]
TXN_OPS = 128  # etcd's default --max-txn-ops: keys per transaction
# The steps of a recovery until every orphan has its new node (the timeline's first keys).
LEASE, NEXT_PASS, SCHEDULER = "lease expires", "the manager's next pass", "scheduler"


@dataclass(frozen=True)
class ClusterSpec:
    nodes: int = 1000
    tasks: int = 100_000
    replicas: int = 50  # tasks per service
    capacity: Resources = Resources(128 * GiB, 64 * NANO)  # each node's
    seed: int = 14


@dataclass(frozen=True)
class Timing:
    """What takes time on a real cluster, in seconds."""

    lease_ttl: float = 10.0  # a node's etcd lease; keep-alives every 3 s; worst case to notice
    pass_interval: float = 1.0  # the manager's pass: woken by a watch, at least every second
    store_writes_per_s: float = 1000.0  # etcd, in the seeds: "fast: 1k writes/s"
    container_start: float = 0.5  # one start by a node's daemon, rounded up from bench/run.py
    starts_in_parallel: int = 8  # an agent starts up to this many tasks at once


@dataclass(frozen=True)
class StoreCost:
    """Keys the manager's pass writes per task, as traffic.py measured them."""

    keys_per_task: float  # placing a new task
    keys_per_orphan: float  # rescheduling a failed node's task
    measured_on: str  # what was measured


@cache
def store_cost() -> StoreCost:
    """The manager's pass on a small simulated swarm, its store traffic counted (about a
    second; once per process)."""
    from minidocker.cluster import traffic

    measured = traffic.measure()
    return StoreCost(measured.placing.per_task()["keys"],
                     measured.rescheduling.per_task()["keys"],
                     f"{measured.nodes} nodes, {measured.placing.tasks} tasks, "
                     f"{measured.failed} nodes failed")


@dataclass
class StoreTraffic:
    """Keys written and transactions sent by the manager's passes."""

    keys: int = 0
    txns: int = 0

    def manager_writes(self, keys: int) -> None:
        """One pass's keys, in transactions of up to 128."""
        self.keys += keys
        self.txns += math.ceil(keys / TXN_OPS)

    def seconds(self, timing: Timing) -> float:
        return self.txns / timing.store_writes_per_s


@dataclass
class Placement:
    strategy: str
    placed: int
    seconds: float  # wall time of the scheduler alone
    traffic: StoreTraffic
    tasks_per_node: list[int]  # every node's task count, by hostname
    used_share: list[float]  # every node's reserved memory / capacity, by hostname

    @property
    def per_second(self) -> float:
        return self.placed / self.seconds if self.seconds else math.inf

    @property
    def nodes_used(self) -> int:
        return sum(1 for n in self.tasks_per_node if n)

    @property
    def spread(self) -> int:
        """Tasks on the busiest node minus tasks on the idlest (ready nodes only)."""
        return max(self.tasks_per_node) - min(self.tasks_per_node)


@dataclass
class Recovery:
    """After ``failed`` nodes went down at t = 0: when their tasks run again (simulated)."""

    failed: int
    orphans: int
    schedule_seconds: float  # the scheduler's wall time for the orphans
    traffic: StoreTraffic
    timeline: dict[str, float] = field(default_factory=dict)  # step -> seconds it takes
    spread_after: int = 0

    @property
    def seconds(self) -> float:
        return sum(self.timeline.values())

    @property
    def placed_after(self) -> float:
        """When every orphan has its new node: the lease, the next pass, the scheduler (then
        the pass starts the containers and writes what it did). Read by name: the timeline's
        order is for showing it, not for adding it up."""
        return sum(self.timeline[step] for step in (LEASE, NEXT_PASS, SCHEDULER))


# --- the cluster and its workload -----------------------------------------------------------

def make_nodes(spec: ClusterSpec) -> list[NodeView]:
    width = len(str(spec.nodes - 1))
    return [NodeView(f"n{i:0{width}d}", f"node-{i:0{width}d}",
                     labels={"zone": ZONES[i % len(ZONES)]}, total=spec.capacity)
            for i in range(spec.nodes)]


def make_services(spec: ClusterSpec) -> list[list[TaskSpec]]:
    """``tasks`` replicas in services of ``replicas`` tasks each; a service's size is drawn
    from SIZES with the spec's seed."""
    draw = random.Random(spec.seed)
    services = []
    for s in range(math.ceil(spec.tasks / spec.replicas)):
        size = draw.choice(SIZES)
        count = min(spec.replicas, spec.tasks - s * spec.replicas)
        services.append([TaskSpec(f"svc{s}.{r}", f"svc{s}", "busybox", name=f"svc{s}.{r}",
                                  reservations=size) for r in range(count)])
    return services


def lower_bound(services: list[list[TaskSpec]], capacity: Resources) -> int:
    """The fewest nodes that could hold every reservation: total / one node's capacity."""
    memory = sum(t.reservations.memory for tasks in services for t in tasks)
    cpus = sum(t.reservations.nano_cpus for tasks in services for t in tasks)
    return max(math.ceil(memory / capacity.memory), math.ceil(cpus / capacity.nano_cpus))


# --- placing, failing, placing again ------------------------------------------------------------

def place(view: ClusterView, name: str, services: list[list[TaskSpec]],
          one_by_one: bool = False, cost: StoreCost | None = None) -> Placement:
    """Every service's replicas through the scheduler, timed; the store traffic counted with
    the measured ``cost`` (a pass per service). ``one_by_one``: each task placed alone
    (filters and scores over every node each time), as tasks with affinities or placement
    preferences are, instead of as a group."""
    cost = cost or store_cost()
    scheduler = Scheduler(view, strategy(name))
    traffic = StoreTraffic()
    started = time.perf_counter()
    for tasks in services:
        if one_by_one:
            for t in tasks:
                scheduler.place(t)
        else:
            scheduler.place_replicas(tasks)
        traffic.manager_writes(round(len(tasks) * cost.keys_per_task))
    seconds = time.perf_counter() - started
    placed = sum(len(tasks) for tasks in services)
    return Placement(name, placed, seconds, traffic, *balance(view))


def balance(view: ClusterView) -> tuple[list[int], list[float]]:
    """Tasks and memory share of every ready node, in hostname order."""
    nodes = sorted((n for n in view.nodes.values() if n.id in view.schedulable),
                   key=lambda n: n.hostname)
    return ([n.tasks for n in nodes],
            [n.reserved.memory / n.total.memory for n in nodes])


def fail_and_reschedule(view: ClusterView, name: str, fraction: float = 0.1, seed: int = 14,
                        timing: Timing = Timing(), cost: StoreCost | None = None) -> Recovery:
    """``fraction`` of the nodes crash at t = 0; their tasks are placed again. The timeline
    follows the manager's pass (reconcile.py): the leases run out, the next pass begins, marks
    the old tasks and places their replacements (the scheduler's real wall time), the nodes'
    daemons start them, and the pass is written (the measured keys per orphan)."""
    cost = cost or store_cost()
    draw = random.Random(seed)
    failed = draw.sample(sorted(view.nodes), round(len(view.nodes) * fraction))
    orphans = [task for node_id in failed for task in view.fail(node_id)]
    scheduler = Scheduler(view, strategy(name))
    started = time.perf_counter()
    decisions = scheduler.place_all(orphans)
    schedule_seconds = time.perf_counter() - started
    written = StoreTraffic()
    written.manager_writes(round(len(orphans) * cost.keys_per_orphan))
    busiest = max(Counter(d.node for d in decisions).values(), default=0)
    timeline = {
        LEASE: timing.lease_ttl,
        NEXT_PASS: timing.pass_interval,
        SCHEDULER: schedule_seconds,
        "busiest node starts its tasks":
            math.ceil(busiest / timing.starts_in_parallel) * timing.container_start,
        f"pass written ({written.keys} keys, {written.txns} transactions)":
            written.seconds(timing),
    }
    tasks_per_node, _ = balance(view)
    return Recovery(len(failed), len(orphans), schedule_seconds, written, timeline,
                    max(tasks_per_node) - min(tasks_per_node))


def one_by_one_rates(spec: ClusterSpec, tasks: int = 2000,
                     strategies: tuple[str, ...] = ("spread", "binpack", "random")
                     ) -> dict[str, float]:
    """Placements per second when each task is placed alone, on the spec's cluster."""
    services = make_services(ClusterSpec(spec.nodes, tasks, spec.replicas, spec.capacity,
                                         spec.seed))
    return {name: place(ClusterView(make_nodes(spec)), name, services, one_by_one=True)
            .per_second for name in strategies}


def run(spec: ClusterSpec = ClusterSpec(), strategies: tuple[str, ...] = ("spread", "binpack"),
        fraction: float = 0.1) -> dict[str, tuple[Placement, Recovery]]:
    """Each strategy on a fresh cluster: place the whole workload, then fail ``fraction``."""
    services = make_services(spec)
    results = {}
    for name in strategies:
        view = ClusterView(make_nodes(spec))
        placement = place(view, name, services)
        results[name] = (placement, fail_and_reschedule(view, name, fraction, spec.seed))
    return results


@dataclass(frozen=True)
class Verdict:
    what: str
    value: float
    target: str
    met: bool


def verdicts(results: dict[str, tuple[Placement, Recovery]], bound: int) -> list[Verdict]:
    """The seeds' targets, against what the simulation measured."""
    found = []
    for name, (placement, recovery) in results.items():
        found.append(Verdict(f"{name}: placements per second", round(placement.per_second),
                             ">= 1000", placement.per_second >= 1000))
        placed = recovery.placed_after
        found.append(Verdict(f"{name}: {recovery.failed} nodes failed, their tasks placed "
                             "again (s, simulated)", round(placed, 1), "<= 30", placed <= 30))
        found.append(Verdict(f"{name}: ... running again, the pass written (s)",
                             round(recovery.seconds, 1), "(context)", True))
        found.append(Verdict(f"{name}: store keys written per task placed",
                             placement.traffic.keys / placement.placed, "(measured)", True))
    if "binpack" in results:
        used = results["binpack"][0].nodes_used
        found.append(Verdict(f"binpack: nodes used / lower bound ({bound})",
                             round(used / bound, 3), "<= 1.10", used <= 1.1 * bound))
    if "spread" in results:
        placement, recovery = results["spread"]
        found.append(Verdict("spread: max - min tasks per node", placement.spread, "<= 1",
                             placement.spread <= 1))
        found.append(Verdict("spread: ... after the failure", recovery.spread_after, "<= 1",
                             recovery.spread_after <= 1))
    return found
