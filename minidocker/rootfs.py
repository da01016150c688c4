"""Stage 2 — the root filesystem: a process that has its own ``/``.

Inside a new mount namespace we build the container's filesystem tree from an image directory:
make every mount private (so nothing we do propagates back to the host), bind the new root onto
itself (pivot_root needs a mount point), mount ``/proc``, a read-only ``/sys`` and a minimal
``/dev``, then ``pivot_root`` into it and detach the old root, so that no path leads back to the
host. Docker's masked paths hide kernel files that leak host information, its read-only paths
keep ``/proc/sys`` and friends from being written, and ``--read-only`` remounts ``/`` read-only.

Why not chroot(2)? chroot only changes how *this process* resolves ``/``; the host's tree is
still mounted and a root process can climb out (``breakout_demo`` shows it). pivot_root(2)
changes the root of the whole mount namespace and lets us unmount the old one.

Man pages: mount(2) pivot_root(2) umount2(2) chroot(2) mount_namespaces(7) proc(5) sysfs(5)
pts(4) null(4) random(4) mount_setattr(2).
Used by: notebook 02-root-filesystems, lab 02-root-filesystem.
"""

import errno
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from minidocker import kernel, namespaces

# Device nodes of a minimal /dev: (name, major, minor), as Docker creates them.
DEVICES = [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
           ("urandom", 1, 9), ("tty", 5, 0)]
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx", "core": "/proc/kcore"}

# Docker's masked paths: each would tell or give the container something about the host.
MASKED_PATHS = {
    "/proc/asound": "sound cards of the host",
    "/proc/acpi": "ACPI tables and power controls of the host",
    "/proc/kcore": "the host's physical memory, as an ELF core file",
    "/proc/keys": "keyrings are not namespaced: the keys root on the host and in other containers may view",
    "/proc/latency_stats": "latency of host processes (a side channel)",
    "/proc/timer_list": "timers of every host process (a side channel)",
    "/proc/timer_stats": "who set timers on the host",
    "/proc/sched_debug": "the scheduler's view of every host process",
    "/proc/scsi": "SCSI devices of the host, and a way to rescan them",
    "/sys/firmware": "firmware tables (ACPI, EFI variables) of the host",
    "/sys/devices/virtual/powercap": "RAPL energy counters (a side channel on the host's CPU)",
}
# Docker's read-only paths: readable for programs that need them, not writable.
READONLY_PATHS = {
    "/proc/bus": "PCI and USB devices of the host",
    "/proc/fs": "filesystem driver settings of the host",
    "/proc/irq": "interrupt routing of the host's CPUs",
    "/proc/sys": "kernel tunables (sysctl) shared with the host",
    "/proc/sysrq-trigger": "magic SysRq: reboot or crash the host",
}


@dataclass
class RootfsSpec:
    """How to build a container's root filesystem."""

    root: str  # the directory that becomes "/"
    readonly: bool = False  # --read-only
    masked_paths: list[str] = field(default_factory=lambda: list(MASKED_PATHS))
    readonly_paths: list[str] = field(default_factory=lambda: list(READONLY_PATHS))
    # the later stages' mounts (volumes, /etc/hosts): fn(root), after /dev, before pivot_root
    more_mounts: Callable[[str], None] | None = None
    privileged: bool = False  # --privileged: /sys writable, nothing masked or read-only
    shm_size: int = 64 * 2**20  # bytes of /dev/shm (--shm-size)


def enter_rootfs(spec: RootfsSpec) -> None:
    """Make ``spec.root`` this mount namespace's ``/``. Runs inside the new namespaces."""
    root = spec.root
    make_mounts_private()
    kernel.mount(root, root, None, kernel.MS_BIND | kernel.MS_REC)  # pivot_root wants a mount
    mount_proc(root)
    mount_sys(root, writable=spec.privileged)
    mount_dev(root, spec.shm_size)
    if spec.more_mounts:
        spec.more_mounts(root)
    pivot_to(root)
    for path in [] if spec.privileged else spec.masked_paths:
        mask_path(path)
    for path in [] if spec.privileged else spec.readonly_paths:
        make_readonly(path)
    if spec.readonly:
        make_root_readonly()


def make_mounts_private() -> None:
    """Stop mount events flowing between this namespace and the host (mount_namespaces(7))."""
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)


def mount_proc(root: str) -> None:
    """A fresh procfs: it shows the processes of *our* PID namespace only."""
    target = _mkdir(root, "proc")
    kernel.mount("proc", target, "proc", kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)


def mount_sys(root: str, writable: bool = False) -> None:
    """sysfs, read-only: programs may look at devices but not reconfigure the host's (only a
    ``--privileged`` container gets it writable)."""
    flags = kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC
    flags |= 0 if writable else kernel.MS_RDONLY
    kernel.mount("sysfs", _mkdir(root, "sys"), "sysfs", flags)


