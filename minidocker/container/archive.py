"""Stage 6 — ``docker cp``: a path of a container's root as a tar, and a tar into it.

The container's files are reached the way the container itself reaches them, never by a path
string on the host. A forked child enters the container's root first — the mount namespace of
a running container (setns(2): its root and working directory become the container's), or,
for a stopped one, a private mount namespace with the container's overlay and volumes mounted
and chroot(2) into it — and only then resolves the path. Every ``..`` and every symlink,
absolute or not, is then resolved by the kernel inside that root: there is no way out to
check for, so no check can be raced.

That is the lesson of two CVEs of ``docker cp``:

* CVE-2018-15664: dockerd resolved the path on the host (``FollowSymlinkInScope``) and used it
  a moment later; a container that swapped a directory for a symlink to ``/`` in between had
  the daemon read or write the host's files. Here nothing is resolved outside the root.
* CVE-2019-14271: ``docker-tar``, chrooted into the container, loaded ``libnss_*.so`` from the
  *container's* ``/lib`` when it looked up user names, running the container's code as root on
  the host. Here the child has imported all it needs before it enters, imports nothing after
  (``sys.path`` is emptied), and writes and reads numeric owners only — no passwd lookup, so no
  NSS library is ever loaded.

A tar coming in is untrusted too: it is extracted by the layer extractor (image/layers.py,
openat(2) with ``O_NOFOLLOW`` one component at a time, so a member cannot write through a
symlink it or the container made, nor name ``..`` or an absolute path), without whiteouts,
its owners replaced by root's unless ``copyUIDGID``, as Docker does.

Docker's semantics, as the Engine API and the docker CLI split them:

* ``stat_path`` (``HEAD /containers/{id}/archive``): name, size, mode (as Go's FileMode bits),
  mtime and the link target of a path, its last component not followed (``/etc/`` or
  ``/etc/.`` follow it) — the ``X-Docker-Container-Path-Stat`` header;
* ``archive_path`` (``GET``): the tar of that path, its names starting with the path's base
  name (``hostname``, ``etc/...``, or ``./...`` for ``/etc/.``);
* ``extract_archive`` (``PUT``): the tar unpacked into a directory that must exist;
* ``copy_from``/``copy_to``: what the CLI adds (``minidocker cp``): a file onto a file or into
  a directory, a directory to a new name, ``SRC/.`` for the contents, a trailing ``/`` asking
  for a directory that exists.

Man pages: setns(2), chroot(2), openat(2), path_resolution(7), tar(5), nsswitch.conf(5).
Spec: Docker Engine API v1.50 ("ContainerArchive", "PutContainerArchive",
"ContainerArchiveInfo"); ``docker cp --help``. Model: moby ``daemon/archive.go``,
docker/cli ``cli/command/container/cp.go``.
"""

import base64
import json
import os
import stat
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from minidocker import kernel, localdriver, namespaces, rootfs, unionfs, volumes
from minidocker.container import records
from minidocker.container.lifecycle import ACTIVE
from minidocker.errors import Conflict, MinidockerError, NotFound
from minidocker.image.layers import LayerError, extract_layer, write_path_tar

# Go's os.FileMode bits, which the docker CLI reads from the stat header
GO_MODE = ((stat.S_ISDIR, 1 << 31), (stat.S_ISLNK, 1 << 27), (stat.S_ISBLK, 1 << 26),
           (stat.S_ISFIFO, 1 << 25), (stat.S_ISSOCK, 1 << 24), (stat.S_ISCHR, (1 << 26) | (1 << 21)))
GO_SETUID, GO_SETGID, GO_STICKY = 1 << 23, 1 << 22, 1 << 20
MODE_DIR = 1 << 31


@dataclass
class PathStat:
    """``ContainerPathStat``: what ``docker cp`` learns of a path before copying."""

    name: str
    size: int
    mode: int  # Go's FileMode: permission bits plus type bits (1<<31 directory, ...)
    mtime: str  # RFC 3339
    linkTarget: str  # noqa: N815 (Docker's JSON name)

    @property
    def is_dir(self) -> bool:
        return bool(self.mode & MODE_DIR)

    def header(self) -> str:
        """The ``X-Docker-Container-Path-Stat`` header: base64 of the JSON."""
        return base64.b64encode(json.dumps(asdict(self)).encode()).decode()


