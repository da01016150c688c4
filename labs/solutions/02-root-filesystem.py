"""Lab 02 — the root filesystem: a reference solution (spoilers: try the lab first).

Check it: sudo minidocker lab check 02 labs/solutions/02-root-filesystem.py
"""

import os

from minidocker import kernel


def prepare_new_root(new_root: str) -> None:
    """Step 1: stop mounts propagating to the host, and make ``new_root`` a mount point."""
    # On a systemd host every mount is shared: without this, the mounts below would also
    # appear in the host's namespace.
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
    # pivot_root(2) wants new_root to be a mount point; a bind of the directory onto itself
    # makes it one without changing what it shows.
    kernel.mount(new_root, new_root, None, kernel.MS_BIND | kernel.MS_REC)


def pivot_into(new_root: str) -> None:
    """Step 2: make ``new_root`` the root; detach and remove the old root."""
    put_old = os.path.join(new_root, ".oldroot")
    os.makedirs(put_old, exist_ok=True)
    kernel.pivot_root(new_root, put_old)  # the host's tree is now at /.oldroot
    os.chdir("/")  # our working directory was on the host's tree: leave it
    kernel.umount2("/.oldroot", kernel.MNT_DETACH)  # lazily, since host mounts are busy
    os.rmdir("/.oldroot")


def mount_proc() -> None:
    """Step 3: a fresh /proc, showing this PID namespace's processes."""
    kernel.mount("proc", "/proc", "proc", kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)


def make_root_readonly() -> None:
    """Step 4: make ``/`` read-only for this container only."""
    # MS_BIND changes this mount's flags only; without it, MS_REMOUNT would change the
    # filesystem itself, read-only for every mount of it, the host's included.
    kernel.mount(None, "/", None, kernel.MS_REMOUNT | kernel.MS_BIND | kernel.MS_RDONLY)


def enter_rootfs(new_root: str, readonly: bool = False) -> None:
    """Make ``new_root`` this mount namespace's ``/``."""
    prepare_new_root(new_root)  # Step 1
    pivot_into(new_root)  # Step 2
    mount_proc()  # Step 3
    if readonly:
        make_root_readonly()  # Step 4
