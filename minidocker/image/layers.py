"""Stage 5 — layer tars: a directory of changes in, a directory of changes out.

An image layer is a tar of one change set. ``write_layer_tar`` turns a directory (a container's
overlay upper dir, or a whole root fs) into a deterministic tar; ``extract_layer`` turns a layer
tar back into a directory that overlayfs can use as a lower dir. The two whiteout forms meet
here: overlayfs marks a deleted name with a 0/0 character device and an opaque directory with the
xattr ``trusted.overlay.opaque=y``; a tar (OCI image-spec layer.md) says the same with empty
files named ``.wh.<name>`` and ``.wh..wh..opq``.

A layer from a registry is untrusted input: its names are chosen by whoever built it. So the
extractor never hands a member's path to a plain ``open()``: it walks the path one component
at a time from a directory fd of the destination, with ``O_NOFOLLOW`` so that no symlink is
ever followed (openat(2)), and creates each file with ``O_CREAT|O_EXCL``. What it refuses and why:

- ``..`` or an absolute path: the member would land outside the root;
- a path through a symlink (``link -> /etc``, then ``link/passwd``): a write through the link;
- a hard link to a path outside the layer: it would give the image a host file's inode;
- a whiteout naming ``""``, ``.`` or ``..``: it would hide the directory itself or its parent;
- more than ``max_bytes`` expanded or ``max_members`` entries: a gzip bomb fills the disk.
A member that replaces a symlink replaces the link itself (unlink, then create), never its
target; setuid and setgid bits are stripped, so an image cannot smuggle in a root shell.

Char and block devices are **skipped**, with one notice line per layer, as rootless podman and
umoci do; Docker, running as root, creates them. A root fs made by debootstrap holds a dozen
(``/dev/null``, ``/dev/full``, ...), so refusing them would refuse every real base image. A
container could not use them anyway: it gets its own ``/dev`` (a fresh tmpfs with the standard
nodes) and its root is mounted ``nodev``. On the host, though, a ``0666`` node naming the host's
disk would open it for any user who can reach the layer directory. Skipping costs nothing and
removes that door. (A 0/0 char device is no OCI whiteout either: those are ``.wh.`` files.)

The tar format itself (headers, PAX, reading a stream) is in tarformat.py; this module
walks directories and creates files. Both work a directory fd at a time (scandir and openat
on it), so a path is resolved once per directory, not once per file; layers come gzip,
zstd (with the optional ``zstandard`` package) or plain, told apart by their first bytes.

Man pages: openat(2) (O_NOFOLLOW, O_DIRECTORY), mknod(2), linkat(2), fchownat(2),
utimensat(2), xattr(7), tar(5). Kernel: Documentation/filesystems/overlayfs.rst.
Used by: notebooks 04-union-filesystems and 05-images, labs 04-overlay and 05-images.
"""

import errno
import gzip
import os
import stat
import sys
import tarfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NoReturn

from minidocker.errors import MinidockerError
from minidocker.image.streams import ReadAhead
from minidocker.image.tarformat import (
    BLKTYPE,
    BLOCK,
    CHRTYPE,
    DIRTYPE,
    FIFOTYPE,
    LNKTYPE,
    RECORD,
    REGTYPE,
    REGULAR_TYPES,
    SYMTYPE,
    ZEROS,
    Member,
    TarFormatError,
    TarReader,
    ustar_header,
)
from minidocker.unionfs import is_whiteout_stat

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"  # "hide everything below this directory in the lower layers"
OPAQUE_XATTR = "trusted.overlay.opaque"
DEFAULT_MAX_BYTES = 8 << 30  # 8 GiB expanded: larger than any sane layer, smaller than a bomb
DEFAULT_MAX_MEMBERS = 1_000_000
CHUNK = 1 << 20  # the writer's block: large reads, few calls

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
STRIPPED_BITS = stat.S_ISUID | stat.S_ISGID
DEVICE_TYPES = (CHRTYPE, BLKTYPE)