# --- the engine's three operations ----------------------------------------------------------------

def stat_path(record: records.ContainerRecord, path: str) -> PathStat:
    """``HEAD /containers/{id}/archive?path=``."""
    return PathStat(**_in_root(record, "stat", _stat_in_root, (_absolute(path),)))


def archive_path(record: records.ContainerRecord, path: str, output: BinaryIO,
                 rebase: str | None = None) -> PathStat:
    """Write the tar of ``path`` to ``output`` (a file or pipe with a fileno); its names
    begin with ``rebase`` (default: the path's base name, ``.`` for ``DIR/.``)."""
    output.flush()
    return PathStat(**_in_root(record, "read", _tar_in_root,
                               (_absolute(path), output.fileno(), rebase), output.fileno()))


def extract_archive(record: records.ContainerRecord, path: str, source: BinaryIO,
                    copy_uid_gid: bool = False, no_overwrite_dir_non_dir: bool = False) -> None:
    """Unpack the tar read from ``source`` into the directory ``path`` of the container."""
    if record.HostConfig.ReadonlyRootfs:
        raise Conflict(f"container rootfs is marked read-only: cannot copy into {record.Name}")
    owner = None if copy_uid_gid else container_root(record)
    _in_root(record, "write", _extract_in_root,
             (_absolute(path), source.fileno(), owner, no_overwrite_dir_non_dir),
             source.fileno())


def container_root(record: records.ContainerRecord) -> tuple[int, int]:
    """Who root *inside* the container is on the host: 0, or with ``--userns private`` the
    first id of its map, so a copied file belongs to its root, not to ``nobody``."""
    idmap = record.HostConfig.UsernsMap if record.HostConfig.UsernsMode.is_private else None
    root = idmap.outside - idmap.inside if idmap else 0
    return root, root


def _absolute(path: str) -> str:
    if not path:
        raise MinidockerError("give a path inside the container (e.g. /etc/hostname)")
    if "\0" in path:
        raise MinidockerError("a path may not contain a NUL byte")
    return path if path.startswith("/") else "/" + path


# --- the child: into the container's root, then the work -------------------------------------

class Refused(Exception):
    """A request the child refuses: a missing path (``not_found``) or a bad one."""

    def __init__(self, message: str, not_found: bool = False):
        super().__init__(message)
        self.not_found = not_found


def _in_root(record: records.ContainerRecord, verb: str, work, args: tuple, keep_fd: int = -1):
    """``work(*args)`` in a child inside the container's root, which keeps only ``keep_fd``
    of our fds; what it refuses comes back as data (an exception does not cross the fork)
    and is raised here as the engine's error."""
    running = record.status in ACTIVE and record.pid1_alive()  # else its files as stopped
    result = namespaces.in_child(f"{verb} files of container {record.Name}", _enter_and_work,
                                 running, record, work, args, keep_fd)
    if isinstance(result, dict) and "refused" in result:
        error = NotFound if result["not_found"] else MinidockerError
        raise error(f"{result['refused']} (container {record.Name})")
    return result


def _enter_and_work(report: namespaces.Report, running: bool,
                    record: records.ContainerRecord, work, args: tuple, keep_fd: int):
    # Nothing of ours goes inside: a daemon's sockets, and the read end of the very pipe we
    # write a tar to (held here, it would keep us from ever seeing the reader go).
    namespaces.close_other_fds({report.fd, keep_fd} - {-1})
    if running:
        report.step("join the container's mount namespace")
        namespaces.join(record.State["Pid"], ["mnt"])  # its root and cwd become the container's
    else:
        _mount_stopped(report, record)
    sys.path[:] = []  # CVE-2019-14271: nothing of the container's files is ever imported
    report.step("work inside the container's root")
    try:
        return work(*args)
    except Refused as refused:
        return {"refused": str(refused), "not_found": refused.not_found}


