"""Checker of lab 03 — cgroups: limit a process's memory and PIDs by writing cgroup files.

The student finds where the memory and pids controllers are (one v2 tree, or one v1 tree per
controller), makes a cgroup, writes its limits, runs a command in it and removes it again. Each
step is checked on what the kernel shows: the value a cgroup file holds, a memory hog that the
OOM killer stops (exit 137, ``oom_kill`` counted), a fork loop that stops at ``pids.max``
(``pids.events``), what ``/proc/self/cgroup`` says inside, a directory that is gone.

Cgroups are not namespaced like the sandbox's mounts: they are this machine's. So the checker
makes one parent of its own, ``minidocker-lab03-<pid>`` in each hierarchy, hands it to the
student's code, and removes it with everything below it when the check ends, however it ends.
Each step after step 1 works on a cgroup the checker made, so the steps are checked
independently. The hogs are the host's ``/bin/sh`` and its tools.

Man pages: cgroups(7); kernel docs admin-guide/cgroup-v2.rst, cgroup-v1/memory.rst,
cgroup-v1/pids.rst.
Used by: ``minidocker lab check 03``; the lab is labs/03-cgroups/.
"""

import errno
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from minidocker import cgroups, kernel
from minidocker.cgroups.base import read_keyed
from minidocker.cgroups.v1 import controller_mounts
from minidocker.errors import MinidockerError
from minidocker.labs.framework import Lab, Step, function
from minidocker.labs.sandbox import (
    CheckFailed,
    call_student,
    capture_output,
    describe_error,
    read_proc,
)

CONTROLLERS = ("memory", "pids")
MEMORY_LIMIT = 24 * 2**20  # bytes
PIDS_LIMIT = 8
SH = "/bin/sh"
HOG = [SH, "-c", "head -c 64m /dev/zero | tail"]  # tail keeps the 64 MiB "line" in memory
FORK_LOOP = [SH, "-c", "i=0; while [ $i -lt 30 ]; do sleep 30 & i=$((i+1)); done"]
PROBE = [SH, "-c", "cat /proc/self/cgroup; exit 7"]
EXIT_CODE = 7  # the probe's: run_in_cgroup must hand it back
OOM_KILLED = 128 + signal.SIGKILL  # 137: what a shell says of a command the OOM killer ended


@dataclass
class Workspace:
    """Made on the host side, once per check, and removed with everything below it."""

    version: str  # "v1" (hybrid too: the controllers are in v1 trees) or "v2"
    layout: str  # cgroups.layout(): "v1", "hybrid" or "v2", to say which machine this is
    hierarchies: dict[str, Path]  # controller -> where its hierarchy is mounted
    parents: dict[str, Path]  # controller -> the checker's cgroup, under which steps work
    scratch: str  # an empty directory: step 1's sandbox mounts a tmpfs on it


