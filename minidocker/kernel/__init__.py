"""Stage 0 — kernel bindings: the syscalls (libc.py) and their flags (constants.py).

``from minidocker import kernel`` then ``kernel.unshare(kernel.CLONE_NEWUTS)``. Each wrapper keeps
its man page's signature and each flag its kernel name, so what a student reads in ``man 2
unshare`` is what the code says.

Man pages: syscalls(2), unshare(2), setns(2), mount(2), umount2(2), pivot_root(2), prctl(2),
mount_setattr(2).
Used by: every later stage; notebooks 01-namespaces and 09-security, the labs' sandbox.
"""

from .constants import *  # noqa: F403
from .libc import (
    capget,
    capset,
    fsconfig,
    fsopen,
    interface_up,
    mount,
    mount_setattr,
    move_mount,
    open_tree,
    pivot_root,
    prctl,
    setdomainname,
    sethostname,
    setns,
    umount2,
    unshare,
)

__all__ = ["capget", "capset", "fsconfig", "fsopen", "interface_up", "mount", "mount_setattr",
           "move_mount", "open_tree", "pivot_root", "prctl", "setdomainname", "sethostname",
           "setns", "umount2", "unshare"]
__all__ += [name for name in dir() if name.isupper()]
