"""Content-addressed blobs: a file's name is the SHA-256 of its bytes.

``blobs/sha256/<64 hex>`` holds every layer, config and manifest of every image. A blob is
written to a temporary file while its digest is computed, then renamed to its name: the store
never holds half a blob under a real name, and the same content is stored once however many
images use it. A digest from outside is checked against the strict grammar before it ever
becomes part of a path.

Spec: opencontainers/image-spec descriptor.md (digests), image-layout.md (blobs).
Used by: notebook 05-images, lab 05-images (``sha256_digest``, the ``DIGEST`` grammar).
"""

import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from minidocker.errors import MinidockerError, NotFound

DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
CHUNK = 1 << 20


def temp_prefix() -> str:
    """Temporary names carry the writer's PID, so garbage collection can tell the leftovers
    of a killed writer (PID gone) from the work of one still running."""
    return f".tmp-{os.getpid()}-"


def is_abandoned(name: str) -> bool:
    match = re.match(r"^\.tmp-(\d+)-", name)
    if not match:
        return False
    try:
        os.kill(int(match[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


def check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not DIGEST.match(digest):
        raise MinidockerError(f"invalid digest {digest!r}: expected sha256:<64 lowercase hex>")
    return digest


def sha256_digest(data: bytes) -> str:
    import hashlib  # here: a container's start reads the store, hashes nothing

    return "sha256:" + hashlib.sha256(data).hexdigest()


class HashingWriter:
    """A file-like sink that counts and hashes what passes through it to ``target``."""

    def __init__(self, target: BinaryIO | None = None):
        import hashlib

        self.target, self.hash, self.size = target, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        if self.target is not None:
            self.target.write(data)
        return len(data)

    def flush(self) -> None:
        if self.target is not None:
            self.target.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class BlobStore:
    def __init__(self, root: Path):
        self.root = root  # the layout's directory; blobs live in root/blobs/sha256

    def path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / check_digest(digest).split(":", 1)[1]

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def read(self, digest: str, max_size: int = 4 << 20) -> bytes:
        """A small blob (manifest, config), re-hashed on the way in."""
        try:
            with open(self.path(digest), "rb") as blob:
                data = blob.read(max_size + 1)
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is missing") from None
        if len(data) > max_size:
            raise MinidockerError(f"blob {digest} is larger than {max_size} bytes")
        if sha256_digest(data) != digest:
            raise MinidockerError(f"blob {digest} is corrupt (its content has another digest)")
        return data

    def put_bytes(self, data: bytes) -> str:
        digest = sha256_digest(data)
        if not self.has(digest):
            with self.writer() as (sink, commit):
                sink.write(data)
                commit()
        return digest

    def writer(self):
        """``with store.writer() as (sink, commit): ...`` — write through ``sink``, then call
        ``commit(expected=None)``; it returns the digest and renames the temp file into place."""
        return _BlobWriter(self)

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def digests(self) -> list[str]:
        folder = self.root / "blobs" / "sha256"
        return sorted(f"sha256:{p.name}" for p in folder.iterdir()
                      if DIGEST.match(f"sha256:{p.name}")) if folder.is_dir() else []


class _BlobWriter:
    def __init__(self, store: BlobStore):
        self.store = store

    def __enter__(self):
        folder = self.store.root / "blobs" / "sha256"
        folder.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=folder, prefix=temp_prefix())
        self.file = os.fdopen(fd, "wb")
        self.sink = HashingWriter(self.file)
        return self.sink, self.commit

    def commit(self, expected: str | None = None) -> str:
        self.file.flush()
        os.fsync(self.file.fileno())
        digest = self.sink.digest
        if expected is not None and digest != expected:
            raise MinidockerError(f"digest mismatch: expected {expected}, content has {digest}")
        os.rename(self.tmp, self.store.path(digest))
        self.tmp = None
        return digest

    def __exit__(self, *exc):
        self.file.close()
        if self.tmp:
            os.unlink(self.tmp)
