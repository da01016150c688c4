"""The scheduler's strategies: of the nodes the filters kept, which one gets the task?

A strategy gives each candidate node a score and takes the best; ties go to the first hostname,
so the same cluster always makes the same choice.

- ``spread``: the node running the **fewest tasks** (lowest score wins). Replicas land on as
  many nodes as possible, so one node lost costs the fewest tasks; the cluster stays balanced.
- ``binpack``: the **fullest node that still fits** the task's reservations (highest score
  wins): the score is how full the node would be with the task, memory and CPU averaged, so
  the cluster uses as few nodes as it can and keeps whole nodes free for big tasks.
- ``random``: a seeded random choice, a baseline for the other two.

Swarm classic weighs cpu and memory use for both spread and binpack (strategy/weighted_node.go)
and breaks ties on the number of containers; SwarmKit spreads by task count. Here spread counts
tasks, as the seeds' definition says, and binpack weighs the reservations.
Docs: docs.docker.com "Swarm strategies" (classic). Used by: scheduler.py, lab 14-scheduler.
"""

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from minidocker.cluster.model import NodeView, SchedulingError, TaskSpec
from minidocker.cluster.view import ClusterView

LOWEST, HIGHEST = "lowest", "highest"


@dataclass(frozen=True)
class Strategy:
    name: str
    score: Callable[[NodeView, TaskSpec], float]
    wins: str  # LOWEST or HIGHEST
    meaning: str  # what the score is, for the explanation
    # An index that hands out the candidates best first, so the scheduler need not score them
    # all; only where the order does not depend on the task.
    best_first: Callable[[ClusterView, set[str]], Iterator[NodeView]] | None = None

    def rank(self, node: NodeView, task: TaskSpec) -> tuple[float, str]:
        """The sort key: the best node has the smallest rank."""
        score = self.score(node, task)
        return (score if self.wins == LOWEST else -score, node.hostname)

    def choose(self, nodes: list[NodeView], task: TaskSpec) -> NodeView:
        return min(nodes, key=lambda node: self.rank(node, task))


def spread_score(node: NodeView, task: TaskSpec) -> float:
    """The tasks the node runs already: fewest wins."""
    return node.tasks


def binpack_score(node: NodeView, task: TaskSpec) -> float:
    """How full the node would be with the task, from 0 (empty) to 1 (full): the used share of
    its memory and of its CPUs, averaged. Fullest wins; the resources filter has already removed
    the nodes where the task does not fit."""
    used, wanted, total = node.reserved, task.reservations, node.total
    return (share(used.memory + wanted.memory, total.memory)
            + share(used.nano_cpus + wanted.nano_cpus, total.nano_cpus)) / 2


def share(used: int, total: int) -> float:
    return used / total if total else 0.0


def fewest_tasks_first(view: ClusterView, candidates: set[str]) -> Iterator[NodeView]:
    """spread's order from the view's index: the candidates running the fewest tasks first,
    ties by hostname."""
    for count in sorted(view.by_task_count):
        left = view.by_task_count[count] & candidates
        while left:
            node = min((view.nodes[i] for i in left), key=lambda n: n.hostname)
            yield node
            left.discard(node.id)


SPREAD = Strategy("spread", spread_score, LOWEST, "tasks running", fewest_tasks_first)
BINPACK = Strategy("binpack", binpack_score, HIGHEST, "share used with the task")
NAMES = ("spread", "binpack", "random")


def random_strategy(seed: int = 0) -> Strategy:
    """A draw per node and task that depends only on (seed, task, node): a hash of the three,
    read as a number in [0, 1). The same seed gives the same choices, whatever the order in
    which the candidates come; another seed, other choices."""
    def draw(node: NodeView, task: TaskSpec) -> float:
        digest = hashlib.blake2b(f"{seed}/{task.id}/{node.hostname}".encode(), digest_size=8)
        return int.from_bytes(digest.digest()) / 2**64
    return Strategy("random", draw, HIGHEST, "seeded draw")


def strategy(name: str, seed: int = 0) -> Strategy:
    """The strategy called ``name`` (``--strategy`` of a cluster, or of one service)."""
    if name == "spread":
        return SPREAD
    if name == "binpack":
        return BINPACK
    if name == "random":
        return random_strategy(seed)
    raise SchedulingError(f"unknown scheduling strategy {name!r}: use spread, binpack or random")
