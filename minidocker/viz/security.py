"""Stage 9 in the notebook: the escape table, built by *trying* each escape from inside a container.

Each ``Escape`` is a threat (what an attacker in a container wants), a busybox shell probe that
tries it, and the mechanism that stops it by default. ``try_escapes(*flags)`` runs every probe
in one container started with ``minidocker run --rm FLAGS busybox sh -c SCRIPT`` and reads back
what each printed and its exit status; ``verdict()`` turns that into a word the kernel chose
(``EPERM``, ``EACCES``, ``EROFS``, ``ESRCH`` or ``works``); ``escape_table()`` puts the default
and the ``--privileged`` outcome side by side.

Every probe is harmless to the machine that runs it: where success *would* harm the host
(sysrq, loading a module, setting the clock) the probe is built so that even success changes
nothing (a garbage module that the kernel refuses to parse, a namespaced sysctl, the container's
own hostname), or it is not run under ``--privileged`` at all (``Escape.privileged_probe``).

For ``--userns``: ``uid_graph`` (container uids -> host uids, with the processes and files that
carry them, read from the host by ``live_uid_graph``) and ``idmapped_mount``, what the kernel
could do instead of minidocker's chown of the layers.

Man pages: capabilities(7) seccomp(2) mount(2) mknod(2) proc(5) (/proc/<pid>/environ, ptrace
access mode) user_namespaces(7) mount_setattr(2). Used by: notebook 09-security,
tests/test_security_run.py, tests/test_userns.py.
"""

import os
import stat
from dataclasses import dataclass

from minidocker import cgroups, kernel
from minidocker.viz.cli import minidocker
from minidocker.viz.graph import course_digraph, dot_names
from minidocker.viz.table import Table

# busybox prints strerror(3); a few applets have their own words for the same errno.
ERRNO_WORDS = {
    "Operation not permitted": "EPERM",
    "permission denied (are you root?)": "EPERM",  # busybox mount, for EPERM and EACCES
    "Permission denied": "EACCES",
    "Read-only file system": "EROFS",
    "No such process": "ESRCH",
    "No such file or directory": "ENOENT",
    "kernel does not support requested operation": "ENOSYS",  # busybox insmod
    "invalid module format": "ENOEXEC",  # busybox insmod
}
MARK = "@@"  # a probe's output starts with "@@ name" and ends with "@@ rc N"


@dataclass(frozen=True)
class Escape:
    name: str
    threat: str  # what the attacker wants
    probe: str  # busybox sh; its exit status says whether the attempt worked
    stopped_by: str  # the mechanism that refuses it in a default container
    privileged_probe: str | None = None  # a harmless stand-in under --privileged; "" = skip


@dataclass(frozen=True)
class DeviceGuard:
    """What keeps a device node that root in the container makes in ``/dev`` from opening."""

    mechanism: str  # in the words of the escape table's last column
    errno: str  # the kernel's answer to mknod-dev: EPERM (the open refused) or EROFS (/dev)
    dev_readonly: bool  # whether the container's /dev is mounted read-only


DEVICE_GUARDS = {
    "devices cgroup": DeviceGuard(
        "the devices cgroup (v1): open(2) of a device not in devices.allow -> EPERM",
        "EPERM", dev_readonly=False),
    "eBPF": DeviceGuard(
        "runc's eBPF device program (cgroup v2): open(2) of a device it does not allow -> EPERM",
        "EPERM", dev_readonly=False),
    "read-only /dev": DeviceGuard(
        "no devices cgroup (v2): /dev is read-only, the root is nodev -> EROFS",
        "EROFS", dev_readonly=True),
}


def device_guard(runtime: str = "minidocker") -> DeviceGuard:
    """The guard of this machine for this ``--runtime``: the v1 devices controller where there
    is one (both runtimes use it); on cgroup v2 only, runc loads an eBPF program
    (BPF_PROG_TYPE_CGROUP_DEVICE) and minidocker, which does not, mounts ``/dev`` read-only."""
    if devices_controller():
        return DEVICE_GUARDS["devices cgroup"]
    return DEVICE_GUARDS["eBPF" if runtime == "runc" else "read-only /dev"]


