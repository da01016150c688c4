"""Checker of lab 04 — overlayfs by hand: a union mount, and the whiteouts that record deletions.

For every step the sandbox (sandbox.py) mounts a tmpfs on a scratch directory and lays out an
"image" of two layers (``base`` below, ``top`` above), a container's ``upper`` dir, a ``work``
dir and a ``merged`` mount point. Step 1 mounts the overlay with the student's code and reads
the merged view back, then writes to it. Steps 2 and 3 let the kernel write an upper dir (the
checker mounts an overlay and deletes, recreates and adds files in it, as a container would),
then ask the student's code what that upper dir records. Step 4 lets the student's code write a
whiteout into an upper dir by hand, and asks the kernel whether the merged view still shows the
file. Each step's mounts go with its sandbox.

Man pages: mount(2), mknod(2), xattr(7), inode(7); the kernel's
Documentation/filesystems/overlayfs.rst ("whiteouts and opaque directories").
Used by: ``minidocker lab check 04``; the lab is labs/04-overlay/.
"""

import errno
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from minidocker import kernel, unionfs
from minidocker.labs.framework import Lab, Step, function, scratch_workspace
from minidocker.labs.sandbox import (
    CheckFailed,
    call_student,
    mount_scratch,
    read_file,
    read_proc,
    write_file,
)

# The two layers of the image, bottom first, and what the container's upper dir starts with.
BASE = {
    "etc/motd": "motd from the base layer\n",
    "etc/hostname": "base\n",
    "etc/keep": "kept by the base layer\n",
    "usr/share/doc/readme": "a readme\n",
    "usr/share/doc/other": "another doc\n",
    "var/cache/apt/pkgcache": "a cache\n",
    "var/lib/state": "some state\n",
}
TOP = {
    "etc/hostname": "top\n",
    "app/hello": "hello from the top layer\n",
}
UPPER = {"notes.txt": "written by the container\n"}
DELETED = ["/etc/motd", "/usr/share/doc/readme", "/var/cache"]  # steps 2 and 4
OPAQUE = ["/usr/share", "/var/lib"]  # step 3


@dataclass
class Stage:
    """One step's directories, in a tmpfs of the sandbox."""

    base: str
    top: str
    upper: str
    work: str
    merged: str

    @property
    def dirs(self) -> unionfs.OverlayDirs:
        return unionfs.OverlayDirs((self.top, self.base), self.upper, self.work, self.merged)


def stage(scratch: str, upper: dict[str, str] | None = None) -> Stage:
    """In the sandbox: a tmpfs on the scratch directory, the two layers, the other dirs."""
    mount_scratch(scratch)
    here = Stage(*(os.path.join(scratch, d) for d in ("base", "top", "upper", "work", "merged")))
    for directory, files in ((here.base, BASE), (here.top, TOP), (here.upper, upper or {})):
        write_tree(directory, files)
    for directory in (here.work, here.merged):
        os.makedirs(directory)
    return here


def write_tree(root: str, files: dict[str, str]) -> None:
    os.makedirs(root, exist_ok=True)
    for name, text in files.items():
        write_file(os.path.join(root, name), text)


def overlay_mount_at(point: str) -> dict | None:
    """The sandbox's mount on ``point``, from mountinfo (proc(5)): its filesystem type and
    its options (the overlay's lowerdir=..., upperdir=..., workdir=...)."""
    found = None
    for line in read_proc("self/mountinfo").splitlines():
        fields, _, tail = line.partition(" - ")
        if fields.split()[4] == point:
            fstype, _source, options = (tail.split() + [""])[:3]
            found = {"fstype": fstype, "options": options}
    return found


# --- step 1: the union mount ---------------------------------------------------------------