def _mount_stopped(report: namespaces.Report, record: records.ContainerRecord) -> None:
    """A private mount namespace with the container's root as it would run: overlay (with
    its init layer), volumes and binds; then chroot(2) into it."""
    report.step("unshare the mount namespace")
    kernel.unshare(kernel.CLONE_NEWNS)  # the mounts live and die with this child
    rootfs.make_mounts_private()
    lower = list(record.Config.LowerDirs)
    if (record.directory / "init").is_dir():
        lower.insert(0, str(record.directory / "init"))
    dirs = unionfs.OverlayDirs.under(record.directory, tuple(lower))
    report.step("mount the container's root")
    unionfs.mount_overlay(dirs)
    report.step("mount its volumes")
    # a tmpfs volume that no running container holds: one of this namespace's own, gone with
    # it (Docker's cp mounts it and unmounts it again), never the plain _data under it
    for volume in volumes.driver_mounted(record.Mounts):
        localdriver.mount(volume.Name, volume.options, volume.Mountpoint)
    volumes.mount_all([volumes.Mount.from_dict(m) for m in record.Mounts], dirs.merged)
    report.step("chroot into it")
    os.chroot(dirs.merged)
    os.chdir("/")


def _split(path: str) -> tuple[str, str]:
    """moby's ``ResolvePath``: the directory part (followed), the base (not followed, unless
    the path ends in ``/`` or ``/.``)."""
    if path.endswith("/") or path.endswith("/."):
        return path, "."
    directory, _, base = path.rpartition("/")
    return directory or "/", base


def _stat_in_root(path: str) -> dict:
    directory, base = _split(path)
    try:
        st = os.lstat(os.path.join(directory, base))
    except (FileNotFoundError, NotADirectoryError):
        raise Refused(f"Could not find the file {path} in container", not_found=True) from None
    target = ""
    if stat.S_ISLNK(st.st_mode):  # where it leads, resolved inside the root
        target = os.path.realpath(os.path.join(directory, base))
    name = os.path.basename(path.rstrip("/")) or "/" if not path.endswith("/.") else "."
    return asdict(PathStat(name, st.st_size, go_mode(st.st_mode), rfc3339(st.st_mtime_ns),
                           target))


def _tar_in_root(path: str, output: int, rebase: str | None) -> dict:
    found = _stat_in_root(path)
    directory, base = _split(path)
    resolved = os.path.realpath(os.path.join(directory, base)) if base == "." else \
        os.path.join(os.path.realpath(directory), base)
    parent, source = os.path.split(resolved) if resolved != "/" else ("/", ".")
    if rebase is None:
        rebase = "." if path.endswith("/.") else (os.path.basename(path.rstrip("/")) or ".")
    with os.fdopen(os.dup(output), "wb") as out:
        write_path_tar(Path(parent), source or ".", rebase, out)
    return found


def _extract_in_root(path: str, source: int, owner: tuple[int, int] | None,
                     no_overwrite_dir_non_dir: bool) -> None:
    resolved = os.path.realpath(path)
    if not os.path.isdir(resolved):
        if not os.path.lexists(resolved):
            raise Refused(f"Could not find the file {path} in container", not_found=True)
        raise Refused(f"extraction point is not a directory: {path}")
    with os.fdopen(os.dup(source), "rb") as tar_stream:
        try:
            extract_layer(tar_stream, Path(resolved), whiteouts=False, owner=owner,
                          keep_kinds=no_overwrite_dir_non_dir)
        except LayerError as exc:
            if hasattr(exc, "threat"):
                raise Refused(f"refused archive member {exc.member!r}: {exc.threat}; "
                              "nothing was written outside the container") from None
            raise Refused(str(exc).replace("layer", "archive")) from None


def go_mode(mode: int) -> int:
    """A Linux st_mode as Go's FileMode (what ``docker cp`` decodes)."""
    bits = stat.S_IMODE(mode) & 0o777
    for test, bit in GO_MODE:
        if test(mode):
            bits |= bit
            break
    bits |= GO_SETUID if mode & stat.S_ISUID else 0
    bits |= GO_SETGID if mode & stat.S_ISGID else 0
    return bits | (GO_STICKY if mode & stat.S_ISVTX else 0)


def rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- what the CLI adds: docker cp's rules on the host's side ------------------------------------