def devices_controller() -> bool:
    """Whether this machine has the cgroup v1 devices controller (minidocker uses it if so)."""
    return cgroups.layout() != "v2" and os.path.isdir("/sys/fs/cgroup/devices")


def host_block_device() -> tuple[str, int, int] | None:
    """A block device of this machine that root can open here (the disk that holds ``/`` if
    it can be opened, else the first one that can): its path, major and minor. Only ever
    opened to read a few bytes."""
    candidates = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == "/" and not fields[2].startswith("0:"):
                candidates.append(fields[2])
    if os.path.isdir("/sys/block"):
        for name in sorted(os.listdir("/sys/block")):
            try:
                with open(f"/sys/block/{name}/dev") as f:
                    candidates.append(f.read().strip())
            except OSError:
                continue
    for numbers in candidates:
        major, minor = (int(n) for n in numbers.split(":"))
        path = _dev_path(major, minor)
        if path and _opens(path):
            return path, major, minor
    return None


def _dev_path(major: int, minor: int) -> str | None:
    for name in sorted(os.listdir("/dev")):
        path = os.path.join("/dev", name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISBLK(info.st_mode) and info.st_rdev == os.makedev(major, minor):
            return path
    return None


def _opens(path: str) -> bool:
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    except OSError:
        return False
    return True


# The rows whose verdict depends on the machine rather than on the engine: whether its kernel
# has modules and magic SysRq at all (CONFIG_MODULES, CONFIG_MAGIC_SYSRQ), and what guards its
# devices (device_guard). The notebook shows them apart, each beside what decides it.
MACHINE_DEPENDENT = ("module", "sysrq", "mknod-dev")


def escapes(any_kernel: bool = False) -> tuple[Escape, ...]:
    """The escape table of this machine (the device rows name one of its block devices);
    ``any_kernel``: with the sysrq row even where this kernel has no magic SysRq (a list of
    threats, not of probes to run here)."""
    disk = host_block_device()
    major, minor = (disk[1], disk[2]) if disk else (8, 0)
    rows = [
        Escape("mount", "mount a filesystem (then cover /proc masks, reach host disks)",
               "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m",
               "seccomp: mount(2) -> EPERM unless CAP_SYS_ADMIN (which is dropped)"),
        Escape("module", "load a kernel module: run code in the host kernel",
               "printf garbage > /tmp/x.ko && insmod /tmp/x.ko",
               "seccomp: init_module/finit_module -> EPERM (and CAP_SYS_MODULE is dropped)"),
        Escape("sysctl", "change a kernel setting in /proc/sys",
               "echo 1 > /proc/sys/net/ipv4/ip_forward",
               "/proc/sys is a read-only bind mount -> EROFS"),
        Escape("hostname", "rename the machine",
               "hostname escaped",
               "sethostname(2) needs CAP_SYS_ADMIN -> EPERM (and the UTS namespace is the "
               "container's own)"),
        Escape("host-process", "signal a host process (the caller's own PID)",
               f"kill -0 {os.getpid()}",
               "the PID namespace: host processes do not exist in here -> ESRCH"),
        Escape("cgroupfs", "mount the cgroup filesystem, to leave its limits",
               "mount -t cgroup2 none /sys/fs/cgroup",
               "seccomp: mount(2) -> EPERM unless CAP_SYS_ADMIN"),
        Escape("mknod-root", "make a node of the host's disk and read it (in /tmp)",
               f"mknod /tmp/disk b {major} {minor} && head -c 16 /tmp/disk > /dev/null",
               "the root is mounted nodev: device nodes on it open nothing -> EACCES"),
        Escape("mknod-dev", "make a node of the host's disk in /dev and read it",
               f"mknod /dev/disk b {major} {minor} && head -c 16 /dev/disk > /dev/null",
               device_guard().mechanism),
        Escape("userns", "create a user namespace (full capabilities inside it)",
               "unshare -U true",
               "seccomp: unshare(CLONE_NEWUSER) -> EPERM"),
        Escape("mountns", "create a mount namespace",
               "unshare -m true",
               "unshare(CLONE_NEWNS) needs CAP_SYS_ADMIN -> EPERM"),
        Escape("kernel-log", "read the kernel log (kernel addresses help exploits)",
               "dmesg > /dev/null",
               "seccomp: syslog(2) -> EPERM unless CAP_SYSLOG"),
        Escape("clock", "set the host's clock (clocks are not namespaced)",
               'date -s "@$(date +%s)" > /dev/null',  # to the time it is: should it pass
               "seccomp: settimeofday/clock_settime -> EPERM unless CAP_SYS_TIME",
               privileged_probe=""),
    ]
    if any_kernel or os.path.exists("/proc/sysrq-trigger"):  # kernels with magic SysRq
        rows.insert(3, Escape(
            "sysrq", "crash or reboot the host through magic SysRq",
            "echo h > /proc/sysrq-trigger",  # "h" only prints the help, should it ever pass
            "/proc/sysrq-trigger is a read-only bind mount -> EROFS",
            privileged_probe="! grep -q ' /proc/sysrq-trigger ' /proc/self/mountinfo"))
    return tuple(rows)


@dataclass
class Attempt:
    output: str
    code: int

    @property
    def verdict(self) -> str:
        """The errno the kernel answered (from the message busybox printed), or ``works``."""
        for words, name in ERRNO_WORDS.items():  # first: busybox date says no, exits 0
            if words in self.output:
                return name
        if self.code == 0:
            return "works"
        last = self.output.strip().splitlines()[-1:] or ["no message"]
        return f"fails ({last[0]})"


def script(rows: tuple[Escape, ...], privileged: bool = False) -> str:
    """One busybox shell script that tries every row and marks where each output begins."""
    parts = []
    for row in rows:
        probe = row.privileged_probe if privileged and row.privileged_probe is not None \
            else row.probe
        if not probe:
            continue
        parts.append(f"echo '{MARK} {row.name}'; ( {probe} ) 2>&1; echo \"{MARK} rc $?\"")
    return "\n".join(parts)


def try_escapes(*flags: str, rows: tuple[Escape, ...] | None = None) -> dict[str, Attempt]:
    """Run every probe in one ``minidocker run --rm FLAGS busybox`` container; what each
    printed and its exit status, by name."""
    rows = rows if rows is not None else escapes()
    privileged = "--privileged" in flags
    run = minidocker("run", "--rm", *flags, "busybox", "sh", "-c", script(rows, privileged))
    return parse(run.output)


def parse(output: str) -> dict[str, Attempt]:
    found, name, lines = {}, None, []
    for line in output.splitlines():
        if line.startswith(f"{MARK} rc ") and name:
            found[name] = Attempt("\n".join(lines), int(line.split()[-1]))
            name, lines = None, []
        elif line.startswith(f"{MARK} "):
            name, lines = line[len(MARK) + 1:], []
        elif name:
            lines.append(line)
    return found


def escape_table(default: dict[str, Attempt], privileged: dict[str, Attempt],
                 rows: tuple[Escape, ...] | None = None) -> Table:
    """The escape table: each threat, what a default container got, what --privileged got."""
    rows = rows if rows is not None else escapes()
    table = Table(("escape", "default", "--privileged", "stopped by (default)"))
    for row in rows:
        if row.name in privileged:
            when_privileged = privileged[row.name].verdict
        else:
            when_privileged = "not tried (would change the host)"
        table.rows.append((row.name, default[row.name].verdict if row.name in default else "?",
                           when_privileged, row.stopped_by))
    return table


def threats(rows: tuple[Escape, ...] | None = None) -> Table:
    """Each escape and the threat behind it (by default, every kernel's)."""
    rows = rows if rows is not None else escapes(any_kernel=True)
    return Table(("escape", "the threat"), [(r.name, r.threat) for r in rows])


def trace(program, nr: int, arch: int, args: tuple[int, ...] = ()) -> list[str]:
    """The lines of ``program.explain()`` that the kernel runs for one system call
    (``struct seccomp_data`` with ``nr``, ``arch`` and ``args``), in order: the path of one
    call through the filter. A classic-BPF interpreter for what seccomp filters use."""
    words = {0: nr & 0xFFFFFFFF, 4: arch}
    for i, value in enumerate(tuple(args) + (0,) * (6 - len(args))):
        words[16 + 8 * i], words[20 + 8 * i] = value & 0xFFFFFFFF, value >> 32
    explained = program.explain().splitlines()[2:]
    a, pc, path = 0, 0, []
    while pc < len(program.instructions):
        ins = program.instructions[pc]
        path.append(explained[pc])
        op, pc = ins.code, pc + 1
        if op == 0x20:  # ld [k]
            a = words.get(ins.k, 0)
        elif op == 0x54:  # and #k
            a &= ins.k
        elif op == 0x05:  # ja
            pc += ins.k
        elif op in (0x15, 0x25, 0x35, 0x45):  # jeq jgt jge jset #k
            taken = {0x15: a == ins.k, 0x25: a > ins.k, 0x35: a >= ins.k,
                     0x45: bool(a & ins.k)}[op]
            pc += ins.jt if taken else ins.jf
        elif op == 0x06:  # ret #k
            return path
        else:
            raise ValueError(f"instruction {pc - 1}: code {op:#x} is not traced here")
    return path


# --- user namespaces: the uid map, drawn from what the kernel reports ---------------------------

OVERFLOW_UID = 65534  # /proc/sys/kernel/overflowuid: how a namespace shows a host id it cannot map


@dataclass(frozen=True)
class UidNode:
    id: str  # "inside:<uid>", "host:<uid>", "process:<host pid>", "file:<label>"
    label: str
    kind: str  # "inside", "host", "unmapped", "process" or "file"


@dataclass
class UidGraph:
    nodes: list[UidNode]
    edges: list[tuple[str, str, str]]  # (source, target, label)
    maps: list[tuple[int, int, int]]  # the uid_map lines: (inside, outside, count)

    def node(self, node_id: str) -> UidNode:
        return next(n for n in self.nodes if n.id == node_id)


def read_id_map(pid: int | str, name: str = "uid_map") -> list[tuple[int, int, int]]:
    """``/proc/<pid>/uid_map`` (or ``gid_map``) as (inside, outside, count) lines: the ids as
    the *reader's* namespace numbers them, so read it from the host."""
    with open(f"/proc/{pid}/{name}") as f:
        return [tuple(int(n) for n in line.split()) for line in f if line.strip()]


def inside_id(host_id: int, maps: list[tuple[int, int, int]]) -> int | None:
    """The id a host id has inside the namespace, or None when no line of the map covers it."""
    for inside, outside, count in maps:
        if outside <= host_id < outside + count:
            return host_id - outside + inside
    return None


def uid_graph(maps: list[tuple[int, int, int]], processes: list[tuple[int, str, int]] = (),
              files: list[tuple[str, int]] = ()) -> UidGraph:
    """Container uids -> host uids through ``maps``. ``processes`` are (host pid, command, host
    uid), ``files`` (label, host uid of its owner on disk): each is attached to the uid it has
    inside, and that uid to the host uid the kernel really stores. A host uid that no line of
    the map covers shows inside as ``OVERFLOW_UID`` (nobody), by a dashed edge."""
    nodes: dict[str, UidNode] = {}
    edges: list[tuple[str, str, str]] = []

    def connect(host_uid: int) -> str:
        inside = inside_id(host_uid, maps)
        host = f"host:{host_uid}"
        nodes.setdefault(host, UidNode(host, f"uid {host_uid}" + (" (root)" if host_uid == 0
                                                                   else ""), "host"))
        if inside is None:
            node = f"inside:{OVERFLOW_UID}"
            nodes.setdefault(node, UidNode(node, f"uid {OVERFLOW_UID} (nobody)\nnot in the map",
                                           "unmapped"))
            edge = (host, node, "shown as")
        else:
            node = f"inside:{inside}"
            nodes.setdefault(node, UidNode(node, f"uid {inside}" + (" (root)" if inside == 0
                                                                    else ""), "inside"))
            line = next(m for m in maps if m[1] <= host_uid < m[1] + m[2])
            edge = (node, host, f"+{line[1] - line[0]}")
        if edge not in edges:
            edges.append(edge)
        return node

    for pid, command, host_uid in processes:
        node = f"process:{pid}"
        nodes[node] = UidNode(node, f"{command}\nhost pid {pid}", "process")
        edges.append((node, connect(host_uid), "runs as"))
    for label, host_uid in files:
        node = f"file:{label}"
        nodes[node] = UidNode(node, label, "file")
        edges.append((node, connect(host_uid), "owned by"))
    order = {"process": 0, "file": 1, "inside": 2, "unmapped": 3, "host": 4}
    ordered = sorted(nodes.values(), key=lambda n: (order[n.kind], n.id))
    return UidGraph(ordered, edges, list(maps))


def processes_of(pid: int) -> list[tuple[int, str, int]]:
    """Every process in ``pid``'s PID namespace, as the host sees it: (host pid, command, real
    uid from ``/proc/<pid>/status``, which the kernel prints in the reader's namespace)."""
    namespace = os.readlink(f"/proc/{pid}/ns/pid")
    found = []
    for entry in sorted(filter(str.isdigit, os.listdir("/proc")), key=int):
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != namespace:
                continue
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        found.append((int(entry), fields["Name"].strip(), int(fields["Uid"].split()[0])))
    return found


def live_uid_graph(pid: int, files: dict[str, str] | None = None) -> UidGraph:
    """The uid graph of a running container (its PID 1 as the host numbers it): its uid map,
    its processes, and the owners of ``files`` ({label: host path}, lstat(2) from the host)."""
    owned = [(label, os.lstat(path).st_uid) for label, path in (files or {}).items()]
    return uid_graph(read_id_map(pid), processes_of(pid), owned)


UID_STYLE = {"process": {"shape": "box", "style": "rounded,filled", "fillcolor": "aliceblue"},
             "file": {"shape": "note", "style": "filled", "fillcolor": "lightyellow"},
             "inside": {"shape": "ellipse", "style": "filled", "fillcolor": "honeydew"},
             "unmapped": {"shape": "ellipse", "style": "filled,dashed", "fillcolor": "mistyrose"},
             "host": {"shape": "ellipse", "style": "filled", "fillcolor": "lavender"}}


def uid_digraph(graph: UidGraph, title: str = ""):
    """Draw the graph left to right: processes and files, the uids the container sees (one
    box: its user namespace), the uids the host stores (another box)."""
    dot = course_digraph("uids", title, nodesep="0.25", ranksep="0.7")
    name = dot_names(graph.nodes)
    maps = ", ".join(f"{a} {b} {c}" for a, b, c in graph.maps)
    boxes = (("inside", f"container's user namespace (uid_map: {maps})", ("inside", "unmapped")),
             ("host", "host (the initial user namespace)", ("host",)))
    for box, label, kinds in boxes:
        with dot.subgraph(name=f"cluster_{box}") as sub:
            sub.attr(label=label, style="rounded", color="gray60")
            for node in graph.nodes:
                if node.kind in kinds:
                    sub.node(name[node.id], node.label, **UID_STYLE[node.kind])
    for node in graph.nodes:
        if node.kind in ("process", "file"):
            dot.node(name[node.id], node.label, **UID_STYLE[node.kind])
    for source, target, label in graph.edges:
        if label == "shown as":  # host -> inside: drawn backwards so the host stays right
            dot.edge(name[target], name[source], label=label, color="gray40", style="dashed",
                     dir="back")
        else:
            dot.edge(name[source], name[target], label=label, color="gray40")
    return dot


# --- what an idmapped mount would do instead of the chown --------------------------------------

def idmapped_mount(source: str, target: str, userns_pid: int) -> None:
    """Mount a copy of ``source`` at ``target`` seen through the uid and gid maps of
    ``userns_pid``'s user namespace: open_tree(OPEN_TREE_CLONE), mount_setattr(IDMAP),
    move_mount. Nothing on disk changes; the kernel shifts each owner as it is read and
    written. Needs Linux >= 5.12 and a filesystem that supports it (tmpfs since 6.3)."""
    os.makedirs(target, exist_ok=True)
    tree = kernel.open_tree(source, kernel.OPEN_TREE_CLONE | kernel.OPEN_TREE_CLOEXEC)
    try:
        userns = os.open(f"/proc/{userns_pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        try:
            kernel.mount_setattr(tree, "", kernel.AT_EMPTY_PATH,  # mount_setattr(2)
                                 attr_set=kernel.MOUNT_ATTR_IDMAP, userns_fd=userns)
        finally:
            os.close(userns)
        kernel.move_mount(tree, target)
    finally:
        os.close(tree)
