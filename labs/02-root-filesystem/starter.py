"""Lab 02 — the root filesystem: give a process its own ``/``.

``enter_rootfs(new_root)`` turns a directory holding an image (busybox here) into the ``/`` of
the calling process's mount namespace, with no way back to the host's files. It is already
written below: it calls one function per step, in order, and you write those functions with
``minidocker.kernel`` (mount(2), umount2(2), pivot_root(2)) and ``os``.

Your code runs *inside* a new mount namespace and a new PID namespace that the checker made
for it (as ``minidocker run`` does): you do not unshare or fork here.

Check your work (the checker runs your code in a sandbox, on a scratch copy of the image):

    sudo minidocker lab check 02                # this file
    sudo minidocker lab check 02 PATH           # a copy of it

Steps and hints: labs/02-root-filesystem/README.md. Man pages: mount_namespaces(7)
mount(2) pivot_root(2) umount2(2) proc(5).
"""

import os

from minidocker import kernel  # kernel.mount, kernel.umount2, kernel.pivot_root, kernel.MS_*


def prepare_new_root(new_root: str) -> None:
    """Step 1: stop mounts propagating to the host, and make ``new_root`` a mount point."""
    # TODO Step 1: make every mount of this namespace private (all of them, recursively),
    #              then bind-mount new_root onto itself.
    raise NotImplementedError("Step 1: prepare_new_root() is not written yet")


def pivot_into(new_root: str) -> None:
    """Step 2: make ``new_root`` the root of the mount namespace; detach and remove the old
    root, so that no path leads back to the host."""
    # TODO Step 2: pivot_root into new_root (the old root goes to a directory inside it),
    #              move to the new /, detach the old root, remove the directory it was on.
    raise NotImplementedError("Step 2: pivot_into() is not written yet")


def mount_proc() -> None:
    """Step 3: a fresh /proc, showing this PID namespace's processes. Runs after step 2."""
    # TODO Step 3: mount a new proc filesystem on /proc.
    raise NotImplementedError("Step 3: mount_proc() is not written yet")


def make_root_readonly() -> None:
    """Step 4: make ``/`` read-only for this container only (writing /x fails with EROFS)."""
    # TODO Step 4: remount the mount of / read-only, without touching the host's view of
    #              the same filesystem.
    raise NotImplementedError("Step 4: make_root_readonly() is not written yet")


def enter_rootfs(new_root: str, readonly: bool = False) -> None:
    """Make ``new_root`` this mount namespace's ``/`` (given: the story, one step a line)."""
    prepare_new_root(new_root)  # Step 1
    pivot_into(new_root)  # Step 2
    mount_proc()  # Step 3
    if readonly:
        make_root_readonly()  # Step 4
