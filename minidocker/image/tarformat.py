"""Stage 5 — the tar format itself: 512-byte headers, then the bytes, padded to 512.

A tar is a sequence of members; each is one header block, then the file's bytes rounded up to
a whole block. The header is fixed fields of ASCII octal numbers and NUL-padded names
(POSIX ustar, tar(5)):

    offset  size  field            offset  size  field
         0   100  name                257     6  magic "ustar\\0"
       100     8  mode (octal)        263     2  version "00"
       108     8  uid, 116 gid        265    64  uname, gname (32 each)
       124    12  size (octal)        329    16  devmajor, devminor
       136    12  mtime (octal)       345   155  prefix (a name's leading directories)
       148     8  checksum            157   100  linkname (at 157, after the type at 156)

The checksum is the sum of the header's bytes, its own field counted as eight spaces. What
does not fit (a name over 100 bytes, a uid over 0o7777777, a non-ASCII name) goes into a PAX
extended header (type ``x``, POSIX.1-2001): a member of its own whose bytes are records
``"<length> <key>=<value>\\n"`` that apply to the member after it. GNU tar's older way says the
same with ``L`` (long name) and ``K`` (long link name) members. Two zero blocks end the tar.

``ustar_header`` packs the common member's header; layers.py writes everything else through
``tarfile``. ``TarReader`` reads members from a stream, a header at a time, in large reads,
and hands a regular file's bytes out as views of its buffer (no copy, no object per block).
It checks every header's checksum and caps what it keeps in memory; the layer extractor
(layers.py) checks what the members *say* (names, links, sizes).

Man pages: tar(5); POSIX pax(1) "pax Interchange Format". Used by: image/layers.py (layers,
``save``, ``docker cp``), notebook 05-images.
"""

import struct
import zlib
from typing import BinaryIO

BLOCK = 512
RECORD = 20 * BLOCK  # tar pads its output to whole 10 KiB records, as tarfile does
ZEROS = bytes(RECORD)
ZERO_BLOCK = bytes(BLOCK)
POSIX_MAGIC = b"ustar\x0000"
OCTAL_7, OCTAL_11 = 8 ** 7, 8 ** 11  # the largest numbers a ustar field holds, plus one
MAX_EXTENDED = 1 << 20  # a PAX or GNU long-name member is kept in memory: cap it

REGTYPE, AREGTYPE, CONTTYPE = b"0", b"\0", b"7"  # a regular file (old, new, contiguous)
LNKTYPE, SYMTYPE, CHRTYPE, BLKTYPE, DIRTYPE, FIFOTYPE = b"1", b"2", b"3", b"4", b"5", b"6"
PAX_LOCAL, PAX_GLOBAL = b"x", b"g"
GNU_LONGNAME, GNU_LONGLINK, GNU_SPARSE = b"L", b"K", b"S"
REGULAR_TYPES = (REGTYPE, AREGTYPE, CONTTYPE)

# name, mode, uid, gid, size, mtime, checksum, type, linkname, magic, uname, gname,
# devmajor, devminor, prefix: the fields of a header block, in order
HEADER = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s")


class TarFormatError(ValueError):
    """A stream that is not a tar, or is cut short; the message says where."""


def checksum(block: bytes) -> int:
    """The sum of a header's bytes with its checksum field counted as spaces."""
    return byte_sum(block) - (zlib.adler32(block[148:156]) & 0xFFFF) + 1 + 8 * 32


def byte_sum(block: bytes) -> int:
    """The sum of a block's 512 bytes, in C: zlib's adler32 keeps 1 + the sum modulo 65521 in
    its low 16 bits, and a 256-byte half sums to at most 65280, so each half's comes out exact."""
    return (zlib.adler32(block[:256]) & 0xFFFF) + (zlib.adler32(block[256:]) & 0xFFFF) - 2


def ustar_header(name: bytes, kind: bytes, mode: int, uid: int, gid: int, size: int,
                 mtime: int, linkname: bytes = b"", device: tuple[int, int] | None = None
                 ) -> bytes | None:
    """The 512-byte header of a member whose fields all fit ustar (names of at most 100
    bytes, numbers within their octal fields); None when one does not (then the member needs
    a PAX header). No user or group names: ids are numeric. The very bytes tarfile writes."""
    if not (len(name) <= 100 and len(linkname) <= 100 and 0 <= uid < OCTAL_7
            and 0 <= gid < OCTAL_7 and 0 <= size < OCTAL_11 and 0 <= mtime < OCTAL_11):
        return None
    if device is not None and max(device) >= OCTAL_7:
        return None
    numbers = b"%07o\0%07o\0%07o\0%011o\0%011o\0" % (mode & 0o7777, uid, gid, size, mtime)
    devices = b"%07o\0%07o\0" % device if device is not None else bytes(16)
    block = b"".join((name.ljust(100, b"\0"), numbers, b" " * 8, kind,
                      linkname.ljust(100, b"\0"), POSIX_MAGIC, bytes(64), devices, bytes(167)))
    return block[:148] + b"%06o\0" % byte_sum(block) + block[155:]  # the field is spaces


