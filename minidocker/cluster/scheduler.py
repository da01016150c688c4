"""The scheduler: filters, then a strategy; each decision can explain itself.

Placing a task is two steps, as in Swarm classic (scheduler/scheduler.go) and SwarmKit:

1. **filter**: start from every node of the cluster and let each filter (filters.py) remove
   the nodes that cannot or must not run the task: down or drained, a constraint not met, a
   port taken, not enough memory left...; soft rules (``~=``) count only while some node
   satisfies them, so if none is left, the filters run again without them;
2. **rank**: the strategy (strategies.py) scores the nodes left and takes the best one.

Then the view (view.py) binds the task to the node: its reservations, ports and container
count there. Later the binding is written to the cluster's store, and the node's agent,
watching the store, starts the container.

Scoring every candidate is a pass over every node, for every task. Two shortcuts give the same
choice for less: the replicas of a service are placed as a group (``place_replicas``), and
spread, whose order does not depend on the task, walks the view's index of nodes by task count,
best first, asking the reservations only of the nodes it reaches (``first_fit``).

A ``Decision`` says what happened: which nodes each filter removed, and how each candidate
scored. Asked with ``explain=True`` it keeps everything (for ``service ps --explain`` or an
event); without it, only the choice, which is what the 100,000-task simulation needs.
Used by: simulate.py, notebook 15-scheduling, lab 14-scheduler, tests/test_scheduler.py.
"""

import heapq
from dataclasses import dataclass, field

from minidocker.cluster.filters import DEFAULT_FILTERS, Filter
from minidocker.cluster.model import NodeView, SchedulingError, TaskSpec
from minidocker.cluster.strategies import SPREAD, Strategy
from minidocker.cluster.view import ClusterView

SHOWN_NODES = 6  # how many node names one line of an explanation lists


@dataclass(frozen=True)
class FilterStep:
    """What one filter did: the rules it tested for this task and the nodes it removed."""

    filter: str
    rules: list[str]
    removed: list[str]  # hostnames, sorted
    left: int


@dataclass(frozen=True)
class Candidate:
    hostname: str
    score: float


@dataclass
class Decision:
    """Where a task goes, and (with ``explain``) why."""

    task: str
    strategy: str
    node: str | None = None  # the chosen node's ID
    hostname: str | None = None
    steps: list[FilterStep] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)  # best first
    meaning: str = ""  # what a score is
    relaxed: bool = False  # the soft rules were dropped: no node satisfied them

    def removed_by(self, name: str) -> list[str]:
        return next((s.removed for s in self.steps if s.filter == name), [])

    def summary(self) -> str:
        """One line: the filters that removed nodes, and how many."""
        parts = [f"{s.filter} removed {len(s.removed)}" for s in self.steps if s.removed]
        if self.relaxed:
            parts.append("soft rules dropped")
        return ", ".join(parts) or "no node removed"

    def __str__(self) -> str:
        target = self.hostname or "no suitable node"
        lines = [f"task {self.task} -> {target} (strategy {self.strategy})"]
        for step in self.steps:
            rules = ", ".join(step.rules)
            removed = shorten(step.removed) if step.removed else "nothing"
            lines.append(f"  {step.filter:15} {rules:28} removed {removed} ({step.left} left)")
        if self.relaxed:
            lines.append("  soft rules dropped: no node satisfied them")
        scored = ", ".join(f"{c.hostname} {c.score:.3g}" for c in self.candidates[:SHOWN_NODES])
        if self.candidates:
            more = len(self.candidates) - SHOWN_NODES
            lines.append(f"  {'scores':15} {self.meaning}: {scored}"
                         + (f" (+{more} more)" if more > 0 else ""))
        return "\n".join(lines)


def shorten(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NODES])
    return shown + (f" (+{len(names) - SHOWN_NODES} more)" if len(names) > SHOWN_NODES else "")


class NoSuitableNode(SchedulingError):
    """No node is left after the filters; ``decision`` says which filter removed which node."""

    def __init__(self, decision: Decision):
        super().__init__(f"no suitable node for task {decision.task} "
                         f"({decision.summary()}): see the explanation, then relax a rule, "
                         "free a node or add one")
        self.decision = decision


