"""Lab 01 — namespaces: a reference solution (spoilers: try the lab first).

Each function forks; the child changes its namespaces and execs the command; the parent waits.
The caller never unshares anything itself, so it stays where it was.

Check it: sudo minidocker lab check 01 labs/solutions/01-namespaces.py
"""

import os

from minidocker import kernel
from minidocker.labs.given import exec_command, wait_for

# --- given: exec_command(argv) and wait_for(pid), from minidocker.labs.given ------------


# --- the three steps -------------------------------------------------------------------------

def run_with_hostname(hostname: str, argv: list[str]) -> int:
    """Step 1: run ``argv`` in a new UTS namespace whose hostname is ``hostname``."""
    pid = os.fork()
    if pid == 0:
        kernel.unshare(kernel.CLONE_NEWUTS)  # a copy of the hostname, for this child alone
        kernel.sethostname(hostname)  # changes the copy: the host keeps its name
        exec_command(argv)
    return wait_for(pid)


def run_as_pid1(argv: list[str]) -> int:
    """Step 2: run ``argv`` as PID 1 of a new PID namespace."""
    pid = os.fork()
    if pid == 0:
        kernel.unshare(kernel.CLONE_NEWPID)  # we stay put; our *next child* is PID 1
        child = os.fork()
        if child == 0:
            exec_command(argv)
        os._exit(wait_for(child))  # hand PID 1's exit code up to the caller
    return wait_for(pid)


def run_with_own_proc(argv: list[str]) -> int:
    """Step 3: PID 1 of a new PID namespace, in a new mount namespace with a fresh /proc."""
    pid = os.fork()
    if pid == 0:
        kernel.unshare(kernel.CLONE_NEWPID | kernel.CLONE_NEWNS)
        child = os.fork()
        if child == 0:
            # The new mount namespace starts as a copy of the host's; where the host's mounts
            # are shared, a mount here would appear there too. Private first.
            kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
            # A procfs shows the PID namespace of the process that mounts it: PID 1 does it.
            kernel.mount("proc", "/proc", "proc",
                         kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)
            exec_command(argv)
        os._exit(wait_for(child))
    return wait_for(pid)
