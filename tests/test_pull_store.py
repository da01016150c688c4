"""Stage 11, how a pull stores a layer: unpacked straight from the decompressor, its tar
checked against the config's diff_id before the layer gets its name, the gzip blob kept as the
registry sent it (never compressed again)."""

import gzip
import hashlib
import io
import tarfile

import pytest

from minidocker.image.archive import ArchiveError, import_layer, store_layer
from minidocker.image.store import ImageStore, layer_dir


def layer_files(tmp_path):
    """A gzip layer holding ``hello``: (the blob's file, its digest, the tar's digest)."""
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    blob = gzip.compress(plain.getvalue(), mtime=0)
    path = tmp_path / "blob"
    path.write_bytes(blob)
    return (path, f"sha256:{hashlib.sha256(blob).hexdigest()}",
            f"sha256:{hashlib.sha256(plain.getvalue()).hexdigest()}")


def test_a_pulled_layer_is_checked_unpacked_and_kept_as_it_came(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDOCKER_ROOT", str(tmp_path / "state"))
    store = ImageStore()
    path, digest, diff_id = layer_files(tmp_path)
    wrong = "sha256:" + "0" * 64
    with open(path, "rb") as source, pytest.raises(ArchiveError, match="diff_id mismatch"):
        import_layer(store, source, digest, wrong)
    assert not layer_dir(wrong).exists() and not store.blobs.has(digest)
    assert not list(layer_dir(wrong).parent.iterdir())  # no staging directory left

    with open(path, "rb") as source:
        layer = import_layer(store, source, digest, diff_id)
    assert (layer.digest, layer.diff_id) == (digest, diff_id)  # the registry's bytes, as sent
    assert store.blobs.path(digest).read_bytes() == path.read_bytes()
    assert (layer_dir(diff_id) / "hello").read_text() == "hi\n"


def test_a_zstd_layer_is_checked_unpacked_and_stored_as_gzip(tmp_path, monkeypatch):
    """OCI's tar+zstd layers (a registry may serve them): the registry's digest is checked on
    the zstd bytes, the diff_id on the tar inside; the store keeps its layers gzip."""
    zstandard = pytest.importorskip("zstandard")
    monkeypatch.setenv("MINIDOCKER_ROOT", str(tmp_path / "state"))
    path, _, diff_id = layer_files(tmp_path)
    blob = zstandard.ZstdCompressor().compress(gzip.decompress(path.read_bytes()))
    digest = f"sha256:{hashlib.sha256(blob).hexdigest()}"
    with pytest.raises(ArchiveError, match="corrupt"):
        import_layer(ImageStore(), io.BytesIO(blob), "sha256:" + "1" * 64, diff_id)
    layer = import_layer(ImageStore(), io.BytesIO(blob), digest, diff_id)
    assert layer.diff_id == diff_id and layer.digest != digest
    assert ImageStore().blobs.path(layer.digest).read_bytes()[:2] == b"\x1f\x8b"
    assert (layer_dir(diff_id) / "hello").read_text() == "hi\n"


def test_a_broken_gzip_trailer_after_the_tar_is_an_archive_error(tmp_path, monkeypatch):
    """The extractor stops at the tar's end; what follows (here 8 MiB of zeros, then a gzip
    trailer whose CRC is wrong) is still read and hashed, and its error is one line."""
    monkeypatch.setenv("MINIDOCKER_ROOT", str(tmp_path / "state"))
    path, _, _ = layer_files(tmp_path)
    blob = bytearray(gzip.compress(gzip.decompress(path.read_bytes()) + bytes(8 << 20), mtime=0))
    blob[-8] ^= 0xFF  # the CRC-32 of the trailer
    with pytest.raises(ArchiveError, match="broken after its tar: CRC check failed"):
        store_layer(ImageStore(), io.BytesIO(bytes(blob)))
