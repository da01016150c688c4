"""The container lifecycle, drawn from the engine's own state machine and shown from ``/proc``.

``state_graph()`` turns ``minidocker.container.lifecycle.TRANSITIONS`` (the table the engine
itself follows) into nodes and edges, which the tests check; ``draw_lifecycle()`` draws them
with graphviz, the current state filled in. So the picture cannot drift from the code.

The rest reads what the kernel says about a container's processes, with no host PID in the
output (they change from run to run): the process tree under a monitor
(``/proc/<pid>/task/<tid>/children``), a process's ``State``, session and terminal
(``/proc/<pid>/stat``), the signals it catches (``SigCgt``), where its stdio goes
(``/proc/<pid>/fd``), and the freezer's files of a cgroup.

Man pages: proc(5), credentials(7) (sessions), signal(7), cgroups(7) (freezer).
Used by: notebooks 06-container-lifecycle, 06b-oci-runtime.
"""

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from minidocker.cgroups import Cgroup
from minidocker.container.lifecycle import TRANSITIONS
from minidocker.viz.graph import FITS_THE_COLUMN
from minidocker.viz.table import Table

# --- the state machine -------------------------------------------------------------------------


@dataclass
class StateGraph:
    nodes: list[str]  # the states, in the order the transitions first name them
    edges: list[tuple[str, str, str]]  # (from, command or event, to)

    def moves_from(self, state: str) -> list[tuple[str, str]]:
        """``[(command or event, to), ...]`` out of ``state``."""
        return [(label, target) for source, label, target in self.edges if source == state]


def state_graph(transitions=None) -> StateGraph:
    """The engine's transitions (``lifecycle.TRANSITIONS`` by default) as a graph."""
    edges = [tuple(t) for t in (TRANSITIONS if transitions is None else transitions)]
    nodes = list(dict.fromkeys(state for source, _, target in edges
                               for state in (source, target)))
    return StateGraph(nodes, edges)


STATE_COLOURS = {"created": "lightyellow", "running": "palegreen", "paused": "lightblue",
                 "restarting": "orange", "exited": "lightgray", "removed": "white"}


def to_digraph(graph: StateGraph, current: str | None = None, title: str = ""):
    """Draw the graph: one oval per state (the current one bold and filled), one arrow per
    transition, labelled with the command or event that takes it; user commands in black,
    what the monitor does on its own (events) in blue and dashed."""
    import graphviz  # only the notebooks need it (the "lab" extra)

    dot = graphviz.Digraph("lifecycle", graph_attr={"rankdir": "LR", "size": FITS_THE_COLUMN,
                                                    "label": title,
                                                    "labelloc": "t", "fontname": "Helvetica"},
                           node_attr={"fontname": "Helvetica", "fontsize": "12"},
                           edge_attr={"fontname": "Helvetica", "fontsize": "10"})
    for state in graph.nodes:
        filled = state == current
        dot.node(state, state, shape="doublecircle" if state == "removed" else "ellipse",
                 style="filled,bold" if filled else "filled",
                 fillcolor=STATE_COLOURS.get(state, "white") if filled or current is None
                 else "white", penwidth="3" if filled else "1")
    for source, label, target in graph.edges:
        event = is_event(label)
        dot.edge(source, target, label=label, color="royalblue" if event else "black",
                 fontcolor="royalblue" if event else "black", style="dashed" if event else "solid")
    return dot


def is_event(label: str) -> bool:
    """A transition that no user command makes: the kernel or the monitor makes it."""
    return label in ("PID 1 exits", "restart policy", "back-off over")


def draw_lifecycle(current: str | None = None, title: str = ""):
    """The live picture: ``draw_lifecycle(current="paused")``."""
    return to_digraph(state_graph(), current, title)


# --- processes, read from /proc -----------------------------------------------------------------

def children(pid: int) -> list[int]:
    """The children of ``pid`` (every thread's), zombies included, as the kernel lists them."""
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []
    for task in tasks:
        try:
            found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except FileNotFoundError:
            continue
    return sorted(set(found))