def check_mount(student, scratch: str) -> str:
    here = stage(scratch, UPPER)
    try:
        call_student(function(student, "mount_overlay"), [here.top, here.base], here.upper,
                     here.work, here.merged)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        raise CheckFailed("the kernel refused the overlay's options (EINVAL; dmesg says why): "
                          "an overlay with an upperdir needs a workdir too, an empty directory "
                          "on the same filesystem, and each option is name=value, separated by "
                          "commas") from None
    mount = overlay_mount_at(here.merged)
    if mount is None:
        raise CheckFailed(f"nothing is mounted on merged ({here.merged}): mount the overlay "
                          "there")
    if mount["fstype"] != "overlay":
        raise CheckFailed(f"merged holds a {mount['fstype']} mount, not an overlay: the "
                          "filesystem type is \"overlay\"")
    merged = {name: read_file(os.path.join(here.merged, name))
              for name in ("etc/motd", "app/hello", "notes.txt", "etc/hostname")}
    if merged["etc/motd"] is None or merged["app/hello"] is None:
        missing = "base" if merged["etc/motd"] is None else "top"
        raise CheckFailed(f"the merged view lacks the {missing} layer's files: lowerdir lists "
                          "every lower layer, separated by ':'")
    if merged["etc/hostname"] == BASE["etc/hostname"]:
        raise CheckFailed("/etc/hostname shows the base layer's version, but the top layer's "
                          "should hide it: lowerdir lists the layers top first "
                          "(lowerdir=TOP:BASE), the opposite of the order they were built in")
    if merged["notes.txt"] is None:
        raise CheckFailed("the upper dir's notes.txt does not show in the merged view: give "
                          "it as upperdir")
    try:
        with open(os.path.join(here.merged, "new.txt"), "w") as f:
            f.write("written through merged\n")
        with open(os.path.join(here.merged, "etc/motd"), "a") as f:
            f.write("changed through merged\n")
    except OSError as exc:
        if exc.errno != errno.EROFS:
            raise
        raise CheckFailed("the merged view is read-only (EROFS): an overlay needs an upperdir "
                          "(and a workdir) to write to, and no MS_RDONLY flag") from None
    if not os.path.exists(os.path.join(here.upper, "new.txt")):
        raise CheckFailed("a file written in merged did not land in the upper dir you were "
                          "given: upperdir is where the writes go, workdir is the kernel's "
                          "scratch space")
    copied_up = read_file(os.path.join(here.upper, "etc/motd")) or ""
    if read_file(os.path.join(here.base, "etc/motd")) != BASE["etc/motd"] or \
            not copied_up.endswith("changed through merged\n"):
        raise CheckFailed("writing /etc/motd in merged did not copy it up into the upper dir")
    lowerdir = next((o for o in mount["options"].split(",") if o.startswith("lowerdir=")), "")
    return (f"an overlay on merged ({lowerdir.replace(scratch + '/', '')},upperdir=upper,...) "
            "shows base, top and upper at once, top's /etc/hostname over base's; a new file "
            "went to upper, and writing /etc/motd copied it up there, base's copy untouched")


# --- steps 2 and 3: what an upper dir records ----------------------------------------------

