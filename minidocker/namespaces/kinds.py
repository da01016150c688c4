"""Stage 1 — the kinds of namespace, and how to look at a process's.

A namespace wraps one kind of global resource so that the processes inside see their own copy:
``uts`` the hostname, ``pid`` the process ids, ``mnt`` the mount table, ``ipc`` System V IPC,
``net`` network devices, ``user`` uids and capabilities, ``cgroup`` the cgroup root. Each kind
has a ``CLONE_NEW*`` flag, which clone(2) and unshare(2) take to make a new one. Every
process's namespaces are listed as links in ``/proc/<pid>/ns``; two processes share a namespace
when the links name the same inode.

Man pages: namespaces(7), proc(5) (``/proc/<pid>/ns``), clone(2). Used by: notebook
01-namespaces, ``minidocker doctor``, the namespace graph (viz/nsgraph.py).
"""

import os
from collections.abc import Iterable

from minidocker import kernel
from minidocker.errors import MinidockerError

# Docker's names for the namespace types, the clone flag of each, and what it isolates.
NAMESPACES: dict[str, tuple[int, str]] = {
    "uts": (kernel.CLONE_NEWUTS, "hostname and NIS domain name"),
    "pid": (kernel.CLONE_NEWPID, "process IDs: the container's first process is PID 1"),
    "mnt": (kernel.CLONE_NEWNS, "the mount table, and so the filesystem tree"),
    "ipc": (kernel.CLONE_NEWIPC, "System V IPC objects and POSIX message queues"),
    "net": (kernel.CLONE_NEWNET, "network devices, addresses, routes, firewall rules"),
    "user": (kernel.CLONE_NEWUSER, "user and group IDs, and capabilities"),
    "cgroup": (kernel.CLONE_NEWCGROUP, "the root of the cgroup tree the process sees"),
}
CONTAINER_NAMESPACES = ("uts", "pid", "mnt", "ipc", "net", "cgroup")  # Docker's default set


def namespaces_of(pid: int | str = "self") -> dict[str, int]:
    """The namespaces of a process as ``{type: inode}``, read from ``/proc/<pid>/ns``."""
    found = {}
    for kind in NAMESPACES:
        link = os.readlink(f"/proc/{pid}/ns/{kind}")  # e.g. "uts:[4026531838]"
        found[kind] = int(link.split("[")[1].rstrip("]"))
    return found


def compare(pid_a: int | str, pid_b: int | str = "self") -> dict[str, bool]:
    """For each namespace type: do the two processes share it?"""
    a, b = namespaces_of(pid_a), namespaces_of(pid_b)
    return {kind: a[kind] == b[kind] for kind in NAMESPACES}


def flags_for(kinds: Iterable[str]) -> int:
    """The CLONE_NEW* bits for a set of namespace names; unknown names are a clear error."""
    flags = 0
    for kind in kinds:
        if kind not in NAMESPACES:
            raise MinidockerError(f"unknown namespace type {kind!r}; choose from "
                                  f"{', '.join(NAMESPACES)}")
        flags |= NAMESPACES[kind][0]
    return flags
