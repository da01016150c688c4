"""Volumes made visible: which container mounts what, drawn from the containers' own records,
and the kernel's line for each mount.

``mount_graph`` reads the ``Mounts`` of every container record (what ``inspect`` shows) and
links each container to its mount points, and each mount point to what backs it: a named or
anonymous volume (its ``_data`` directory under the state root), a host directory (a bind), or
memory (a tmpfs). A volume that several containers mount is one node, so the "data container"
pattern shows as a fan-in. ``mountinfo_lines`` picks a container's lines of
``/proc/<pid>/mountinfo`` for given mount points: the kernel's side of the same story.

Man pages: proc(5) (mountinfo), mount_namespaces(7). Used by: notebook 07-volumes.
"""

import os
from collections.abc import Iterable

from minidocker.viz.cli import Transcript
from minidocker.viz.graph import Graph, GraphNode, course_digraph, dot_names, mark_shared
from minidocker.viz.mounts import Mount as MountinfoLine
from minidocker.viz.mounts import parse_mountinfo

MountGraph = Graph  # nodes and labelled edges (viz/graph.py)


def short_name(name: str) -> str:
    """An anonymous volume's 64 hex digits cut to 12, as Docker shortens IDs."""
    return name[:12] if len(name) == 64 else name


def _field(mount, name: str, default=""):
    return mount.get(name, default) if isinstance(mount, dict) else getattr(mount, name, default)


def mount_graph(records: Iterable) -> MountGraph:
    """Containers -> their mount points -> volumes, host dirs and tmpfs, from records (objects
    with ``Id``, ``Name``, ``State`` and ``Mounts``, such as ``records.all_records()``)."""
    nodes: dict[str, GraphNode] = {}
    edges: list[tuple[str, str, str]] = []
    users: dict[str, set[str]] = {}
    for record in sorted(records, key=lambda r: r.Name):
        container_id = f"container:{record.Id}"
        status = (record.State or {}).get("Status", "")
        nodes[container_id] = GraphNode(container_id, f"{record.Name}\n{status}", "container")
        for mount in record.Mounts or []:
            destination, kind = _field(mount, "Destination"), _field(mount, "Type")
            mount_id = f"mount:{record.Id}:{destination}"
            mode = "rw" if _field(mount, "RW", True) else "ro"
            nodes[mount_id] = GraphNode(mount_id, f"{destination}\n{kind}, {mode}", "mount")
            edges.append((container_id, mount_id, ""))
            if kind == "volume":
                name = _field(mount, "Name")
                anonymous = bool(_field(mount, "Anonymous", False))
                backing = f"volume:{name}"
                label = (f"anonymous volume\n{short_name(name)}" if anonymous
                         else f"volume {name}") + "\n(volumes/…/_data)"
                nodes[backing] = GraphNode(backing, label, "anonymous" if anonymous
                                           else "volume")
            elif kind == "bind":
                source = _field(mount, "Source")
                backing = f"host:{source}"
                nodes[backing] = GraphNode(backing, f"host dir\n{source}", "host")
            else:
                backing = f"tmpfs:{record.Id}:{destination}"
                nodes[backing] = GraphNode(backing, "memory (tmpfs)", "tmpfs")
            users.setdefault(backing, set()).add(record.Id)
            edges.append((mount_id, backing, mode))
    mark_shared(nodes, users)
    return MountGraph(list(nodes.values()), edges)


STYLE = {"container": {"shape": "box", "style": "rounded,filled,bold", "fillcolor": "aliceblue"},
         "mount": {"shape": "box", "style": "filled", "fillcolor": "white"},
         "volume": {"shape": "cylinder", "style": "filled", "fillcolor": "honeydew"},
         "anonymous": {"shape": "cylinder", "style": "filled,dashed", "fillcolor": "honeydew"},
         "host": {"shape": "folder", "style": "filled", "fillcolor": "lightyellow"},
         "tmpfs": {"shape": "box", "style": "filled,dotted", "fillcolor": "lavender"}}


def to_digraph(graph: MountGraph, title: str = ""):
    """Draw the graph left to right: containers, their mount points, then what backs each one;
    a volume or host dir that several containers share is filled in gold, a read-only edge is
    dashed."""
    dot = course_digraph("volumes", title, nodesep="0.2", ranksep="0.6")
    name = dot_names(graph.nodes)
    for node in graph.nodes:
        dot.node(name[node.id], node.label, **node.style(STYLE))
    for source, target, label in graph.edges:
        dot.edge(name[source], name[target], label=label, color="gray40",
                 style="dashed" if label == "ro" else "solid")
    return dot


def draw_mounts(records: Iterable, title: str = ""):
    """The picture of ``mount_graph(records)`` (a graphviz object the notebook displays)."""
    return to_digraph(mount_graph(records), title)


def mountinfo_lines(pid: int | str, points: Iterable[str], filesystem: bool = True) -> str:
    """The lines of ``/proc/<pid>/mountinfo`` whose mount point is one of ``points``, in the
    kernel's order. Without ``filesystem``, each line stops at the filesystem type: its source
    and the filesystem's own options (a disk's, which differ from machine to machine) are cut."""
    wanted = set(points)
    with open(f"/proc/{pid}/mountinfo") as f:
        lines = [line.rstrip("\n") for line in f]
    kept = []
    for line, mount in zip(lines, parse_mountinfo("\n".join(lines)), strict=True):
        if mount.mount_point in wanted:
            if not filesystem:
                line = line.split(" - ")[0] + f" - {mount.fstype} …"
            kept.append(line)
    return "\n".join(kept)


def mount_of(pid: int | str, point: str) -> MountinfoLine:
    """The (top) mount on ``point`` in ``pid``'s mount namespace, parsed."""
    with open(f"/proc/{pid}/mountinfo") as f:
        found = [m for m in parse_mountinfo(f.read()) if m.mount_point == point]
    if not found:
        raise LookupError(f"nothing is mounted on {point} in the mount namespace of {pid}")
    return found[-1]


def same_filesystem(mount: MountinfoLine, path: str) -> bool:
    """Does ``path`` on the host live on the filesystem that ``mount`` shows (mountinfo's
    major:minor against the path's st_dev)?"""
    major, minor = (int(n) for n in mount.device.split(":"))
    return os.stat(path).st_dev == os.makedev(major, minor)


def only(transcript: Transcript, *words: str, what: str = "this notebook's") -> Transcript:
    """A table-printing command's transcript with its header and only the lines that contain
    one of ``words`` (``volume ls`` lists every volume of the state root, and a test session
    shares it with other tests); the comment after the command says so."""
    kept = transcript.lines[:1] + [line for line in transcript.lines[1:]
                                   if any(word in line for word in words)]
    return Transcript(transcript.command, "".join(f"{line}\n" for line in kept),
                      transcript.returncode, f"only the header and {what} lines")