def container_changes(here: Stage) -> None:
    """What a container does to its files, through a real overlay that the checker mounts;
    the upper dir then records it (the overlay is unmounted, as when the container stops)."""
    unionfs.mount_overlay(here.dirs)
    merged = here.merged
    os.remove(f"{merged}/etc/motd")  # a file of a lower layer: a whiteout
    shutil.rmtree(f"{merged}/var/cache")  # a directory tree: one whiteout, where it was
    os.remove(f"{merged}/usr/share/doc/readme")  # deep down: its parents are copied up
    with open(f"{merged}/etc/hostname", "w") as f:  # a change: a copy-up, no whiteout
        f.write("container\n")
    with open(f"{merged}/etc/scratch", "w") as f:  # only ever in upper: no whiteout needed
        f.write("gone soon\n")
    os.remove(f"{merged}/etc/scratch")
    os.mknod(f"{merged}/etc/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a device node
    os.mkdir(f"{merged}/newdir")  # new, nothing below it to hide: not opaque
    kernel.umount2(merged)


def container_recreates(here: Stage) -> None:
    """As ``container_changes``, with directories deleted and made again: opaque dirs."""
    unionfs.mount_overlay(here.dirs)
    merged = here.merged
    shutil.rmtree(f"{merged}/usr/share")  # removed, then made again: opaque
    os.mkdir(f"{merged}/usr/share")
    with open(f"{merged}/usr/share/new", "w") as f:
        f.write("new\n")
    shutil.rmtree(f"{merged}/var/lib")
    os.makedirs(f"{merged}/var/lib/fresh")  # fresh is new below an opaque dir: not opaque
    os.mkdir(f"{merged}/newdir")
    os.remove(f"{merged}/etc/motd")  # a whiteout, which is no directory
    with open(f"{merged}/etc/hostname", "w") as f:  # /etc is copied up, and not opaque
        f.write("container\n")
    kernel.umount2(merged)


def as_paths(returned, function_name: str) -> list[str]:
    """What the student's function returned, as a sorted list of str, or a FAIL."""
    if isinstance(returned, str | bytes) or not isinstance(returned, Iterable):
        raise CheckFailed(f"{function_name}() returned {returned!r}: return a list of paths "
                          "as the container sees them, like \"/etc/motd\"")
    paths = sorted(str(p) for p in returned)
    relative = [p for p in paths if not p.startswith("/")]
    if relative:
        raise CheckFailed(f"{function_name}() returned {relative[0]!r}: write each path as the "
                          "container sees it, from its / (\"/etc/motd\")")
    return paths


def describe_entry(upper: str, path: str) -> str:
    """What the upper dir holds at ``path``: its file type, and a device's number."""
    host = os.path.join(upper, path.lstrip("/"))
    try:
        st = os.lstat(host)
    except FileNotFoundError:
        return "nothing (no such entry in the upper dir)"
    if stat.S_ISCHR(st.st_mode):
        return f"a character device {os.major(st.st_rdev)}/{os.minor(st.st_rdev)}"
    kinds = {stat.S_ISDIR: "a directory", stat.S_ISREG: "a regular file",
             stat.S_ISLNK: "a symlink"}
    return next((name for test, name in kinds.items() if test(st.st_mode)), "a special file")


def check_deletions(student, scratch: str) -> str:
    here = stage(scratch)
    container_changes(here)
    found = as_paths(call_student(function(student, "deleted_paths"), here.upper),
                     "deleted_paths")
    for path in found:
        if path not in DELETED:
            what = describe_entry(here.upper, path)
            why = ("a device node the container made (mknod), not a whiteout: a whiteout is a "
                   "character device with device number 0/0 (st_rdev == 0)"
                   if what.startswith("a character") else "not a whiteout")
            raise CheckFailed(f"{path} is no deletion: the upper dir holds {what} there, {why}")
    missing = [path for path in DELETED if path not in found]
    if missing:
        raise CheckFailed(f"you missed {missing[0]}, which the container deleted: the upper "
                          f"dir holds {describe_entry(here.upper, missing[0])} there (look at "
                          "every entry, at every depth, with lstat)")
    return (f"the container deleted {', '.join(DELETED)}: each left a 0/0 character device "
            "in the upper dir (a whole directory, one); /etc/null (a device 1/3) and a file "
            "that only ever lived in upper are no deletions")


def check_opaque(student, scratch: str) -> str:
    here = stage(scratch)
    container_recreates(here)
    found = as_paths(call_student(function(student, "opaque_dirs"), here.upper), "opaque_dirs")
    for path in found:
        if path not in OPAQUE:
            raise CheckFailed(f"{path} is not opaque: the upper dir holds "
                              f"{describe_entry(here.upper, path)} there, without the xattr "
                              "trusted.overlay.opaque=y (a directory is copied up, or made "
                              "new, without it)")
    missing = [path for path in OPAQUE if path not in found]
    if missing:
        raise CheckFailed(f"you missed {missing[0]}, which the container removed and made "
                          "again: its directory in upper has trusted.overlay.opaque = b'y' "
                          "(os.getxattr returns bytes)")
    return (f"{' and '.join(OPAQUE)} were removed and made again: the kernel marked them "
            "trusted.overlay.opaque=y, so nothing of the layers below shows through; /etc "
            "(copied up) and /newdir (new) are not opaque")


# --- step 4: a whiteout by hand -------------------------------------------------------------

def check_hide(student, scratch: str) -> str:
    here = stage(scratch, {"etc/notes": "the container's own file\n"})
    hide = function(student, "hide")
    for path in DELETED:
        try:
            call_student(hide, here.upper, path)
        except FileNotFoundError as exc:
            raise CheckFailed(f"hide({here.upper!r}, {path!r}) raised FileNotFoundError "
                              f"({exc.strerror}): the upper dir does not have the directories "
                              "above it yet; make them first (os.makedirs)") from None
    lowers_intact = all(read_file(os.path.join(here.base, name)) == text
                        for name, text in BASE.items())
    if not lowers_intact:
        raise CheckFailed("a file of the base layer changed or is gone: the layers are "
                          "read-only and shared by every container; write only in upper")
    unionfs.mount_overlay(here.dirs)
    merged = here.merged
    for path in DELETED:
        if os.path.lexists(merged + path):
            raise CheckFailed(f"the merged view still shows {path}: " + why_shown(here, path))
    for kept in ("/etc/keep", "/etc/notes", "/usr/share/doc/other", "/var/lib/state"):
        if not os.path.exists(merged + kept):
            raise CheckFailed(f"{kept} disappeared too: hide only the path you are given (a "
                              "whiteout or an opaque mark on a directory above it hides all "
                              "of that directory)")
    return (f"with a 0/0 character device in upper for each of {', '.join(DELETED)}, the "
            "kernel's merged view hides them, while their neighbours (/etc/keep, "
            "/usr/share/doc/other) stay")


def why_shown(here: Stage, path: str) -> str:
    upper_entry = os.path.join(here.upper, path.lstrip("/"))
    tar_style = os.path.join(os.path.dirname(upper_entry), ".wh." + os.path.basename(path))
    if os.path.lexists(tar_style):
        return (f"upper has {'.wh.' + os.path.basename(path)}, the way a layer *tar* writes a "
                "whiteout; overlayfs reads only a character device 0/0 with the file's own name")
    what = describe_entry(here.upper, path)
    if what.startswith("a character"):
        return f"upper has {what} there; a whiteout is device 0/0 (os.makedev(0, 0))"
    if what.startswith("nothing"):
        return "upper has nothing at that path: the whiteout goes at the same path in upper"
    return (f"upper has {what} there, which covers the lower file instead of hiding it: make a "
            "character device (stat.S_IFCHR)")


LAB = Lab(
    directory="04-overlay",
    steps=(
        Step(1, "mount an overlay: the layers, an upper dir and a work dir merged",
             check_mount),
        Step(2, "read the deletions an upper dir records (whiteouts)", check_deletions),
        Step(3, "read the opaque directories of an upper dir", check_opaque),
        Step(4, "hide a file by writing a whiteout by hand", check_hide),
    ),
    workspace=lambda: scratch_workspace("04"),
)
