"""Stage 5: layer tars. A tree round-trips through write_layer_tar and extract_layer, and an
untrusted tar cannot write outside its destination: each threat has a crafted tar of its own.

In every threat test the destination has a sentinel directory next to it; the test checks that
the sentinel (and everything else outside the destination) is exactly as it was.
"""

import errno
import gzip
import io
import json
import os
import random
import shutil
import socket
import stat
import subprocess
import tarfile
import threading
import time
import traceback
import zlib
from pathlib import Path

import pytest

from minidocker import kernel, unionfs
from minidocker.image.layers import LayerError, extract_layer, write_layer_tar
from minidocker.image.streams import WriteBehind
from minidocker.image.tarformat import TarFormatError

MTIME = 1_700_000_000


# --- crafting tars ---------------------------------------------------------------------------

def regular(name: str, data: bytes = b"data\n", mode: int = 0o644, uid: int = 0, gid: int = 0):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid, info.mtime = len(data), mode, uid, gid, MTIME
    return info, data


def special(name: str, kind: bytes, linkname: str = "", mode: int = 0o755,
            device: tuple[int, int] = (0, 0)):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = kind, linkname, mode, MTIME
    info.devmajor, info.devminor = device
    return info, None


def directory(name: str, mode: int = 0o755):
    return special(name, tarfile.DIRTYPE, mode=mode)


def symlink(name: str, target: str):
    return special(name, tarfile.SYMTYPE, linkname=target, mode=0o777)


def hardlink(name: str, target: str):
    return special(name, tarfile.LNKTYPE, linkname=target, mode=0o644)


def tar_of(*members, gzipped: bool = False) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buffer.getvalue()
    return io.BytesIO(gzip.compress(raw, mtime=0) if gzipped else raw)


# --- the destination and its sentinel --------------------------------------------------------

class Box:
    """`dest` to extract into; `sentinel` next to it, holding `victim`."""

    def __init__(self, tmp_path: Path):
        self.top, self.dest, self.sentinel = tmp_path, tmp_path / "dest", tmp_path / "sentinel"
        self.dest.mkdir()
        self.sentinel.mkdir()
        (self.sentinel / "victim").write_text("original\n")
        self.before = self.outside()

    def fill(self, text: str) -> str:
        return text.format(sentinel=self.sentinel, top=self.top.name)

    def outside(self) -> list:
        """Every path outside dest, with its type, mode, owner, links, times and content."""
        seen = []
        for here, dirs, files in os.walk(self.top):
            if Path(here) == self.top:
                dirs.remove("dest")
            for path in [Path(here), *(Path(here) / name for name in sorted(dirs + files))]:
                st = os.lstat(path)
                content = (os.readlink(path) if stat.S_ISLNK(st.st_mode) else
                           path.read_bytes() if stat.S_ISREG(st.st_mode) else None)
                seen.append((str(path), st.st_mode, st.st_uid, st.st_nlink, st.st_mtime_ns,
                             content))
        return sorted(seen, key=str)

    def refuses(self, layer: io.BytesIO, match: str | None = None, **limits) -> LayerError:
        with pytest.raises(LayerError, match=match) as caught:
            extract_layer(layer, self.dest, **limits)
        assert self.outside() == self.before, "something outside dest changed"
        return caught.value


@pytest.fixture
def box(tmp_path) -> Box:
    return Box(tmp_path)


# --- threats ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "./../escape", "/escape",
                                  "{sentinel}/escape"])
def test_dotdot_and_absolute_paths_are_refused(box, name):
    error = box.refuses(tar_of(directory("a/"), regular(box.fill(name))))
    assert "'..'" in str(error) or "absolute" in str(error)


@pytest.mark.parametrize("target, through", [
    ("{sentinel}", "link/pwned"),
    ("../sentinel", "link/pwned"),
    ("../..", "link/{top}/sentinel/pwned"),
    ("../sentinel", "link/newdir/"),
])
def test_a_write_through_a_symlink_is_refused(box, target, through):
    through = box.fill(through)
    member = directory(through) if through.endswith("/") else regular(through)
    error = box.refuses(tar_of(symlink("link", box.fill(target)), member), match="symlink")
    assert "'link'" in str(error)


