"""The pivot_root story, one syscall at a time, with what the process sees after each one.

``rootfs.enter_rootfs`` builds a container's ``/`` in a few calls. Here the same calls run one
by one in a throwaway process in new mount and PID namespaces (``namespaces.spawn`` with a
``setup`` function), and after each call the process writes down what it can observe: is the
image directory a mount point yet, which PIDs does the new ``/proc`` list, can it still reach
the host's files. The parent collects those notes through a pipe and shows them as a table.

The directory given must be a scratch copy of an image: the story creates ``.oldroot`` in it.

Man pages: mount(2), pivot_root(2), umount2(2), mount_namespaces(7). Used by: notebook
02-root-filesystems.
"""

import json
import os

from minidocker import kernel, namespaces, rootfs
from minidocker.viz.mounts import mountinfo
from minidocker.viz.table import Table


def pivot_root_story(root: str) -> Table:
    """Run the story in a new mount + PID namespace and return one row per step."""
    root = os.path.realpath(root)
    read_fd, write_fd = os.pipe()
    null = os.open(os.devnull, os.O_RDWR)
    try:
        process = namespaces.spawn(["true"], ["mnt", "pid"], stdio=namespaces.Stdio(null, null, null),
                                   setup=lambda: _tell_the_story(root, write_fd))
    finally:
        os.close(write_fd)
        os.close(null)
    with os.fdopen(read_fd) as notes:
        rows = [tuple(json.loads(line)) for line in notes]
    process.wait()
    return Table(("step", "syscall", "what the process sees now"), rows)


def _tell_the_story(root: str, notes_fd: int) -> None:
    """Runs inside the new namespaces, as PID 1, before the exec of ``true``."""
    step = _recorder(notes_fd)
    step("unshare(CLONE_NEWNS | CLONE_NEWPID)",
         f"my PID is {os.getpid()}; every host mount was copied into my new mount namespace, "
         f"so the image directory is still at its host path: {os.path.isdir(root)}")

    rootfs.make_mounts_private()
    shared = [m.mount_point for m in mountinfo() if m.optional]
    step("mount(NULL, '/', NULL, MS_REC | MS_PRIVATE)",
         f"mounts that still share mount events with the host: {len(shared)}")

    kernel.mount(root, root, None, kernel.MS_BIND | kernel.MS_REC)
    step("mount(ROOT, ROOT, NULL, MS_BIND | MS_REC)",
         "the image directory is a mount point now: "
         f"{any(m.mount_point == root for m in mountinfo())} (pivot_root insists on one)")

    rootfs.mount_proc(root)
    pids = sorted(int(p) for p in os.listdir(f"{root}/proc") if p.isdigit())
    step("mount('proc', ROOT/proc, 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC)",
         f"PIDs listed in the new /proc: {pids} (only my PID namespace)")

    rootfs.mount_sys(root)
    readonly = bool(os.statvfs(f"{root}/sys").f_flag & os.ST_RDONLY)
    step("mount('sysfs', ROOT/sys, 'sysfs', MS_RDONLY | ...)",
         f"the new /sys is read-only: {readonly}")

    rootfs.mount_dev(root)
    step("mount('tmpfs', ROOT/dev, 'tmpfs', ...) + mknod + devpts + shm",
         "the new /dev holds: " + " ".join(sorted(os.listdir(f"{root}/dev"))))

    os.makedirs(f"{root}/.oldroot", exist_ok=True)
    kernel.pivot_root(root, f"{root}/.oldroot")
    os.chdir("/")
    step("pivot_root(ROOT, ROOT/.oldroot)",
         "/ holds: " + " ".join(sorted(os.listdir("/"))) + "; the host's tree is still "
         f"reachable under /.oldroot: {os.path.isdir('/.oldroot' + root)}")

    kernel.umount2("/.oldroot", kernel.MNT_DETACH)
    os.rmdir("/.oldroot")
    step("umount2('/.oldroot', MNT_DETACH); rmdir('/.oldroot')",
         "the host's tree is gone; the whole mount table is now: "
         + " ".join(m.mount_point for m in mountinfo()))


def _recorder(fd: int):
    count = 0

    def step(syscall: str, seen: str) -> None:
        nonlocal count
        count += 1
        os.write(fd, (json.dumps([count, syscall, seen]) + "\n").encode())

    return step
