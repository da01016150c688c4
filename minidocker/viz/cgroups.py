"""Pictures, tables and measurements of cgroups, read from the kernel's own files.

A cgroup is a directory in a cgroup filesystem; the processes in it are listed in its
``cgroup.procs``, and ``/proc/<pid>/cgroup`` names the cgroup of a process in each hierarchy
(v1: one line per hierarchy, ``4:memory:/minidocker/<id>``; v2: one line, ``0::/minidocker/<id>``).
``cgroup_tree`` walks from the root of each hierarchy down to the cgroups of the processes
asked about and returns nodes and edges (data the tests check); ``to_digraph`` draws them.

``files_table`` puts Docker's flags next to the v1 and v2 files that hold them, optionally
with what a container's files hold right now. ``sample`` reads a container's counters
(``Container.stats()``) at short intervals, so that the notebook can plot memory climbing to
the OOM kill, two containers sharing one CPU, or the CPU time that stops while frozen.

Man pages: cgroups(7), cgroup_namespaces(7), proc(5). Used by: notebook 03-cgroups.
"""

import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from minidocker.cgroups import Cgroup, build_limits
from minidocker.container import Config, Container, HostConfig, run
from minidocker.namespaces import Stdio
from minidocker.viz.graph import FITS_THE_COLUMN
from minidocker.viz.table import Table

# --- the tree ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hierarchy:
    """One mounted cgroup hierarchy: v1 has one per controller (or per group of controllers
    mounted together, ``cpu,cpuacct``); v2 has a single one with no controller in its name."""

    name: str  # "memory", "cpu,cpuacct", or "unified" for v2
    mount: Path
    controllers: tuple[str, ...] = ()  # empty for v2

    def owns(self, line: str) -> str | None:
        """The path in this hierarchy, from one line of /proc/<pid>/cgroup, if it is ours."""
        number, names, path = line.split(":", 2)
        if not self.controllers:
            return path if number == "0" else None
        return path if set(names.split(",")) & set(self.controllers) else None


@dataclass(frozen=True)
class Node:
    id: str  # "<hierarchy>:<path>" for a cgroup, "pid:<n>" for a process
    label: str
    kind: str  # "cgroup" or "process"
    hierarchy: str = ""
    path: str = ""  # a cgroup's path in its hierarchy, as /proc/<pid>/cgroup writes it
    container: str = ""  # the label of the container whose cgroup this is, if any


@dataclass
class CgroupTree:
    hierarchies: list[Hierarchy]
    nodes: list[Node]
    edges: list[tuple[str, str]]  # (parent cgroup, child cgroup) or (cgroup, process)

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)


def hierarchies(cgroup: Cgroup) -> list[Hierarchy]:
    """The hierarchies a container's cgroup is made of, and where each is mounted."""
    if cgroup.version == "v2":
        return [Hierarchy("unified", cgroup.root)]
    by_mount: dict[Path, list[str]] = {}
    for controller, mount in cgroup.mounts.items():
        if (mount / cgroup.name).is_dir():
            by_mount.setdefault(mount, []).append(controller)
    return [Hierarchy(",".join(names), mount, tuple(names)) for mount, names in by_mount.items()]


def _short(name: str) -> str:
    """A container ID as a directory name is 64 hex digits: show the first 12, as Docker does."""
    is_id = len(name) == 64 and all(c in "0123456789abcdef" for c in name)
    return name[:12] if is_id else name