@contextmanager
def workspace() -> Iterator[Workspace]:
    version, hierarchies = find_hierarchies()
    name = f"minidocker-lab03-{os.getpid()}"
    parents = {controller: root / name for controller, root in hierarchies.items()}
    scratch = tempfile.mkdtemp(prefix="minidocker-lab03-")
    try:
        for controller, parent in parents.items():
            if version == "v2":  # the root passes the controller down to our parent
                enable_controller(parent.parent, controller)
            parent.mkdir(exist_ok=True)
        yield Workspace(version, cgroups.layout(), hierarchies, parents, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        for parent in directories(parents):
            remove_tree(parent)


def find_hierarchies() -> tuple[str, dict[str, Path]]:
    """Where this machine's memory and pids controllers are: "v2" and the unified tree, or
    "v1" and one mount per controller (what the student's step 1 must find too)."""
    if cgroups.layout() == "v2":
        root = cgroups.CGROUP_ROOT
        available = (root / "cgroup.controllers").read_text().split()
        found = {c: root for c in CONTROLLERS if c in available}
        version = "v2"
    else:
        mounts = controller_mounts()
        found = {c: mounts[c] for c in CONTROLLERS if c in mounts}
        version = "v1"
    missing = [c for c in CONTROLLERS if c not in found]
    if missing:
        raise MinidockerError(f"this machine has no {' or '.join(missing)} cgroup controller "
                              f"({cgroups.layout()} layout), which lab 03 needs: see "
                              "'minidocker doctor'")
    return version, found


# --- the checker's own cgroups -------------------------------------------------------------------

def directories(cgroup: dict[str, Path]) -> list[Path]:
    """A cgroup's directories, each once: two in v1 (memory, pids), one in v2."""
    return list(dict.fromkeys(cgroup.values()))


def enable_controller(directory: Path, controller: str) -> None:
    """v2: let ``directory``'s children have ``controller`` (cgroup.subtree_control)."""
    control = directory / "cgroup.subtree_control"
    if controller not in control.read_text().split():
        control.write_text(f"+{controller}")


def disable_controllers(directory: Path) -> None:
    """v2: take the memory and pids controllers back from ``directory``'s children, so that
    a step that must pass them down does not find them passed down already (by an earlier
    step's cgroup, or a parent that was left over)."""
    control = directory / "cgroup.subtree_control"
    enabled = [c for c in CONTROLLERS if c in control.read_text().split()]
    if enabled:
        try:
            control.write_text(" ".join(f"-{c}" for c in enabled))
        except OSError:  # EBUSY: a child still uses them; the step is checked as it stands
            pass


def make_cgroup(space: Workspace, name: str) -> dict[str, Path]:
    """A cgroup ``name`` under the checker's parent, made by the checker (steps 3 to 6)."""
    cgroup = {}
    for controller, parent in space.parents.items():
        if space.version == "v2":
            enable_controller(parent, controller)
        cgroup[controller] = parent / name
        cgroup[controller].mkdir(exist_ok=True)
    return cgroup


def set_limits(space: Workspace, cgroup: dict[str, Path]) -> None:
    """The checker's own limits (step 5 checks the joining, not the writing)."""
    memory, pids = cgroup["memory"], cgroup["pids"]
    if space.version == "v2":
        (memory / "memory.max").write_text(str(MEMORY_LIMIT))
        if (memory / "memory.swap.max").exists():
            (memory / "memory.swap.max").write_text("0")
    else:
        (memory / "memory.limit_in_bytes").write_text(str(MEMORY_LIMIT))
        if (memory / "memory.memsw.limit_in_bytes").exists():
            (memory / "memory.memsw.limit_in_bytes").write_text(str(MEMORY_LIMIT))
    (pids / "pids.max").write_text(str(PIDS_LIMIT))


def start_in_cgroup(cgroup: dict[str, Path], argv: list[str]) -> int:
    """Fork a child that joins ``cgroup`` and execs ``argv``, quietly; return its PID."""
    pid = os.fork()
    if pid == 0:
        try:
            for directory in directories(cgroup):
                (directory / "cgroup.procs").write_text(str(os.getpid()))
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    return pid


def run_joined(cgroup: dict[str, Path], argv: list[str]) -> int:
    """The checker's own run: start ``argv`` in ``cgroup``, wait, return its exit code."""
    code = os.waitstatus_to_exitcode(os.waitpid(start_in_cgroup(cgroup, argv), 0)[1])
    return code if code >= 0 else 128 - code


def processes(directory: Path) -> list[int]:
    """The PIDs in a cgroup, but our own (a student's mistake can move the sandbox in). A
    process outside our PID namespace would show as 0: never one to signal either."""
    try:
        return [pid for pid in map(int, (directory / "cgroup.procs").read_text().split())
                if pid not in (0, os.getpid())]
    except FileNotFoundError:
        return []


def remove_cgroup(directory: Path, patience: float = 2.0) -> None:
    """Kill what runs in the cgroup ``directory``, then rmdir it. rmdir(2) says EBUSY until the
    last process has exited, so it is tried again for up to ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while directory.exists():
        for pid in processes(directory):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            directory.rmdir()
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)


def remove_tree(parent: Path) -> None:
    """The checker's parent and every cgroup below it, deepest first. Run on the host side after
    the sandboxes are gone, so whatever a step left behind can go."""
    if not parent.exists():
        return
    below = [Path(d) for d, _, _ in os.walk(parent, topdown=False)]  # parent comes last
    for directory in below:
        remove_cgroup(directory)
    if parent.exists():
        raise MinidockerError(f"lab 03 could not remove its cgroup {parent}: a process is still "
                              f"in it (cat {parent}/cgroup.procs); kill it, then rmdir {parent}")


def cleanup(cgroup: dict[str, Path], *children: int) -> None:
    """End a step: kill and reap the checker's children, remove the step's cgroup."""
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    for directory in directories(cgroup):
        remove_cgroup(directory, patience=1.0)
    try:  # the sandbox is PID 1 of its namespace: orphans (a fork loop's sleeps) come to it
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


@contextmanager
def step_cgroup(space: Workspace, name: str) -> Iterator[dict[str, Path]]:
    """The cgroup a step works in (``make_cgroup``), removed with whatever runs in it when the
    step ends (``cleanup``), however it ends."""
    cgroup = make_cgroup(space, name)
    try:
        yield cgroup
    finally:
        cleanup(cgroup)


def read_value(path: Path) -> str:
    return path.read_text().strip() if path.exists() else "(no such file)"


def as_cgroup(returned, name: str) -> dict[str, Path]:
    """What the student's create_cgroup returned, as {controller: Path}, or a FAIL."""
    if not isinstance(returned, dict) or not set(CONTROLLERS) <= set(returned):
        raise CheckFailed(f"create_cgroup() returned {returned!r}: return a dict with the keys "
                          f"'memory' and 'pids', each the directory of the new cgroup {name!r}")
    return {controller: Path(returned[controller]) for controller in CONTROLLERS}


def mib(value: int) -> str:
    return f"{value // 2**20} MiB"


# --- step 1: where the controllers are ----------------------------------------------------------

# Trees that look like the other machines' /sys/fs/cgroup, made of plain files in a tmpfs.
FAKE_TREES = {
    "v2 (Ubuntu 24.04)": {"cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
                          "cgroup.subtree_control": "cpu memory pids\n", "cgroup.procs": "",
                          "system.slice/cgroup.procs": ""},
    "hybrid (Debian 12)": {"memory/memory.limit_in_bytes": "9223372036854771712\n",
                           "memory/cgroup.procs": "", "pids/cgroup.procs": "",
                           "cpu/cgroup.procs": "", "unified/cgroup.controllers": "",
                           "unified/cgroup.procs": ""},
    "v1 (older systems)": {"memory/memory.limit_in_bytes": "9223372036854771712\n",
                           "memory/cgroup.procs": "", "pids/cgroup.procs": "",
                           "cpu,cpuacct/cgroup.procs": ""},
}


def fake_tree(scratch: str, kind: str) -> tuple[Path, dict[str, Path]]:
    """Build one fake tree; return its root and the answer step 1 should give for it."""
    root = Path(scratch) / kind.split()[0]
    for name, text in FAKE_TREES[kind].items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    if kind.startswith("v2"):
        return root, {c: root for c in CONTROLLERS}
    return root, {c: root / c for c in CONTROLLERS}


def check_find(student, space: Workspace) -> str:
    find_controllers = function(student, "find_controllers")
    here = as_paths(call_student(find_controllers, cgroups.CGROUP_ROOT))
    if here != space.hierarchies:
        raise CheckFailed(f"on this machine ({space.layout} layout) you found {_shown(here)}, "
                          f"but the controllers are at {_shown(space.hierarchies)}")
    kernel.mount("tmpfs", space.scratch, "tmpfs", 0, "mode=755")  # gone with the sandbox
    for kind in FAKE_TREES:
        root, expected = fake_tree(space.scratch, kind)
        found = as_paths(call_student(find_controllers, root))
        if found != expected:
            listing = ", ".join(sorted(p.name for p in root.iterdir()))
            raise CheckFailed(f"on a {kind} machine, whose cgroup root holds {listing}, you "
                              f"found {_shown(found)}; the controllers are at "
                              f"{_shown(expected, root)}")
    return (f"this machine is cgroup {space.version} ({space.layout} layout): "
            f"{_shown(space.hierarchies)}; right on a v2, a hybrid and a v1 tree too")


def as_paths(found):
    """{"memory": "/x"} -> {"memory": Path("/x")}; anything else stays as it is, to be shown."""
    if isinstance(found, dict) and all(isinstance(p, str | os.PathLike) for p in found.values()):
        return {c: Path(p) for c, p in found.items()}
    return found


def _shown(found, root: Path | None = None) -> str:
    if not isinstance(found, dict):
        return repr(found)
    return ", ".join(f"{c} at {str(p).replace(str(root), '<root>') if root else p}"
                     for c, p in found.items()) or "nothing"


# --- step 2: a cgroup under the parent --------------------------------------------------------

def check_create(student, space: Workspace) -> str:
    wanted = {controller: parent / "step2" for controller, parent in space.parents.items()}
    if space.version == "v2":  # the controllers are the student's to pass down, not ours
        for parent in directories(space.parents):
            disable_controllers(parent)
    try:
        cgroup = as_cgroup(call_student(function(student, "create_cgroup"),
                                        dict(space.parents), "step2"), "step2")
        for controller, directory in cgroup.items():
            if directory != wanted[controller]:
                if directory.name == "step2":
                    _tidy(directory)
                raise CheckFailed(f"cgroup[{controller!r}] is {directory}, but the cgroup "
                                  f"'step2' belongs under the parent {wanted[controller].parent}")
            if not directory.is_dir():
                raise CheckFailed(f"{directory} does not exist: make the directory (mkdir); the "
                                  "kernel fills it with the cgroup's files")
        limit_files = {"memory": "memory.max", "pids": "pids.max"} if space.version == "v2" \
            else {"memory": "memory.limit_in_bytes", "pids": "pids.max"}
        for controller, name in limit_files.items():
            if not (cgroup[controller] / name).exists():
                raise CheckFailed(
                    f"{cgroup[controller]} has no {name}: the {controller} controller is not on "
                    f"in it. In v2 a cgroup gets only the controllers its parent lists in "
                    f"cgroup.subtree_control: write \"+{controller}\" there before you mkdir")
        shown = ", ".join(str(d) for d in directories(cgroup))
        return f"made {shown}; the kernel filled it with {', '.join(limit_files.values())}"
    finally:
        cleanup(wanted)


def _tidy(directory: Path) -> None:
    """Remove a cgroup the student made in the wrong place, if it is empty: only rmdir, which
    fails harmlessly on anything that is not an empty directory or an unused cgroup."""
    try:
        directory.rmdir()
    except OSError:
        pass


# --- step 3: the memory limit ----------------------------------------------------------------

def check_memory(student, space: Workspace) -> str:
    with step_cgroup(space, "step3") as cgroup:
        try:
            call_student(function(student, "set_memory_limit"), dict(cgroup), MEMORY_LIMIT)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            why = ("memory.memsw.limit_in_bytes may never be below memory.limit_in_bytes: "
                   "write the memory limit first" if space.version == "v1" else
                   "write a number of bytes, as text")
            raise CheckFailed(f"the kernel refused a value (EINVAL, {describe_error(exc)}): "
                              f"{why}") from None
        memory = cgroup["memory"]
        if space.version == "v2":
            files = {"memory.max": str(MEMORY_LIMIT), "memory.swap.max": "0"}
        else:
            files = {"memory.limit_in_bytes": str(MEMORY_LIMIT),
                     "memory.memsw.limit_in_bytes": str(MEMORY_LIMIT)}
        files = {name: want for name, want in files.items() if (memory / name).exists()}
        for name, want in files.items():
            have = read_value(memory / name)
            if have != want:
                why = ("the limit" if name in ("memory.max", "memory.limit_in_bytes") else
                       "so that the process cannot swap its way past the limit")
                raise CheckFailed(f"{name} holds {have}, but should hold {want} ({why})")
        code = run_joined(cgroup, HOG)
        oom_file = "memory.events" if space.version == "v2" else "memory.oom_control"
        kills = read_keyed(memory / oom_file).get("oom_kill", 0)
        if code != OOM_KILLED or kills < 1:
            raise CheckFailed(f"a memory hog that fills 64 MiB exited with {code} (oom_kill "
                              f"{kills} in {oom_file}): the kernel did not stop it at "
                              f"{mib(MEMORY_LIMIT)}")
        written = ", ".join(f"{name} = {want}" for name, want in files.items())
        return (f"{written}; a hog filling 64 MiB was OOM-killed (exit {code}, oom_kill "
                f"{kills} in {oom_file})")


# --- step 4: the pids limit --------------------------------------------------------------------

def check_pids(student, space: Workspace) -> str:
    with step_cgroup(space, "step4") as cgroup:
        call_student(function(student, "set_pids_limit"), dict(cgroup), PIDS_LIMIT)
        pids = cgroup["pids"]
        have = read_value(pids / "pids.max")
        if have != str(PIDS_LIMIT):
            raise CheckFailed(f"pids.max in {pids} holds {have}, but should hold {PIDS_LIMIT}")
        run_joined(cgroup, FORK_LOOP)  # it ends when a fork fails, or after 30 sleeps
        running = len(processes(pids))
        refused = read_keyed(pids / "pids.events").get("max", 0)
        if refused < 1 or running > PIDS_LIMIT:
            raise CheckFailed(f"a fork loop started {running} sleeps and no fork was refused "
                              f"(pids.events: max {refused}): the limit is not enforced")
        return (f"pids.max = {PIDS_LIMIT}; a fork loop started {running} sleeps next to its "
                f"shell, then fork() failed (pids.events: max {refused})")


# --- step 5: a command in the cgroup -----------------------------------------------------------

def check_run(student, space: Workspace) -> str:
    with step_cgroup(space, "step5") as cgroup:
        set_limits(space, cgroup)
        run_command = function(student, "run_in_cgroup")
        before = read_proc("self/cgroup")
        run = capture_output(run_command, dict(cgroup), PROBE)
        if read_proc("self/cgroup") != before:
            raise CheckFailed("your function moved its caller (the host, here) into the cgroup: "
                              "fork first, and write to cgroup.procs in the child")
        if run.returned != EXIT_CODE:
            raise CheckFailed(f"run_in_cgroup() returned {run.returned!r}, but the command exits "
                              f"with {EXIT_CODE}: return wait_for(pid){run.stderr_hint()}")
        seen = cgroups_of(run.stdout, space.version)
        for controller, directory in cgroup.items():
            wanted = "/" + str(directory.relative_to(space.hierarchies[controller]))
            if not seen.get(controller, "").endswith(wanted):
                raise CheckFailed(f"the command says it is in the {controller} cgroup "
                                  f"{seen.get(controller)!r}, not {wanted!r}: in the child, write "
                                  "its PID to the cgroup.procs of each directory, before exec")
        hog = capture_output(run_command, dict(cgroup), HOG)
        if hog.returned != OOM_KILLED:
            raise CheckFailed(f"a memory hog run by run_in_cgroup() exited with "
                              f"{hog.returned!r}, not {OOM_KILLED}: it was not held to the "
                              f"cgroup's {mib(MEMORY_LIMIT)}")
        where = ", ".join(f"{c}:{seen[c]}" for c in CONTROLLERS)
        return (f"inside, /proc/self/cgroup says {where}; the command's exit code came back; a "
                f"memory hog was OOM-killed (exit {OOM_KILLED})")


def cgroups_of(proc_self_cgroup: str, version: str) -> dict[str, str]:
    """``4:memory:/a/b`` lines (cgroups(7)) -> {"memory": "/a/b"}; v2 has one line, ``0::/a/b``,
    for every controller."""
    found = {}
    for line in proc_self_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        names, _, path = rest.partition(":")
        for controller in CONTROLLERS:
            if (version == "v2" and hierarchy == "0") or controller in names.split(","):
                found[controller] = path
    return found


# --- step 6: removal -------------------------------------------------------------------------

def check_remove(student, space: Workspace) -> str:
    cgroup = make_cgroup(space, "step6")
    leftover = start_in_cgroup(cgroup, ["/bin/sleep", "30"])  # like a command's forgotten child
    try:
        deadline = time.monotonic() + 2
        while not processes(cgroup["pids"]) and time.monotonic() < deadline:
            time.sleep(0.005)
        try:
            call_student(function(student, "remove_cgroup"), dict(cgroup))
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            raise CheckFailed("rmdir failed with EBUSY: a process is still in the cgroup (the "
                              "checker left a 'sleep 30' there, as a command's child can be). "
                              "Kill every PID in cgroup.procs and wait until the file is empty, "
                              "then rmdir") from None
        left = [str(d) for d in directories(cgroup) if d.exists()]
        if left:
            raise CheckFailed(f"{left[0]} still exists: remove the cgroup's directory (rmdir)")
        gone = [str(p) for p in directories(space.parents) if not p.exists()]
        if gone:
            raise CheckFailed(f"the parent {gone[0]} is gone too: remove only the cgroup you "
                              "were given, its parent is not yours")
        if not ended(leftover):
            raise CheckFailed("the 'sleep 30' left in the cgroup still runs: kill the processes "
                              "of the cgroup, do not move them elsewhere")
        return (f"the 'sleep 30' left in the cgroup was killed, and "
                f"{', '.join(str(d) for d in directories(cgroup))} removed")
    finally:
        cleanup(cgroup, leftover)


def ended(pid: int, patience: float = 1.0) -> bool:
    """Whether the child ``pid`` ends (and is reaped) within ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while os.waitpid(pid, os.WNOHANG)[0] == 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


LAB = Lab(
    directory="03-cgroups",
    steps=(
        Step(1, "find the memory and pids controllers (v1 or v2)", check_find),
        Step(2, "a cgroup of your own under the parent", check_create),
        Step(3, "a memory limit: a hog is OOM-killed", check_memory),
        Step(4, "a pids limit: a fork loop stops", check_pids),
        Step(5, "a command that runs in the cgroup from its first instruction", check_run),
        Step(6, "the cgroup removed, with what was left in it", check_remove),
    ),
    workspace=workspace,
)
