"""COPY and ADD: files from the build context (or another stage) into the image's next layer.

The classic builder does a COPY the way it does a RUN, through a container: it creates one on
the image so far, puts the files into its root, and commits the container's upper dir as the
layer. Here too: ``copy_into`` runs in a child process with its own mount namespace, mounts the
container's overlay (the image's layers and the empty upper dir) and copies; the upper dir then
holds exactly the new files, with the parent directories overlayfs copied up, and ``commit``
turns it into the layer (container/commit.py).

Paths name things inside a root the image chose, so they are resolved *inside* that root: a
symlink in the path is followed as the container would follow it, ``/`` and ``..`` stop at
the root (``resolve_in_root``, Docker's ``FollowSymlinkInScope``). ``COPY x /bin/`` on an image
whose ``/bin`` links to ``usr/bin`` writes ``/usr/bin/x``, never the host's ``/bin``.

Docker's rules, as the reference states them: a directory source copies its *contents*; a
destination ending in ``/`` (or an existing directory) receives files under their own names;
several sources need a directory destination; new files belong to root (``--chown`` says
otherwise, a user without a group means the same number as group) and keep their mode unless
``--chmod``; ADD unpacks a local tar archive (plain, gzip, bzip2, xz) into the destination,
keeping the owners written in it — through the layer extractor, with its safety rules.

Spec: moby/buildkit frontend/dockerfile/docs/reference.md ("COPY", "ADD");
moby/sys symlink.FollowSymlinkInScope. Man pages: mount(2), overlay, path_resolution(7).
Used by: the builder, notebook 10-builds.
"""

import bz2
import lzma
import os
import shutil
import stat
import tarfile
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from minidocker import kernel, namespaces, rootfs, unionfs
from minidocker.errors import MinidockerError
from minidocker.image.layers import extract_layer
from minidocker.security.users import resolve_user

MAX_SYMLINKS = 40  # as the kernel's path walk (path_resolution(7))


