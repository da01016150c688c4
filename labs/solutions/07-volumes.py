"""Lab 07 — volumes: a reference solution (spoilers: try the lab first).

Check it: sudo minidocker lab check 07 labs/solutions/07-volumes.py
"""

import ctypes
import os
from collections.abc import Callable

from minidocker import kernel
from minidocker.labs.given import wait_for

# --- given: the new mount API (Linux >= 5.2; mount_setattr >= 5.12) ---------------------------
# glibc has no wrappers for these yet on Debian 12, so they are called by number. Their
# numbers are the same on every architecture (they came after the numbers were unified).

SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000  # the path is "": act on the file descriptor itself
AT_RECURSIVE = 0x8000  # the whole subtree, with the mounts below the path
OPEN_TREE_CLONE = 0x1  # a copy of the mount, detached: belongs to no mount namespace yet
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4  # the mount to move is the file descriptor from_fd itself
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC = 0x2, 0x4, 0x8

_libc = ctypes.CDLL(None, use_errno=True)


class MountAttr(ctypes.Structure):
    """struct mount_attr of mount_setattr(2)."""

    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(result: int, call: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{call}: {os.strerror(err)}")
    return result


def open_tree(path: str, flags: int = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC) -> int:
    """open_tree(2): a file descriptor for the mount at ``path``; with OPEN_TREE_CLONE, for a
    detached *copy* of it, as a bind mount would make (add AT_RECURSIVE for its submounts)."""
    return _check(_libc.syscall(SYS_OPEN_TREE, AT_FDCWD, path.encode(), flags),
                  f"open_tree({path!r})")


def move_mount(from_fd: int, to_path: str) -> None:
    """move_mount(2): attach the mount held by ``from_fd`` on ``to_path``, a path of the
    *calling* process's mount namespace."""
    _check(_libc.syscall(SYS_MOVE_MOUNT, from_fd, b"", AT_FDCWD, to_path.encode(),
                         MOVE_MOUNT_F_EMPTY_PATH), f"move_mount(fd {from_fd}, {to_path!r})")


def mount_setattr(fd: int, attr_set: int = 0, attr_clr: int = 0, propagation: int = 0,
                  flags: int = 0) -> None:
    """mount_setattr(2) on the mount held by ``fd``: set (or clear) MOUNT_ATTR_* flags, and
    change its propagation (kernel.MS_PRIVATE, ...); ``flags`` may add AT_RECURSIVE."""
    attr = MountAttr(attr_set, attr_clr, propagation, 0)
    _check(_libc.syscall(SYS_MOUNT_SETATTR, fd, b"", AT_EMPTY_PATH | flags, ctypes.byref(attr),
                         ctypes.sizeof(attr)), f"mount_setattr(fd {fd})")


# --- the steps ----------------------------------------------------------------------------------

def run_in_mount_namespace(pid: int, function: Callable[[], None]) -> None:
    """Step 1: ``function()`` in a forked child that joined ``pid``'s mount namespace."""
    child = os.fork()
    if child == 0:
        code = 0
        try:
            # Opened before the setns: afterwards /proc is the container's, where this
            # process (and often pid itself) does not exist.
            namespace = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
            # setns(2) moves only this child, which is why it is a child: the caller keeps
            # the host's mount table. Joining also moves our / and cwd to the container's
            # root, so from here on every path is a path of the container.
            kernel.setns(namespace, kernel.CLONE_NEWNS)
            function()
        except BaseException as exc:
            os.write(2, f"in the mount namespace of {pid}: {exc}\n".encode())
            code = 1
        os._exit(code)  # never return into the caller's code: this is a copy of it
    code = wait_for(child)
    if code != 0:
        raise ChildProcessError(f"the child in the mount namespace of {pid} exited with "
                                f"{code} (its error is on stderr)")


def make_mount_point(target: str, is_dir: bool) -> None:
    """Step 2: the mount point, a directory or an empty file, with its parents."""
    # We are in the container's namespace, and its root is ours: an absolute symlink in the
    # image resolves inside the container, so plain path calls cannot reach the host.
    if is_dir:
        os.makedirs(target, exist_ok=True)
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if not os.path.exists(target):
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


def hot_mount(pid: int, host_path: str, target: str, readonly: bool = False) -> None:
    """Step 3: ``host_path`` of the host at ``target`` in the running container ``pid``."""
    # A detached copy of the bind, taken while the host path is in reach. mount(2) with
    # MS_BIND would not do, even from /proc/self/fd/N: it binds only mounts of the caller's
    # own namespace (EINVAL); a detached tree belongs to none, so it can go anywhere.
    tree = open_tree(host_path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
    try:
        # Like Docker's binds, private: no mount made later below it on one side shows on
        # the other (the clone of a shared mount would be a peer of the host's).
        mount_setattr(tree, propagation=kernel.MS_PRIVATE)
        if readonly:
            make_readonly(tree)
        is_dir = os.path.isdir(host_path)

        def attach() -> None:  # runs in the container's mount namespace
            make_mount_point(target, is_dir)
            move_mount(tree, target)

        run_in_mount_namespace(pid, attach)  # the child inherits the descriptor
    finally:
        os.close(tree)


def make_readonly(tree: int) -> None:
    """Step 4: the detached mount read-only; the filesystem itself stays writable."""
    # A per-mount flag (the "ro" of mountinfo's 6th field), not the superblock's: the
    # host's view of the same directory stays writable.
    mount_setattr(tree, attr_set=MOUNT_ATTR_RDONLY)