def copy_from(record: records.ContainerRecord, source: str, destination: str,
              keep_owners: bool = False, follow_link: bool = False) -> None:
    """``cp [-a] [-L] CONTAINER:SRC DEST`` (DEST ``-``: the tar to stdout). The container's
    files are untrusted on the host too: the same extractor unpacks them, owned by us unless
    ``keep_owners`` (``-a``). With ``follow_link`` a symlink SRC is copied as what it leads to
    (resolved inside the container), under its own name."""
    if destination == "-":
        archive_path(record, source, sys.stdout.buffer)
        return
    found = stat_path(record, source)
    name = source
    if follow_link and found.linkTarget:
        source, found = found.linkTarget, stat_path(record, found.linkTarget)
    into, rebase = _destination(Path(destination).is_dir(), Path(destination).exists(),
                                found.is_dir, name, destination)
    if not Path(into).is_dir():
        raise NotFound(f"destination directory {into} does not exist")
    with tempfile.TemporaryFile() as tar:
        archive_path(record, source, tar, rebase)
        tar.seek(0)
        try:  # the host's own directory, its links followed (/tmp/link/): the root to fill
            extract_layer(tar, Path(os.path.realpath(into)), whiteouts=False,
                          owner=None if keep_owners else (os.getuid(), os.getgid()))
        except LayerError as exc:
            raise MinidockerError(f"refused the container's archive: {exc}") from None


def copy_to(record: records.ContainerRecord, source: str, destination: str,
            keep_owners: bool = False, follow_link: bool = False) -> None:
    """``cp [-a] [-L] SRC CONTAINER:DEST``: the host's file or directory packed under the name
    it must have, then unpacked into the container's directory that receives it (owned by
    root there, unless ``keep_owners``)."""
    contents = os.path.basename(source.rstrip("/")) in (".", "")  # SRC/., . or /: what it holds
    src = _host_source(source, contents)
    if not src.exists() and not src.is_symlink():
        raise NotFound(f"no such file or directory: {source}")
    destination = _absolute(destination)
    try:
        found = stat_path(record, destination)
    except NotFound:
        found = None
    into, rebase = _destination(found is not None and found.is_dir, found is not None,
                                src.is_dir(), f"{src}/." if contents else str(src), destination)
    if follow_link and src.is_symlink():
        src = src.resolve()
    with tempfile.TemporaryFile() as tar:
        write_path_tar(src if contents else src.parent, "." if contents else src.name,
                       rebase, tar)
        tar.seek(0)
        extract_archive(record, into, tar, copy_uid_gid=keep_owners,
                        no_overwrite_dir_non_dir=True)


def _host_source(source: str, contents: bool) -> Path:
    """The host's own path, as docker's ``ResolveHostSourcePath``: absolute (``.`` and
    ``DIR/..`` go by their own names), the links of its directories followed; its last name
    is kept as it is (a link is copied as a link, unless ``-L``) — but ``SRC/.`` is what the
    directory SRC leads to holds."""
    absolute = os.path.abspath(source)
    if contents:
        return Path(os.path.realpath(absolute))
    return Path(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))


def _destination(is_dir: bool, exists: bool, source_is_dir: bool, source: str,
                 destination: str) -> tuple[str, str]:
    """docker cp's rules: the directory the copy lands in, and the name its top gets.

    * DEST is a directory: SRC goes inside under its own name (``SRC/.``: its contents);
    * DEST is a file: a file replaces it; a directory cannot;
    * DEST does not exist: SRC is copied to that name (its parent must exist), unless DEST
      ends with ``/`` and SRC is a file (a directory that is not there)."""
    own_name = "." if source.endswith("/.") else os.path.basename(source.rstrip("/")) or "."
    if is_dir:
        return destination, own_name
    if exists and source_is_dir:
        raise MinidockerError(f"cannot copy a directory to a file: {destination}")
    if not exists and destination.endswith("/") and not source_is_dir:
        raise NotFound(f"destination directory {destination} must exist")
    parent, _, name = destination.rstrip("/").rpartition("/")
    if not destination.startswith("/") and not parent:
        parent = "."
    return parent or "/", name
