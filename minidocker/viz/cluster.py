"""Notebook 14's pictures: the swarm as etcd holds it, and a failure as etcd's watch saw it.

``cluster_graph(state)`` reads one snapshot of etcd (reconcile.snapshot: the nodes, their
leases, the services and tasks) and draws each node — its role, whether its lease is alive
(Ready) or gone (Down), the leader — with the tasks that should run on it; tasks that no node
could take wait in a box of their own. Nothing comes from the CLI's memory: the picture is
what the managers will read at their next pass.

``Watcher`` records every event of an etcd watch on ``/minidocker/`` with the time it arrived;
``story(events, ...)`` turns them into sentences — a node's lease key deleted (Down), a task
orphaned, its replacement running elsewhere — with the seconds since a fault.

etcd is in the lab's network namespace. ``LabEtcd`` asks it from threads that ``setns(2)``
into that namespace: setns moves only the calling thread, so the notebook's kernel stays in
its own. Spec: etcd's v3 watch API; the graphviz DOT language; man page setns(2).
Used by: notebooks/14-cluster.ipynb; tests/test_viz_cluster.py.
"""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from minidocker.viz.graph import FITS_THE_COLUMN, Graph, GraphNode
from minidocker.viz.table import Table

PREFIX = "/minidocker/"
STYLE = {"leader": {"shape": "box3d", "style": "filled", "fillcolor": "gold"},
         "node": {"shape": "box3d", "style": "filled", "fillcolor": "lightblue"},
         "down": {"shape": "box3d", "style": "filled,dashed", "fillcolor": "lightgray"},
         "task": {"shape": "box", "style": "rounded,filled", "fillcolor": "palegreen"},
         "starting": {"shape": "box", "style": "rounded,filled", "fillcolor": "khaki"},
         "pending": {"shape": "box", "style": "rounded,dashed", "fillcolor": "white"}}


# --- the swarm, from one snapshot of etcd ----------------------------------------------------------

def slot_name(task: dict, services: dict) -> str:
    """``web.2`` (replicated) or ``agent.<node id prefix>`` (global), as ``service ps``."""
    service = services.get(task["ServiceID"], {}).get("Spec", {}).get("Name", "?")
    slot = task.get("Slot") or str(task.get("Pinned", ""))[:6]
    return f"{service}.{slot}"


def cluster_graph(state) -> Graph:
    """The nodes (by hostname) and the tasks that should run, from a reconcile.Snapshot."""
    leader = getattr(state, "leader", "")
    nodes = {}
    for record in sorted(state.nodes.values(), key=lambda n: n["Hostname"]):
        ready = record["ID"] in state.alive and not record.get("Left")
        kind = "down" if not ready else "leader" if record["ID"] == leader else "node"
        status = "Ready" if ready else "Down"
        extra = "" if record["Availability"] == "active" else f", {record['Availability']}"
        label = f"{record['Hostname']}\n{record['Role']}{extra}\n{status}"
        nodes[record["ID"]] = GraphNode(f"node:{record['ID']}", label, kind)
    tasks, edges = [], []
    for task in sorted(state.tasks.values(), key=lambda t: slot_name(t, state.services)):
        if task["DesiredState"] != "running":
            continue
        name = slot_name(task, state.services)
        running = task["Status"]["State"] == "running"
        node = task.get("NodeID", "")
        kind = "pending" if node not in nodes else "task" if running else "starting"
        tasks.append(GraphNode(f"task:{task['ID']}", f"{name}\n{task['Status']['State']}",
                               kind))
        edges.append((f"node:{node}" if node in nodes else "pending", f"task:{task['ID']}",
                      ""))
    pending = [GraphNode("pending", "no node yet", "pending")] if any(
        source == "pending" for source, _, _ in edges) else []
    return Graph(list(nodes.values()) + pending + tasks, edges)


def draw_cluster(state, title: str = ""):
    """The picture of ``cluster_graph`` (a graphviz object the notebook displays)."""
    import graphviz  # only the notebooks need it (the "lab" extra)

    graph = cluster_graph(state)
    dot = graphviz.Digraph("swarm", graph_attr={"rankdir": "TB", "size": FITS_THE_COLUMN,
                                                "label": title, "labelloc": "t",
                                                "fontname": "Helvetica"},
                           node_attr={"fontname": "Helvetica", "fontsize": "11"})
    name = {node.id: f"n{i}" for i, node in enumerate(graph.nodes)}  # no ":" in DOT names
    for node in graph.nodes:
        dot.node(name[node.id], node.label, **STYLE[node.kind])
    for source, target, _ in graph.edges:
        dot.edge(name[source], name[target], color="gray40")
    return dot


# --- etcd, from the lab's namespace ------------------------------------------------------------------

class LabEtcd:
    """The lab's etcd, asked from a thread inside the lab's network namespace."""

    def __init__(self):
        from minidocker.cluster import lab as labs
        from minidocker.cluster.store import Store

        self.lab = labs.load()
        self.store = Store.for_lab(self.lab)
        self.pool = ThreadPoolExecutor(1, initializer=labs.enter, initargs=(self.lab,))

    def snapshot(self):
        """One consistent read of ``/minidocker/`` (what a manager's pass starts from), with
        the leader's node ID as ``leader``."""
        from minidocker.cluster import reconcile

        def read():
            state = reconcile.snapshot(self.store)
            state.leader = self.store.get(PREFIX + "leader") or ""
            return state
        return self.pool.submit(read).result()

    def watch(self) -> "Watcher":
        watcher = Watcher(self)
        watcher.start()
        return watcher

    def close(self) -> None:
        self.pool.shutdown()


