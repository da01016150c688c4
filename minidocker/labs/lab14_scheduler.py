"""Checker of lab 14 — the scheduler: the spread and binpack scorers and the port filter.

The student writes two scores and one filter; the checker plugs them into minidocker's own
scheduler (minidocker/cluster/scheduler.py) in place of its own, runs placement scenarios on an
in-memory cluster, and compares each choice with the reference strategy's or filter's: the
first task that lands elsewhere is named, with the nodes' state at that moment. No container
runs: the kernel's part of a cluster is elsewhere; what the lab checks is the decision.

Docs: docs.docker.com "Swarm strategies" and "Swarm filters" (classic); Swarm classic
scheduler/strategy/*.go and scheduler/filter/port.go.
Used by: ``minidocker lab check 14``; the lab is labs/14-scheduler/.
"""

from numbers import Real

from minidocker.cluster import filters
from minidocker.cluster.model import NANO, NodeView, Port, Resources, TaskSpec
from minidocker.cluster.scheduler import NoSuitableNode, Scheduler
from minidocker.cluster.strategies import BINPACK, HIGHEST, LOWEST, SPREAD, Strategy
from minidocker.cluster.view import ClusterView
from minidocker.labs.framework import Lab, Step, function
from minidocker.labs.sandbox import CheckFailed

GiB = 2**30


def nodes(*sizes: tuple[int, int]) -> list[NodeView]:
    """Nodes n1, n2, ... of (GiB, CPUs) each."""
    return [NodeView(f"id-n{i}", f"n{i}", total=Resources(memory * GiB, cpus * NANO))
            for i, (memory, cpus) in enumerate(sizes, start=1)]


def task(id: str, memory: float = 0, cpus: float = 0, ports: tuple[Port, ...] = ()) -> TaskSpec:
    return TaskSpec(id, "web", "busybox", name=id, ports=ports,
                    reservations=Resources(int(memory * GiB), int(cpus * NANO)))


def scored(student, name: str, wins: str) -> Strategy:
    """The student's score function as a strategy, checking each score it returns."""
    score = function(student, name)

    def checked(node: NodeView, t: TaskSpec) -> float:
        value = score(node, t)
        if not isinstance(value, Real) or isinstance(value, bool):
            raise CheckFailed(f"{name}(node, task) returned {value!r}: return a number "
                              f"({wins} wins)")
        return value
    return Strategy(name, checked, wins, "your score")


def state(view: ClusterView) -> str:
    return ", ".join(f"{n.hostname}: {n.tasks} tasks, {n.reserved.memory / GiB:g}/"
                     f"{n.total.memory / GiB:g} GiB, {n.reserved.nano_cpus / NANO:g}/"
                     f"{n.total.nano_cpus / NANO:g} CPUs"
                     for n in sorted(view.nodes.values(), key=lambda n: n.hostname))


def same_choices(student: Strategy, reference: Strategy, cluster: list[NodeView],
                 tasks: list[TaskSpec], advice: str, warm=()) -> ClusterView:
    """Place ``tasks`` with the student's strategy and with the reference, side by side, on
    two copies of ``cluster`` where the ``warm`` (task, node ID) pairs already run; the first
    choice that differs fails the step."""
    mine, theirs = ClusterView(cluster), ClusterView([_copy(n) for n in cluster])
    for t, node_id in warm:
        mine.bind(t, node_id)
        theirs.bind(t, node_id)
    for t in tasks:
        before = state(mine)
        got = Scheduler(mine, student).place(t).hostname
        wanted = Scheduler(theirs, reference).place(t).hostname
        if got != wanted:
            raise CheckFailed(f"task {t.id} ({_size(t)}) went to {got}, but {wanted} should "
                              f"win; the nodes were: {before}. {advice}")
    return mine


def _copy(node: NodeView) -> NodeView:
    return NodeView(node.id, node.hostname, total=node.total)


def _size(t: TaskSpec) -> str:
    return f"{t.reservations.memory / GiB:g} GiB, {t.reservations.nano_cpus / NANO:g} CPUs"


# --- step 1: spread ---------------------------------------------------------------------------