def resolve_in_root(root: Path, path: str, follow_last: bool = True) -> Path:
    """``path`` as a process chrooted in ``root`` would reach it: each symlink is read and
    followed, an absolute target starting again at ``root``, ``..`` never above it."""
    parts = deque(path.split("/"))
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if candidate.is_symlink() and (parts or follow_last):
            links += 1
            if links > MAX_SYMLINKS:
                raise MinidockerError(f"too many levels of symbolic links in {path!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts.extendleft(reversed(target.split("/")))
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


@dataclass
class CopyPlan:
    """One COPY/ADD, with everything named: paths relative to the source root, the
    destination as an absolute path in the image."""

    sources: list[str]  # relative to the source root ("." is the whole root)
    dest: str
    dest_is_dir: bool
    chown: str = ""
    chmod: int | None = None
    inline: list[tuple[str, str]] = field(default_factory=list)  # (name, content): heredocs
    unpack: bool = False  # ADD: local archives are extracted


def copy_into(dirs: unionfs.OverlayDirs, source_root: str, source_layers: list[str],
              plan: CopyPlan) -> None:
    """Copy the plan's files into the container's overlay (``dirs``), in a child with its
    own mount namespace. ``source_layers``: the layers of a ``--from`` image, mounted
    read-only as its root; otherwise ``source_root`` is a directory (the context)."""
    namespaces.in_child("copy the files", _copy_in_child, dirs, source_root, source_layers,
                        plan)


def _copy_in_child(report: namespaces.Report, dirs: unionfs.OverlayDirs, source_root: str,
                   source_layers: list[str], plan: CopyPlan) -> None:
    report.step("unshare the mount namespace")
    kernel.unshare(kernel.CLONE_NEWNS)  # the mounts live and die with this child
    rootfs.make_mounts_private()
    scratch = Path(dirs.upper).parent
    with tempfile.TemporaryDirectory(dir=scratch) as empty, \
            tempfile.TemporaryDirectory(dir=scratch) as source_mount:
        report.step("mount the image's root")
        # overlayfs needs one lower dir at least (FROM scratch has none), two without an upper
        unionfs.mount_overlay(unionfs.OverlayDirs((*dirs.lower, empty), dirs.upper, dirs.work,
                                                  dirs.merged))
        if source_layers:
            report.step("mount the source stage's root")
            lower = ":".join(unionfs.escape(d) for d in (*source_layers, empty))
            kernel.mount("overlay", source_mount, "overlay", kernel.MS_RDONLY,
                         f"lowerdir={lower}")
            source_root = source_mount
        report.step("copy")
        copy_files(Path(dirs.merged), Path(source_root), plan)
        if source_layers:  # before the temporary directory is cleaned up: not its files
            kernel.umount2(source_mount, kernel.MNT_DETACH)


def copy_files(root: Path, source_root: Path, plan: CopyPlan) -> None:
    """The copy itself, into the mounted root: resolve, make the destination, copy, own."""
    owner = chown_ids(root, plan.chown)
    target = resolve_in_root(root, plan.dest)
    into_dir = plan.dest_is_dir or target.is_dir()
    make_dirs(root, target if into_dir else target.parent, owner)
    for relative in plan.sources:
        source = resolve_in_root(source_root, relative, follow_last=relative != ".")
        if plan.unpack and source.is_file() and tarfile.is_tarfile(source):
            unpack_archive(source, target)
            continue
        into = target / source.name if into_dir and not source.is_dir() else target
        if os.path.isdir(source):
            copy_tree(source, into, owner, plan.chmod)
        else:
            copy_one(source, into, owner, plan.chmod)
    for name, content in plan.inline:
        path = target / name if into_dir else target
        path.unlink(missing_ok=True)
        path.write_text(content)
        set_metadata(path, owner, 0o644 if plan.chmod is None else plan.chmod)


def chown_ids(root: Path, chown: str) -> tuple[int, int]:
    """``--chown=user[:group]`` as numbers, from the image's /etc/passwd and /etc/group; no
    group: the same number as the user's (Docker's rule); no flag: root."""
    if not chown:
        return 0, 0
    user = resolve_user(chown, root=str(root))
    return user.uid, user.gid if ":" in chown else user.uid


def make_dirs(root: Path, directory: Path, owner: tuple[int, int]) -> None:
    """Create ``directory`` (already resolved in ``root``) and its missing parents, 0755,
    owned by the copy's owner."""
    missing = []
    while not os.path.lexists(directory) and directory != root:
        missing.append(directory)
        directory = directory.parent
    for folder in reversed(missing):
        os.mkdir(folder, 0o755)
        os.lchown(folder, *owner)
    if not os.path.isdir(missing[0] if missing else directory):
        raise MinidockerError(f"cannot copy into {directory.relative_to(root)}: not a "
                              "directory in the image")


def copy_one(source: Path, target: Path, owner: tuple[int, int], chmod: int | None) -> None:
    """One file, symlink or FIFO; what was at ``target`` is replaced (a directory refused)."""
    if target.is_dir() and not target.is_symlink():
        raise MinidockerError(f"cannot replace directory /{target.name} with a file")
    if os.path.lexists(target):
        target.unlink()
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    elif stat.S_ISFIFO(os.lstat(source).st_mode):
        os.mkfifo(target)
    else:
        shutil.copyfile(source, target, follow_symlinks=False)
        copy_mode_and_mtime(source, target)
    set_metadata(target, owner, chmod)


def copy_tree(source: Path, target: Path, owner: tuple[int, int], chmod: int | None) -> None:
    """The *contents* of ``source`` into the directory ``target`` (merged with what is there)."""
    if not target.is_dir():
        if os.path.lexists(target):
            target.unlink()
        target.mkdir()
        copy_mode_and_mtime(source, target)
        set_metadata(target, owner, chmod)
    for entry in sorted(os.listdir(source)):
        path = source / entry
        if path.is_dir() and not path.is_symlink():
            copy_tree(path, target / entry, owner, chmod)
        else:
            copy_one(path, target / entry, owner, chmod)


def copy_mode_and_mtime(source: Path, target: Path) -> None:
    """The mode and mtime of the source (no xattrs: a layer's ``trusted.overlay.*`` marks
    belong to its own overlay, and the copy's owner is set apart)."""
    st = os.lstat(source)
    os.chmod(target, stat.S_IMODE(st.st_mode))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def set_metadata(path: Path, owner: tuple[int, int], chmod: int | None) -> None:
    os.lchown(path, *owner)  # before chmod: chown(2) may clear setuid bits
    if chmod is not None and not path.is_symlink():
        os.chmod(path, chmod)


def unpack_archive(archive: Path, target: Path) -> None:
    """ADD's local archive: its files go under ``target`` with the layer extractor's rules
    (no ``..``, no writes through symlinks, a size cap), keeping the owners written in it."""
    with open(archive, "rb") as head:
        magic = head.read(6)
    opener = bz2.open if magic.startswith(b"BZh") else \
        lzma.open if magic.startswith(b"\xfd7zXZ\x00") else open
    if not target.is_dir():
        target.mkdir(parents=True)
    with opener(archive, "rb") as stream:
        extract_layer(stream, target)