def test_a_symlink_deeper_in_the_path_is_refused(box):
    layer = tar_of(directory("a/"), directory("a/b/"), symlink("a/b/up", "../../../sentinel"),
                   regular("a/b/up/pwned"))
    box.refuses(layer, match="'a/b/up'")


def test_a_member_replacing_a_symlink_replaces_the_link_itself(box):
    layer = tar_of(symlink("file", f"{box.sentinel}/victim"),
                   regular("file", b"pwned\n", mode=0o777),
                   symlink("dir", str(box.sentinel)), directory("dir/", mode=0o777))
    extract_layer(layer, box.dest)
    assert (box.dest / "file").read_bytes() == b"pwned\n"
    assert not (box.dest / "file").is_symlink()
    assert (box.dest / "dir").is_dir() and not (box.dest / "dir").is_symlink()
    assert box.outside() == box.before  # the victim and the sentinel's mode are unchanged


@pytest.mark.parametrize("links", [
    [hardlink("h", "../sentinel/victim")],
    [hardlink("h", "/etc/passwd")],
    [hardlink("h", "{sentinel}/victim")],
    [symlink("evil", "{sentinel}"), hardlink("h", "evil/victim")],
    [symlink("evil", "../sentinel"), hardlink("h", "evil/victim")],
    [hardlink("h", "not/in/this/layer")],
])
def test_hardlinks_leaving_the_layer_are_refused(box, links):
    for info, _ in links:
        info.linkname = box.fill(info.linkname)
    passwd_links = os.stat("/etc/passwd").st_nlink
    box.refuses(tar_of(*links))
    assert os.stat(box.sentinel / "victim").st_nlink == 1
    assert os.stat("/etc/passwd").st_nlink == passwd_links


def test_a_hardlink_to_a_symlink_links_the_symlink_not_its_target(box):
    extract_layer(tar_of(symlink("evil", f"{box.sentinel}/victim"), hardlink("h", "evil")),
                  box.dest)
    assert os.readlink(box.dest / "h") == f"{box.sentinel}/victim"  # a second name of the link
    assert os.stat(box.sentinel / "victim").st_nlink == 1
    assert box.outside() == box.before


@pytest.mark.parametrize("kind, device", [(tarfile.CHRTYPE, (1, 3)), (tarfile.BLKTYPE, (8, 0)),
                                          (tarfile.CHRTYPE, (0, 0))])
def test_device_nodes_are_skipped_with_a_notice(box, capfd, kind, device):
    skipped = extract_layer(tar_of(directory("dev/"),
                                   special("dev/node", kind, mode=0o666, device=device),
                                   hardlink("dev/again", "dev/node"), regular("etc/kept")),
                            box.dest)
    assert skipped == ["dev/node", "dev/again"]
    assert os.listdir(box.dest / "dev") == []  # no node, and no link to one
    assert (box.dest / "etc" / "kept").read_bytes() == b"data\n"  # the rest of the layer is there
    assert box.outside() == box.before
    notice = capfd.readouterr().err
    assert notice.count("\n") == 1 and "skipped 2 device nodes under /dev" in notice


def test_a_device_node_with_a_bad_name_is_still_refused(box):
    box.refuses(tar_of(special("../node", tarfile.CHRTYPE, mode=0o666, device=(1, 3))),
                match="'..'")


def test_fifos_are_allowed(box):
    extract_layer(tar_of(special("run/pipe", tarfile.FIFOTYPE, mode=0o620)), box.dest)
    st = os.lstat(box.dest / "run" / "pipe")
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o620


