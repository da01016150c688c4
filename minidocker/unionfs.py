"""Stage 4 — union filesystems: the container's writable layer on top of a read-only image.

overlayfs merges directories: the read-only *lower* dirs (the image's layers) and one writable
*upper* dir (the container's own layer). Reads fall through to the lowest layer that has the
file; the first write copies it up; a delete leaves a *whiteout* (a 0/0 character device) in the
upper dir. So many containers share one image, and the upper dir holds exactly what a container
changed — the basis of ``docker diff`` and ``docker commit``.

``redirect_dir=off`` and ``metacopy=off`` keep the upper dir a complete change set (a renamed
directory or a chmod is copied up in full, not recorded as a pointer into a lower layer).

Man pages: mount(2), and the kernel's Documentation/filesystems/overlayfs.rst.
Used by: stage 6 (every container's root, docker diff), notebook 04-union-filesystems,
lab 04-overlay.
"""

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from minidocker import kernel


@dataclass(frozen=True)
class OverlayDirs:
    """The directories of one container's union mount."""

    lower: tuple[str, ...]  # the image's layers, top first
    upper: str  # the container's changes
    work: str  # overlayfs's scratch space, on the same filesystem as upper
    merged: str  # where the union appears

    @classmethod
    def under(cls, container_dir: Path, lower: tuple[str, ...]) -> "OverlayDirs":
        return cls(lower, *(str(container_dir / d) for d in ("upper", "work", "merged")))


def overlay_options(dirs: OverlayDirs) -> str:
    """The mount data string. ``:`` separates lower dirs and ``,`` options, so those
    characters inside a path (``busybox:latest``) are escaped with a backslash."""
    lower = ":".join(escape(d) for d in dirs.lower)
    options = f"lowerdir={lower},upperdir={escape(dirs.upper)},workdir={escape(dirs.work)}"
    return options + "".join(f",{o}" for o in _supported_options())


def escape(path: str) -> str:
    return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")


def mount_overlay(dirs: OverlayDirs, nodev: bool = True) -> None:
    """Mount the union at ``dirs.merged`` (creating the upper, work and merged dirs). With
    ``nodev`` a device node made in the container's files opens nothing (its /dev is apart)."""
    for path in (dirs.upper, dirs.work, dirs.merged):
        os.makedirs(path, exist_ok=True)
    flags = kernel.MS_NODEV if nodev else 0
    kernel.mount("overlay", dirs.merged, "overlay", flags, overlay_options(dirs))


def _supported_options() -> list[str]:
    """Ask the running kernel which of our overlay options it knows (older ones lack some)."""
    params = Path("/sys/module/overlay/parameters")
    wanted = {"redirect_dir": "redirect_dir=off", "metacopy": "metacopy=off"}
    return [opt for name, opt in wanted.items() if (params / name).exists()]


# --- what a container changed: docker diff ----------------------------------------------------

@dataclass(frozen=True, order=True)
class Change:
    path: str  # as the container sees it, e.g. "/etc/hostname"
    kind: str  # "A" added, "C" changed, "D" deleted — Docker's letters


def is_whiteout(path: Path) -> bool:
    """overlayfs records a deletion as a character device with device number 0/0."""
    return is_whiteout_stat(os.lstat(path))


def is_whiteout_stat(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: Path) -> bool:
    """A directory that hides everything below it in the lower layers (it was deleted and
    made again): overlayfs marks it with the xattr trusted.overlay.opaque=y."""
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def changes(upper: Path, lower: tuple[str, ...]) -> list[Change]:
    """Read the upper dir as a change set: a whiteout is a deletion, a path that exists in a
    lower layer was changed, any other is an addition. Like ``docker diff``, a directory that
    holds a change is itself listed as changed."""
    found: list[Change] = []
    for dirpath, dirnames, filenames in os.walk(upper):
        for name in sorted(dirnames + filenames):
            here = Path(dirpath) / name
            path = "/" + str(here.relative_to(upper))
            if is_whiteout(here):
                found.append(Change(path, "D"))
            elif _in_lower(path, lower, upper) and not is_opaque(here):
                found.append(Change(path, "C"))
            else:
                found.append(Change(path, "A"))
    return sorted(found)


def _in_lower(path: str, lower: tuple[str, ...], upper: Path) -> bool:
    """Does the image (the lower layers, top first) show ``path`` under the container's
    upper dir? Looked up name by name, as overlayfs does: an opaque directory (in the upper
    dir or a layer) hides everything below it in the layers underneath, and a whiteout of the
    path or of one of its parents hides it in every layer below."""
    parts = path.strip("/").split("/")
    parents = [parts[:i] for i in range(1, len(parts))]
    if any(is_opaque(Path(upper, *p)) for p in parents):
        return False
    for layer in lower:
        if any(_whiteout_at(Path(layer, *p)) for p in parents):
            return False
        if os.path.lexists(Path(layer, *parts)):
            return not is_whiteout(Path(layer, *parts))
        if any(is_opaque(Path(layer, *p)) for p in parents):
            return False  # this layer re-made a parent: the layers below are hidden
    return False


def _whiteout_at(path: Path) -> bool:
    return os.path.lexists(path) and is_whiteout(path)
