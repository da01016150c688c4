"""Lab 07 — volumes: bind-mount a host directory into a container that is already running.

``docker run -v /srv/www:/www`` mounts the host's directory while it builds the container, in
the container's new mount namespace, before pivot_root: the host's path is still in reach then.
Once the container runs, its mount namespace holds only its own tree; Docker has no command to
add a volume to it. You write that command: enter the container's mount namespace from a
forked child, make the mount point there, and attach the host directory, read-only on request.

The catch: after setns(2) the host's paths are gone. So the host directory is taken *before*
entering, as a detached mount held by a file descriptor (open_tree(2)), and attached after
(move_mount(2)). The wrappers of these two new mount API calls, and mount_setattr(2), are given
below.

Check your work:

    sudo minidocker lab check 07                # this file
    sudo minidocker lab check 07 PATH           # a copy of it

Steps and hints: labs/07-volumes/README.md. Man pages: setns(2) mount_namespaces(7) open_tree(2)
move_mount(2) mount_setattr(2) mount(2).
"""

import ctypes
import os  # os.fork, os.open, os.makedirs, os._exit
from collections.abc import Callable

from minidocker import kernel  # kernel.setns(fd, nstype), kernel.CLONE_NEWNS, kernel.mount
from minidocker.labs.given import wait_for  # wait_for(pid) -> the child's exit code

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


# --- yours: one function per step --------------------------------------------------------------

def run_in_mount_namespace(pid: int, function: Callable[[], None]) -> None:
    """Step 1: call ``function()`` in a forked child that has joined the mount namespace of
    process ``pid``, and wait for it. The caller itself stays where it is. If ``function``
    raises, the child writes the error on stderr and exits with 1, and this function then
    raises an exception (any kind) that says so."""
    # TODO Step 1: fork; in the child, open /proc/<pid>/ns/mnt, setns(2) into it, call
    #              function(), and leave with os._exit (0, or 1 after an error). In the parent,
    #              wait for the child and raise if its exit code is not 0.
    raise NotImplementedError("Step 1: run_in_mount_namespace() is not written yet")


def make_mount_point(target: str, is_dir: bool) -> None:
    """Step 2: called *inside* the container's mount namespace: make sure ``target`` (a path
    as the container sees it) exists, a directory if ``is_dir`` is true, else an empty file
    (a file can be bind-mounted only on a file). Make the missing parent directories too."""
    # TODO Step 2: the directories above target, then target itself (if it is not there yet).
    raise NotImplementedError("Step 2: make_mount_point() is not written yet")


def hot_mount(pid: int, host_path: str, target: str, readonly: bool = False) -> None:
    """Step 3: make ``host_path`` (a directory or a file of the host) appear at ``target`` in
    the running container whose PID 1 is ``pid``; writes on either side show on the other. With
    ``readonly``, call ``make_readonly`` (step 4) on the new mount before attaching it. The
    host's own mount table must not change."""
    # TODO Step 3: open_tree() the host path *here*, before entering (the path cannot be
    #              reached from inside), then run_in_mount_namespace() a function that makes
    #              the mount point and move_mount()s the tree there.
    raise NotImplementedError("Step 3: hot_mount() is not written yet")


def make_readonly(tree: int) -> None:
    """Step 4: make the detached mount held by the file descriptor ``tree`` read-only, before
    it is attached. Only this mount: the host's directory stays writable for the host."""
    # TODO Step 4: set the mount's read-only attribute with mount_setattr().
    raise NotImplementedError("Step 4: make_readonly() is not written yet")