class LayerError(MinidockerError):
    """A layer tar that is broken or unsafe; nothing outside the destination was written."""


# --- Writing: a directory becomes a layer tar -------------------------------------------------

def write_layer_tar(source: Path, fileobj: BinaryIO) -> None:
    """Write `source` (a directory; typically an overlay upper dir, or a whole root fs) as an
    uncompressed PAX tar to fileobj, deterministically: sorted names, relative paths, numeric
    uid/gid with empty uname/gname, mtimes as on disk (whole seconds), no atime/ctime. Overlay
    whiteouts become OCI whiteouts: a char device 0/0 named X -> empty regular file `.wh.X`;
    a directory with xattr trusted.overlay.opaque=y -> the dir entry then `.wh..wh..opq`.
    Within a directory, whiteouts come before their siblings. Hardlinks (same inode within
    source) become tar hardlinks to the first path. Sockets are skipped. Same content ->
    byte-identical output: the very bytes ``tarfile`` writes in PAX format (tests hold the two
    together). Each directory is read with one scandir and each node lstat'ed once; each file
    is opened by name in its directory's fd (openat(2)) and read once."""
    tar = TarWriter(fileobj)
    with _directory(os.fsencode(source)) as fd:
        _write_tree(tar, fd, "", Path(source), {})
    tar.close()


def write_path_tar(parent: Path, base: str, rebase: str, fileobj: BinaryIO) -> None:
    """One entry of ``parent`` (a file, a link, or a directory with everything below it) as
    a tar whose names begin with ``rebase`` instead of ``base`` (``docker cp``'s archive:
    ``/etc`` as ``etc/...``, ``/etc/.`` as ``./...``). The same members as a layer's."""
    tar = TarWriter(fileobj)
    with _directory(os.fsencode(parent)) as fd:
        st = os.stat(base, dir_fd=fd, follow_symlinks=False)
        _write_node(tar, fd, base, rebase, st, Path(parent), {})
    tar.close()


@contextmanager
def _directory(name: bytes | str, dir_fd: int | None = None):
    """An fd of a directory, opened without following a symlink."""
    fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def _write_tree(tar: "TarWriter", dir_fd: int, prefix: str, source: Path,
                first_path: dict) -> None:
    """Every node below the directory `dir_fd`, depth first, named `prefix` + its name. In
    each directory the whiteouts come first (OCI asks for that), then the rest; both sorted
    by the bytes of their names."""
    with os.scandir(dir_fd) as found:
        entries = [(entry.name, entry.stat(follow_symlinks=False)) for entry in found]
    entries.sort(key=_whiteouts_first)
    for name, st in entries:
        _write_node(tar, dir_fd, name, prefix + name, st, source, first_path)


def _whiteouts_first(entry: tuple[str, os.stat_result]) -> tuple[bool, bytes]:
    return not is_whiteout_stat(entry[1]), os.fsencode(entry[0])


