"""Lab 03 — cgroups: a reference solution (spoilers: try the lab first).

A cgroup is a directory; a limit is a number written to a file in it; a process joins by
writing its PID to ``cgroup.procs``. Everything below is ``pathlib`` and ``os``.

Check it: sudo minidocker lab check 03 labs/solutions/03-cgroups.py
"""

import os
import signal
import time
from pathlib import Path

from minidocker.labs.given import exec_command, wait_for

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids")

# --- given: exec_command(argv) and wait_for(pid), from minidocker.labs.given ------------


# --- the six steps -------------------------------------------------------------------------

def find_controllers(root: Path = CGROUP_ROOT) -> dict[str, Path]:
    """Step 1: where the memory and pids controllers are mounted."""
    if (root / "cgroup.controllers").exists():
        # v2: one tree for every controller; its root lists them in cgroup.controllers.
        return {controller: root for controller in CONTROLLERS}
    # v1 (and hybrid, whose v2 tree sits empty in root/unified): one tree per controller.
    return {controller: root / controller for controller in CONTROLLERS}


def create_cgroup(parents: dict[str, Path], name: str) -> dict[str, Path]:
    """Step 2: make the cgroup ``name`` under each parent."""
    cgroup = {}
    for controller, parent in parents.items():
        subtree_control = parent / "cgroup.subtree_control"
        if subtree_control.exists():  # v2: a child gets only what its parent passes down
            subtree_control.write_text(f"+{controller}")
        cgroup[controller] = parent / name
        cgroup[controller].mkdir(exist_ok=True)  # the kernel fills it with the cgroup's files
    return cgroup


def set_memory_limit(cgroup: dict[str, Path], limit: int) -> None:
    """Step 3: at most ``limit`` bytes of memory, and no swap on top."""
    memory = cgroup["memory"]
    if (memory / "memory.max").exists():  # v2
        (memory / "memory.max").write_text(str(limit))
        if (memory / "memory.swap.max").exists():
            (memory / "memory.swap.max").write_text("0")
        return
    # v1: memsw counts memory + swap, and may never be below the memory limit: memory first.
    (memory / "memory.limit_in_bytes").write_text(str(limit))
    if (memory / "memory.memsw.limit_in_bytes").exists():  # only with swap accounting
        (memory / "memory.memsw.limit_in_bytes").write_text(str(limit))


def set_pids_limit(cgroup: dict[str, Path], limit: int) -> None:
    """Step 4: at most ``limit`` processes (and threads) in the cgroup."""
    (cgroup["pids"] / "pids.max").write_text(str(limit))


def run_in_cgroup(cgroup: dict[str, Path], argv: list[str]) -> int:
    """Step 5: run ``argv`` inside the cgroup; return its exit code."""
    pid = os.fork()
    if pid == 0:
        # Join before exec: from its first instruction on, everything the command allocates
        # or forks is counted. v2 has one directory for both controllers; writing twice is
        # harmless.
        for directory in cgroup.values():
            (directory / "cgroup.procs").write_text(str(os.getpid()))
        exec_command(argv)
    return wait_for(pid)


def remove_cgroup(cgroup: dict[str, Path]) -> None:
    """Step 6: kill what is left in the cgroup, then remove its directories."""
    for directory in set(cgroup.values()):  # a set: in v2 both controllers share one
        procs = directory / "cgroup.procs"
        # The command may have left children behind; a cgroup with a process in it cannot
        # be removed (EBUSY). A killed process leaves cgroup.procs when it has exited.
        while pids := procs.read_text().split():
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass  # it exited on its own meanwhile
            time.sleep(0.01)
        directory.rmdir()  # rmdir, not rm -r: the files in it are the kernel's


def run_limited(parents: dict[str, Path], argv: list[str], memory: int, pids: int,
                name: str = "lab03") -> int:
    """Run ``argv`` in a new cgroup ``name`` with the limits; remove the cgroup afterwards."""
    cgroup = create_cgroup(parents, name)  # Step 2
    try:
        set_memory_limit(cgroup, memory)  # Step 3
        set_pids_limit(cgroup, pids)  # Step 4
        return run_in_cgroup(cgroup, argv)  # Step 5
    finally:
        remove_cgroup(cgroup)  # Step 6
