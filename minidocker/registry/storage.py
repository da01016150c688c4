"""The blob store and its uploads: content in by streaming, verified, then renamed into place.

A push opens an upload (a directory under ``_uploads/<id>``), appends the body of each request
to its ``data`` file as the bytes arrive (nothing is held in memory but one network chunk),
and closes it with the digest the client claims. Only then is the data hashed against that
digest: a mismatch throws the upload away, a match renames the file to
``blobs/<algorithm>/xx/<hex>/data`` and links the blob into the repository. A rename is
atomic, so a reader sees either no blob or the whole blob; many clients pushing the same blob
at once each rename identical bytes onto the same name, and one intact blob remains.

The hash is kept up to date while the bytes stream in, so closing a large upload does not
read it again; after a restart (or for an upload another registry began) it is recomputed
from the file.

Spec: distribution-spec spec.md, "Pushing blobs", "Pushing a blob in chunks", "Mounting a
blob from another repository", "Deleting Blobs". Model: distribution's
``registry/storage/blobwriter.go`` and ``linkedblobstore.go``.
Used by: notebook 11-registries (an upload directory watched while a push runs).
"""

import asyncio
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from minidocker.registry.errors import RegistryError
from minidocker.registry.paths import ALGORITHMS, NAME, Layout, check_digest

CHUNK = 1 << 20