class Scheduler:
    """Places tasks on the nodes of ``view`` with ``strategy`` after ``filters``."""

    def __init__(self, view: ClusterView, strategy: Strategy = SPREAD,
                 filters: tuple[Filter, ...] = DEFAULT_FILTERS):
        self.view = view
        self.strategy = strategy
        self.filters = filters

    def schedule(self, task: TaskSpec, explain: bool = False) -> Decision:
        """Choose a node for ``task`` (the view does not change). Raises NoSuitableNode, with
        the explanation, when the filters leave none."""
        if not explain and self.strategy.best_first and not task.placement_prefs:
            chosen = self.first_fit(task)
            if chosen:
                return Decision(task.id, self.strategy.name, chosen.id, chosen.hostname)
            return self.schedule(task, explain=True)  # the whole story, or the soft rules dropped
        decision = Decision(task.id, self.strategy.name, meaning=self.strategy.meaning)
        candidates = self.candidates(task, decision, explain)
        if not candidates:
            if not explain:
                return self.schedule(task, explain=True)  # raises, with the whole story
            raise NoSuitableNode(decision)
        nodes = [self.view.nodes[i] for i in candidates]
        chosen = self.strategy.choose(nodes, task)
        decision.node, decision.hostname = chosen.id, chosen.hostname
        if explain:
            ranked = sorted(nodes, key=lambda node: self.strategy.rank(node, task))
            decision.candidates = [Candidate(n.hostname, self.strategy.score(n, task))
                                   for n in ranked]
        return decision

    def first_fit(self, task: TaskSpec) -> NodeView | None:
        """The same choice without scoring every node: the set filters run, then the
        strategy's index hands out the candidates best first, and the first one that the
        per-node filters keep (its reservations fit) wins."""
        by_set = tuple(f for f in self.filters if not f.keeps)
        per_node = [f.keeps for f in self.filters if f.keeps]
        candidates = self.candidates(task, Decision(task.id, ""), False, by_set)
        for node in self.strategy.best_first(self.view, candidates):
            if all(keeps(node, task) for keeps in per_node):
                return node
        return None

    def candidates(self, task: TaskSpec, decision: Decision, explain: bool,
                   filters: tuple[Filter, ...] | None = None) -> set[str]:
        """The nodes every filter kept; without the soft rules if no node satisfies them."""
        filters = self.filters if filters is None else filters
        candidates = self.filtered(task, decision, filters, soft=True, explain=explain)
        if not candidates and self.has_soft_rules(task):
            decision.steps.clear()
            decision.relaxed = True
            candidates = self.filtered(task, decision, filters, soft=False, explain=explain)
        return candidates

    def place(self, task: TaskSpec, explain: bool = False) -> Decision:
        """Schedule ``task`` and bind it to the chosen node in the view."""
        decision = self.schedule(task, explain)
        self.view.bind(task, decision.node)
        return decision

    def place_all(self, tasks: list[TaskSpec]) -> list[Decision]:
        """Place many tasks at once (the orphans of failed nodes): those asking for the same
        placement go as one group (``place_replicas``), the groups in order of arrival."""
        groups: dict[tuple, list[TaskSpec]] = {}
        for task in tasks:
            groups.setdefault(task.placement(), []).append(task)
        return [d for group in groups.values() for d in self.place_replicas(group)]

    def place_replicas(self, tasks: list[TaskSpec]) -> list[Decision]:
        """Place tasks that ask for the same placement (``TaskSpec.placement``: the replicas of
        one service, or any tasks with the same reservations and rules), filtering the nodes
        once for all of them, as SwarmKit schedules a task group.

        The candidates go into a heap ordered by the strategy's rank; each task takes the best
        node that still fits, which goes back into the heap with its new rank. Only that node
        changed, so every other rank still holds: a task costs O(log n), not a scan of every
        node. When a task's own placement changes the other nodes' chances (affinities, placement
        preferences, a random draw per task), the tasks are placed one by one instead."""
        first = tasks[0]
        if first.affinities or first.placement_prefs or self.strategy.name == "random":
            return [self.place(task) for task in tasks]
        nodes = self.view.nodes
        heap = [(self.strategy.rank(nodes[i], first), i)
                for i in self.candidates(first, Decision(first.id, ""), explain=False)]
        heapq.heapify(heap)
        decisions = []
        for task in tasks:
            while heap and not nodes[heap[0][1]].fits(task.reservations):
                heapq.heappop(heap)  # full for this task, so for the replicas after it too
            if not heap:
                decisions.append(self.place(task))  # raises NoSuitableNode, explained
                continue
            node = nodes[heapq.heappop(heap)[1]]
            self.view.bind(task, node.id)
            if not task.ports:  # a host port taken: that node is done for this service
                heapq.heappush(heap, (self.strategy.rank(node, task), node.id))
            decisions.append(Decision(task.id, self.strategy.name, node.id, node.hostname))
        return decisions

    def filtered(self, task: TaskSpec, decision: Decision, filters: tuple[Filter, ...],
                 soft: bool, explain: bool) -> set[str]:
        candidates = set(self.view.nodes)
        for step in filters:
            kept = step.apply(task, candidates, self.view, soft)
            if explain:
                removed = sorted(self.view.nodes[i].hostname for i in candidates - kept)
                decision.steps.append(FilterStep(step.name, step.rules(task), removed, len(kept)))
            candidates = kept
            if not candidates:
                break
        return candidates

    @staticmethod
    def has_soft_rules(task: TaskSpec) -> bool:
        return any("~" in rule for rule in task.constraints + task.affinities)


def explain(view: ClusterView, task: TaskSpec, strategy: Strategy = SPREAD) -> Decision:
    """Where ``task`` would go on ``view``, and why, without placing it."""
    try:
        return Scheduler(view, strategy).schedule(task, explain=True)
    except NoSuitableNode as exc:
        return exc.decision