def _of_type(flag: bytes):
    """A ``tarfile.TarInfo``-style question, as a method: is the member's type this flag?
    (``flag`` is bound as a default: a local, the fastest name for a method this hot.)"""
    def question(member: "Member", flag: bytes = flag) -> bool:
        return member.type == flag
    return question


class Member:
    """One member of a tar being read: its header's fields, PAX and GNU names applied."""

    __slots__ = ("name", "type", "mode", "uid", "gid", "size", "mtime", "linkname",
                 "devmajor", "devminor", "sparse")

    # tarfile.TarInfo's questions, and the type flag (byte 156) that answers yes
    isdir = _of_type(DIRTYPE)
    issym = _of_type(SYMTYPE)
    islnk = _of_type(LNKTYPE)
    ischr = _of_type(CHRTYPE)
    isblk = _of_type(BLKTYPE)
    isfifo = _of_type(FIFOTYPE)

    def isreg(self) -> bool:
        return self.type in REGULAR_TYPES  # three flags: old, new, contiguous

    def issparse(self) -> bool:
        return self.sparse


class TarReader:
    """``for member in TarReader(stream)``: the members of a tar stream, in order. A member's
    bytes are read with ``data(member)`` before asking for the next one (or skipped)."""

    def __init__(self, stream: BinaryIO, chunk: int = 1 << 20):
        self.stream, self.chunk = stream, chunk
        self.buffer, self.pos = b"", 0  # bytes read ahead, and where the unread ones start
        self.left = 0  # of the current member: its bytes not yet read, and its padding
        self.global_pax: dict[str, str] = {}
        self.offset = 0  # of the next header in the stream, for messages

    def __iter__(self):
        while (member := self.next()) is not None:
            yield member

    def next(self) -> Member | None:
        """The next member, or None at the end (a zero block, as tarfile reads it)."""
        if self.left:
            self._skip(self.left)
        pax: dict[str, str] = {}
        long_name = long_link = None
        while True:
            block = self._take(BLOCK, header=True)
            if block is None or block == ZERO_BLOCK:
                return None
            fields = HEADER.unpack_from(block)
            self._check(block, fields)
            kind, size = fields[7], _number(fields[4], self.offset)
            self.offset += BLOCK
            if kind in (PAX_LOCAL, PAX_GLOBAL, GNU_LONGNAME, GNU_LONGLINK):
                data = self._extended(size)
                if kind == PAX_LOCAL:
                    pax.update(_pax_records(data, self.offset))
                elif kind == PAX_GLOBAL:
                    self.global_pax.update(_pax_records(data, self.offset))
                elif kind == GNU_LONGNAME:  # a C string: the name ends at its NUL
                    long_name = _text(data.partition(b"\0")[0])
                else:
                    long_link = _text(data.partition(b"\0")[0])
                continue
            if self.global_pax:
                pax = {**self.global_pax, **pax}
            member = self._member(fields, kind, size, pax)
            if long_name is not None:
                member.name = long_name
            if long_link is not None:
                member.linkname = long_link
            if member.type == AREGTYPE and member.name.endswith("/"):
                member.type = DIRTYPE  # old tars: a directory is a file whose name ends in /
            if member.type == DIRTYPE:
                member.name = member.name.rstrip("/")
            has_data = member.type not in (LNKTYPE, SYMTYPE, CHRTYPE, BLKTYPE, DIRTYPE,
                                           FIFOTYPE)
            self.left = -(-member.size // BLOCK) * BLOCK if has_data else 0
            self.offset += self.left
            return member

    def data(self, member: Member):
        """The member's bytes, as memoryviews of the read buffer (each valid until the next
        read from this reader); its padding is skipped with the next header."""
        end = self.pos + member.size
        if end <= len(self.buffer):  # all read already (a small file): one view
            view = memoryview(self.buffer)[self.pos:end]
            self.pos, self.left = end, self.left - member.size
            return (view,)
        return self._chunks(member)

    def _chunks(self, member: Member):
        want = member.size
        while want:
            if self.pos == len(self.buffer) and not self._read_more():
                raise TarFormatError(f"the tar ends inside {member.name!r}")
            got = min(want, len(self.buffer) - self.pos)
            yield memoryview(self.buffer)[self.pos:self.pos + got]
            self.pos += got
            want -= got
            self.left -= got

    # --- the stream ----------------------------------------------------------------------------

    def _read_more(self) -> bool:
        """Read a chunk; the buffer keeps only what was not consumed yet."""
        chunk = self.stream.read(self.chunk)
        if not chunk:
            return False
        self.buffer = self.buffer[self.pos:] + chunk if self.pos < len(self.buffer) else chunk
        self.pos = 0
        return True

    def _take(self, size: int, header: bool = False) -> bytes | None:
        while len(self.buffer) - self.pos < size:
            if not self._read_more():
                if header and self.pos == len(self.buffer) and self.offset:
                    return None  # ended without its zero blocks: as tarfile, the end
                what = "a header" if header else "a long name or PAX header"
                raise TarFormatError(f"the tar ends inside {what} at byte {self.offset}")
        data = self.buffer[self.pos:self.pos + size]
        self.pos += size
        return data

    def _skip(self, size: int) -> None:
        while size > len(self.buffer) - self.pos:
            size -= len(self.buffer) - self.pos
            self.buffer, self.pos = b"", 0
            if not self._read_more():
                raise TarFormatError("the tar ends inside a member's bytes")
        self.pos += size
        self.left = 0

    def _extended(self, size: int) -> bytes:
        """The bytes of a PAX or GNU long-name member (kept in memory, so capped)."""
        if size > MAX_EXTENDED:
            raise TarFormatError(f"a PAX or long-name header of {size} bytes at byte "
                                 f"{self.offset} (more than {MAX_EXTENDED} is refused)")
        padded = -(-size // BLOCK) * BLOCK
        data = self._take(padded)[:size]
        self.offset += padded
        return data

    # --- the header ----------------------------------------------------------------------------

    def _check(self, block: bytes, fields: tuple) -> None:
        stored = _number(fields[6], self.offset)
        if stored != checksum(block) and stored != _signed_checksum(block):
            raise TarFormatError(f"the header at byte {self.offset} has a bad checksum: not "
                                 "a tar, or a damaged one")

    def _member(self, fields: tuple, kind: bytes, size: int, pax: dict) -> Member:
        offset = self.offset
        member = Member()
        name = _text(fields[0].partition(b"\0")[0])
        prefix = fields[14].partition(b"\0")[0] if fields[9] == POSIX_MAGIC else b""
        member.name = _text(prefix) + "/" + name if prefix else name
        member.type = kind
        member.mode = _number(fields[1], offset)
        member.uid = _number(fields[2], offset)
        member.gid = _number(fields[3], offset)
        member.size = size
        member.mtime = _number(fields[5], offset)
        member.linkname = _text(fields[8].partition(b"\0")[0])
        device = kind in (CHRTYPE, BLKTYPE)
        member.devmajor = _number(fields[12], offset) if device else 0
        member.devminor = _number(fields[13], offset) if device else 0
        member.sparse = kind == GNU_SPARSE
        if pax:
            _apply_pax(member, pax, offset)
        if member.size < 0:
            raise TarFormatError(f"the header at byte {offset} gives a negative size")
        return member


def _apply_pax(member: Member, pax: dict[str, str], offset: int) -> None:
    """What a PAX header says replaces the ustar field (tarfile reads the same keys)."""
    try:
        member.name = pax.get("path", member.name)
        member.linkname = pax.get("linkpath", member.linkname)
        member.uid = int(pax.get("uid", member.uid))
        member.gid = int(pax.get("gid", member.gid))
        member.size = int(pax.get("size", member.size))
        member.mtime = float(pax["mtime"]) if "mtime" in pax else member.mtime
    except ValueError:
        raise TarFormatError(f"a PAX header before byte {offset} has a bad number") from None
    member.sparse = member.sparse or any(key.startswith("GNU.sparse.") for key in pax)


def _number(field: bytes, offset: int) -> int:
    """A numeric field: octal ASCII up to its first NUL (spaces around it allowed), or GNU's
    base-256 when its first byte has the high bit set (0x80 positive, 0xff negative), as
    tarfile reads them."""
    digits = field.partition(b"\0")[0]
    try:
        return int(digits, 8)
    except ValueError:
        pass
    if field[0] in (0x80, 0xFF):
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * len(field) - 8)) if field[0] == 0xFF else value
    if not digits.strip():
        return 0
    raise TarFormatError(f"the header at byte {offset} has a bad number {field!r}: not a "
                             "tar, or a damaged one") from None


def _signed_checksum(block: bytes) -> int:
    """The checksum some old tars wrote, summing the bytes as signed chars."""
    signed = struct.unpack("148b8x356b", block)
    return sum(signed) + 8 * 32


def _text(data: bytes) -> str:
    """Names as tarfile decodes them: UTF-8, any other byte kept as a surrogate escape."""
    return data.decode("utf-8", "surrogateescape")


def _pax_records(data: bytes, offset: int) -> dict[str, str]:
    """``"<length> <key>=<value>\\n"`` records; the length counts the whole record."""
    records, pos = {}, 0
    while pos < len(data) and data[pos] != 0:
        length, space, _ = data[pos:pos + 20].partition(b" ")
        try:
            end = pos + int(length)
        except ValueError:
            end = -1
        record = data[pos + len(length) + len(space):end]
        key, equals, value = record.partition(b"=")
        if not space or end <= pos or end > len(data) or data[end - 1] != 0x0A or not equals:
            raise TarFormatError(f"a PAX header before byte {offset} is malformed")
        records[_text(key)] = _text(value[:-1])
        pos = end
    return records