def test_setuid_and_setgid_bits_are_stripped(box):
    extract_layer(tar_of(regular("bin/rootshell", mode=0o6755),
                         regular("bin/mine", mode=0o4750, uid=1000, gid=1000),
                         directory("shared/", mode=0o3775)), box.dest)
    for name, wanted in [("bin/rootshell", 0o755), ("bin/mine", 0o750), ("shared", 0o1775)]:
        mode = os.lstat(box.dest / name).st_mode
        assert not mode & (stat.S_ISUID | stat.S_ISGID), name
        assert stat.S_IMODE(mode) == wanted, name  # the rest of the mode stays, sticky too


@pytest.mark.parametrize("name", ["../.wh.victim", ".wh..", ".wh...", ".wh.", "a/.wh...",
                                  ".wh..wh.plnk", "a/.wh..wh..wh.x"])
def test_whiteouts_of_nothing_or_outside_the_root_are_refused(box, name):
    box.refuses(tar_of(directory("a/"), regular(name, b"")))
    assert (box.sentinel / "victim").exists()


def test_a_whiteout_must_be_a_regular_file(box):
    box.refuses(tar_of(symlink(".wh.x", "/etc")), match="regular file")


def test_a_gzip_bomb_stops_at_max_bytes(box):
    bomb = tar_of(regular("zeros", bytes(10 << 20)), gzipped=True)
    assert len(bomb.getvalue()) < 100_000  # 10 MiB of zeros packs small
    box.refuses(bomb, match="bomb", max_bytes=1 << 20)  # refused by the sizes in the headers
    zeros = box.dest / "zeros"
    assert not zeros.exists() or os.lstat(zeros).st_size <= 1 << 20


def test_the_same_layer_within_max_bytes_is_extracted(box):
    extract_layer(tar_of(regular("zeros", bytes(10 << 20)), gzipped=True), box.dest,
                  max_bytes=11 << 20)
    assert os.lstat(box.dest / "zeros").st_size == 10 << 20


def test_too_many_members_are_refused(box):
    layer = tar_of(*(regular(f"f{i}") for i in range(20)))
    box.refuses(layer, match="more than 10 members", max_members=10)


@pytest.mark.parametrize("stream", [b"not a tar at all" * 100,
                                    gzip.compress(tar_of(regular("f")).getvalue(), mtime=0)[:60],
                                    b"\x28\xb5\x2f\xfd" + bytes(100)],
                         ids=["plain-text", "truncated-gzip", "zstd-magic"])
def test_a_stream_that_is_no_layer_is_refused(box, stream):
    box.refuses(io.BytesIO(stream))


# --- the second thread (image/streams.py): its errors surface, it never outlives its block ---

def helper_threads() -> list[str]:
    """The helper threads still alive, once a thread left in a read has had time to end."""
    helpers = [t for t in threading.enumerate() if t.name in ("read-ahead", "write-behind")]
    for thread in helpers:
        thread.join(timeout=10)
    return [t.name for t in helpers if t.is_alive()]


def big_gzip_layer() -> bytes:
    """A layer whose gzip stream is several of the reader's 1 MiB chunks long: random bytes."""
    noise = random.Random(18).randbytes(5 << 20)
    return tar_of(regular("a", noise), regular("b", b"after\n"), gzipped=True).getvalue()


def corrupt(stream: bytes) -> bytes:
    middle = len(stream) // 2
    return stream[:middle] + bytes(b ^ 0x55 for b in stream[middle:middle + 4096]) + \
        stream[middle + 4096:]


