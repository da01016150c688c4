"""Stage 0 — the syscalls a container is made of, called straight from Python.

Python's ``os`` module has ``fork``, ``execve``, ``chdir`` and ``mknod`` but not the calls that
make containers: unshare(2), setns(2), mount(2), umount2(2), pivot_root(2), sethostname(2),
setdomainname(2) and prctl(2). ``ctypes`` reaches them in the C library. Each wrapper keeps the
man page's signature, and when the kernel says no it raises ``OSError`` naming the call, the errno and the arguments:
``OSError: [Errno 16] pivot_root('/x', '/x/old'): Device or resource busy``.

Man pages: unshare(2) setns(2) mount(2) umount2(2) pivot_root(2) sethostname(2) setdomainname(2)
prctl(2) errno(3) open_tree(2) move_mount(2) mount_setattr(2) fsopen(2) fsconfig(2).
Used by: every later stage; notebook 01-namespaces shows them one by one.
"""

import ctypes
import errno
import fcntl
import os
import socket
import struct

from minidocker import explain

from . import constants
from .constants import (
    _LINUX_CAPABILITY_VERSION_3,
    AT_FDCWD,
    FSCONFIG_SET_FLAG,
    FSCONFIG_SET_STRING,
    FSOPEN_CLOEXEC,
    IFF_UP,
    MOVE_MOUNT_F_EMPTY_PATH,
    SIOCGIFFLAGS,
    SIOCSIFFLAGS,
)

_libc = ctypes.CDLL(None, use_errno=True)  # the C library this Python is already linked with

# pivot_root has no glibc wrapper: we use syscall(2) with its number for this architecture.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "armv7l": 218, "riscv64": 41}[os.uname().machine]


def _check(result: int, call: str, *args) -> int:
    """Turn libc's ``-1`` + errno into an OSError that names the call; tell the trace of
    ``run --explain`` (minidocker/explain.py) about the call either way."""
    err = ctypes.get_errno() if result == -1 else 0
    if explain.listening():
        explain.step(call, _decoded(call, args),
                     f"-1 {errno.errorcode.get(err, err)}" if err else str(result))
    if err:
        shown = ", ".join(repr(a) for a in args)
        raise OSError(err, f"{call}({shown}): {os.strerror(err)}")
    return result


# the names the man pages use for the flags each call takes (0x24020000 → CLONE_NEWPID|...),
# one prefix for each flags argument in turn
FLAG_NAMES = {"unshare": ["CLONE_NEW"], "setns": ["CLONE_NEW"], "mount": ["MS_"],
              "mount_setattr": ["AT_", "MOUNT_ATTR_"]}


def _decoded(call: str, args: tuple) -> str:
    """The arguments as strace would show them: strings quoted, flags by name."""
    shown, prefixes = [], list(FLAG_NAMES.get(call, []))
    for index, arg in enumerate(args):
        if isinstance(arg, str) and arg.startswith("0x") and prefixes:
            shown.append(_flag_names(int(arg, 16), prefixes.pop(0)))
        elif call == "prctl" and index == 0:
            shown.append(next((name for name, value in vars(constants).items()
                               if name.startswith("PR_") and "_AMBIENT_" not in name
                               and value == arg), str(arg)))
        else:
            shown.append(repr(arg) if isinstance(arg, str) else str(arg))
    return ", ".join(shown)


def _flag_names(value: int, prefix: str) -> str:
    names = [name for name, bit in vars(constants).items()
             if name.startswith(prefix) and isinstance(bit, int) and bit and bit & value == bit
             and bit & (bit - 1) == 0]
    return "|".join(names) or "0"


def _b(value: str | None) -> bytes | None:
    return os.fsencode(value) if value is not None else None


def unshare(flags: int) -> None:
    """unshare(2): move the calling process into new namespaces (``CLONE_NEW*`` flags).

    ``CLONE_NEWPID`` is special: the caller stays where it is and its *next child* becomes
    PID 1 of the new PID namespace.
    """
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare", hex(flags))


def setns(fd: int, nstype: int = 0) -> None:
    """setns(2): join the namespace that ``fd`` (an open ``/proc/<pid>/ns/<type>``) refers to."""
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns", fd, hex(nstype))


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    """mount(2): attach a filesystem (or change a mount's flags with ``MS_REMOUNT``,
    its propagation with ``MS_PRIVATE``, or bind a directory with ``MS_BIND``)."""
    result = _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data))
    _check(result, "mount", source, target, fstype, hex(flags), data)


def umount2(target: str, flags: int = 0) -> None:
    """umount2(2): detach the mount at ``target``; ``MNT_DETACH`` does it lazily, even if busy."""
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), "umount2", target, flags)


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2): make ``new_root`` the root of this mount namespace and move the old root
    to ``put_old`` (a directory under ``new_root``), from where it can be unmounted."""
    result = _libc.syscall(ctypes.c_long(_SYS_PIVOT_ROOT), _b(new_root), _b(put_old))
    _check(result, "pivot_root", new_root, put_old)


def sethostname(name: str) -> None:
    """sethostname(2): set the hostname of this process's UTS namespace."""
    raw = name.encode()
    _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname", name)


