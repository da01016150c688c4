"""What the scheduler sees: nodes, the resources they hold, and the tasks to place.

A *task* is one container of a service, to run on one node (Swarm's words: a service has
replicas, each replica is a task). A *node* is one host of the cluster: a hostname, a role
(manager or worker), labels set by the operator (``node update --label-add``) and by its engine,
an availability chosen by the operator (``active``, ``pause``, ``drain``), a state observed by
the managers (``ready``, ``down``), and the resources it offers. Reservations
(``--reserve-memory``, ``--reserve-cpu``) are promises: a node holds a task only if the sum of
its tasks' reservations still fits in what it has.

Here they are plain dataclasses, in the Engine API's vocabulary (``MemoryBytes``,
``NanoCPUs``); the cluster's store (etcd, later) holds the same fields as JSON.
Docs: docs.docker.com "Deploy services to a swarm" (reservations, placement); Swarm classic's
scheduler/node/node.go. Used by: scheduler.py, filters.py, strategies.py, view.py, simulate.py,
notebook 15-scheduling, lab 14-scheduler.
"""

from collections import Counter
from dataclasses import dataclass, field

from minidocker.errors import MinidockerError

NANO = 1_000_000_000  # NanoCPUs in one CPU, as the Engine API counts them
MANAGER, WORKER = "manager", "worker"
ACTIVE, PAUSE, DRAIN = "active", "pause", "drain"  # availability: the operator's choice
READY, DOWN = "ready", "down"  # state: what the managers observe (a lease kept alive, or not)


class SchedulingError(MinidockerError):
    """A task that cannot be placed, or a placement rule that cannot be read."""


@dataclass(frozen=True, slots=True)
class Resources:
    """Memory in bytes and CPU in NanoCPUs (``--reserve-cpu 0.5`` is 500,000,000)."""

    memory: int = 0
    nano_cpus: int = 0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(self.memory + other.memory, self.nano_cpus + other.nano_cpus)

    def __sub__(self, other: "Resources") -> "Resources":
        return Resources(self.memory - other.memory, self.nano_cpus - other.nano_cpus)


@dataclass(frozen=True, slots=True)
class Port:
    """A port published on the node itself (``--publish mode=host,published=P,target=T``):
    only one task per node can hold it."""

    published: int
    protocol: str = "tcp"

    def __str__(self) -> str:
        return f"{self.published}/{self.protocol}"


@dataclass(frozen=True, slots=True)
class Container:
    """A container running on a node, as the affinity and dependency filters look at it."""

    name: str
    image: str = ""
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(eq=False, slots=True)
class NodeView:
    """One node as the scheduler sees it. ``reserved`` is the sum of its tasks' reservations;
    ``tasks`` counts them, and ``service_tasks`` counts them per service."""

    id: str
    hostname: str
    role: str = WORKER
    labels: dict[str, str] = field(default_factory=dict)
    engine_labels: dict[str, str] = field(default_factory=dict)
    availability: str = ACTIVE
    state: str = READY
    total: Resources = Resources()
    reserved: Resources = Resources()
    tasks: int = 0
    service_tasks: Counter = field(default_factory=Counter)
    ports: set[Port] = field(default_factory=set)
    containers: dict[str, Container] = field(default_factory=dict)
    images: set[str] = field(default_factory=set)

    @property
    def free(self) -> Resources:
        return self.total - self.reserved

    def fits(self, wanted: Resources) -> bool:
        """Would ``wanted`` still fit in what the node has not promised yet?"""
        return (self.reserved.memory + wanted.memory <= self.total.memory
                and self.reserved.nano_cpus + wanted.nano_cpus <= self.total.nano_cpus)

    @property
    def schedulable(self) -> bool:
        """Ready (its lease is alive) and active (not paused or drained by the operator)."""
        return self.state == READY and self.availability == ACTIVE


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One task to place: what its service asked for (``service create`` flags in brackets).

    ``constraints``: ``node.labels.zone==east``, ``node.hostname!=n3`` (``--constraint``);
    ``affinities``: ``container==web``, ``image~=redis``, ``com.example.tier==db`` (Swarm
    classic's ``-e affinity:...``); ``placement_prefs``: ``spread=node.labels.zone``
    (``--placement-pref``); ``ports``: host-mode published ports; ``volumes_from``, ``links``
    and ``network_mode`` (``container:NAME``) name containers that must share its node.
    """

    id: str
    service: str = ""
    image: str = ""
    name: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    reservations: Resources = Resources()
    constraints: tuple[str, ...] = ()
    affinities: tuple[str, ...] = ()
    placement_prefs: tuple[str, ...] = ()
    ports: tuple[Port, ...] = ()
    volumes_from: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    network_mode: str = ""

    def as_container(self) -> Container:
        return Container(self.name or self.id, self.image, self.labels)

    def placement(self) -> tuple:
        """What the filters and strategies read of this task: two tasks with the same
        placement can take each other's place in a decision, whatever their service."""
        return (self.reservations, self.constraints, self.affinities, self.placement_prefs,
                self.ports, self.volumes_from, self.links, self.network_mode)

    def dependencies(self) -> list[str]:
        """The containers this task must run next to: ``--volumes-from NAME[:ro]``,
        ``--link NAME[:ALIAS]``, ``--network container:NAME``."""
        names = [v.split(":", 1)[0] for v in self.volumes_from]
        names += [link.split(":", 1)[0] for link in self.links]
        if self.network_mode.startswith("container:"):
            names.append(self.network_mode.removeprefix("container:"))
        return names
