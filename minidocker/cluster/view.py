"""The scheduler's in-memory view of the cluster, with the indexes that keep placement fast.

A manager does not ask every node before each decision: it keeps a view of all nodes and tasks,
fed by the store's watch (etcd, later), and schedules against it. Each filter could scan every
node, but with 1,000 nodes and 100,000 tasks a scan per filter per task is 500 million checks.
So the view keeps indexes, each a set of node IDs, updated when a task is bound or a node
changes, and a filter becomes a set operation:

- ``attributes[("node.labels.zone", "east")]``: the nodes a constraint can name (labels, engine
  labels, hostname, role, ID);
- ``schedulable``: the nodes that are ready and active (the health filter);
- ``port_users[Port(80)]``: the nodes where a published port is taken (the port filter);
- ``by_task_count[3]``: the nodes running three tasks (spread's order, fewest first);
- ``container_node["web"]``, ``image_nodes["redis"]``, ``container_labels[(k, v)]``: where
  containers run, which images a node holds (affinity and dependency filters).

Swarm classic keeps the same view in its cluster package and refreshes it from each engine's
events; SwarmKit's scheduler keeps a ``nodeSet`` and ``nodeInfo`` per node.
Used by: scheduler.py, filters.py, simulate.py, notebook 15-scheduling, lab 14-scheduler.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass

from minidocker.cluster.model import (
    ACTIVE,
    DOWN,
    DRAIN,
    PAUSE,
    READY,
    NodeView,
    SchedulingError,
    TaskSpec,
)

AVAILABILITIES = (ACTIVE, PAUSE, DRAIN)
STATES = (READY, DOWN)


@dataclass(frozen=True, slots=True)
class Binding:
    task: TaskSpec
    node_id: str


class ClusterView:
    """Nodes, the tasks bound to them, and the indexes the filters read."""

    def __init__(self, nodes: list[NodeView] = ()):
        self.nodes: dict[str, NodeView] = {}
        self.bindings: dict[str, Binding] = {}
        self.node_tasks: dict[str, set[str]] = defaultdict(set)
        self.by_task_count: dict[int, set[str]] = defaultdict(set)
        self.schedulable: set[str] = set()
        self.attributes: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.port_users: dict = defaultdict(set)
        self.container_node: dict[str, str] = {}
        self.image_nodes: dict[str, set[str]] = defaultdict(set)
        self.container_labels: dict[tuple[str, str], Counter] = defaultdict(Counter)
        for node in nodes:
            self.add_node(node)

    # --- nodes -----------------------------------------------------------------------------------

    def add_node(self, node: NodeView) -> None:
        if node.id in self.nodes:
            raise SchedulingError(f"node {node.id} is already in the cluster")
        self.nodes[node.id] = node
        self.by_task_count[node.tasks].add(node.id)
        for key in node_attributes(node):
            self.attributes[key].add(node.id)
        self._refresh(node)

    def node(self, ref: str) -> NodeView:
        """A node by ID or hostname."""
        found = self.nodes.get(ref) or next(
            (self.nodes[i] for i in self.attributes.get(("node.hostname", ref), ())), None)
        if found is None:
            raise SchedulingError(f"no such node: {ref} (see the nodes of the cluster)")
        return found

    def set_labels(self, ref: str, labels: dict[str, str]) -> None:
        """``node update --label-add K=V`` / ``--label-rm K``: the node's labels are now
        ``labels``, and the constraint index follows."""
        node = self.node(ref)
        for key in node_attributes(node):
            self.attributes[key].discard(node.id)
        node.labels = dict(labels)
        for key in node_attributes(node):
            self.attributes[key].add(node.id)

    def set_availability(self, ref: str, availability: str) -> None:
        """``node update --availability active|pause|drain``."""
        if availability not in AVAILABILITIES:
            raise SchedulingError(f"invalid availability {availability!r}: use active, pause "
                                  "or drain")
        node = self.node(ref)
        node.availability = availability
        self._refresh(node)

    def set_state(self, ref: str, state: str) -> None:
        """What the managers observed: ``ready`` (keep-alives arrive) or ``down``."""
        if state not in STATES:
            raise SchedulingError(f"invalid node state {state!r}: use ready or down")
        node = self.node(ref)
        node.state = state
        self._refresh(node)

    def fail(self, ref: str) -> list[TaskSpec]:
        """The node is down: its tasks are unbound and returned, to be placed again."""
        node = self.node(ref)
        self.set_state(node.id, DOWN)
        return [self.unbind(task_id) for task_id in sorted(self.node_tasks[node.id])]

    def _refresh(self, node: NodeView) -> None:
        if node.schedulable:
            self.schedulable.add(node.id)
        else:
            self.schedulable.discard(node.id)

    # --- tasks -----------------------------------------------------------------------------------

    def bind(self, task: TaskSpec, node_id: str) -> None:
        """Task ``task`` runs on ``node_id``: its reservations, ports, container and image count
        there from now on."""
        if task.id in self.bindings:
            raise SchedulingError(f"task {task.id} is already on node "
                                  f"{self.bindings[task.id].node_id}")
        node = self.nodes[node_id]
        self.bindings[task.id] = Binding(task, node_id)
        self.node_tasks[node_id].add(task.id)
        node.reserved += task.reservations
        self._count(node, +1)
        node.service_tasks[task.service] += 1
        for port in task.ports:
            node.ports.add(port)
            self.port_users[port].add(node_id)
        container = task.as_container()
        node.containers[container.name] = container
        self.container_node[container.name] = node_id
        for label in container.labels:
            self.container_labels[label][node_id] += 1
        for image in image_names(task.image):
            node.images.add(image)  # pulled once, it stays when the task ends
            self.image_nodes[image].add(node_id)

    def unbind(self, task_id: str) -> TaskSpec:
        """The task ends (or its node failed): everything ``bind`` counted is given back."""
        binding = self.bindings.pop(task_id)
        task, node = binding.task, self.nodes[binding.node_id]
        self.node_tasks[node.id].discard(task_id)
        node.reserved -= task.reservations
        self._count(node, -1)
        node.service_tasks[task.service] -= 1
        for port in task.ports:
            node.ports.discard(port)
            self.port_users[port].discard(node.id)
        container = task.as_container()
        node.containers.pop(container.name, None)
        self.container_node.pop(container.name, None)
        for label in container.labels:
            users = self.container_labels[label]
            users[node.id] -= 1
            if users[node.id] <= 0:
                del users[node.id]
        return task

    def _count(self, node: NodeView, change: int) -> None:
        """One task more or less on ``node``, in its count and in spread's index."""
        bucket = self.by_task_count[node.tasks]
        bucket.discard(node.id)
        if not bucket:
            del self.by_task_count[node.tasks]
        node.tasks += change
        self.by_task_count[node.tasks].add(node.id)

    def node_of(self, task_id: str) -> str | None:
        binding = self.bindings.get(task_id)
        return binding.node_id if binding else None


def node_attributes(node: NodeView) -> list[tuple[str, str]]:
    """The (key, value) pairs a constraint can test, in ``--constraint``'s own keys."""
    pairs = [("node.id", node.id), ("node.hostname", node.hostname), ("node.role", node.role)]
    pairs += [(f"node.labels.{k}", v) for k, v in node.labels.items()]
    pairs += [(f"engine.labels.{k}", v) for k, v in node.engine_labels.items()]
    return pairs


def image_names(reference: str) -> list[str]:
    """The names an affinity can give an image: ``redis:7`` is also ``redis``."""
    if not reference:
        return []
    repository, _, tag = reference.rpartition(":")
    if repository and "/" not in tag:  # a tag, not the port of a registry host
        return [reference, repository]
    return [reference]