def check_spread(student, _workspace) -> str:
    strategy = scored(student, "spread_score", LOWEST)
    advice = ("spread gives the lowest score to the node running the fewest tasks, whatever "
              "its size")
    cluster = nodes((8, 4), (8, 4), (8, 4), (16, 8))
    warm = [(task(f"old{i}"), "id-n2") for i in range(3)]
    tasks = [task(f"t{i}", memory=0.5) for i in range(13)]
    view = same_choices(strategy, SPREAD, cluster, tasks, advice, warm)
    counts = [n.tasks for n in sorted(view.nodes.values(), key=lambda n: n.hostname)]
    return (f"16 tasks (3 already on n2) over 4 nodes: {counts} tasks per node, "
            f"max - min = {max(counts) - min(counts)}")


# --- step 2: binpack --------------------------------------------------------------------------

def check_binpack(student, _workspace) -> str:
    strategy = scored(student, "binpack_score", HIGHEST)
    advice = ("binpack's score is how full the node would be *with* the task: the share of its "
              "memory and the share of its CPUs, averaged; highest wins")
    cluster = nodes((8, 4), (16, 2), (4, 8), (8, 8))
    tasks = [task("a", 2, 1), task("b", 4, 0.5), task("c", 1, 2), task("d", 3, 1),
             task("e", 0.5, 1.5), task("f", 6, 0.5), task("g", 2, 2), task("h", 1, 1),
             task("i", 5, 1), task("j", 0.5, 0.5)]
    view = same_choices(strategy, BINPACK, cluster, tasks, advice)
    used = sum(1 for n in view.nodes.values() if n.tasks)
    return f"10 tasks of mixed sizes on 4 nodes of mixed sizes: the reference's choices, " \
           f"{used} nodes used; {state(view)}"


# --- step 3: the port filter -----------------------------------------------------------------

def check_port_filter(student, _workspace) -> str:
    keep = function(student, "port_filter")

    def checked(t: TaskSpec, candidates: list[NodeView]) -> list[NodeView]:
        kept = keep(t, list(candidates))
        if not isinstance(kept, list | tuple | set) or \
                not all(isinstance(n, NodeView) for n in kept):
            raise CheckFailed(f"port_filter(task, nodes) returned {kept!r}: return the list of "
                              "nodes it keeps")
        if not {n.id for n in kept} <= {n.id for n in candidates}:
            raise CheckFailed("port_filter returned a node it was not given")
        return list(kept)

    port = filters.node_filter("port", checked, filters.port_rules)
    chain = tuple(port if f.name == "port" else f for f in filters.DEFAULT_FILTERS)
    view = ClusterView(nodes((8, 4), (8, 4), (8, 4), (8, 4)))
    view.bind(task("old", ports=(Port(80),)), "id-n2")
    for i, node_id in enumerate(("id-n1", "id-n1", "id-n3", "id-n3", "id-n4", "id-n4")):
        view.bind(task(f"busy{i}"), node_id)  # so that spread alone would pick n2
    scheduler = Scheduler(view, SPREAD, chain)
    web = [task(f"web{i}", ports=(Port(80),)) for i in range(3)]
    placed = sorted(scheduler.place(t).hostname for t in web)
    if placed != ["n1", "n3", "n4"]:
        raise CheckFailed(f"three tasks publishing 80/tcp went to {placed}, with 80/tcp already "
                          "taken on n2: remove every node where one of the task's ports is in "
                          "node.ports")
    try:
        extra = scheduler.place(task("web3", ports=(Port(80),))).hostname
    except NoSuitableNode:
        pass
    else:
        raise CheckFailed(f"a fifth task publishing 80/tcp went to {extra}, where 80/tcp is "
                          "taken: no node should be left")
    udp = scheduler.place(task("dns", ports=(Port(80, "udp"),))).hostname
    both = scheduler.place(task("both", ports=(Port(53, "udp"), Port(8080)))).hostname
    plain = scheduler.place(task("plain")).hostname
    if not (udp and both and plain):
        raise CheckFailed("a task was not placed")
    return (f"80/tcp once per node (n2 had it; the others went to {', '.join(placed)}; a "
            f"fifth found no node); 80/udp is another port ({udp}); a task without ports "
            f"goes anywhere ({plain})")


LAB = Lab(
    directory="14-scheduler",
    steps=(
        Step(1, "spread: the node with the fewest tasks wins", check_spread),
        Step(2, "binpack: the fullest node that still fits wins", check_binpack),
        Step(3, "the port filter: a published host port once per node", check_port_filter),
    ),
)
