"""Lab 04 — overlayfs: a union mount by hand, and the whiteouts that record deletions.

An image is a stack of read-only layers; a container adds one writable directory on top. The
kernel's overlay filesystem shows them as one tree (the *merged* view): a read finds the file
in the highest layer that has it, a write goes to the upper dir, and a deletion leaves a
*whiteout* there, a character device with device number 0/0. A directory that was removed and
made again is *opaque*: the xattr ``trusted.overlay.opaque=y`` hides what the layers below hold.

You write four functions with ``minidocker.kernel`` (mount(2)), ``os`` and ``stat``. The
checker calls them in a sandbox (a mount namespace of its own, on a tmpfs): your mounts
cannot reach the host, and they go when the check ends.

Check your work:

    sudo minidocker lab check 04                # this file
    sudo minidocker lab check 04 PATH           # a copy of it

Steps and hints: labs/04-overlay/README.md. Man pages: mount(2) mknod(2) xattr(7) inode(7);
the kernel's Documentation/filesystems/overlayfs.rst.
"""

import os  # os.walk, os.lstat, os.getxattr, os.makedirs, os.mknod, os.makedev
import stat  # stat.S_ISCHR, stat.S_ISDIR, stat.S_IFCHR
from collections.abc import Iterator

from minidocker import kernel  # kernel.mount(source, target, fstype, flags, data)

# --- given: every entry of an upper dir --------------------------------------------------------

def upper_entries(upper: str) -> Iterator[tuple[str, str]]:
    """Every entry of the upper dir ``upper``, at every depth, as a pair: its path as the
    container sees it, and its path here (``("/etc/motd", upper + "/etc/motd")``). Symlinks
    are listed, never followed."""
    for dirpath, dirnames, filenames in os.walk(upper):
        for name in sorted(dirnames + filenames):
            here = os.path.join(dirpath, name)
            yield "/" + os.path.relpath(here, upper), here


# --- yours: one function per step --------------------------------------------------------------

def mount_overlay(lower: list[str], upper: str, work: str, merged: str) -> None:
    """Step 1: mount an overlay on ``merged`` that shows the layers ``lower`` (top layer first,
    read-only) with ``upper`` on top (where writes go); ``work`` is the kernel's scratch
    directory. All four directories exist."""
    # TODO Step 1: build the options string (lowerdir=...,upperdir=...,workdir=...) and mount
    #              a filesystem of type "overlay" on merged.
    raise NotImplementedError("Step 1: mount_overlay() is not written yet")


def deleted_paths(upper: str) -> list[str]:
    """Step 2: the paths the container deleted, as it saw them (``["/etc/motd", ...]``), read
    from the whiteouts of its upper dir."""
    # TODO Step 2: keep the entries that are whiteouts: a character device whose device
    #              number is 0/0.
    raise NotImplementedError("Step 2: deleted_paths() is not written yet")


def opaque_dirs(upper: str) -> list[str]:
    """Step 3: the directories of the upper dir that are opaque (``["/usr/share", ...]``):
    they hide everything the layers below hold under the same path."""
    # TODO Step 3: keep the directories whose xattr trusted.overlay.opaque is "y".
    raise NotImplementedError("Step 3: opaque_dirs() is not written yet")


def hide(upper: str, path: str) -> None:
    """Step 4: make ``path`` (as the container sees it, e.g. ``"/etc/motd"``) disappear from
    the merged view, by writing a whiteout for it into ``upper``. The overlay is not mounted
    yet: the checker mounts it afterwards and looks."""
    # TODO Step 4: create the whiteout at the same path in upper (its parent directories
    #              first, if upper lacks them).
    raise NotImplementedError("Step 4: hide() is not written yet")