@pytest.mark.parametrize("broken", [lambda s: s[:len(s) // 2], corrupt,
                                    lambda s: gzip.compress(gzip.decompress(s)[:3 << 20])],
                         ids=["gzip-cut", "gzip-corrupt", "tar-cut"])
def test_a_broken_stream_read_ahead_is_a_layer_error_and_leaves_no_thread(box, broken):
    error = box.refuses(io.BytesIO(broken(big_gzip_layer())), match="not a valid tar")
    assert isinstance(error.__cause__, (EOFError, zlib.error, gzip.BadGzipFile,
                                        TarFormatError))
    assert helper_threads() == []


def test_a_refusal_stops_the_reader_waiting_on_a_full_queue(box):
    layer = tar_of(regular("../escape"), regular("big", bytes(12 << 20)))  # 12 chunks behind
    box.refuses(layer, match="climb out")
    assert helper_threads() == []


def test_a_refusal_does_not_wait_for_a_stalled_source(box):
    """A bad member, then nothing: the pipe's writer stays open (a client that stopped
    sending). The refusal comes back at once, not when the source gives up (a watchdog closes
    it after 60 s); the reader thread, left in its read, ends as soon as that read returns."""
    member = tar_of(regular("../escape", bytes(2000))).getvalue()[:512 + 2048]
    fds = set(os.listdir("/proc/self/fd"))
    read_end, write_end = os.pipe()
    with open(read_end, "rb", buffering=0) as source, open(write_end, "wb", 0) as writer:
        writer.write(member)
        watchdog = threading.Timer(60, writer.close)
        watchdog.start()
        started = time.monotonic()
        try:
            box.refuses(source, match="climb out")
        finally:
            watchdog.cancel()
        assert time.monotonic() - started < 10, "the refusal waited for the stalled source"
    assert helper_threads() == []
    assert set(os.listdir("/proc/self/fd")) == fds  # the pipe closed, nothing else left open


class FailingSink:
    def __init__(self, after: int):
        self.after, self.written = after, 0

    def write(self, data: bytes) -> int:
        if self.written >= self.after:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.written += len(data)
        return len(data)


def test_a_write_behind_error_is_raised_in_the_writer_as_it_was():
    with pytest.raises(OSError) as caught:
        with WriteBehind(FailingSink(after=2 << 20)) as sink:
            for _ in range(64):  # the error reaches a write or, at the latest, the end
                sink.write(bytes(1 << 20))
    assert caught.value.errno == errno.ENOSPC
    assert helper_threads() == []


def test_an_error_of_the_walk_stops_the_write_behind_thread(tmp_path):
    (tmp_path / ".wh.x").write_text("a file named like a whiteout\n")
    written = io.BytesIO()
    with pytest.raises(LayerError, match="cannot be stored"), WriteBehind(written) as sink:
        write_layer_tar(tmp_path, sink)
    assert helper_threads() == []


def test_write_behind_passes_the_bytes_on_unchanged(tree):
    written = io.BytesIO()
    with WriteBehind(written) as sink:
        write_layer_tar(tree, sink)
    assert written.getvalue() == layer_bytes(tree)


# --- normal content --------------------------------------------------------------------------

def build_tree(root: Path) -> None:
    """A root with every kind of node a layer carries, owners, modes and whole-second mtimes."""
    files = {"bin/tool": (b"#!/bin/sh\necho tool\n", 0o755, 0, 0),
             "etc/shadow": (b"root:*:19000::::::\n", 0o640, 0, 42),
             "etc/caf\u00e9": (b"non-ASCII name\n", 0o644, 0, 0),
             "etc/empty": (b"", 0o600, 0, 0),
             "home/user/notes": (b"mine\n", 0o600, 1000, 1000),
             "var/cache/fresh": (b"after the opaque dir\n", 0o644, 0, 0),
             "lib/blob": (random.Random(0).randbytes(200_000), 0o644, 0, 0),
             "deep/" + "d" * 120: (b"a name longer than ustar's 100 bytes\n", 0o644, 0, 0)}
    for name in ["bin", "etc", "home/user", "lib", "run", "tmp", "var/cache", "deep"]:
        (root / name).mkdir(parents=True)
    for name, (data, mode, uid, gid) in files.items():
        (root / name).write_bytes(data)
        os.chown(root / name, uid, gid)
        os.chmod(root / name, mode)
    os.link(root / "bin/tool", root / "bin/tool-alias")
    os.symlink("../bin/tool", root / "lib/tool")
    os.symlink("/etc/passwd", root / "etc/absolute")
    os.lchown(root / "lib/tool", 1000, 1001)
    os.mkfifo(root / "run/pipe", 0o620)
    os.mknod(root / "etc/gone", stat.S_IFCHR, os.makedev(0, 0))  # overlayfs's whiteout
    os.setxattr(root / "var/cache", "trusted.overlay.opaque", b"y")
    os.chown(root / "home/user", 1000, 1000)
    os.chmod(root / "home/user", 0o700)
    os.chmod(root / "tmp", 0o1777)
    stamp(root)


def stamp(root: Path) -> None:
    paths = sorted(walk(root), reverse=True)
    for i, path in enumerate(paths):  # children before parents: a parent's mtime is last
        os.utime(path, (MTIME + i, MTIME + i), follow_symlinks=False)


def walk(root: Path) -> list[Path]:
    found = []
    for here, dirs, files in os.walk(root):
        found += [Path(here) / name for name in dirs + files]
    return sorted(found)


def manifest(root: Path) -> dict:
    """What a layer must preserve, per path: type, mode, owner, mtime, content, link target,
    the device number of a whiteout, the opaque xattr, and which paths share an inode."""
    result, first_name = {}, {}
    for path in walk(root):
        st = os.lstat(path)
        entry = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode),
                 "uid": st.st_uid, "gid": st.st_gid, "mtime": st.st_mtime_ns}
        if stat.S_ISREG(st.st_mode):
            entry |= {"size": st.st_size, "data": path.read_bytes(),
                      "inode": first_name.setdefault(st.st_ino, path.relative_to(root))}
        elif stat.S_ISLNK(st.st_mode):
            entry |= {"target": os.readlink(path)}
        elif stat.S_ISCHR(st.st_mode):
            entry |= {"rdev": st.st_rdev}
        elif stat.S_ISDIR(st.st_mode):
            entry |= {"opaque": opaque(path)}
        result[str(path.relative_to(root))] = entry
    return result


