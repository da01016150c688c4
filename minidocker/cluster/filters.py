"""The scheduler's filters: which nodes may run this task at all?

Before a strategy ranks anything, each filter removes the nodes that cannot or must not hold
the task, in this order (Swarm classic's default order, with SwarmKit's resource check):

- ``health``: only nodes that are ready (their lease is alive) and active (not paused, not
  drained by the operator);
- ``constraint``: ``--constraint node.labels.zone==east``, ``node.hostname!=n3``,
  ``node.role==manager``, ``engine.labels.storage==ssd``, ``node.id==...``;
- ``affinity``: next to a container (``container==web``), a pulled image (``image==redis``) or
  containers with a label (``com.example.tier==db``); ``!=`` keeps away from them;
- ``dependency``: ``--volumes-from``, ``--link`` and ``--network container:`` name containers
  whose node the task must share;
- ``port``: a port published on the host (``mode=host``) is a unique resource of a node;
- ``resources``: the task's reservations fit in what the node has not promised yet;
- ``placement-pref``: ``spread=node.labels.zone`` keeps the group of nodes (one per value of
  the label) that runs the fewest tasks of the service, so replicas spread over zones first.

A rule written ``KEY~=VALUE`` (or Swarm classic's ``KEY==~VALUE``) is *soft*: it is obeyed if
some node satisfies it, and dropped otherwise. Each filter is a set operation on the view's
indexes (view.py), except ``resources`` and ``placement-pref``, which look at each candidate.

Docs: docs.docker.com "Swarm filters" (classic) and "service create --constraint";
Swarm classic scheduler/filter/*.go. Used by: scheduler.py, lab 14-scheduler, notebook 15.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from minidocker.cluster.model import NodeView, SchedulingError, TaskSpec
from minidocker.cluster.view import ClusterView

EQ, NE = "==", "!="
EXPRESSION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9._/-]*)\s*(==~|!=~|~=|==|!=)\s*"
                        r"([A-Za-z0-9_][A-Za-z0-9:._/@+-]*)\s*$")
CONSTRAINT_KEYS = ("node.id", "node.hostname", "node.role")
CONSTRAINT_PREFIXES = ("node.labels.", "engine.labels.")


@dataclass(frozen=True, slots=True)
class Expression:
    """``key == value`` or ``key != value``; ``soft`` when it may be dropped."""

    key: str
    operator: str
    value: str
    soft: bool = False

    def __str__(self) -> str:
        return f"{self.key}{'~=' if self.soft and self.operator == EQ else self.operator}" \
               f"{self.value}"


@lru_cache(maxsize=4096)
def parse_expression(text: str, what: str) -> Expression:
    """``node.labels.zone==east`` -> Expression; a one-line error for anything else."""
    match = EXPRESSION.match(text)
    if not match:
        raise SchedulingError(f"invalid {what} {text!r}: expected KEY==VALUE, KEY!=VALUE or "
                              f"KEY~=VALUE (soft), e.g. node.labels.zone==east")
    key, operator, value = match.groups()
    soft = "~" in operator
    return Expression(key, NE if operator.startswith("!") else EQ, value, soft)


@lru_cache(maxsize=4096)
def parse_constraint(text: str) -> Expression:
    expression = parse_expression(text, "constraint")
    key = expression.key
    if key not in CONSTRAINT_KEYS and not key.startswith(CONSTRAINT_PREFIXES):
        raise SchedulingError(f"invalid constraint {text!r}: unknown key {key!r}; use "
                              "node.id, node.hostname, node.role, node.labels.KEY or "
                              "engine.labels.KEY")
    return expression


@lru_cache(maxsize=1024)
def parse_preference(text: str) -> str:
    """``spread=node.labels.zone`` -> ``node.labels.zone``."""
    strategy, _, key = text.partition("=")
    if strategy != "spread" or not key.startswith(CONSTRAINT_PREFIXES):
        raise SchedulingError(f"invalid placement preference {text!r}: expected "
                              "spread=node.labels.KEY (or spread=engine.labels.KEY)")
    return key


# --- filters ---------------------------------------------------------------------------------
# Each takes (task, candidates, view, soft): the IDs still in the race, and whether soft rules
# apply; it returns the IDs it keeps.

Apply = Callable[[TaskSpec, set[str], ClusterView, bool], set[str]]


@dataclass(frozen=True)
class Filter:
    name: str
    apply: Apply
    rules: Callable[[TaskSpec], list[str]]  # what it tests for this task, for the explanation
    # The same test on one node, for a filter that must look at each candidate: the scheduler
    # may then ask it only of the nodes a strategy's index hands out, best first.
    keeps: Callable[[NodeView, TaskSpec], bool] | None = None


def health(task: TaskSpec, candidates: set[str], view: ClusterView, soft: bool) -> set[str]:
    return candidates & view.schedulable


def obey(expressions: list[Expression], candidates: set[str], soft: bool,
         matching: Callable[[Expression], set[str]]) -> set[str]:
    """Keep the candidates that satisfy every expression (the soft ones only when ``soft``);
    ``matching(e)`` gives the nodes where ``e.key`` has ``e.value``."""
    for expression in expressions:
        if expression.soft and not soft:
            continue
        nodes = matching(expression)
        candidates = candidates & nodes if expression.operator == EQ else candidates - nodes
    return candidates


def constraint(task: TaskSpec, candidates: set[str], view: ClusterView, soft: bool) -> set[str]:
    expressions = [parse_constraint(text) for text in task.constraints]
    return obey(expressions, candidates, soft,
                lambda e: view.attributes.get((e.key, e.value), set()))


def affinity(task: TaskSpec, candidates: set[str], view: ClusterView, soft: bool) -> set[str]:
    expressions = [parse_expression(text, "affinity") for text in task.affinities]
    return obey(expressions, candidates, soft, lambda e: affinity_nodes(e, view))


def affinity_nodes(expression: Expression, view: ClusterView) -> set[str]:
    """The nodes running the container, holding the image, or running a container with the
    label that ``expression`` names."""
    if expression.key == "container":
        node = view.container_node.get(expression.value)
        return {node} if node else set()
    if expression.key == "image":
        return view.image_nodes.get(expression.value, set())
    return set(view.container_labels.get((expression.key, expression.value), ()))


def dependency(task: TaskSpec, candidates: set[str], view: ClusterView, soft: bool) -> set[str]:
    for name in task.dependencies():
        node = view.container_node.get(name)
        candidates = candidates & {node} if node else set()
    return candidates


def port(task: TaskSpec, candidates: set[str], view: ClusterView, soft: bool) -> set[str]:
    for published in task.ports:
        candidates = candidates - view.port_users.get(published, set())
    return candidates


def resources(task: TaskSpec, candidates: set[str], view: ClusterView, soft: bool) -> set[str]:
    wanted = task.reservations
    if not (wanted.memory or wanted.nano_cpus):
        return candidates
    nodes = view.nodes
    return {i for i in candidates if nodes[i].fits(wanted)}


def fits(node: NodeView, task: TaskSpec) -> bool:
    return node.fits(task.reservations)


def placement_pref(task: TaskSpec, candidates: set[str], view: ClusterView,
                   soft: bool) -> set[str]:
    """For each preference in turn: group the candidates by the label's value (nodes without
    the label form one more group) and keep the group running the fewest tasks of the
    service."""
    for text in task.placement_prefs:
        key = parse_preference(text)
        groups: dict[str, set[str]] = {}
        running: dict[str, int] = {}
        for node_id in candidates:
            node = view.nodes[node_id]
            value = label_value(node, key)
            groups.setdefault(value, set()).add(node_id)
            running[value] = running.get(value, 0) + node.service_tasks[task.service]
        if groups:
            fewest = min(running.values())
            candidates = set().union(*(g for v, g in groups.items() if running[v] == fewest))
    return candidates


def label_value(node: NodeView, key: str) -> str:
    if key.startswith("engine.labels."):
        return node.engine_labels.get(key.removeprefix("engine.labels."), "")
    return node.labels.get(key.removeprefix("node.labels."), "")


def node_filter(name: str, keep: Callable[[TaskSpec, list[NodeView]], list[NodeView]],
                rules: Callable[[TaskSpec], list[str]]) -> Filter:
    """A filter written on lists of nodes (``keep(task, nodes) -> nodes``), as the lab's
    student writes one, turned into one the scheduler runs."""
    def apply(task, candidates, view, soft):
        return {node.id for node in keep(task, [view.nodes[i] for i in candidates])}
    return Filter(name, apply, rules)


def _reservations(task: TaskSpec) -> list[str]:
    wanted = task.reservations
    shown = []
    if wanted.memory:
        shown.append(f"memory {wanted.memory // 2**20} MiB")
    if wanted.nano_cpus:
        shown.append(f"cpu {wanted.nano_cpus / 1e9:g}")
    return shown


def port_rules(task: TaskSpec) -> list[str]:
    return [str(p) for p in task.ports]


HEALTH = Filter("health", health, lambda task: ["ready and active"])
CONSTRAINT = Filter("constraint", constraint, lambda task: list(task.constraints))
AFFINITY = Filter("affinity", affinity, lambda task: list(task.affinities))
DEPENDENCY = Filter("dependency", dependency, TaskSpec.dependencies)
PORT = Filter("port", port, port_rules)
RESOURCES = Filter("resources", resources, _reservations, keeps=fits)
PLACEMENT_PREF = Filter("placement-pref", placement_pref, lambda task: list(task.placement_prefs))
DEFAULT_FILTERS = (HEALTH, CONSTRAINT, AFFINITY, DEPENDENCY, PORT, RESOURCES, PLACEMENT_PREF)
