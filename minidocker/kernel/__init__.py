"""Stage 0 — kernel bindings: the syscalls (libc.py) and their flags (constants.py).

``from minidocker import kernel`` then ``kernel.unshare(kernel.CLONE_NEWUTS)``.
"""

from .constants import *  # noqa: F403
from .libc import (
    capget,
    capset,
    interface_up,
    mount,
    move_mount,
    open_tree,
    pivot_root,
    prctl,
    sethostname,
    setns,
    umount2,
    unshare,
)

__all__ = ["capget", "capset", "interface_up", "mount", "move_mount", "open_tree", "pivot_root",
           "prctl", "sethostname", "setns", "umount2", "unshare"]
__all__ += [name for name in dir() if name.isupper()]