def write_link(path: Path, digest: str) -> None:
    """A link file holds one digest; written to a temporary name and renamed, so a reader
    never sees half of it and two writers never mix."""
    check_digest(digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-link-")
    with os.fdopen(fd, "w") as f:
        f.write(digest)
    os.rename(tmp, path)


def read_link(path: Path) -> str | None:
    """The digest a link names, or None when there is no link (or it holds no valid digest)."""
    try:
        digest = path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        check_digest(digest)
    except RegistryError:
        return None
    return digest


def linked_digests(folder: Path) -> list[str]:
    """The digests of the ``<algorithm>/<hex>/link`` files below a folder of links."""
    found = []
    for algorithm in ALGORITHMS:
        found += [d for d in map(read_link, sorted((folder / algorithm).glob("*/link"))) if d]
    return found


def hash_file(path: Path, algorithm: str) -> str:
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
    return f"{algorithm}:{hasher.hexdigest()}"


class Storage:
    """Blobs, their links into repositories, and uploads in progress. It guards real state:
    the running hash of each upload and one lock per upload, so two requests on the same
    upload never interleave their bytes."""

    def __init__(self, root: Path):
        self.layout = Layout(Path(root))
        self._hashing: dict[tuple[str, str], tuple[str, object, int]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    # Blobs
    def has_blob(self, name: str, digest: str) -> bool:
        """A repository serves a blob it has a link to: a layer or config pushed (or mounted)
        into it, or one of its manifests."""
        linked = (self.layout.layer_link(name, digest).exists()
                  or self.layout.revision_link(name, digest).exists())
        return linked and self.layout.blob_data(digest).is_file()

    def blob_path(self, name: str, digest: str) -> Path:
        if not self.has_blob(name, digest):
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} is not in repository {name}",
                                detail={"digest": digest})
        return self.layout.blob_data(digest)

    def link_blob(self, name: str, digest: str) -> None:
        write_link(self.layout.layer_link(name, digest), digest)

    def delete_blob(self, name: str, digest: str) -> None:
        """Unlink the blob from this repository; its bytes go at the next garbage collection
        (another repository may still link them)."""
        link = self.layout.layer_link(name, digest)
        if not link.exists():
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} is not in repository {name}",
                                detail={"digest": digest})
        shutil.rmtree(link.parent)

    def mount_blob(self, name: str, digest: str, source: str | None) -> bool:
        """Cross-repository mount: link a blob of ``source`` into ``name`` without a byte
        moving. Without a source any repository that has the blob will do (the spec lets
        ``from`` be optional; every repository here is readable by everyone). False when no
        source has it: the client then uploads it."""
        for candidate in [source] if source else self.repositories():
            if self.has_blob(candidate, digest):
                self.link_blob(name, digest)
                return True
        return False

    def repositories(self, holding: tuple[str, ...] = ("_manifests", "_layers")) -> list[str]:
        """Repository names, sorted: a directory holding one of ``holding`` is a repository,
        and its path below ``repositories/`` is its name. (``_catalog`` asks for
        ``_manifests`` only, as distribution's does: a repository with a manifest.)"""
        top = self.layout.repositories()
        names = set()
        for folder, subfolders, _ in os.walk(top) if top.is_dir() else []:
            name = os.path.relpath(folder, top)
            if set(holding) & set(subfolders) and NAME.match(name):  # no hand-made oddities
                names.add(name)
            subfolders[:] = [d for d in subfolders if not d.startswith("_")]
        return sorted(names)

    def store_blob(self, digest: str, data: Path) -> None:
        """Rename a verified file into the blob store (or drop it: the content is there)."""
        target = self.layout.blob_data(digest)
        if target.is_file():
            data.unlink()
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(data, target)

    def put_bytes(self, digest: str, content: bytes) -> None:
        """A small verified blob (a manifest) written whole: temporary file, then rename."""
        folder = self.layout.blob_dir(digest)
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-data-")
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        self.store_blob(digest, Path(tmp))

    # Uploads
    def start_upload(self, name: str, algorithm: str = "sha256") -> str:
        upload_id = str(uuid.uuid4())
        folder = self.layout.upload_dir(name, upload_id)
        folder.mkdir(parents=True)
        self.layout.upload_data(name, upload_id).touch()
        started = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self.layout.upload_startedat(name, upload_id).write_text(started)
        self._hashing[(name, upload_id)] = (algorithm, hashlib.new(algorithm), 0)
        return upload_id

    def upload_size(self, name: str, upload_id: str) -> int:
        """Bytes received so far; an upload of another repository is unknown here."""
        try:
            return self.layout.upload_data(name, upload_id).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"no upload {upload_id} in repository "
                                f"{name}", detail={"uuid": upload_id}) from None

    async def append_upload(self, name: str, upload_id: str, body: AsyncIterator[bytes],
                            content_range: tuple[int, int] | None = None) -> int:
        """Append a request body to the upload; returns the new size. A ``Content-Range``
        that does not start where the upload ends is refused with 416, before any byte is
        written."""
        async with self._lock(name, upload_id):
            return await self._append(name, upload_id, body, content_range)

    async def finish_upload(self, name: str, upload_id: str, digest: str,
                            body: AsyncIterator[bytes],
                            content_range: tuple[int, int] | None = None) -> None:
        """Append the last chunk, verify the whole upload against ``digest``, move it into the
        blob store and link it into the repository."""
        algorithm, _ = check_digest(digest)
        key = (name, upload_id)
        async with self._lock(name, upload_id):
            size = await self._append(name, upload_id, body, content_range)
            data = self.layout.upload_data(name, upload_id)
            known = self._hashing.get(key)
            if known and known[0] == algorithm and known[2] == size:
                actual = f"{algorithm}:{known[1].hexdigest()}"
            else:
                actual = await asyncio.to_thread(hash_file, data, algorithm)
            if actual != digest:
                self._drop_upload(name, upload_id)
                raise RegistryError("DIGEST_INVALID", f"the upload has digest {actual}, not "
                                    f"{digest}: the blob is refused",
                                    detail={"expected": digest, "actual": actual})
            await asyncio.to_thread(_fsync, data)
            self.store_blob(digest, data)
            self.link_blob(name, digest)
            self._drop_upload(name, upload_id)

    def cancel_upload(self, name: str, upload_id: str) -> None:
        self.upload_size(name, upload_id)
        self._drop_upload(name, upload_id)

    async def _append(self, name, upload_id, body, content_range) -> int:
        size = self.upload_size(name, upload_id)
        if content_range is not None and content_range[0] != size:
            raise RegistryError("BLOB_UPLOAD_INVALID", f"chunk starts at {content_range[0]}, "
                                f"the upload has {size} bytes: send the chunk that starts there",
                                detail={"size": size}, status=416)
        key = (name, upload_id)
        algorithm, hasher, offset = self._hashing.get(key) or ("sha256", None, -1)
        if offset != size:
            hasher = None  # the running hash does not cover the file: recompute at the end
        new_size = size
        with open(self.layout.upload_data(name, upload_id), "ab") as f:
            async for chunk in body:
                f.write(chunk)
                if hasher is not None:
                    hasher.update(chunk)
                new_size += len(chunk)
        announced = content_range and content_range[1] - content_range[0] + 1
        if content_range is not None and new_size - size != announced:
            os.truncate(self.layout.upload_data(name, upload_id), size)
            self._hashing.pop(key, None)
            raise RegistryError("SIZE_INVALID", f"Content-Range {content_range[0]}-"
                                f"{content_range[1]} announced {announced} bytes, the body "
                                f"had {new_size - size}", status=416)
        if hasher is not None:
            self._hashing[key] = (algorithm, hasher, new_size)
        else:
            self._hashing.pop(key, None)
        return new_size

    def _lock(self, name: str, upload_id: str) -> asyncio.Lock:
        return self._locks.setdefault((name, upload_id), asyncio.Lock())

    def _drop_upload(self, name: str, upload_id: str) -> None:
        shutil.rmtree(self.layout.upload_dir(name, upload_id), ignore_errors=True)
        self._hashing.pop((name, upload_id), None)
        self._locks.pop((name, upload_id), None)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