def mount_dev(root: str, shm_size: int = 64 * 2**20) -> None:
    """A small /dev on tmpfs with only the harmless devices, a private devpts and /dev/shm
    (POSIX shared memory, shm_overview(7): a tmpfs of ``shm_size`` bytes)."""
    dev = _mkdir(root, "dev")
    kernel.mount("tmpfs", dev, "tmpfs", kernel.MS_NOSUID | kernel.MS_STRICTATIME,
                 "mode=755,size=65536k")
    for name, major, minor in DEVICES:
        make_device(f"{dev}/{name}", 0o666 | stat.S_IFCHR, major, minor)
    for name, target in DEV_LINKS.items():
        os.symlink(target, f"{dev}/{name}")
    kernel.mount("devpts", _mkdir(dev, "pts"), "devpts", kernel.MS_NOSUID | kernel.MS_NOEXEC,
                 "newinstance,ptmxmode=0666,mode=0620")
    kernel.mount("shm", _mkdir(dev, "shm"), "tmpfs",
                 kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC,
                 f"mode=1777,size={shm_size}")


def make_device(path: str, mode: int, major: int, minor: int, host_path: str = "") -> None:
    """mknod(2) a device node; in a user namespace (where mknod of devices is refused) bind the
    host's node (``host_path``, default: the same name in /dev) instead, as rootless runc
    does."""
    try:
        os.mknod(path, mode, os.makedev(major, minor))
        os.chmod(path, stat.S_IMODE(mode))  # mknod obeys the umask; devices must be usable
    except PermissionError:
        open(path, "w").close()
        source = host_path or os.path.join("/dev", os.path.basename(path))
        kernel.mount(source, path, None, kernel.MS_BIND)


def pivot_to(root: str) -> None:
    """pivot_root into ``root``, then detach and remove the old root: the host is gone."""
    put_old = os.path.join(root, ".oldroot")
    os.makedirs(put_old, exist_ok=True)
    kernel.pivot_root(root, put_old)
    os.chdir("/")
    kernel.umount2("/.oldroot", kernel.MNT_DETACH)  # lazily: busy host mounts go too
    os.rmdir("/.oldroot")


def mask_path(path: str) -> None:
    """Hide a path: /dev/null over a file, an empty read-only tmpfs over a directory."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path):
        kernel.mount("tmpfs", path, "tmpfs", kernel.MS_RDONLY, "size=0")
    else:
        kernel.mount("/dev/null", path, None, kernel.MS_BIND)


def make_readonly(path: str) -> None:
    """Bind a path onto itself, then make that bind, and every mount below it, read-only."""
    if not os.path.lexists(path):
        return
    kernel.mount(path, path, None, kernel.MS_BIND | kernel.MS_REC)
    add_mount_flags(path, kernel.MS_RDONLY | kernel.MS_NOSUID | kernel.MS_NODEV
                    | kernel.MS_NOEXEC)


def make_root_readonly() -> None:
    """``--read-only``: the root filesystem (the overlay) becomes read-only. Only the top
    mount, as in Docker: what is mounted below ``/`` was put there by the engine or the user,
    each with its own mode — a ``--tmpfs`` and a read-write volume stay writable, a ``:ro``
    bind is read-only all the way down (volumes.mount_all)."""
    add_mount_flags("/", kernel.MS_RDONLY, recursive=False)


# --- read-only all the way down ---------------------------------------------------------------

# The flags of mount(2) and the MOUNT_ATTR_* of mount_setattr(2) that mean the same.
MOUNT_ATTRS = {kernel.MS_RDONLY: kernel.MOUNT_ATTR_RDONLY,
               kernel.MS_NOSUID: kernel.MOUNT_ATTR_NOSUID,
               kernel.MS_NODEV: kernel.MOUNT_ATTR_NODEV,
               kernel.MS_NOEXEC: kernel.MOUNT_ATTR_NOEXEC}
# statvfs(3)'s f_flag bits and the mount(2) flags a remount must repeat to keep them.
KEPT_ON_REMOUNT = {os.ST_RDONLY: kernel.MS_RDONLY, os.ST_NOSUID: kernel.MS_NOSUID,
                   os.ST_NODEV: kernel.MS_NODEV, os.ST_NOEXEC: kernel.MS_NOEXEC,
                   os.ST_NOATIME: kernel.MS_NOATIME, os.ST_NODIRATIME: kernel.MS_NODIRATIME,
                   os.ST_RELATIME: kernel.MS_RELATIME}


def add_mount_flags(target: str, flags: int, recursive: bool = True) -> None:
    """Add ``flags`` (MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC) to the mount at ``target`` and,
    if ``recursive``, to every mount below it. A bind with MS_REC copies the submounts too:
    ``-v /:/host:ro`` brings the host's /proc, /sys/fs/cgroup, /dev/shm... A remount changes
    one mount, so after remounting only the top, ``/host/proc/sys/kernel/core_pattern`` would
    still be writable. mount_setattr(2) with AT_RECURSIVE changes the whole tree in one atomic
    step (Linux >= 5.12); an older kernel says ENOSYS, and each mount is remounted in turn."""
    attr_set = sum(attr for flag, attr in MOUNT_ATTRS.items() if flags & flag)
    try:
        kernel.mount_setattr(kernel.AT_FDCWD, target, kernel.AT_RECURSIVE if recursive else 0,
                             attr_set=attr_set)
    except OSError as error:
        if error.errno != errno.ENOSYS:
            raise
        for path in mounts_below(target) if recursive else [target]:
            remount(path, flags)


def remount(target: str, flags: int) -> None:
    """Remount the bind at ``target`` with ``flags`` added. The flags it has are repeated: a
    remount sets them all, and in a user namespace the kernel refuses one that would drop a
    flag the mount was given outside (it is *locked*: mount_namespaces(7))."""
    have = os.statvfs(target).f_flag
    kept = sum(flag for bit, flag in KEPT_ON_REMOUNT.items() if have & bit)
    kernel.mount(None, target, None, kernel.MS_REMOUNT | kernel.MS_BIND | kept | flags)


def mounts_below(target: str) -> list[str]:
    """``target`` and the mount points under it that a path still reaches, in mount order, from
    /proc/self/mountinfo (proc(5): the 1st field is the mount's ID, the 5th its mount point,
    where a space is written ``\\040``). A mount that another one covers is left out: a remount
    by path cannot reach it, and nor can anything in the container."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])
            below = point == target or point.startswith(target.rstrip("/") + "/")
            if below and mount_id_at(point) == int(fields[0]):
                found.append(point)
    return found