def status(pid: int) -> dict[str, str]:
    """``/proc/<pid>/status`` as a dict: ``{"State": "S (sleeping)", "NSpid": "4242\\t1"}``.
    Empty when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    return {key: value.strip() for key, _, value in
            (line.partition(":") for line in text.splitlines())}


def alive(pid: int) -> bool:
    """Running or sleeping: not gone, and not a zombie waiting for its parent to reap it."""
    state = status(pid).get("State", "")
    return bool(state) and not state.startswith(("Z", "X"))


def pid_inside(pid: int) -> str:
    """Its PID in the innermost PID namespace it is in (NSpid's last field), or "-" when that
    is the host's (NSpid has one field)."""
    fields = status(pid).get("NSpid", "").split()
    return fields[-1] if len(fields) > 1 else "-"


def stat_fields(pid: int) -> list[str]:
    """``/proc/<pid>/stat`` split after the command name: [state, ppid, pgrp, session,
    tty_nr, ...] (proc(5) fields 3 onward)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text.rsplit(")", 1)[1].split()


def session_facts(pid: int, launcher: int | None = None) -> Table:
    """Is ``pid`` detached? In a session that is not ours (setsid), not its leader (so it can
    never acquire a terminal), no controlling terminal, not the launcher's child."""
    state, ppid, _pgrp, session, tty_nr = stat_fields(pid)[:5]
    rows = [("in a session of its own, not this notebook's (setsid)",
             int(session) != os.getsid(0)),
            ("leads that session (could take a terminal)", int(session) == pid),
            ("has a controlling terminal", int(tty_nr) != 0)]
    if launcher is not None:
        rows.append(("its parent is the command that started it", int(ppid) == launcher))
    return Table(("fact", "kernel says"), rows)


def tree_rows(pid: int, row) -> list[tuple]:
    """One row per process of the tree under ``pid``, parents first: ``row(process, status,
    name)``, the name indented as ``pstree`` draws it (``└─ sleep``)."""
    rows = []

    def walk(process: int, depth: int) -> None:
        info = status(process)
        if not info:
            return
        indent = "  " * max(depth - 1, 0) + ("└─ " if depth else "")
        rows.append(row(process, info, indent + info.get("Name", "?")))
        for child in children(process):
            walk(child, depth + 1)

    walk(pid, 0)
    return rows


def process_tree(pid: int, roles: dict[int, str] | None = None) -> Table:
    """The tree under ``pid``: each process's name, role, State and PID inside the
    container. ``roles`` names some of them ({monitor_pid: "monitor", ...})."""
    roles = roles or {}
    rows = tree_rows(pid, lambda process, info, name: (
        name, roles.get(process, ""), info.get("State", "?"), pid_inside(process)))
    return Table(("process", "role", "State", "PID inside"), rows)


def caught_signals(pid: int) -> list[str]:
    """The signals ``pid`` has a handler for (``SigCgt``, a bit mask, bit N-1 for signal N)."""
    mask = int(status(pid).get("SigCgt", "0"), 16)
    return [signal.Signals(n).name for n in range(1, 65)
            if mask & (1 << (n - 1)) and n in signal.Signals._value2member_map_]


def shared_stdio(pid: int, other: int) -> Table:
    """Where ``pid``'s fds 0, 1 and 2 lead, and whether ``other`` (its monitor) holds the same
    open file: for a pipe, that is the other end."""
    held = {}
    for fd in os.listdir(f"/proc/{other}/fd"):
        try:
            held.setdefault(os.readlink(f"/proc/{other}/fd/{fd}"), fd)
        except FileNotFoundError:
            continue
    rows = []
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        kind = target.split(":")[0] if target.startswith(("pipe:", "socket:")) else target
        rows.append((f"{fd} ({name})", kind, "yes" if target in held else "no"))
    return Table(("fd", "is", "the monitor holds the same one"), rows)


def freezer_files(cgroup: Cgroup) -> dict[str, str]:
    """The freezer's files of a cgroup: ``freezer.state`` (v1), or ``cgroup.freeze`` and the
    ``frozen`` line of ``cgroup.events`` (v2)."""
    if cgroup.version == "v2":
        events = (cgroup.path / "cgroup.events").read_text().split("\n")
        return {"cgroup.freeze": (cgroup.path / "cgroup.freeze").read_text().strip(),
                "cgroup.events": next(line for line in events if line.startswith("frozen"))}
    return {"freezer.state": (cgroup.path("freezer") / "freezer.state").read_text().strip()}


def is_frozen(cgroup: Cgroup) -> bool:
    """What the freezer says, on either interface."""
    files = freezer_files(cgroup)
    if cgroup.version == "v2":
        return files["cgroup.events"] == "frozen 1"
    return files["freezer.state"] == "FROZEN"


def wait_until(condition: Callable[[], bool], timeout: float = 10, poll: float = 0.05) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True