def _write_node(tar: "TarWriter", dir_fd: int, name: str, member: str, st: os.stat_result,
                source: Path, first_path: dict) -> None:
    """The member(s) for the node `name` of the directory `dir_fd`: usually one; none for a
    socket (it only lives while its server does); two for an opaque directory."""
    mode = st.st_mode
    if stat.S_ISCHR(mode) and st.st_rdev == 0:  # an overlay whiteout
        parent, _, base = member.rpartition("/")
        tar.add_node(_join(parent, WHITEOUT_PREFIX + base), REGTYPE, st)
        return
    if stat.S_ISSOCK(mode):
        return
    if name.startswith(WHITEOUT_PREFIX):
        raise LayerError(f"{source / member}: names starting with {WHITEOUT_PREFIX!r} mean "
                         "'deleted' in a layer, so this file cannot be stored; rename it")
    if st.st_nlink > 1 and not stat.S_ISDIR(mode):
        inode = (st.st_dev, st.st_ino)
        if inode in first_path:
            tar.add_node(member, LNKTYPE, st, linkname=first_path[inode])
            return
        first_path[inode] = member
    if stat.S_ISREG(mode):
        tar.add_file(member, st, dir_fd, name, source)
    elif stat.S_ISDIR(mode):
        with _directory(name, dir_fd) as fd:
            tar.add_node(member, DIRTYPE, st)
            if _is_opaque(fd):
                tar.add_node(_join(member, OPAQUE_MARKER), REGTYPE, st)
            _write_tree(tar, fd, member + "/", source, first_path)
    elif stat.S_ISLNK(mode):
        tar.add_node(member, SYMTYPE, st, linkname=os.readlink(name, dir_fd=dir_fd))
    elif stat.S_ISFIFO(mode):
        tar.add_node(member, FIFOTYPE, st)
    else:  # a real device node, as in a whole root fs's /dev
        kind = CHRTYPE if stat.S_ISCHR(mode) else BLKTYPE
        tar.add_node(member, kind, st, device=(os.major(st.st_rdev), os.minor(st.st_rdev)))


