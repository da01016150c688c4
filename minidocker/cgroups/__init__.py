"""Stage 3 — cgroups: a process with limits, counted and frozen by the kernel.

``layout()`` tells which cgroup interface this machine has — "v2" (one unified tree, what
Ubuntu 24.04 runs), "hybrid" (v1 controllers plus an empty v2 tree, like this kit's Debian
machine) or "v1" — and ``for_container(id)`` returns the driver that fits, so no caller ever
branches on the version. A container's cgroup is ``minidocker/<container id>`` (the parent
can be changed for one container with ``--cgroup-parent``, and for all with
``$MINIDOCKER_CGROUP_PARENT``; the test session uses its own). The parent is chosen once, at
create, and kept in the container's record: a later command run with another environment
still finds the container's cgroup.

Man pages: cgroups(7), cgroup_namespaces(7). Used by: notebook 03-cgroups, lab 03-cgroups.
"""

import os
from pathlib import Path

from minidocker.cgroups.base import Cgroup, Stats
from minidocker.cgroups.limits import Limits, build_limits
from minidocker.cgroups.v1 import CONTROLLERS, CgroupV1
from minidocker.cgroups.v2 import CgroupV2

CGROUP_ROOT = Path("/sys/fs/cgroup")


__all__ = ["Cgroup", "CgroupV1", "CgroupV2", "Limits", "Stats", "build_limits",
           "for_container", "layout", "unified_root", "warnings"]


def parent() -> str:
    return os.environ.get("MINIDOCKER_CGROUP_PARENT") or "minidocker"


def layout() -> str:
    """"v2", "hybrid" or "v1", from what is mounted at /sys/fs/cgroup."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return "v2"
    if (CGROUP_ROOT / "unified" / "cgroup.controllers").exists():
        return "hybrid"
    return "v1"


def unified_root() -> Path | None:
    """Where the v2 tree is mounted, if there is one."""
    return {"v2": CGROUP_ROOT, "hybrid": CGROUP_ROOT / "unified"}.get(layout())


def for_container(container_id: str, cgroup_parent: str = "", default: str = "") -> Cgroup:
    """The cgroup of one container, with the driver for this machine: where the controllers
    are (v1 and hybrid: the v1 trees; v2: the unified tree). ``cgroup_parent`` is the
    container's ``--cgroup-parent``, a path below each hierarchy's root; without one, the
    cgroup goes below ``default`` (the parent its record keeps since create), else below
    today's ``parent()``."""
    name = f"{cgroup_parent.strip('/') or default or parent()}/{container_id}"
    cgroup = CgroupV2(name, CGROUP_ROOT) if layout() == "v2" else CgroupV1(name)
    cgroup.owns_parent = not cgroup_parent.strip("/")
    return cgroup


def warnings(limits: Limits) -> list[str]:
    """The limits this machine's cgroup version discards, one warning each."""
    return for_container("-").warnings(limits)


def parent_dirs() -> list[Path]:
    """The parent cgroup directory in each hierarchy where it exists (it goes with its last
    container)."""
    roots = [CGROUP_ROOT / c for c in CONTROLLERS] + [CGROUP_ROOT, CGROUP_ROOT / "unified"]
    return [root / parent() for root in roots if (root / parent()).is_dir()]


def leftover_cgroups() -> list[Path]:
    """Every container cgroup present on this machine (for prune and the leak check)."""
    return sorted({child for folder in parent_dirs() for child in folder.iterdir()
                   if child.is_dir()})
