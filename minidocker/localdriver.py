"""Stage 7 — the local volume driver's own mounts: a volume that is a filesystem of its own.

``volume create -o type=tmpfs -o device=tmpfs -o o=size=64m,uid=1000 cache`` asks the local
driver (moby's ``volume/local``) for what ``mount -t tmpfs -o size=64m,uid=1000 tmpfs DIR``
does. When the first container that uses the volume starts, the filesystem is mounted on the
volume's ``_data`` directory — in the engine's mount namespace, before the container's own is
copied from it, so the container's bind of ``_data`` shows it. Every container started
meanwhile shares it; when the last one stops it is unmounted, and a tmpfs' files are gone
then, as in Docker.

Docker counts a volume's users in the daemon's memory. minidocker has no process that outlives
its containers, so the count is never stored: it is *derived* each time, under the volume's
``mount.lock`` (flock(2)), from what cannot drift — which containers run (their records, with
a live monitor) and whether /proc/self/mountinfo shows the mount. A starting container holds
the lock until its record says "running", so one stopping at that moment counts it; and it
replaces a mount that no running container uses (a crash left it) by a new, empty one.

The ``o=`` text is split as mount(8) splits it: words such as ``ro`` or ``noexec`` are mount(2)
flags, the rest is the filesystem's data. When the kernel refuses the data (EINVAL), each
option is handed alone to a filesystem context (fsopen(2), fsconfig(2)), which names the bad
one in the kernel's own words.

Man pages: mount(8) mount(2) umount2(2) tmpfs(5) fsopen(2) fsconfig(2) flock(2) proc(5)
(mountinfo). Used by: volumes.py (start and end of a container, ``volume rm``), notebook 07.
"""

import errno
import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from minidocker import kernel, rootfs
from minidocker.errors import MinidockerError

# mount(8)'s words that are mount(2) flags, not data for the filesystem
FLAG_WORDS = {"ro": kernel.MS_RDONLY, "nosuid": kernel.MS_NOSUID, "nodev": kernel.MS_NODEV,
              "noexec": kernel.MS_NOEXEC, "sync": kernel.MS_SYNCHRONOUS,
              "dirsync": kernel.MS_DIRSYNC, "noatime": kernel.MS_NOATIME,
              "nodiratime": kernel.MS_NODIRATIME, "relatime": kernel.MS_RELATIME,
              "strictatime": kernel.MS_STRICTATIME}
DEFAULT_WORDS = {"defaults", "rw", "suid", "dev", "exec", "async", "atime", "diratime"}
# what tmpfs(5) knows, for the error that names a bad option
TMPFS_HINT = "tmpfs(5) knows size=, nr_inodes=, mode=, uid=, gid=, huge="


def mount_flags(o: str) -> tuple[int, str]:
    """``o=`` split as mount(8) does: ``"size=64m,noexec,uid=1000"`` -> (MS_NOEXEC,
    ``"size=64m,uid=1000"``)."""
    flags, data = 0, []
    for word in filter(None, o.split(",")):
        if word in FLAG_WORDS:
            flags |= FLAG_WORDS[word]
        elif word not in DEFAULT_WORDS:
            data.append(word)
    return flags, ",".join(data)


def is_mounted(path: str) -> bool:
    """A mount sits on ``path`` now, as /proc/self/mountinfo tells (and is not covered)."""
    path = os.path.realpath(path)
    return path in rootfs.mounts_below(path)


@contextmanager
def mount_locked(directory: Path):
    """Hold a volume's ``mount.lock``: whoever mounts, counts or unmounts it waits here."""
    fd = os.open(directory / "mount.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def mount(name: str, options: dict, path: str) -> None:
    """``mount -t TYPE -o O DEVICE path`` as mount(2), unless it is mounted already (another
    running container uses the volume). Call it under ``mount_locked``."""
    if is_mounted(path):
        return
    flags, data = mount_flags(options.get("o", ""))
    try:
        kernel.mount(options["device"], path, options["type"], flags, data or None)
    except OSError as error:
        raise MinidockerError(why_refused(name, options, data, error)) from None


def unmount(path: str) -> None:
    """umount2(2) the volume's filesystem, if mounted: its last container has stopped. Lazily
    (MNT_DETACH): a host process that looks into it cannot keep it."""
    if is_mounted(path):
        kernel.umount2(path, kernel.MNT_DETACH)


def why_refused(name: str, options: dict, data: str, error: OSError) -> str:
    """One line: which option the kernel refused (when it can tell) and what to do."""
    where = (f"cannot mount volume {name} (-o type={options['type']} -o "
             f"device={options['device']} -o o={options.get('o', '')})")
    fix = (f"remove it ('minidocker volume rm {name}') and create it again with options "
           f"{options['type']} knows")
    if options["type"] == "tmpfs":
        fix += f" ({TMPFS_HINT})"
    refused = refused_option(options["type"], data) if error.errno == errno.EINVAL else None
    if refused:
        option, reason = refused
        return f"{where}: the kernel refuses the option '{option}' ({reason}): {fix}"
    return f"{where}: {os.strerror(error.errno)}: {fix}"


def refused_option(fstype: str, data: str) -> tuple[str, str] | None:
    """Hand the options one at a time to a new filesystem context: the first the kernel
    refuses, with its reason (read from the context). Nothing is mounted."""
    try:
        fd = kernel.fsopen(fstype)
    except OSError:  # no such filesystem type, or a kernel older than 5.2
        return None
    try:
        for option in filter(None, data.split(",")):
            key, has_value, value = option.partition("=")
            try:
                kernel.fsconfig(fd, key, value if has_value else None)
            except OSError:
                return option, kernel_message(fd)
    finally:
        os.close(fd)
    return None


def kernel_message(fd: int) -> str:
    """The message a filesystem context keeps for its last error: ``e tmpfs: Bad value for
    'size'`` -> ``tmpfs: Bad value for 'size'``."""
    try:
        text = os.read(fd, 4096).decode(errors="replace").strip()
    except OSError:
        return "invalid argument"
    return text[2:] if text[:2] in ("e ", "w ", "i ") else text