def mount_id_at(path: str) -> int | None:
    """The ID of the mount that ``path`` leads to now (None if it leads nowhere): the
    ``mnt_id`` line of /proc/self/fdinfo for an O_PATH descriptor of it (proc(5))."""
    try:
        fd = os.open(path, os.O_PATH)
    except (FileNotFoundError, NotADirectoryError):  # covered by a mount that lacks the path
        return None
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("mnt_id:"))
    finally:
        os.close(fd)


def _mkdir(parent: str, name: str) -> str:
    path = os.path.join(parent, name)
    os.makedirs(path, exist_ok=True)
    return path


# --- why pivot_root and not chroot ------------------------------------------------------------

def chroot_escape(steps: int = 64) -> str:
    """The classic chroot breakout: make a directory, chroot *into it* (so that our cwd is now
    outside our root), climb with ``..`` far enough and chroot to what we reach. Returns the
    directory we end up in. Runs in a throwaway child."""
    os.makedirs("/.escape", exist_ok=True)
    os.chroot("/.escape")  # the cwd stays where it was: above the new root
    for _ in range(steps):
        os.chdir("..")  # ".." at a chroot's root is blocked only for the *current* root
    os.chroot(".")
    return os.getcwd()


@dataclass
class BreakoutResult:
    method: str  # "chroot" or "pivot_root"
    escaped: bool  # did the process reach the host's files?
    evidence: str  # what it saw


def breakout_demo(root: str, method: str) -> BreakoutResult:
    """Lock a root process into ``root`` with ``chroot`` or ``pivot_root``, let it try the
    escape, and report whether it could then see the image directory *from the outside*
    (a path that exists only in the host's tree). ``root`` should be a scratch copy of an
    image: the demo writes a marker and a directory in it. Runs in a forked child with its own
    mount namespace, so the host is never touched."""
    marker = os.path.join(os.path.abspath(root), ".breakout-marker")
    open(marker, "w").close()
    try:
        escaped, evidence = namespaces.in_child(f"try the {method} breakout", _lock_in_and_escape,
                                                root, method, marker)
    finally:
        os.unlink(marker)
    return BreakoutResult(method, escaped, evidence)


def _lock_in_and_escape(report: namespaces.Report, root: str, method: str,
                        marker: str) -> tuple[bool, str]:
    """The child of ``breakout_demo``: its own mount namespace, locked in, then the climb."""
    report.step("unshare the mount namespace")
    kernel.unshare(kernel.CLONE_NEWNS)
    make_mounts_private()
    report.step(method)
    if method == "chroot":
        os.chroot(root)
        os.chdir("/")
    else:
        kernel.mount(root, root, None, kernel.MS_BIND | kernel.MS_REC)
        pivot_to(root)
    report.step("climb out")
    chroot_escape()
    return os.path.exists(marker), str(sorted(os.listdir("/"))[:8])  # the host's path to it