def _is_opaque(dir_fd: int) -> bool:
    try:
        return os.getxattr(dir_fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


class TarWriter:
    """Tar blocks to a sink: each member's header, its file's bytes, the padding to 512 bytes.
    The small pieces are gathered and written 1 MiB at a time (one call into the hash, the
    compressor and the file instead of three per member); a large file goes through in 1 MiB
    reads. The end: two zero blocks, then zeros to a whole 10 KiB record, as tarfile does."""

    def __init__(self, sink: BinaryIO):
        self.sink, self.pending, self.offset = sink, bytearray(), 0

    def add_node(self, name: str, kind: bytes, st: os.stat_result, size: int = 0,
                 linkname: str = "", device: tuple[int, int] | None = None) -> None:
        """A header that depends only on what is on disk: no user names, no atime or ctime,
        the mtime in whole seconds (as Docker writes them)."""
        self._put(_header(name, kind, st.st_mode, st.st_uid, st.st_gid, size,
                          st.st_mtime_ns // 1_000_000_000, linkname, device))

    def add_file(self, name: str, st: os.stat_result, dir_fd: int, entry: str,
                 source: Path) -> None:
        """A regular file: its header, then exactly st_size bytes (its size when it was
        listed) of `entry` in the directory `dir_fd`, read once."""
        size = st.st_size
        self.add_node(name, REGTYPE, st, size)
        fd = os.open(entry, FILE_FLAGS, dir_fd=dir_fd)
        try:
            self._copy(fd, size, source, name)
        finally:
            os.close(fd)

    def add(self, info: tarfile.TarInfo, path: Path | None) -> None:
        """A member described by a TarInfo (``save``); a regular file's bytes from `path`."""
        self._put(_header(info.name, info.type, info.mode, info.uid, info.gid, info.size,
                          int(info.mtime), info.linkname, None))
        if path is not None:
            fd = os.open(path, FILE_FLAGS)
            try:
                self._copy(fd, info.size, path, "")
            finally:
                os.close(fd)

    def add_bytes(self, info: tarfile.TarInfo, data: bytes) -> None:
        """A regular file member whose bytes are `data`."""
        info.size = len(data)
        self.add(info, None)
        self._put(data)
        self._put(ZEROS[:-len(data) % BLOCK])

    def close(self) -> None:
        self._put(bytes(2 * BLOCK))
        self._put(ZEROS[:-self.offset % RECORD])
        self._flush()

    def _put(self, data: bytes) -> None:
        self.pending += data
        self.offset += len(data)
        if len(self.pending) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.sink.write(self.pending)
            self.pending = bytearray()

    def _copy(self, fd: int, size: int, source: Path, name: str) -> None:
        """`size` bytes of the file `fd` (source/name), then the padding to a whole block."""
        if size < CHUNK:
            data = os.read(fd, size)
            while len(data) < size:
                more = os.read(fd, size - len(data))
                if not more:
                    _shrunk(source, name)
                data += more
            self._put(data)
        else:
            self._flush()
            left = self._send(fd, size, source, name)
            buffer = memoryview(bytearray(CHUNK))
            while left:
                got = os.readv(fd, [buffer[:min(left, CHUNK)]])
                if not got:
                    _shrunk(source, name)
                self.sink.write(buffer[:got])
                left -= got
            self.offset += size
        self._put(ZEROS[:-size % BLOCK])

    def _send(self, fd: int, size: int, source: Path, name: str) -> int:
        """When the sink is a plain file (``save -o``) or a pipe, the kernel copies a large
        file into it (sendfile(2): no trip through Python's memory). Returns what is left for
        the read/write loop: all of it for a sink that hashes or compresses what it gets."""
        try:
            out = self.sink.fileno()  # before flush(): a compressor's flush adds bytes
        except (AttributeError, OSError, ValueError):
            return size
        self.sink.flush()
        left = size
        while left:
            try:
                sent = os.sendfile(out, fd, None, min(left, 1 << 30))
            except OSError:  # a kind of file sendfile cannot handle: read and write it
                return left
            if not sent:
                _shrunk(source, name)
            left -= sent
        return 0


def _shrunk(source: Path, name: str) -> NoReturn:
    raise LayerError(f"{source / name} got shorter while it was being stored; stop what writes to it "
                     "(the container) and try again")


def _header(name: str, kind: bytes, mode: int, uid: int, gid: int, size: int, mtime: int,
            linkname: str, device: tuple[int, int] | None) -> bytes:
    """The header block of one member: packed here when it fits ustar (``ustar_header``);
    else tarfile writes it, with the PAX extended header it needs before it."""
    if kind == DIRTYPE and not name.endswith("/"):
        name += "/"
    if name.isascii() and linkname.isascii():
        block = ustar_header(name.encode(), kind, mode, uid, gid, size, mtime,
                             linkname.encode(), device)
        if block is not None:
            return block
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid = kind, mode & 0o7777, uid, gid
    info.size, info.mtime, info.linkname = size, mtime, linkname
    info.devmajor, info.devminor = device or (0, 0)
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


# --- Extracting: an untrusted layer tar becomes a directory -----------------------------------

def extract_layer(fileobj: BinaryIO, dest: Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
                  max_members: int = DEFAULT_MAX_MEMBERS, whiteouts: bool = True,
                  owner: tuple[int, int] | None = None,
                  keep_kinds: bool = False) -> list[str]:
    """Extract an UNTRUSTED layer tar (plain, gzip or zstd, told apart by magic bytes) into
    `dest` (an empty directory that becomes an overlay lower dir). OCI whiteouts become
    overlay whiteouts: `.wh.X` -> char device 0/0 named X (os.mknod), `.wh..wh..opq` -> xattr
    trusted.overlay.opaque=y on its directory. Safe against every threat in the module
    docstring; refuses with LayerError (and the caller throws `dest` away). Device nodes are
    skipped with a notice on stderr; returns their paths. ``docker cp`` uses it too: with
    ``whiteouts`` False a ``.wh.`` name is a plain file, and ``owner`` (uid, gid) replaces
    the owners written in the tar; with ``keep_kinds`` a file is never replaced by a
    directory either (``noOverwriteDirNonDir``)."""
    stream = _CappedReader(_decompressed(fileobj), max_bytes)
    root_fd = os.open(dest, DIR_FLAGS)
    dir_mtimes: dict[tuple[str, ...], float] = {}  # set last: creating entries changes them
    skipped: list[str] = []
    umask = _umask()
    try:
        # the stream is read (gunzipped, hashed, counted) a chunk ahead in a second thread
        with _Parents(root_fd) as parents, ReadAhead(stream) as ahead:
            tar = TarReader(ahead)
            written = 0
            for count, member in enumerate(tar, start=1):
                if count > max_members:
                    raise LayerError(f"the layer has more than {max_members} members; refused "
                                     "as a possible bomb (raise max_members if you trust it)")
                if member.sparse:  # a few bytes of map can claim terabytes of holes
                    _refuse(member.name, "is a sparse file, which layers may not hold")
                written += member.size if member.type in REGULAR_TYPES else 0
                if owner is not None:
                    member.uid, member.gid = owner
                if written > max_bytes:
                    raise LayerError(f"the layer's files add up to more than {max_bytes} bytes;"
                                     " refused as a possible bomb")
                try:
                    if not _is_device(member, skipped):
                        _extract_member(tar, member, parents, dir_mtimes, umask, whiteouts,
                                        keep_kinds)
                except gzip.BadGzipFile:
                    raise
                except OSError as error:  # no space left, a name too long, ...
                    _refuse(member.name, f"cannot be created ({error.strerror or error})")
        for parts, mtime in dir_mtimes.items():
            with _open_dir(root_fd, parts[:-1], "/".join(parts), create=False) as parent_fd:
                os.utime(parts[-1], (mtime, mtime), dir_fd=parent_fd, follow_symlinks=False)
    except (TarFormatError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise LayerError(f"the layer is not a valid tar (or gzip) stream: {error}") from error
    finally:
        os.close(root_fd)
    if skipped:
        _tell_skipped(skipped)
    return skipped


def _umask() -> int:
    """The process's umask, read in /proc/self/status (umask(2) reads it only by setting
    it); 0o777 when unknown, so that every mode is then set with fchmod."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o777


def _is_device(member: Member, skipped: list[str]) -> bool:
    """Whether `member` is a device node, or a hard link to a skipped one; its path then goes
    to `skipped` (the module docstring says why none is created). A bad name is still refused."""
    if member.type in DEVICE_TYPES or (
            skipped and member.islnk()
            and "/".join(_path_parts(member.linkname, member.name)) in skipped):
        skipped.append("/".join(_path_parts(member.name, member.name)))
        return True
    return False


def _tell_skipped(paths: list[str]) -> None:
    """One line on stderr for all the device nodes a layer held, as umoci and podman say it."""
    folders = sorted({"/" + path.rpartition("/")[0] for path in paths})
    where = ", ".join(folders[:3]) + (", ..." if len(folders) > 3 else "")
    print(f"minidocker: skipped {len(paths)} device node{'s' if len(paths) > 1 else ''} under "
          f"{where} in a layer: a container gets its own /dev, and its root is mounted nodev",
          file=sys.stderr)


def _extract_member(tar: TarReader, member: Member, parents: "_Parents", dir_mtimes: dict,
                    umask: int, whiteouts: bool = True, keep_kinds: bool = False) -> None:
    """Create one member inside the root, after checking it is no threat."""
    parts = _path_parts(member.name, member.name)
    if not parts:  # the layer's "./": dest keeps its own mode
        if not member.isdir():
            _refuse(member.name, "the layer's root must be a directory")
        return
    parent_fd = parents.open(parts[:-1], member.name)
    name = parts[-1]
    if whiteouts and name.startswith(WHITEOUT_PREFIX):
        _apply_whiteout(parent_fd, name, member)
    elif keep_kinds and member.isdir() and _is_non_dir(parent_fd, name):
        _refuse(member.name, "it would replace a file with a directory")
    else:
        _create(tar, member, parents, name, umask)
    if member.isdir():
        dir_mtimes[tuple(parts)] = member.mtime


class _Parents:
    """The fd of the directory the last member went into, kept for the next member: a layer
    lists a directory's entries together, so most members skip the walk from the root. Safe
    to keep: the extractor never removes, renames or replaces a directory (``_make_room``
    refuses a non-directory over one), so the fd names what a fresh walk would find."""

    def __init__(self, root_fd: int):
        self.root_fd, self.parts, self.fd = root_fd, None, -1
        self.new_owner: tuple[int, int] | None = None  # see open()

    def open(self, parts: list[str], member_name: str) -> int:
        if parts != self.parts:
            self.close()
            with _open_dir(self.root_fd, parts, member_name, create=True) as fd:
                self.fd, self.parts = os.dup(fd), parts
            # Who owns a file made here (open(2)): our effective uid and gid -- unless the
            # directory is set-group-ID, whose group the file then gets.
            setgid = os.fstat(self.fd).st_mode & stat.S_ISGID
            self.new_owner = None if setgid else (os.geteuid(), os.getegid())
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        self.parts, self.fd = None, -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _path_parts(path: str, member_name: str) -> list[str]:
    """The components of a member path, refusing any way out of the root by name alone."""
    if "\0" in path:
        _refuse(member_name, "a NUL byte in a path is refused (the kernel would cut it there)")
    if path.startswith("/"):
        _refuse(member_name, f"the absolute path {path!r} is refused: it names a host path")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        _refuse(member_name, f"'..' in {path!r} is refused: it could climb out of the root")
    return parts


@contextmanager
def _open_dir(root_fd: int, parts: list[str], member_name: str, *, create: bool):
    """``with _open_dir(root_fd, ["usr", "bin"], ...) as fd``: an fd of root/usr/bin, opened one
    component at a time with O_NOFOLLOW, so a symlink in the path is refused, never followed.
    With ``create``, missing directories are made (a tar may leave its parents out)."""
    fd = os.dup(root_fd)
    try:
        for depth, part in enumerate(parts):
            missing = create and not _exists(fd, part)
            if missing:
                os.mkdir(part, 0o700, dir_fd=fd)
            try:
                next_fd = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as error:
                _refuse(member_name, f"its path goes through {'/'.join(parts[:depth + 1])!r}, "
                        + _describe(error, fd, part))
            os.close(fd)
            fd = next_fd
            if missing:
                os.fchmod(fd, 0o755)  # what the umask would have changed
        yield fd
    finally:
        os.close(fd)


def _describe(error: OSError, dir_fd: int, name: str) -> str:
    """Why `name` could not be opened as a directory (O_NOFOLLOW and O_DIRECTORY say ELOOP or
    ENOTDIR for a symlink; lstat tells which it was)."""
    try:
        is_symlink = stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        is_symlink = False
    if is_symlink:
        return "a symlink, which could lead out of the root"
    if error.errno == errno.ENOENT:
        return "which does not exist in this layer"
    if error.errno == errno.ENOTDIR:
        return "which is not a directory"
    return f"which cannot be opened ({error.strerror})"


def _apply_whiteout(parent_fd: int, name: str, member: Member) -> None:
    """Translate an OCI whiteout into overlayfs's form, inside the already-resolved parent."""
    if not member.isreg():
        _refuse(member.name, f"a name starting with {WHITEOUT_PREFIX!r} must be a regular file")
    if name == OPAQUE_MARKER:
        os.setxattr(parent_fd, OPAQUE_XATTR, b"y")
        return
    hidden = name[len(WHITEOUT_PREFIX):]
    if hidden in ("", ".", "..") or hidden.startswith(WHITEOUT_PREFIX):
        _refuse(member.name, f"the whiteout {name!r} would hide {hidden!r}: the directory "
                "itself, its parent or another marker")
    if _exists(parent_fd, hidden):
        return  # this layer brings its own `hidden`; the whiteout only hides lower layers
    os.mknod(hidden, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent_fd)  # mode 0, like overlayfs
    _set_owner_and_mtime(parent_fd, hidden, member)


def _create(tar: TarReader, member: Member, parents: _Parents, name: str, umask: int) -> None:
    """Create a regular file, directory, symlink, hard link or FIFO named `name` in the
    directory ``parents.fd``, then give it the member's owner, mode (without setuid/setgid)
    and mtime. Each is created with ``O_EXCL`` (or mkdir, symlink, link: none replaces a
    name): only when the name is taken (EEXIST) does ``_make_room`` look at what is there.
    A new file is created with its permissions, and already has its owner when the member's
    is ours: then neither fchmod nor fchown is needed (GNU tar calls both every time)."""
    parent_fd = parents.fd
    if member.issym():
        _made(lambda: os.symlink(member.linkname, name, dir_fd=parent_fd),  # harmless until
              parent_fd, name, member)                                    # followed
        _set_owner_and_mtime(parent_fd, name, member)
        return
    if member.islnk():
        _create_hardlink(member, parents.root_fd, parent_fd, name)  # shares its target's
        return                                                      # metadata
    regular = member.isreg()
    mode = member.mode & 0o7777 & ~STRIPPED_BITS
    fd, replaced_whiteout = _open_new(member, parent_fd, name, mode)
    try:
        if regular:
            _write_all(fd, tar.data(member))
        elif member.isdir() and replaced_whiteout:  # ".wh.X" then "X/": lower X stays deleted
            os.setxattr(fd, OPAQUE_XATTR, b"y")
        if not regular or (member.uid, member.gid) != parents.new_owner:
            os.fchown(fd, member.uid, member.gid)  # before fchmod: chown may clear mode bits
        if not regular or mode != mode & 0o777 & ~umask:
            os.fchmod(fd, mode)
        if not member.isdir():  # a directory's mtime is set last, after its contents
            os.utime(fd, (member.mtime, member.mtime))
    finally:
        os.close(fd)


def _write_all(fd: int, chunks) -> None:
    """A member's bytes into the new file, as the reader hands them out (views of its 1 MiB
    buffer); a write may take only part of one."""
    for view in chunks:
        while view:
            view = view[os.write(fd, view):]


def _open_new(member: Member, parent_fd: int, name: str, mode: int) -> tuple[int, bool]:
    """Create `name` and return an fd of it, so that the metadata lands on what we created,
    and whether it replaced a whiteout. A regular file is created with its permissions."""
    if member.isreg():
        try:
            return os.open(name, NEW_FILE_FLAGS, mode & 0o777, dir_fd=parent_fd), False
        except FileExistsError:
            replaced = _make_room(parent_fd, name, member)
            return os.open(name, NEW_FILE_FLAGS, mode & 0o777, dir_fd=parent_fd), replaced
    if member.isdir():
        try:
            os.mkdir(name, 0o700, dir_fd=parent_fd)
            replaced = False
        except FileExistsError:  # an existing directory merges with this one
            replaced = _make_room(parent_fd, name, member)
            if not _exists(parent_fd, name):  # it was no directory: removed, now made
                os.mkdir(name, 0o700, dir_fd=parent_fd)
        return os.open(name, DIR_FLAGS, dir_fd=parent_fd), replaced
    if member.isfifo():
        _, replaced = _made(lambda: os.mkfifo(name, 0o600, dir_fd=parent_fd), parent_fd, name,
                            member)
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
        return os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC,
                       dir_fd=parent_fd), replaced
    _refuse(member.name, f"tar member type {member.type!r} is not supported in a layer")


def _made(make, parent_fd: int, name: str, member: Member):
    """``make()`` creates `name`; when the name is taken, make room and call it once more.
    Returns what make returned, and whether a whiteout was replaced."""
    try:
        return make(), False
    except FileExistsError:
        replaced = _make_room(parent_fd, name, member)
        return make(), replaced


def _make_room(parent_fd: int, name: str, member: Member) -> bool:
    """Remove what `name` is now, unless both are directories (then they merge). unlink(2)
    never follows a symlink, so replacing a link replaces the link, not its target. Returns
    whether the old entry was a whiteout."""
    try:
        old = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(old.st_mode):
        if member.isdir():
            return False
        _refuse(member.name, "it replaces a directory of the same layer with a non-directory, "
                "which is ambiguous (the tar is malformed)")
    os.unlink(name, dir_fd=parent_fd)
    return is_whiteout_stat(old)


def _create_hardlink(member: Member, root_fd: int, parent_fd: int, name: str) -> None:
    """Link to a path of this layer, resolved inside the root like any member path. Without
    AT_SYMLINK_FOLLOW, linkat(2) links a symlink itself, never what it points to."""
    target = _path_parts(member.linkname, member.name)
    if not target:
        _refuse(member.name, "a hard link to the layer's root directory is refused")
    with _open_dir(root_fd, target[:-1], member.name, create=False) as target_parent_fd:
        try:
            _made(lambda: os.link(target[-1], name, src_dir_fd=target_parent_fd,
                                  dst_dir_fd=parent_fd, follow_symlinks=False),
                  parent_fd, name, member)
        except OSError as error:
            _refuse(member.name, f"the hard link to {member.linkname!r} failed ({error.strerror}): "
                    "it must name a file earlier in this layer")


def _set_owner_and_mtime(parent_fd: int, name: str, member: Member) -> None:
    """For a symlink or whiteout (no fd to open): lchown and utimensat with AT_SYMLINK_NOFOLLOW."""
    os.chown(name, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)
    os.utime(name, (member.mtime, member.mtime), dir_fd=parent_fd, follow_symlinks=False)


def _is_non_dir(dir_fd: int, name: str) -> bool:
    try:
        return not stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _refuse(member_name: str, threat: str) -> NoReturn:
    error = LayerError(f"layer member {member_name!r}: {threat}. The image is broken or "
                       "malicious; nothing was written outside the destination. Pull it from a "
                       "source you trust")
    error.member, error.threat = member_name, threat  # for docker cp's own words
    raise error


# --- The byte stream: gzip or not, and never more than max_bytes ------------------------------

def _decompressed(fileobj: BinaryIO) -> BinaryIO:
    """The tar stream inside `fileobj`, recognised by its first bytes (not by a media type
    that whoever sent it could have chosen)."""
    head = b""
    while len(head) < 4 and (chunk := fileobj.read(4 - len(head))):
        head += chunk
    stream = _Prefixed(head, fileobj)
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=stream, mode="rb")
    if head == ZSTD_MAGIC:
        return ZstdReader(stream)
    return stream


class ZstdReader:
    """The bytes inside a zstd stream (RFC 8878; OCI's ``tar+zstd`` layers), decompressed by
    the ``zstandard`` package when it is installed (an optional dependency). Its errors
    become LayerError, as a broken gzip stream's do."""

    def __init__(self, stream: BinaryIO):
        try:
            import zstandard
        except ImportError:
            raise LayerError("the layer is zstd-compressed: install the zstandard package "
                             "(pip install zstandard) to read it, or use an image with gzip "
                             "layers") from None
        self.reader = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)
        self.error = zstandard.ZstdError

    def read(self, size: int = -1) -> bytes:
        try:
            return self.reader.read(size)
        except self.error as error:
            raise LayerError(f"the layer's zstd stream is broken: {error}") from None


class _Prefixed:
    """A reader that returns `head` first, then the rest of `rest` (we peeked at `head`)."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self.head, self.rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if self.head:
            size = len(self.head) if size < 0 else size
            data, self.head = self.head[:size], self.head[size:]
            return data
        return self.rest.read(size)


class _CappedReader:
    """Counts the expanded bytes as they stream by, and stops a gzip bomb at `max_bytes`."""

    def __init__(self, stream: BinaryIO, max_bytes: int):
        self.stream, self.max_bytes, self.count = stream, max_bytes, 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size if 0 <= size <= 1 << 20 else 1 << 20)  # never all at once
        self.count += len(data)
        if self.count > self.max_bytes:
            raise LayerError(f"the layer expands to more than {self.max_bytes} bytes; refused "
                             "as a possible gzip bomb (raise max_bytes if you trust it)")
        return data
