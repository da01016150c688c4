"""Lab 04 — overlayfs: a reference solution (spoilers: try the lab first).

Check it: sudo minidocker lab check 04 labs/solutions/04-overlay.py
"""

import os
import stat
from collections.abc import Iterator

from minidocker import kernel

OPAQUE_XATTR = "trusted.overlay.opaque"


def upper_entries(upper: str) -> Iterator[tuple[str, str]]:
    """Every entry of the upper dir, as (path in the container, path here)."""
    for dirpath, dirnames, filenames in os.walk(upper):
        for name in sorted(dirnames + filenames):
            here = os.path.join(dirpath, name)
            yield "/" + os.path.relpath(here, upper), here


def mount_overlay(lower: list[str], upper: str, work: str, merged: str) -> None:
    """Step 1: the layers, read-only, with upper on top, merged on ``merged``."""
    # lowerdir lists the layers top first: a read takes the first layer that has the file.
    # workdir must be an empty directory on upper's filesystem: the kernel prepares a
    # copy-up or a whiteout there, then renames it into upper in one atomic step.
    options = f"lowerdir={':'.join(lower)},upperdir={upper},workdir={work}"
    kernel.mount("overlay", merged, "overlay", 0, options)


def deleted_paths(upper: str) -> list[str]:
    """Step 2: the whiteouts of the upper dir, as the paths the container deleted."""
    found = []
    for path, here in upper_entries(upper):
        st = os.lstat(here)  # lstat: a symlink is a symlink, whatever it points to
        # A whiteout is a character device 0/0; any other device is a real file the
        # container made.
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0):
            found.append(path)
    return found


def opaque_dirs(upper: str) -> list[str]:
    """Step 3: the directories marked trusted.overlay.opaque=y."""
    found = []
    for path, here in upper_entries(upper):
        if not stat.S_ISDIR(os.lstat(here).st_mode):
            continue
        try:
            value = os.getxattr(here, OPAQUE_XATTR, follow_symlinks=False)
        except OSError:  # ENODATA: the directory has no such attribute
            continue
        if value == b"y":  # xattr values are bytes
            found.append(path)
    return found


def hide(upper: str, path: str) -> None:
    """Step 4: a whiteout for ``path`` in upper: a character device 0/0 with its name."""
    whiteout = os.path.join(upper, path.lstrip("/"))
    # The parents are plain directories (not opaque): the layers' other files still show.
    os.makedirs(os.path.dirname(whiteout), exist_ok=True)
    os.mknod(whiteout, stat.S_IFCHR | 0o000, os.makedev(0, 0))