def opaque(path: Path) -> bytes | None:
    try:
        return os.getxattr(path, "trusted.overlay.opaque")
    except OSError:
        return None


def layer_bytes(source: Path) -> bytes:
    buffer = io.BytesIO()
    write_layer_tar(source, buffer)
    return buffer.getvalue()


def member_names(layer: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        return tar.getnames()


@pytest.fixture
def tree(tmp_path) -> Path:
    build_tree(tmp_path / "src")
    return tmp_path / "src"


@pytest.mark.parametrize("compression", ["plain", "gzip", "zstd"])
def test_a_tree_round_trips(tree, tmp_path, compression):
    layer = layer_bytes(tree)
    if compression == "gzip":
        layer = gzip.compress(layer)
    elif compression == "zstd":
        layer = pytest.importorskip("zstandard").ZstdCompressor().compress(layer)
    (tmp_path / "dest").mkdir()
    extract_layer(io.BytesIO(layer), tmp_path / "dest")
    assert manifest(tmp_path / "dest") == manifest(tree)


def test_a_zstd_bomb_stops_at_max_bytes(box):
    zstandard = pytest.importorskip("zstandard")
    raw = tar_of(regular("zeros", bytes(10 << 20))).getvalue()
    box.refuses(io.BytesIO(zstandard.ZstdCompressor().compress(raw)), match="bomb",
                max_bytes=1 << 20)


def test_whiteouts_become_oci_markers_and_back(tree, tmp_path):
    names = member_names(layer_bytes(tree))
    assert "etc/.wh.gone" in names and "etc/gone" not in names
    assert names.index("etc/.wh.gone") < min(names.index(n) for n in names
                                             if n.startswith("etc/") and n != "etc/.wh.gone")
    assert names[names.index("var/cache") + 1] == "var/cache/.wh..wh..opq"
    (tmp_path / "dest").mkdir()
    extract_layer(io.BytesIO(layer_bytes(tree)), tmp_path / "dest")
    gone = os.lstat(tmp_path / "dest/etc/gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == os.makedev(0, 0)
    assert os.getxattr(tmp_path / "dest/var/cache", "trusted.overlay.opaque") == b"y"


def test_headers_carry_numbers_not_names(tree):
    with tarfile.open(fileobj=io.BytesIO(layer_bytes(tree))) as tar:
        members = tar.getmembers()
    assert all(m.uname == "" and m.gname == "" for m in members)
    assert all(not m.name.startswith(("/", "./")) for m in members)
    assert all("atime" not in m.pax_headers and "ctime" not in m.pax_headers for m in members)
    alias = next(m for m in members if m.name == "bin/tool-alias")
    assert alias.islnk() and alias.linkname == "bin/tool"


def test_the_output_is_deterministic(tree, tmp_path):
    first = layer_bytes(tree)
    assert layer_bytes(tree) == first
    subprocess.run(["cp", "-a", tree, tmp_path / "copy"], check=True)  # new inodes, same metadata
    assert layer_bytes(tmp_path / "copy") == first


def test_the_writer_writes_the_bytes_tarfile_would(tree):
    """The layer writer packs common headers itself and batches its writes; the bytes stay
    those of tarfile's PAX writer (so a layer's diff_id never changes with the writer): with
    a file larger than the writer's 1 MiB block, a device node and numbers that need PAX."""
    from minidocker.image import layers

    (tree / "lib/large").write_bytes(random.Random(1).randbytes(3 * layers.CHUNK + 5))
    os.mknod(tree / "run/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chown(tree / "home/user/notes", 8 ** 7, 1000)  # too large for ustar's octal field
    stamp(tree)
    reference = io.BytesIO()
    with tarfile.open(fileobj=reference, mode="w|", format=tarfile.PAX_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as tar:
        for info, path in reference_members(tree):
            with open(path, "rb") if path else io.BytesIO() as content:
                tar.addfile(info, content if path else None)
    assert layer_bytes(tree) == reference.getvalue()


def test_a_file_sink_gets_the_same_bytes(tree, tmp_path):
    """Into a plain file, a large member's bytes go by sendfile(2): the same tar."""
    from minidocker.image import layers

    (tree / "lib/large").write_bytes(random.Random(1).randbytes(2 * layers.CHUNK + 5))
    with open(tmp_path / "layer.tar", "wb") as out:
        write_layer_tar(tree, out)
    assert (tmp_path / "layer.tar").read_bytes() == layer_bytes(tree)


def reference_members(root: Path, prefix: str = "", first: dict | None = None):
    """The layer's members as tarfile.TarInfo, walked the plain way (the writer's rules in a
    dozen lines): (TarInfo, path of the content or None)."""
    first = {} if first is None else first
    nodes = [(name, os.lstat(root / name)) for name in os.listdir(root)]
    nodes.sort(key=lambda node: (not (stat.S_ISCHR(node[1].st_mode) and not node[1].st_rdev),
                                 os.fsencode(node[0])))
    for name, st in nodes:
        info = tarfile.TarInfo(prefix + name)
        info.mode, info.uid, info.gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = st.st_mtime_ns // 1_000_000_000
        path = None
        if stat.S_ISCHR(st.st_mode) and not st.st_rdev:
            info.name = prefix + ".wh." + name
        elif not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1 and st.st_ino in first:
            info.type, info.linkname = tarfile.LNKTYPE, first[st.st_ino]
        elif stat.S_ISREG(st.st_mode):
            first[st.st_ino] = info.name
            info.size, path = st.st_size, root / name
        elif stat.S_ISLNK(st.st_mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(root / name)
        elif stat.S_ISFIFO(st.st_mode):
            info.type = tarfile.FIFOTYPE
        elif stat.S_ISCHR(st.st_mode):
            info.type = tarfile.CHRTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        if not stat.S_ISDIR(st.st_mode):
            yield info, path
            continue
        info.type = tarfile.DIRTYPE
        yield info, None
        if opaque(root / name) == b"y":
            marker = tarfile.TarInfo(f"{info.name}/.wh..wh..opq")
            for field in ("mode", "uid", "gid", "mtime", "uname", "gname"):
                setattr(marker, field, getattr(info, field))
            yield marker, None
        yield from reference_members(root / name, f"{info.name}/", first)


def test_sockets_are_skipped(tmp_path):
    (tmp_path / "src").mkdir()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "src" / "sock"))
        assert member_names(layer_bytes(tmp_path / "src")) == []


def test_a_file_named_like_a_whiteout_cannot_be_written(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / ".wh.looks-deleted").write_text("")
    with pytest.raises(LayerError, match="rename it"):
        layer_bytes(tmp_path / "src")


def test_a_whiteout_and_its_name_in_one_layer(box):
    extract_layer(tar_of(regular("kept"), regular(".wh.kept", b""),
                         regular(".wh.again", b""), directory("again/")), box.dest)
    assert (box.dest / "kept").read_bytes() == b"data\n"  # a whiteout hides lower layers only
    assert (box.dest / "again").is_dir()
    assert opaque(box.dest / "again") == b"y"  # the lower "again" stays deleted


# --- a real overlay: its upper dir becomes a layer -------------------------------------------

def in_own_mount_namespace(function):
    """Run function() in a forked child that has its own mount namespace; return its result."""
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_fd)
        try:
            kernel.unshare(kernel.CLONE_NEWNS)
            kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
            answer = ["ok", function()]
        except BaseException:
            answer = ["error", traceback.format_exc()]
        with os.fdopen(write_fd, "w") as pipe:
            pipe.write(json.dumps(answer))
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        status, value = json.loads(pipe.read())
    os.waitpid(child, 0)
    assert status == "ok", value
    return value


def view(root: Path) -> dict:
    """What a process in the container would see: names, and file contents or link targets."""
    return {str(p.relative_to(root)): "dir" if p.is_dir() and not p.is_symlink() else
            os.readlink(p) if p.is_symlink() else p.read_text() for p in walk(root)}


def test_an_overlay_upper_dir_becomes_a_layer(tmp_path):
    base = tmp_path / "base"
    for name, text in {"etc/conf": "original\n", "gone": "bye\n", "keep": "kept\n",
                       "data/old": "old\n", "data/sub/older": "older\n"}.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text(text)
    (tmp_path / "layer1").mkdir()
    extract_layer(io.BytesIO(layer_bytes(base)), tmp_path / "layer1")

    dirs = unionfs.OverlayDirs.under(tmp_path / "c1", (str(tmp_path / "layer1"),))

    def change_files():
        unionfs.mount_overlay(dirs)
        merged = Path(dirs.merged)
        (merged / "new").write_text("added\n")
        (merged / "etc/conf").write_text("changed\n")
        (merged / "gone").unlink()
        shutil.rmtree(merged / "data")
        (merged / "data").mkdir()
        (merged / "data/fresh").write_text("recreated\n")
        seen = view(merged)
        kernel.umount2(dirs.merged)
        return seen

    changed = in_own_mount_namespace(change_files)
    assert "data/old" not in changed and changed["data/fresh"] == "recreated\n"

    layer = layer_bytes(Path(dirs.upper))
    names = member_names(layer)
    assert {".wh.gone", "data/.wh..wh..opq", "new", "etc/conf", "data/fresh"} <= set(names)
    assert "keep" not in names and "data/old" not in names  # only the change set

    (tmp_path / "layer2").mkdir()
    extract_layer(io.BytesIO(layer), tmp_path / "layer2")
    stacked = unionfs.OverlayDirs.under(tmp_path / "c2", (str(tmp_path / "layer2"),
                                                          str(tmp_path / "layer1")))

    def look():
        unionfs.mount_overlay(stacked)
        seen = view(Path(stacked.merged))
        kernel.umount2(stacked.merged)
        return seen

    assert in_own_mount_namespace(look) == changed  # the two layers give back the same view


def test_sparse_members_are_refused(tmp_path):
    import subprocess

    source = tmp_path / "src"
    source.mkdir()
    subprocess.run(["truncate", "-s", "200M", str(source / "holes")], check=True)
    archive = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "-cf", str(archive), "-C", str(source), "holes"],
                   check=True)
    dest = tmp_path / "dest"
    dest.mkdir()
    with open(archive, "rb") as f, pytest.raises(LayerError, match="sparse"):
        extract_layer(f, dest, max_bytes=1 << 20)
