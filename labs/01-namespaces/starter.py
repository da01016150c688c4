"""Lab 01 — namespaces: run a command that sees its own hostname, its own PIDs, its own /proc.

You write three functions. Each runs a command (a list like ``["hostname"]``) in new namespaces,
waits for it, and returns its exit code. Write them with ``minidocker.kernel`` (the syscalls
unshare(2), sethostname(2), mount(2)) and ``os`` (fork, exec, wait) — not with ``subprocess`` or
the ``unshare`` command, which would do the interesting part out of sight.

The pattern of all three: fork; in the child, change the namespaces and exec the command; in
the parent, wait for the child. The caller itself must stay in its own namespaces.

Check your work (the checker runs your code in a sandbox, never on this machine directly):

    sudo minidocker lab check 01                # this file
    sudo minidocker lab check 01 PATH           # a copy of it

Steps and hints: labs/01-namespaces/README.md. Man pages: namespaces(7) unshare(2) fork(2).
"""

import os

from minidocker import kernel  # kernel.unshare, kernel.sethostname, kernel.mount, kernel.CLONE_*
from minidocker.labs.given import exec_command, wait_for  # noqa: F401

# --- given: exec_command(argv) and wait_for(pid), from minidocker.labs.given ------------


# --- yours: one function per step --------------------------------------------------------------

def run_with_hostname(hostname: str, argv: list[str]) -> int:
    """Step 1: run ``argv`` in a new UTS namespace whose hostname is ``hostname``; return its
    exit code. The host's hostname must not change."""
    # TODO Step 1: fork. In the child: a new UTS namespace, then the hostname, then exec argv.
    #              In the parent: wait for the child and return its exit code.
    raise NotImplementedError("Step 1: run_with_hostname() is not written yet")


def run_as_pid1(argv: list[str]) -> int:
    """Step 2: run ``argv`` as PID 1 of a new PID namespace (inside, ``echo $$`` prints 1);
    return its exit code. The caller stays in its own PID namespace."""
    # TODO Step 2: make a new PID namespace in a child, and run the command as the first
    #              process born in it. Pass its exit code back up.
    raise NotImplementedError("Step 2: run_as_pid1() is not written yet")


def run_with_own_proc(argv: list[str]) -> int:
    """Step 3: like step 2, plus a new mount namespace with a fresh /proc, so that ``ps``
    inside shows only the command's own processes; return its exit code. The host's mount
    table must not change."""
    # TODO Step 3: step 2, plus a new mount namespace whose mounts are private,
    #              and a new proc filesystem mounted on /proc by the command's process.
    raise NotImplementedError("Step 3: run_with_own_proc() is not written yet")
