"""The test session's lab host: before any test or notebook runs, pytest itself moves into a
private mount namespace and a private network namespace (so nothing a test mounts or links can
reach this machine), mounts a tmpfs as a throwaway state root (``MINIDOCKER_ROOT``) and builds
the busybox base image there. Notebooks run by nbval inherit all of it. When the session ends,
a check fails the run if anything leaked: a process, a mount or a container namespace.
After each notebook, a cluster lab or a state root its failing cells left is taken down.
"""

import os
import subprocess
import tempfile
import time

import pytest

from minidocker import kernel

LAB_HOST = {"root": None}


def pytest_configure(config):
    if os.geteuid() != 0:
        pytest.exit("the tests need root (namespaces, mounts): run 'sudo ./kit test'", 2)
    if os.environ.get("MINIDOCKER_LAB_HOST") != str(os.getpid()):
        enter_lab_host()


# A cluster lab is three etcd members and three node daemons: two at once are more than a
# two-CPU machine runs in time (the emulated classroom VM's services stopped converging).
# The files that make one are one scope of pytest-xdist's loadfile: one worker runs them,
# one after the other, while the other worker goes on with the rest.
CLUSTER_FILES = ("tests/test_cluster.py", "tests/test_overlay.py", "notebooks/14-cluster.ipynb",
                 "notebooks/14b-overlay-networks.ipynb")


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None  # xdist's own scheduler
    from xdist.scheduler import LoadFileScheduling

    # _split_scope (a node id → its scope: the file) is xdist's own hook, not a public one;
    # pyproject pins pytest-xdist below 4 so it stays where this relies on it.
    class OneClusterLabAtATime(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = super()._split_scope(nodeid)
            return "the cluster labs" if file in CLUSTER_FILES else file

    return OneClusterLabAtATime(config, log)


def enter_lab_host() -> None:
    # One test downloads from Debian's mirror: it finds the machine's network through this fd.
    machine_net = os.open("/proc/self/ns/net", os.O_RDONLY)
    os.environ["MINIDOCKER_MACHINE_NET"] = f"/proc/{os.getpid()}/fd/{machine_net}"
    kernel.unshare(kernel.CLONE_NEWNS | kernel.CLONE_NEWNET)
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
    from minidocker.viz.store import forget_machine_roots

    forget_machine_roots()  # a notebook open on the machine keeps its state root to itself
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    root = tempfile.mkdtemp(prefix="minidocker-test-")
    kernel.mount("tmpfs", root, "tmpfs", 0, "mode=711")
    os.environ["MINIDOCKER_ROOT"] = root
    os.environ["MINIDOCKER_LAB_WORKDIR"] = f"{root}/lab-work"  # never a student's mine.py
    os.environ["MINIDOCKER_LAB_HOST"] = str(os.getpid())
    # Cgroups are not namespaced: this session's containers get a parent of their own, so
    # the leak check sees only them, even with another test run on the same machine.
    os.environ["MINIDOCKER_CGROUP_PARENT"] = f"minidocker-test-{os.getpid()}"
    LAB_HOST["root"] = root
    from minidocker.image.busybox import create_busybox_image

    create_busybox_image()


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid``, from /proc/<pid>/task/*/children."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in os.listdir(f"/proc/{parent}/task"):
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    children = [int(c) for c in f.read().split()]
            except FileNotFoundError:
                continue
            found += children
            todo += children
    return found


def monitors_of(root: str) -> list[tuple[int, str]]:
    """Monitors of this session's detached containers: not our descendants (a detached
    monitor is re-parented to init), so they are found by the state root in their
    environment."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            if "minidocker.container.monitor" not in cmdline \
                    and "minidocker.container.watch" not in cmdline:  # a monitor, or its watcher
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                if f"MINIDOCKER_ROOT={root}".encode() in f.read().split(b"\0"):
                    found.append((int(entry), cmdline))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def lab_processes(roots: list[str]) -> list[tuple[int, str]]:
    """Processes of a cluster lab (its namespaces' holders, etcd, the nodes' daemons, agents)
    whose lab lies under one of ``roots``: the lab marks each with its directory
    (MINIDOCKER_LAB, cluster/lab.py), and they are in no process tree of ours (each has its
    own session, and outlives a killed notebook kernel)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                marks = [v for v in f.read().split(b"\0") if v.startswith(b"MINIDOCKER_LAB=")]
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        directory = marks[0].split(b"=", 1)[1].decode() if marks else ""
        if any(directory.startswith(root + "/") for root in roots if root):
            found.append((int(entry), cmdline))
    return found


def leaks() -> list[str]:
    """What the session left behind: processes, mounts under the state root, cgroups, and a
    notebook's state root with the cluster lab in it (its kernel killed before its last cell)."""
    from minidocker.viz.store import mounted_roots

    found = []
    for pid in descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except FileNotFoundError:
            continue
        if "ipykernel" not in cmdline:  # nbval's kernels end on their own schedule
            found.append(f"process {pid}: {cmdline}")
    root = LAB_HOST["root"] or os.environ.get("MINIDOCKER_ROOT", "")
    found += [f"process {pid} (a detached container's monitor): {cmdline}"
              for pid, cmdline in monitors_of(root)]
    notebook_roots = [str(p) for p in mounted_roots()]
    found += [f"mount {p} (a notebook's state root)" for p in notebook_roots]
    found += [f"process {pid} (a cluster lab's): {cmdline}"
              for pid, cmdline in lab_processes([root, *notebook_roots])]
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mount_point = line.split()[4]
            if root and mount_point.startswith(root + "/"):
                found.append(f"mount {mount_point}")
    from minidocker import cgroups

    found += [f"cgroup {path}" for path in cgroups.leftover_cgroups()]
    found += [f"cgroup {path}" for path in cgroups.parent_dirs()]
    return found


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After a notebook's last cell (nbval has killed its kernel by then): what a failing
    cell kept its last cells from taking down (a cluster lab, a state root) goes now."""
    yield
    if item.path.suffix == ".ipynb" and (nextitem is None or nextitem.path != item.path):
        from minidocker.viz.store import remove_abandoned_roots

        remove_abandoned_roots()


def pytest_sessionfinish(session, exitstatus):
    left = leaks()
    # a monitor host exits a moment after its last container (an emulated VM: ~10x later)
    deadline = time.monotonic() + 15 * float(os.environ.get("MINIDOCKER_TEST_TIMEOUT_SCALE") or 1)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = leaks()
    if left:
        print("\nminidocker tests leaked:\n  " + "\n  ".join(left))
        session.exitstatus = 1
    if LAB_HOST["root"]:  # the tmpfs goes, and the empty directory under the host's /tmp
        kernel.umount2(LAB_HOST["root"], kernel.MNT_DETACH)
        os.rmdir(LAB_HOST["root"])