def _procs(directory: Path) -> list[int]:
    try:
        return [int(p) for p in (directory / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def _processes(count: int) -> str:
    return f"{count} process" + ("" if count == 1 else "es")


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def cgroup_tree(containers: dict[str, Cgroup], others: dict[str, int | str] | None = None,
                only: tuple[str, ...] | None = None) -> CgroupTree:
    """Nodes and edges, from each hierarchy's root down to every cgroup asked about.

    ``containers`` are container cgroups: each becomes a node with every process of its
    ``cgroup.procs`` below it. ``others`` are more processes (``"self"`` is this one), each
    drawn under the cgroup its ``/proc/<pid>/cgroup`` names. ``only`` keeps some hierarchies
    (by name) out of a crowded v1 picture. A cgroup above them shows how many processes its
    own ``cgroup.procs`` holds."""
    first = next(iter(containers.values()))
    found = [h for h in hierarchies(first) if only is None or h.name in only]
    nodes: dict[str, Node] = {}
    edges: list[tuple[str, str]] = []

    def add_cgroup(hierarchy: Hierarchy, path: str, container: str = "") -> str:
        parts = [p for p in path.split("/") if p]
        parent = None
        for depth in range(len(parts) + 1):
            sub = "/" + "/".join(parts[:depth])
            node_id = f"{hierarchy.name}:{sub}"
            if node_id not in nodes:
                count = len(_procs(hierarchy.mount / sub.lstrip("/")))
                label = f"{_short(parts[depth - 1]) if depth else '/'}\n{_processes(count)}"
                nodes[node_id] = Node(node_id, label, "cgroup", hierarchy.name, sub)
            if parent:
                _add_edge(edges, parent, node_id)
            parent = node_id
        if container:
            nodes[parent] = Node(parent, nodes[parent].label + f"\ncontainer {container}",
                                 "cgroup", hierarchy.name, nodes[parent].path, container)
        return parent

    def add_process(cgroup_id: str, pid: int, label: str) -> None:
        node_id = f"pid:{pid}"
        nodes.setdefault(node_id, Node(node_id, f"{label}\npid {pid}", "process"))
        _add_edge(edges, cgroup_id, node_id)

    labels = {os.getpid() if pid == "self" else int(pid): label
              for label, pid in (others or {}).items()}
    for hierarchy in found:
        for label, cgroup in containers.items():
            leaf = add_cgroup(hierarchy, "/" + cgroup.name, label)
            for pid in _procs(hierarchy.mount / cgroup.name):
                add_process(leaf, pid, labels.get(pid, _comm(pid)))
        for pid, label in labels.items():
            for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
                path = hierarchy.owns(line)
                if path is not None:
                    add_process(add_cgroup(hierarchy, path), pid, label)
    return CgroupTree(found, list(nodes.values()), edges)


def _add_edge(edges: list[tuple[str, str]], source: str, target: str) -> None:
    if (source, target) not in edges:
        edges.append((source, target))


def to_digraph(tree: CgroupTree, title: str = ""):
    """Draw the tree: one dashed box per hierarchy, cgroups as folders (a container's in gold),
    processes as rounded boxes outside. In v1 one process has an edge from every hierarchy:
    it is in one cgroup of each; in v2 it has exactly one."""
    import graphviz  # only the notebooks need it (the "lab" extra)

    dot = graphviz.Digraph("cgroups", graph_attr={"rankdir": "LR", "size": FITS_THE_COLUMN,
                                                  "label": title,
                                                  "labelloc": "t", "fontname": "Helvetica",
                                                  "nodesep": "0.1", "ranksep": "0.6"},
                           node_attr={"fontname": "Helvetica", "fontsize": "10"})
    name = {node.id: f"n{i}" for i, node in enumerate(tree.nodes)}  # DOT reads ":" as a port
    for number, hierarchy in enumerate(tree.hierarchies):
        with dot.subgraph(name=f"cluster_{number}") as box:
            box.attr(label=f"{hierarchy.name}  ({hierarchy.mount})", style="dashed",
                     color="gray50", fontsize="10")
            for node in tree.nodes:
                if node.kind == "cgroup" and node.hierarchy == hierarchy.name:
                    box.node(name[node.id], node.label, shape="folder", style="filled",
                             fillcolor="gold" if node.container else "white")
    for node in tree.nodes:
        if node.kind == "process":
            dot.node(name[node.id], node.label, shape="box", style="rounded,filled",
                     fillcolor="aliceblue")
    for source, target in tree.edges:
        process = tree.node(target).kind == "process"
        dot.edge(name[source], name[target], style="dashed" if process else "solid",
                 color="royalblue" if process else "black")
    return dot


def draw_cgroup_tree(containers: dict[str, Cgroup], others: dict[str, int | str] | None = None,
                     title: str = "", only: tuple[str, ...] | None = None):
    """The live picture: ``draw_cgroup_tree({"box": box.cgroup}, {"this notebook": "self"})``."""
    return to_digraph(cgroup_tree(containers, others, only), title)


# --- the files ---------------------------------------------------------------------------------

# Docker's flag, what it sets, the v1 file(s) and the v2 file(s) that hold it. A file written
# "cpu.stat usage_usec" is a keyed file read at one key.
LIMIT_FILES: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {
    "memory": ("-m", "memory limit, bytes", ("memory.limit_in_bytes",), ("memory.max",)),
    "memory-swap": ("--memory-swap", "v1: memory + swap; v2: swap alone",
                    ("memory.memsw.limit_in_bytes",), ("memory.swap.max",)),
    "cpus": ("--cpus", "CPU time per period: quota period, µs",
             ("cpu.cfs_quota_us", "cpu.cfs_period_us"), ("cpu.max",)),
    "cpu-shares": ("--cpu-shares", "weight when CPUs are busy (v2: 1-10000)", ("cpu.shares",),
                   ("cpu.weight",)),
    "cpuset": ("--cpuset-cpus", "the CPUs it may run on", ("cpuset.cpus",), ("cpuset.cpus",)),
    "pids": ("--pids-limit", "the most processes at once", ("pids.max",), ("pids.max",)),
    "freezer": ("pause", "frozen or not", ("freezer.state",), ("cgroup.freeze",)),
    "procs": ("", "the processes in it", ("cgroup.procs",), ("cgroup.procs",)),
    "cpu-usage": ("stats", "CPU time used (v1 ns, v2 µs)", ("cpuacct.usage",),
                  ("cpu.stat usage_usec",)),
    "memory-usage": ("stats", "memory used now, bytes", ("memory.usage_in_bytes",),
                     ("memory.current",)),
    "pids-current": ("stats", "processes now", ("pids.current",), ("pids.current",)),
    "oom-kills": ("", "processes the OOM killer killed", ("memory.oom_control oom_kill",),
                  ("memory.events oom_kill",)),
}


def read_file(cgroup: Cgroup, spec: str) -> str:
    """What one of a cgroup's files holds: ``"memory.max"`` or ``"memory.events oom_kill"``."""
    filename, _, key = spec.partition(" ")
    if cgroup.version == "v2":
        directory = cgroup.path
    else:
        controller = filename.split(".")[0]
        mount = cgroup.mounts.get(controller) or next(iter(cgroup.mounts.values()))
        directory = mount / cgroup.name
    try:
        text = (directory / filename).read_text().strip()
    except OSError:
        return "(absent)"
    if key:
        values = dict(line.split(maxsplit=1) for line in text.splitlines() if " " in line)
        return values.get(key, "(absent)")
    return " ".join(text.split())  # cgroup.procs: one PID a line


def files_table(cgroup: Cgroup | None = None, rows: tuple[str, ...] | None = None) -> Table:
    """Docker's flags beside the cgroup v1 and v2 files; with ``cgroup``, a last column with
    what that cgroup's files hold now (read from its own version's files; several v1 files
    are shown side by side, ``quota period`` like v2's ``cpu.max``)."""
    header = ("docker", "what", "cgroup v1 file", "cgroup v2 file")
    if cgroup is not None:
        header += ("read now",)
    table = Table(header)
    for key in rows or LIMIT_FILES:
        flag, what, v1, v2 = LIMIT_FILES[key]
        row = (flag, what, " + ".join(v1), " + ".join(v2))
        if cgroup is not None:
            row += (" ".join(read_file(cgroup, f) for f in (v2 if cgroup.version == "v2"
                                                             else v1)),)
        table.rows.append(row)
    return table


# --- measuring over time -----------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the recording began
    cpu_usage_ns: int
    memory_usage: int
    pids_current: int


@dataclass
class Recording:
    """What ``sample`` saw: the samples of each container, and the events it fired."""

    samples: dict[str, list[Sample]]
    events: list[tuple[float, str]] = field(default_factory=list)  # (t, "pause")

    def cpu_seconds(self, name: str, start: float = 0, end: float = math.inf) -> float:
        """CPU time the container used between ``start`` and ``end`` (the nearest samples
        inside that window)."""
        inside = [s for s in self.samples[name] if start <= s.t <= end]
        return (inside[-1].cpu_usage_ns - inside[0].cpu_usage_ns) / 1e9 if inside else 0.0

    def cpu_rate(self, name: str, start: float = 0, end: float = math.inf) -> float:
        """CPUs' worth of time used in the window: 0.5 = half of one CPU."""
        inside = [s for s in self.samples[name] if start <= s.t <= end]
        if len(inside) < 2:
            return 0.0
        return self.cpu_seconds(name, start, end) / (inside[-1].t - inside[0].t)

    def peak_memory(self, name: str) -> int:
        return max((s.memory_usage for s in self.samples[name]), default=0)


def sample(containers: dict[str, Container], seconds: float, interval: float = 0.02,
           events: dict[float, tuple[str, Callable[[], None]]] | None = None) -> Recording:
    """Read each container's ``stats()`` every ``interval`` seconds for ``seconds``, or until
    every container has no process left. ``events`` maps a time to ``(name, action)``: e.g.
    ``{0.5: ("pause", box.pause)}`` calls ``box.pause()`` half a second in."""
    recording = Recording({name: [] for name in containers})
    pending = sorted((events or {}).items())
    started = time.monotonic()
    while True:
        now = time.monotonic() - started
        while pending and pending[0][0] <= now:
            _, (what, action) = pending.pop(0)
            action()  # the event's time is when it has taken effect: every sample before it
            recording.events.append((time.monotonic() - started, what))  # came before it
        for name, container in containers.items():
            stats = container.stats()
            recording.samples[name].append(Sample(time.monotonic() - started,
                                                  stats.cpu_usage_ns, stats.memory_usage,
                                                  stats.pids_current))
        if now >= seconds or not any(c.cgroup.pids() for c in containers.values()):
            return recording
        time.sleep(interval)


def start_quiet(command: list[str], **flags) -> Container:
    """A busybox container in the background with ``run``'s limit flags (``memory="32m"``),
    its stdio on /dev/null, removed when waited for."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        host = HostConfig(AutoRemove=True, Resources=build_limits(**flags))
        return run(Config(Image="busybox", Cmd=command), host, stdio=Stdio(null, null, null))
    finally:
        os.close(null)


def stop(container: Container) -> int:
    """SIGKILL the container's PID 1 (if it still runs) and wait: the cgroup goes with it."""
    if container.cgroup.pids():
        container.process.signal(signal.SIGKILL)
    return container.wait()


@dataclass
class HogRun:
    container_id: str
    limit_mib: int
    size_mib: int
    recording: Recording
    exit_code: int
    oom_killed: bool


def hog_command(size_mib: int, pause: float = 0.02) -> list[str]:
    """A shell pipeline that grows by 1 MiB every ``pause`` seconds: ``tail`` keeps its input's
    last lines, and /dev/zero has no newline, so it keeps everything. When ``tail`` is killed,
    the next ``head`` dies of SIGPIPE and the loop ends too."""
    return ["sh", "-c", f"(for i in $(seq {size_mib}); do head -c 1m /dev/zero || exit; "
                        f"sleep {pause}; done) | tail"]


def memory_hog(limit_mib: int = 32, size_mib: int = 96, seconds: float = 15) -> HogRun:
    """Run the hog under ``-m <limit_mib>m`` and record its memory until it exits (or is
    killed after ``seconds``). The widget of notebook 03 calls this, and only this."""
    container = start_quiet(hog_command(size_mib), memory=f"{limit_mib}m")
    try:
        recording = sample({"hog": container}, seconds)
    finally:
        exit_code = stop(container)
    return HogRun(container.record.Id, limit_mib, size_mib, recording, exit_code,
                  container.oom_killed)


# --- plots -------------------------------------------------------------------------------------


@dataclass
class Chart:
    """A matplotlib figure that a notebook shows as a PNG, and whose text form is only its
    title (so that a checked notebook does not depend on the pixels)."""

    figure: object
    title: str

    def __repr__(self) -> str:
        return f"<chart: {self.title}>"

    def _repr_png_(self) -> bytes:
        import io

        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        return buffer.getvalue()


def _axes(title: str, ylabel: str):
    from matplotlib.figure import Figure  # not pyplot: no global state, no double display

    figure = Figure(figsize=(7.5, 3.2))
    axes = figure.subplots()
    axes.set_title(title, fontsize=10)
    axes.set_xlabel("seconds")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    return figure, axes


def _mark_events(axes, events: list[tuple[float, str]]) -> None:
    for t, what in events:
        axes.axvline(t, color="gray", linestyle=":")
        axes.annotate(what, (t, 1), xycoords=("data", "axes fraction"), fontsize=8,
                      xytext=(3, -12), textcoords="offset points")


def plot_memory(hog: HogRun) -> Chart:
    """Memory in use over time, the limit as a red line, and how it ended."""
    ending = "OOM-killed" if hog.oom_killed else f"exit status {hog.exit_code}"
    title = f"a {hog.size_mib} MiB hog under -m {hog.limit_mib}m: {ending}"
    figure, axes = _axes(title, "memory in use (MiB)")
    samples = hog.recording.samples["hog"]
    axes.plot([s.t for s in samples], [s.memory_usage / 2**20 for s in samples], marker=".")
    axes.axhline(hog.limit_mib, color="firebrick", linestyle="--", label=f"-m {hog.limit_mib}m")
    if hog.oom_killed and samples:
        peak = max(samples, key=lambda s: s.memory_usage)
        axes.annotate("OOM kill", (peak.t, peak.memory_usage / 2**20), color="firebrick",
                      xytext=(8, 8), textcoords="offset points")
    axes.set_ylim(0, max(hog.limit_mib, hog.size_mib) * 1.1)
    axes.legend(loc="upper left", fontsize=8)
    return Chart(figure, title)


def plot_cpu(recording: Recording, title: str,
             references: dict[str, float] | None = None) -> Chart:
    """Cumulative CPU time of each container: the slope is the share of a CPU it gets.
    ``references`` draws dashed lines of given slopes (``{"1 CPU": 1.0}``)."""
    figure, axes = _axes(title, "CPU time used (s)")
    end = 0.0
    for name, samples in recording.samples.items():
        base = samples[0].cpu_usage_ns if samples else 0
        axes.plot([s.t for s in samples], [(s.cpu_usage_ns - base) / 1e9 for s in samples],
                  label=name)
        end = max([end] + [s.t for s in samples])
    for label, slope in (references or {}).items():
        axes.plot([0, end], [0, slope * end], linestyle="--", color="gray", linewidth=1)
        axes.annotate(label, (end, slope * end), fontsize=8, color="gray")
    _mark_events(axes, recording.events)
    axes.legend(loc="upper left", fontsize=8)
    return Chart(figure, title)


def memory_widget():
    """Two sliders and a button: run ``memory_hog`` with the chosen sizes and plot it. The
    widget only wires the plain function (callbacks do not run in a headless notebook run)."""
    import ipywidgets as widgets
    from IPython.display import display

    limit = widgets.IntSlider(32, min=8, max=256, step=8, description="-m (MiB)")
    size = widgets.IntSlider(96, min=8, max=256, step=8, description="hog (MiB)")
    button = widgets.Button(description="run the hog", icon="play")
    output = widgets.Output()

    def on_click(_button) -> None:
        output.clear_output()
        with output:
            hog = memory_hog(limit.value, size.value)
            display(plot_memory(hog))
            print(f"exit status {hog.exit_code}, OOM-killed: {hog.oom_killed}, "
                  f"peak {hog.recording.peak_memory('hog') / 2**20:.1f} MiB")

    button.on_click(on_click)
    return widgets.VBox([widgets.HBox([limit, size, button]), output])