@dataclass
class Seen:
    """One watch event, the time it arrived (``time.time()``) and the store's revision that
    made it (the writes of one transaction share it)."""

    at: float
    type: str
    key: str
    value: dict | str | None
    revision: int = 0


class Watcher(threading.Thread):
    """Every change under ``/minidocker/``, as it happens, kept in ``events``. After
    ``stop()`` it ends at the next event (its connection closed); also if etcd goes.
    ``wait_watching()`` waits until the watch runs, and raises what kept it from starting."""

    def __init__(self, etcd: LabEtcd):
        super().__init__(daemon=True)
        self.etcd = etcd
        self.events: list[Seen] = []
        self.watching = threading.Event()  # the watch runs
        self.begun = threading.Event()  # the watch runs, or could not start (``error``)
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def stop(self) -> None:
        self.stopping.set()

    def wait_watching(self, timeout: float = 10.0) -> None:
        """Return once the watch runs; raise a WatchFailed saying why if it could not start
        (etcd did not answer the first read) or did not within ``timeout`` seconds."""
        if not self.begun.wait(timeout):
            raise WatchFailed(f"etcd's watch did not start within {timeout:g} s: is the lab's "
                              "etcd up ('minidocker cluster ls')?")
        if self.error is not None:
            raise WatchFailed(f"etcd's watch could not start: {self.error}") from self.error

    def run(self) -> None:
        try:
            stream = self.begin()
        except BaseException as exc:  # kept for wait_watching(): a thread's error is silent
            self.error = exc
            return
        finally:
            self.begun.set()
        self.follow(stream)

    def begin(self):
        """Enter the lab's namespace, read the revision, open the watch just after it."""
        from minidocker.cluster import lab as labs

        labs.enter(self.etcd.lab)
        _, revision = self.etcd.store.get_prefix(PREFIX)
        stream = self.etcd.store.watch(PREFIX, start_revision=revision + 1)
        self.watching.set()
        return stream

    def follow(self, stream) -> None:
        from minidocker.cluster.etcd import EtcdError

        try:
            for event in stream:
                if self.stopping.is_set():
                    return
                self.events.append(Seen(time.time(), event.type, event.key, parse(event.value),
                                        event.revision))
        except EtcdError:
            return
        finally:
            stream.close()  # the HTTP stream with it


class WatchFailed(RuntimeError):
    """The notebook's watch of etcd did not start."""


def parse(value: str | None) -> dict | str | None:
    try:
        return json.loads(value) if value else value
    except json.JSONDecodeError:
        return value


# --- the story of the events --------------------------------------------------------------------------

@dataclass
class Story:
    """What the watch saw, in words: ``(seconds after t0, what happened)``."""

    lines: list[tuple[float, str]] = field(default_factory=list)

    def table(self, title: str = "") -> Table:
        return Table(("SECONDS", "WHAT ETCD'S WATCH SAW"),
                     [(f"{at:+.1f}", what) for at, what in self.lines], title)

    def order(self) -> list[str]:
        """The sentences alone, in order (what does not depend on timing)."""
        return [what for _, what in self.lines]


def story(events: list[Seen], state, t0: float, services: tuple[str, ...] = ()) -> Story:
    """Each event that changed something a student would look at: a node's lease (Ready,
    Down), the leader, a task's state or node (of ``services``, or every service). ``state``
    (a snapshot) names the nodes and services."""
    hosts = {n["ID"]: n["Hostname"] for n in state.nodes.values()}
    told = Story()
    last: dict[str, tuple] = {}
    for seen in events:
        what = describe(seen, hosts, state.services, last, services)
        if what:
            told.lines.append((seen.at - t0, what))
    return told


def describe(seen: Seen, hosts: dict, services: dict, last: dict,
             wanted: tuple[str, ...]) -> str:
    """One event in words, or "" for one that repeats what was already said."""
    key = seen.key.removeprefix(PREFIX)
    kind, _, ident = key.partition("/")
    if kind == "alive":
        host = hosts.get(ident, ident)
        return f"{host} Down: its lease expired, key deleted" if seen.type == "DELETE" \
            else f"{host} Ready: its agent wrote its lease key"
    if kind == "leader" and seen.type != "DELETE":
        return f"leader: {hosts.get(seen.value, seen.value)}"
    if kind != "tasks" or not isinstance(seen.value, dict):
        return ""
    task = seen.value
    name = slot_name(task, services)
    if wanted and name.rsplit(".", 1)[0] not in wanted:
        return ""
    shown = (task["Status"]["State"], task.get("NodeID", ""), task["DesiredState"])
    if last.get(task["ID"]) == shown:
        return ""
    last[task["ID"]] = shown
    where = f" on {hosts.get(shown[1], '-')}" if shown[1] else ""
    desired = "" if shown[2] == "running" else f" (desired {shown[2]})"
    return f"task {name} {shown[0]}{where}{desired}"
