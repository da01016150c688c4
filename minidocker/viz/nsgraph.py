"""Pictures and tables of namespaces, drawn from what the kernel reports in ``/proc/<pid>/ns``.

Each entry of ``/proc/<pid>/ns`` is a symbolic link whose text names the namespace, e.g.
``uts:[4026532249]``: the type and the inode number of the namespace. Two processes are in the
same namespace exactly when their links read the same. So the picture is a graph with one node
per process, one node per namespace (per distinct link) and an edge from each process to each of
its namespaces; a namespace that two processes share is one node with two edges into it.

The graph is built as plain data first (``namespace_graph``, which the tests check) and only then
drawn with graphviz (``to_digraph``).

Man pages: namespaces(7), proc(5) (``/proc/pid/ns``). Used by: notebook 01-namespaces.
"""

import os
from dataclasses import dataclass, field

from minidocker.namespaces import NAMESPACES
from minidocker.viz.graph import FITS_THE_COLUMN
from minidocker.viz.table import Table

KINDS = tuple(NAMESPACES)  # uts, pid, mnt, ipc, net, user, cgroup: the types minidocker uses
PALETTE = ("royalblue", "firebrick", "forestgreen", "darkorange", "purple", "gray30")


@dataclass
class ProcessNamespaces:
    """What one process's ``/proc/<pid>/ns`` says: ``{type: inode}``, or why it could not be
    read (the process is gone, or the kernel refuses: reading another process's namespaces
    needs ptrace rights over it)."""

    label: str
    pid: int | str
    namespaces: dict[str, int] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class Node:
    id: str  # "process:<label>" or the kernel's link text, "uts:[4026532249]"
    label: str
    kind: str  # "process" or the namespace type
    shared: bool = False  # a namespace that more than one of the processes is in


@dataclass
class NamespaceGraph:
    nodes: list[Node]
    edges: list[tuple[str, str]]  # (process node id, namespace node id)

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)


def link_text(kind: str, inode: int) -> str:
    """The text of a ``/proc/<pid>/ns/<kind>`` link: ``uts:[4026532249]``."""
    return f"{kind}:[{inode}]"


def read_namespaces(label: str, pid: int | str = "self",
                    kinds: tuple[str, ...] = KINDS) -> ProcessNamespaces:
    """Read ``/proc/<pid>/ns/<kind>`` for each kind (``pid`` may be ``"self"``, which is shown
    as this process's number)."""
    found = ProcessNamespaces(label, os.getpid() if pid == "self" else pid)
    try:
        for kind in kinds:
            link = os.readlink(f"/proc/{pid}/ns/{kind}")  # "uts:[4026532249]"
            found.namespaces[kind] = int(link.split("[")[1].rstrip("]"))
    except OSError as exc:
        found.namespaces.clear()
        found.error = f"cannot read /proc/{pid}/ns: {exc.strerror}"
    return found


def namespace_graph(processes: list[ProcessNamespaces]) -> NamespaceGraph:
    """Nodes and edges: one node per process, one per distinct namespace, one edge per link."""
    users: dict[str, list[str]] = {}  # namespace node id -> the processes in it
    nodes, edges = [], []
    for process in processes:
        process_id = f"process:{process.label}"
        text = f"{process.label}\npid {process.pid}"
        nodes.append(Node(process_id, text + (f"\n{process.error}" if process.error else ""),
                          "process"))
        for kind, inode in process.namespaces.items():
            users.setdefault(link_text(kind, inode), []).append(process_id)
            edges.append((process_id, link_text(kind, inode)))
    for ns_id, members in users.items():
        kind, inode = ns_id.split(":", 1)
        nodes.append(Node(ns_id, f"{kind}\n{inode.strip('[]')}", kind, shared=len(members) > 1))
    return NamespaceGraph(nodes, edges)


def to_digraph(graph: NamespaceGraph, title: str = ""):
    """Draw the graph: processes on the left, namespaces on the right in one box per type (the
    box names the type, the oval shows the inode number); each process draws its edges in its
    own colour, and a namespace shared by several processes is filled in gold."""
    import graphviz  # only the notebooks need it (the "lab" extra)

    dot = graphviz.Digraph("namespaces", graph_attr={"rankdir": "LR", "size": FITS_THE_COLUMN,
                                                     "label": title,
                                                     "labelloc": "t", "fontname": "Helvetica",
                                                     "ranksep": "1.5", "nodesep": "0.15"},
                           node_attr={"fontname": "Helvetica", "fontsize": "11"})
    # DOT reads "a:b" in an edge as node a, port b: give graphviz plain names instead.
    name = {node.id: f"n{i}" for i, node in enumerate(graph.nodes)}
    colour = {}
    for node in graph.nodes:
        if node.kind == "process":
            colour[node.id] = PALETTE[len(colour) % len(PALETTE)]
            dot.node(name[node.id], node.label, shape="box", style="rounded,filled,bold",
                     fillcolor="aliceblue", color=colour[node.id])
    kinds = [k for k in KINDS if any(n.kind == k for n in graph.nodes)]
    for kind in kinds:
        with dot.subgraph(name=f"cluster_{kind}") as box:
            box.attr(label=kind, style="dashed", color="gray50")
            for node in graph.nodes:
                if node.kind == kind:
                    box.node(name[node.id], node.label.split("\n")[-1], shape="ellipse",
                             style="filled", height="0.3",
                             fillcolor="gold" if node.shared else "white")
    for source, target in graph.edges:
        dot.edge(name[source], name[target], color=colour[source])
    return dot


def draw_namespaces(pids: dict[str, int | str], title: str = ""):
    """The live picture: ``draw_namespaces({"this notebook": "self", "container": 4242})``."""
    processes = [read_namespaces(label, pid) for label, pid in pids.items()]
    return to_digraph(namespace_graph(processes), title)


# --- tables ------------------------------------------------------------------------------------

def proc_ns(pid: int | str = "self") -> Table:
    """Every link of ``/proc/<pid>/ns``, as the kernel lists them, with what each type isolates."""
    rows = []
    for entry in sorted(os.listdir(f"/proc/{pid}/ns")):
        link = os.readlink(f"/proc/{pid}/ns/{entry}")
        what = NAMESPACES[entry][1] if entry in NAMESPACES else _OTHER_ENTRIES.get(entry, "")
        rows.append((entry, link, what))
    return Table(("entry", "link", "isolates"), rows, f"/proc/{pid}/ns")


_OTHER_ENTRIES = {
    "pid_for_children": "the PID namespace this process's next children are born in",
    "time": "the boot and monotonic clocks (Linux 5.6; Docker does not use it)",
    "time_for_children": "the time namespace of this process's next children",
}


def compare_table(pids: dict[str, int | str]) -> Table:
    """Side by side: each namespace type, the link of each process, and whether they share it."""
    processes = [read_namespaces(label, pid) for label, pid in pids.items()]
    header = ("namespace", *(f"{p.label} (pid {p.pid})" for p in processes), "shared?")
    rows = []
    for kind in KINDS:
        links = [link_text(kind, p.namespaces[kind]) if kind in p.namespaces else "?"
                 for p in processes]
        same = "?" if "?" in links else "shared" if len(set(links)) == 1 else "separate"
        rows.append((kind, *links, same))
    return Table(header, rows)