def setdomainname(name: str) -> None:
    """setdomainname(2): set the NIS domain name of this process's UTS namespace."""
    raw = name.encode()
    _check(_libc.setdomainname(raw, ctypes.c_size_t(len(raw))), "setdomainname", name)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2): operations on the calling process (``PR_SET_PDEATHSIG``,
    ``PR_SET_CHILD_SUBREAPER``, ``PR_SET_NO_NEW_PRIVS``, ``PR_CAPBSET_DROP``, ...)."""
    args = [ctypes.c_ulong(a) for a in (arg2, arg3, arg4, arg5)]
    return _check(_libc.prctl(ctypes.c_int(option), *args), "prctl", option, arg2)


# --- capabilities (stage 9) -------------------------------------------------------------------

class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):  # one per 32-bit word; version 3 uses two of them
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _cap_header(pid: int) -> _CapHeader:
    return _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)


def capget(pid: int = 0) -> tuple[int, int, int]:
    """capget(2): the (effective, permitted, inheritable) sets of ``pid`` (0: this thread),
    each as a 64-bit mask with bit N for capability N."""
    data = (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(_cap_header(pid)), data), "capget", pid)
    return tuple(getattr(data[0], name) | getattr(data[1], name) << 32
                 for name in ("effective", "permitted", "inheritable"))


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2): set this thread's three capability sets (64-bit masks). The kernel allows
    only shrinking ``permitted``, and ``effective`` must stay inside the new ``permitted``."""
    data = (_CapData * 2)()
    for word in (0, 1):
        shift = 32 * word
        data[word].effective = (effective >> shift) & 0xFFFFFFFF
        data[word].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[word].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    result = _libc.capset(ctypes.byref(_cap_header(0)), data)
    _check(result, "capset", hex(effective), hex(permitted), hex(inheritable))


def interface_up(name: str) -> None:
    """``ip link set NAME up`` the old way, without netlink: read the interface's flags
    (SIOCGIFFLAGS), add IFF_UP, write them back (SIOCSIFFLAGS). Man page: netdevice(7)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", name.encode(), 0)  # struct ifreq: name, flags
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", name.encode(), flags | IFF_UP))


# The new mount API (Linux 5.2, mount_setattr 5.12): one number on every architecture.
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _SYS_MOUNT_SETATTR = 428, 429, 442
_SYS_FSOPEN, _SYS_FSCONFIG = 430, 431


def open_tree(path: str, flags: int) -> int:
    """A file descriptor for the mount at ``path``; with OPEN_TREE_CLONE a detached copy of it
    that ``move_mount`` can attach elsewhere — even in another mount namespace, which a plain
    bind mount refuses. Man page: open_tree(2)."""
    return _check(_libc.syscall(_SYS_OPEN_TREE, AT_FDCWD, _b(path), flags), "open_tree", path)


def move_mount(fd: int, target: str) -> None:
    """Attach the mount ``fd`` (from ``open_tree``) at ``target``. Man page: move_mount(2)."""
    _check(_libc.syscall(_SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, _b(target),
                         MOVE_MOUNT_F_EMPTY_PATH), "move_mount", target)


def fsopen(fstype: str, flags: int = FSOPEN_CLOEXEC) -> int:
    """A new *filesystem context* for ``fstype``: a file descriptor to which ``fsconfig``
    hands the mount options one by one, each checked as it comes. Man page: fsopen(2)."""
    return _check(_libc.syscall(_SYS_FSOPEN, _b(fstype), flags), "fsopen", fstype)


def fsconfig(fd: int, key: str, value: str | None = None) -> None:
    """Give the context ``fd`` one option: ``key=value``, or the flag ``key``. The kernel
    refuses a bad one there and then (EINVAL), and explains why in a message that a
    read(2) of ``fd`` returns ("e tmpfs: Bad value for 'size'"). Man page: fsconfig(2)."""
    command = FSCONFIG_SET_FLAG if value is None else FSCONFIG_SET_STRING
    _check(_libc.syscall(_SYS_FSCONFIG, fd, command, _b(key), _b(value), 0), "fsconfig", fd,
           key, value)


class MountAttr(ctypes.Structure):
    """``struct mount_attr`` of mount_setattr(2): which MOUNT_ATTR_* flags to set and to clear,
    a new propagation (``MS_PRIVATE``, ...) and, with MOUNT_ATTR_IDMAP, a user namespace fd."""

    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(dirfd: int, pathname: str, flags: int, attr_set: int = 0, attr_clr: int = 0,
                  propagation: int = 0, userns_fd: int = 0) -> None:
    """Change the mount at ``pathname`` (relative to ``dirfd``; ``""`` with AT_EMPTY_PATH: the
    mount ``dirfd`` holds) — and with AT_RECURSIVE every mount below it, in one atomic step,
    which a remount with mount(2) cannot do. The fields of ``struct mount_attr`` are keyword
    arguments. Linux >= 5.12, else ENOSYS. Man page: mount_setattr(2)."""
    attr = MountAttr(attr_set, attr_clr, propagation, userns_fd)
    result = _libc.syscall(_SYS_MOUNT_SETATTR, dirfd, _b(pathname), flags, ctypes.byref(attr),
                           ctypes.sizeof(attr))
    _check(result, "mount_setattr", dirfd, pathname, hex(flags), hex(attr_set))
