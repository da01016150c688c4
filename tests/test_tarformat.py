"""image/tarformat.py: the tar reader reads what tarfile writes (ustar, GNU, PAX), and refuses
what is not a tar; the ustar header packer writes tarfile's bytes."""

import io
import tarfile

import pytest

from minidocker.image.tarformat import (
    MAX_EXTENDED,
    TarFormatError,
    TarReader,
    checksum,
    ustar_header,
)

FORMATS = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}


def members(tar_format: int) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """Every kind of member, with names and numbers that push each format to its edges."""
    found = []

    def add(name, kind=tarfile.REGTYPE, data=None, **fields):
        info = tarfile.TarInfo(name)
        info.type, info.mtime, info.mode = kind, 1_700_000_000, 0o644
        for key, value in fields.items():
            setattr(info, key, value)
        if data is not None:
            info.size = len(data)
        found.append((info, data))

    add("etc", tarfile.DIRTYPE, mode=0o755)
    add("etc/hosts", data=b"127.0.0.1 localhost\n", uid=0, gid=42)
    add("etc/empty", data=b"")
    add("bin/sh", tarfile.SYMTYPE, linkname="busybox")
    add("bin/ls", tarfile.LNKTYPE, linkname="etc/hosts")
    add("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3)
    add("run/pipe", tarfile.FIFOTYPE)
    add("blob", data=bytes(range(256)) * 5000)  # over a block, and over the reader's chunk
    add("a/" + "long/" * 30 + "name", data=b"deep\n")  # over 100 bytes: prefix, L, or PAX
    if tar_format != tarfile.USTAR_FORMAT:
        add("link-to-long", tarfile.SYMTYPE, linkname="x" * 150)
        add("big-ids", data=b"ids\n", uid=8 ** 8, gid=8 ** 9)  # base-256 (GNU) or PAX
    if tar_format == tarfile.PAX_FORMAT:
        add("caf\u00e9", data=b"non-ASCII\n")
        add("when", data=b"", mtime=1_700_000_000.5)
    return found


def tar_bytes(tar_format: int, extra=()) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tar_format, encoding="utf-8") as tar:
        for info, data in [*members(tar_format), *extra]:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def read_all(data: bytes, chunk: int = 1 << 20) -> list[tuple]:
    reader, found = TarReader(io.BytesIO(data), chunk), []
    for member in reader:
        content = b"".join(bytes(view) for view in reader.data(member)) if member.isreg() \
            else None
        found.append((member.name, member.type, member.mode, member.uid, member.gid,
                      member.mtime, member.linkname, member.devmajor, member.devminor, content))
    return found


def tarfile_reads(data: bytes) -> list[tuple]:
    found = []
    with tarfile.open(fileobj=io.BytesIO(data), encoding="utf-8") as tar:
        for m in tar:
            content = tar.extractfile(m).read() if m.isreg() else None
            found.append((m.name, m.type, m.mode, m.uid, m.gid, m.mtime, m.linkname,
                          m.devmajor if m.ischr() or m.isblk() else 0,
                          m.devminor if m.ischr() or m.isblk() else 0, content))
    return found


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("chunk", [512, 1 << 20], ids=["one-block-reads", "1MiB-reads"])
def test_the_reader_reads_what_tarfile_writes(name, chunk):
    data = tar_bytes(FORMATS[name])
    assert read_all(data, chunk) == tarfile_reads(data)


def test_a_pax_global_header_applies_to_every_member_after_it():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"uid": "4242"}) as tar:
        info = tarfile.TarInfo("file")
        tar.addfile(info, io.BytesIO())
    assert [m[3] for m in read_all(out.getvalue())] == [4242]


def test_a_sparse_member_is_reported_as_such():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("holes")
        info.pax_headers = {"GNU.sparse.size": "1000000000000"}
        tar.addfile(info, io.BytesIO())
    reader = TarReader(io.BytesIO(out.getvalue()))
    assert next(iter(reader)).issparse()


@pytest.mark.parametrize("damage", ["checksum", "cut-in-header", "cut-in-data", "bad-number",
                                    "empty", "huge-pax", "bad-pax-record", "bad-pax-uid"])
def test_what_is_no_tar_is_refused(damage):
    data = bytearray(tar_bytes(tarfile.PAX_FORMAT))
    if damage == "checksum":
        data[512 * 3 + 10] ^= 1  # a name byte of a later header
    elif damage == "cut-in-header":
        data = data[:512 + 100]
    elif damage == "cut-in-data":
        data = data[:512 * 2 + 30]
    elif damage == "bad-number":
        data[100:108] = b"0000x44\0"  # the mode of the first header, checksum made right
        data[148:156] = b"%06o\0 " % checksum(bytes(data[:512]))
    elif damage == "empty":
        data = b""
    else:
        info = tarfile.TarInfo("file")
        info.pax_headers = {"comment": "x" * (MAX_EXTENDED + 1)} if damage == "huge-pax" \
            else {"uid": "twelve"}
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(info, io.BytesIO())
        data = bytearray(out.getvalue())
        if damage == "bad-pax-record":
            data[512:514] = b"99"  # the record's length runs past the header's bytes
    with pytest.raises(TarFormatError):
        read_all(bytes(data))


def test_a_tar_without_its_end_blocks_ends_after_its_last_member():
    data = tar_bytes(tarfile.USTAR_FORMAT)
    whole = read_all(data)
    end = len(data)
    while data[end - 512:end] == bytes(512):  # strip the end blocks and the record padding
        end -= 512
    assert read_all(data[:end]) == whole


def test_ustar_header_writes_tarfiles_bytes():
    info = tarfile.TarInfo("etc/hosts")
    info.size, info.mode, info.mtime, info.uid, info.gid = 20, 0o644, 1_700_000_000, 0, 42
    info.uname = info.gname = ""
    assert ustar_header(b"etc/hosts", b"0", 0o644, 0, 42, 20, 1_700_000_000) == \
        info.tobuf(tarfile.PAX_FORMAT)
    assert ustar_header(b"x" * 101, b"0", 0o644, 0, 0, 0, 0) is None  # PAX's job
