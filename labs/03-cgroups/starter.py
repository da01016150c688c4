"""Lab 03 — cgroups: limit the memory and the PIDs of a process by writing cgroup files.

A cgroup is a directory in a cgroup filesystem (under /sys/fs/cgroup). You make one with mkdir,
set a limit by writing a number to one of its files, put a process in by writing its PID to
``cgroup.procs``, and remove it with rmdir. That is all there is to it, so write it with
``pathlib`` (``Path.write_text``, ``Path.mkdir``, ``Path.rmdir``) and ``os``: not with
``minidocker.cgroups``, nor a cgroup library, which would do the lesson for you.

Machines differ: cgroup v2 has one tree for every controller, v1 one tree per controller. Your
code gets and returns a *cgroup* as a dict ``{"memory": Path, "pids": Path}``: the cgroup's
directory in the memory tree and in the pids tree. In v2 both are the same directory.

Check your work (the checker gives your code a parent cgroup of its own, and removes it and
everything under it when the check ends):

    sudo minidocker lab check 03                # this file
    sudo minidocker lab check 03 PATH           # a copy of it

Steps and hints: labs/03-cgroups/README.md. Man pages: cgroups(7); kernel docs
admin-guide/cgroup-v2.rst and cgroup-v1/memory.rst.
"""

import os  # os.fork, os.getpid, os.kill
import signal  # signal.SIGKILL
import time  # time.sleep
from pathlib import Path  # Path.exists, Path.mkdir, Path.write_text, Path.read_text, Path.rmdir
from minidocker.labs.given import exec_command, wait_for  # noqa: F401

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids")

# --- given: exec_command(argv) and wait_for(pid), from minidocker.labs.given ------------


# --- yours: one function per step --------------------------------------------------------------

def find_controllers(root: Path = CGROUP_ROOT) -> dict[str, Path]:
    """Step 1: where the memory and pids controllers are mounted, as
    ``{"memory": Path, "pids": Path}``. v2: both are ``root``. v1: each is its own tree."""
    # TODO Step 1: tell v2 from v1 by what root holds, and return the directory of each
    #              controller's tree.
    raise NotImplementedError("Step 1: find_controllers() is not written yet")


def create_cgroup(parents: dict[str, Path], name: str) -> dict[str, Path]:
    """Step 2: make the cgroup ``name`` under each parent (``{"memory": Path, "pids": Path}``,
    one directory in v2) and return its directories, as a dict of the same shape."""
    # TODO Step 2: in v2 (the parent has a cgroup.subtree_control), first let the parent pass
    #              the controller down to its children; then make the directory.
    raise NotImplementedError("Step 2: create_cgroup() is not written yet")


def set_memory_limit(cgroup: dict[str, Path], limit: int) -> None:
    """Step 3: let the processes of ``cgroup`` use at most ``limit`` bytes of memory, with no
    swap on top of it."""
    # TODO Step 3: v2: memory.max (and memory.swap.max, if it is there).
    #              v1: memory.limit_in_bytes (and memory.memsw.limit_in_bytes, if it is there).
    raise NotImplementedError("Step 3: set_memory_limit() is not written yet")


def set_pids_limit(cgroup: dict[str, Path], limit: int) -> None:
    """Step 4: let ``cgroup`` hold at most ``limit`` processes."""
    # TODO Step 4: write the limit to pids.max.
    raise NotImplementedError("Step 4: set_pids_limit() is not written yet")


def run_in_cgroup(cgroup: dict[str, Path], argv: list[str]) -> int:
    """Step 5: run the command ``argv`` inside ``cgroup`` from its first instruction on, wait
    for it and return its exit code (137 if the OOM killer ended it)."""
    # TODO Step 5: fork; in the child, join the cgroup (write the child's PID to cgroup.procs
    #              of each directory), then exec_command(argv); in the parent, wait for it.
    raise NotImplementedError("Step 5: run_in_cgroup() is not written yet")


def remove_cgroup(cgroup: dict[str, Path]) -> None:
    """Step 6: remove ``cgroup``, killing whatever still runs in it first."""
    # TODO Step 6: kill every PID in cgroup.procs until the file is empty, then rmdir each
    #              directory (once: in v2 both controllers share it).
    raise NotImplementedError("Step 6: remove_cgroup() is not written yet")


# --- given: the story, one step a line ---------------------------------------------------------

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
