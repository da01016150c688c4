"""Moving images in and out of the store: ``save``, ``load`` and ``import``.

``save`` writes one tar that two worlds can read: it is an OCI image layout (``oci-layout``,
``index.json``, ``blobs/sha256/...``) — what ``skopeo copy oci-archive:`` and ``podman load``
read — and it also carries Docker's ``manifest.json`` (config and layer paths per image, with
its tags), which makes the same file a docker-archive. ``load`` reads either kind; every blob
is re-hashed and every layer's uncompressed digest is checked against the config's
``rootfs.diff_ids`` before the image gets a name. ``import`` turns a flat root filesystem tar
into a one-layer image (``FROM scratch`` by hand).

What the peers write, and ``load`` accepts (tests/test_interop.py runs the real tools):

- OCI archives (``podman save --format oci-archive``, ``skopeo copy ... oci-archive:``):
  ``index.json`` names each image by ``org.opencontainers.image.ref.name`` — a full name
  (``localhost/app:1``) or a bare tag (``latest``), which names no repository. An entry may
  be a nested index (``podman manifest push --all``, Docker's ``save``): one image, the
  variant for this machine. Layers are gzip or plain tars, told apart by their first bytes.
- docker-archives (``podman save``, ``skopeo copy ... docker-archive:``, Docker's ``save``):
  ``manifest.json`` lists config and plain layer tars per image, with ``RepoTags`` spelled in
  full (``docker.io/library/app:1`` is ``app:1`` here); Docker links a layer it already wrote.
- Hand-made tars of a layout (``tar -C layout -cf x.tar .``) name members ``./index.json``.

Spec: image-spec image-layout.md, image-index.md; Docker's image tarball format
(manifest.json).
Used by: notebook 05-images (``save``, ``load``, ``import``), tests/test_interop.py.
"""

import gzip
import json
import os
import posixpath
import tarfile
import zlib
from pathlib import Path

from minidocker import events
from minidocker.errors import MinidockerError
from minidocker.image.blobs import HashingWriter, check_digest, sha256_digest
from minidocker.image.layers import (
    CHUNK,
    GZIP_MAGIC,
    ZSTD_MAGIC,
    TarWriter,
    ZstdReader,
    extract_layer,
)
from minidocker.image.reference import short_name
from minidocker.image.store import (
    GZIP_LEVEL,
    INDEX,
    MANIFEST,
    OCI_LAYOUT,
    REF_NAME,
    Image,
    ImageStore,
    Layer,
    architecture,
    new_config,
)

MAX_JSON = 4 << 20  # manifests, configs, indexes: never more than this
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
# save --compress zstd: zstd's own default level, faster than gzip's level 1 for a smaller
# blob; one thread (zstd's multi-threaded frames differ from single-threaded ones).
ZSTD_LEVEL = 3
MAX_LAYER = 8 << 30  # uncompressed bytes per layer
ACCEPTED_MANIFESTS = (MANIFEST, "application/vnd.docker.distribution.manifest.v2+json")
INDEXES = (INDEX, "application/vnd.docker.distribution.manifest.list.v2+json")


class ArchiveError(MinidockerError):
    pass


# --- save ------------------------------------------------------------------------------------

def save(images: list[tuple[Image, str | None]], output, compression: str = "gzip") -> None:
    """Write the images (each with the name it was asked by) as an OCI + docker archive. With
    ``compression="zstd"`` each layer is written compressed with zstd instead (OCI's
    ``tar+zstd``): a new blob, so a new manifest; the config, and so the image ID, stays
    the same (its diff_ids are the digests of the uncompressed tars)."""
    store = ImageStore()
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": []}
    docker_manifest, blobs = [], {}
    with store.scratch() as scratch:
        for image, name in images:
            blobs[image.id] = store.blobs.path(image.id)
            if compression == "zstd":
                manifest_digest, layers = _zstd_manifest(store, image, Path(scratch), blobs)
            else:
                manifest_digest, layers = image.manifest_digest, image.manifest["layers"]
                for digest in [manifest_digest, *(layer["digest"] for layer in layers)]:
                    blobs[digest] = store.blobs.path(digest)
            descriptor = {"mediaType": MANIFEST, "digest": manifest_digest,
                          "size": blobs[manifest_digest].stat().st_size}
            if name:
                descriptor["annotations"] = {REF_NAME: name}
            index["manifests"].append(descriptor)
            docker_manifest.append({"Config": _blob_name(image.id),
                                    "RepoTags": [name] if name else [],
                                    "Layers": [_blob_name(layer["digest"]) for layer in layers]})
        tar = TarWriter(output)  # tarfile's bytes, in 1 MiB blocks (tarfile's are 10 KiB)
        _add_bytes(tar, "oci-layout", json.dumps(OCI_LAYOUT).encode())
        _add_bytes(tar, "index.json", json.dumps(index).encode())
        _add_bytes(tar, "manifest.json", json.dumps(docker_manifest).encode())
        for digest, path in sorted(blobs.items()):
            info = tarfile.TarInfo(_blob_name(digest))
            info.size, info.mode = path.stat().st_size, 0o644
            tar.add(info, path)
        tar.close()


def _zstd_manifest(store: ImageStore, image: Image, scratch: Path,
                   blobs: dict[str, Path]) -> tuple[str, list[dict]]:
    """The image's manifest with zstd layers, its blobs written to `scratch` (and listed in
    `blobs`): each gzip layer decompressed and compressed again at ZSTD_LEVEL, one pass."""
    try:
        import zstandard
    except ImportError:
        raise ArchiveError("save --compress zstd needs the zstandard package: pip install "
                           "zstandard (or save with gzip layers, the default)") from None
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True)
    layers = []
    for layer in image.manifest["layers"]:
        path = scratch / ("zstd-" + layer["digest"].split(":")[1])
        with open(store.blobs.path(layer["digest"]), "rb") as blob, open(path, "wb") as out:
            packed = HashingWriter(out)
            compressor.copy_stream(gzip.GzipFile(fileobj=blob), packed, read_size=CHUNK,
                                   write_size=CHUNK)
        blobs[packed.digest] = path
        layers.append({"mediaType": LAYER_ZSTD, "digest": packed.digest, "size": packed.size})
    manifest = json.dumps({**image.manifest, "layers": layers}, sort_keys=True,
                          separators=(",", ":")).encode()
    digest = sha256_digest(manifest)
    blobs[digest] = scratch / ("manifest-" + digest.split(":")[1])
    blobs[digest].write_bytes(manifest)
    return digest, layers


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + check_digest(digest).split(":")[1]


def _add_bytes(tar: TarWriter, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    tar.add_bytes(info, data)


# --- load ------------------------------------------------------------------------------------

def load(path: Path) -> list[str]:
    """Load every image of an OCI archive or a docker-archive; return what was loaded."""
    names = _load(path)
    for name in names:
        events.emit("image", "load", name, {"name": name})
    return names


def _load(path: Path) -> list[str]:
    try:
        tar = tarfile.open(path)
    except tarfile.TarError:  # its message lists every compression it tried, one a line
        raise ArchiveError(f"{path} is not an image archive: it is not a tar (plain, gzip, "
                           "bzip2 or xz); make one with 'minidocker save -o FILE IMAGE'") from None
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from None
    store = ImageStore()
    with tar, store.transaction():  # every image, or none named
        try:
            archive = _Archive(tar)
            if archive.has("index.json"):
                return _load_oci(archive)
            if archive.has("manifest.json"):
                return _load_docker(archive)
        except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise ArchiveError(f"{path} is damaged: {exc}") from None
        except (KeyError, TypeError, AttributeError) as exc:  # JSON of the wrong shape
            raise ArchiveError(f"{path} is not a well-formed image archive: {exc!r}") from None
    raise ArchiveError(f"{path} has neither index.json (OCI) nor manifest.json (docker-archive)")


class _Archive:
    """The tar being loaded, read by member name only (nothing in it is ever written to disk
    under its own name). Names are compared cleaned (``./index.json``, as ``tar -C layout
    -cf x.tar .`` writes it, is ``index.json``); links are followed inside the tar (Docker's
    ``save`` links a layer it already wrote: ``<id>/layer.tar -> ../<id2>/layer.tar``)."""

    def __init__(self, tar: tarfile.TarFile):
        self.tar = tar
        self.members = {_clean(member.name): member for member in tar.getmembers()}

    def has(self, name: str) -> bool:
        return _clean(name) in self.members

    def member(self, name: str) -> tarfile.TarInfo:
        name = _clean(name)
        for _hop in range(8):  # a chain of links, never a loop
            member = self.members.get(name)
            if member is None:
                raise ArchiveError(f"the archive lacks {name}")
            if member.issym():
                name = _clean(posixpath.join(posixpath.dirname(name), member.linkname))
            elif member.islnk():
                name = _clean(member.linkname)
            else:
                break
        if not member.isfile():
            raise ArchiveError(f"{name} in the archive is not a regular file")
        return member

    def open(self, name: str):
        return self.tar.extractfile(self.member(name))

    def read(self, name: str, digest: str | None = None) -> bytes:
        """A small member (JSON), checked against ``digest`` when there is one."""
        member = self.member(name)
        if member.size > MAX_JSON:
            raise ArchiveError(f"{name} is larger than {MAX_JSON} bytes")
        data = self.tar.extractfile(member).read()
        if digest is not None and sha256_digest(data) != check_digest(digest):
            raise ArchiveError(f"blob {digest} is corrupt: its bytes hash to "
                               f"{sha256_digest(data)}")
        return data

    def json(self, name: str, digest: str | None = None):
        try:
            return json.loads(self.read(name, digest))
        except ValueError as exc:
            raise ArchiveError(f"{name} in the archive is not valid JSON: {exc}") from None


def _clean(name: str) -> str:
    return posixpath.normpath(name).lstrip("/")


# --- load: OCI archives ------------------------------------------------------------------------

def _load_oci(archive: _Archive) -> list[str]:
    store, loaded = ImageStore(), []
    for descriptor in _image_manifests(archive, archive.json("index.json")):
        manifest = archive.json(_blob_name(descriptor["digest"]), descriptor["digest"])
        config_digest = manifest["config"]["digest"]
        config_bytes = archive.read(_blob_name(config_digest), config_digest)
        layers = []
        for layer, diff_id in zip(manifest["layers"], _diff_ids(config_bytes, manifest),
                                  strict=True):
            source = archive.open(_blob_name(layer["digest"]))
            layers.append(import_layer(store, source, layer["digest"], diff_id))
        name = _oci_name(descriptor)
        image = store.add_image_with_config(config_bytes, layers, name)
        loaded.append(name or image.id)
    return loaded


def _image_manifests(archive: _Archive, index: dict) -> list[dict]:
    """Every image ``index.json`` names, each an image manifest's descriptor. An entry that is
    itself an index (a multi-platform image, as ``podman manifest push --all`` or Docker's
    ``save`` write it) stands for one image: its variant for this machine."""
    found = []
    for descriptor in index.get("manifests", []):
        media_type = descriptor.get("mediaType", MANIFEST)
        if media_type in INDEXES:
            variant = _for_this_machine(archive, descriptor)
            found.append(variant | {"annotations": descriptor.get("annotations", {})})
        elif media_type in ACCEPTED_MANIFESTS:
            found.append(descriptor)
    return found


def _for_this_machine(archive: _Archive, index_descriptor: dict, depth: int = 0) -> dict:
    """The manifest of a nested index for linux on this CPU whose blob the archive holds.
    Entries for other platforms (and ``unknown/unknown`` attestations) are passed over."""
    digest = index_descriptor["digest"]
    nested = archive.json(_blob_name(digest), digest)
    wanted = ("linux", architecture())
    listed = []
    for descriptor in nested.get("manifests", []):
        platform = descriptor.get("platform") or {}
        listed.append(f"{platform.get('os', '?')}/{platform.get('architecture', '?')}")
        if platform and (platform.get("os"), platform.get("architecture")) != wanted:
            continue
        media_type = descriptor.get("mediaType", MANIFEST)
        if media_type in INDEXES and depth < 4:
            return _for_this_machine(archive, descriptor, depth + 1)
        if media_type in ACCEPTED_MANIFESTS and archive.has(_blob_name(descriptor["digest"])):
            return descriptor
    raise ArchiveError(f"the multi-platform image {digest} has no {'/'.join(wanted)} image in "
                       f"this archive (it lists: {', '.join(listed) or 'nothing'})")


def _oci_name(descriptor: dict) -> str | None:
    """The name an OCI archive gives an image: containerd's full name when there (Docker's
    ``save``), else ``org.opencontainers.image.ref.name`` — unless that is a bare tag such as
    ``latest`` (``skopeo copy ... oci-archive:x.tar:latest``), which names no repository."""
    annotations = descriptor.get("annotations") or {}
    name = annotations.get("io.containerd.image.name") or annotations.get(REF_NAME)
    if not name or ("/" not in name and ":" not in name):
        return None
    return short_name(name)


# --- load: docker-archives ---------------------------------------------------------------------

def _load_docker(archive: _Archive) -> list[str]:
    """``manifest.json`` lists each image: its config file, its layer files (plain tars in
    Docker's and podman's archives, gzip in ours) in order, and its tags."""
    store, loaded = ImageStore(), []
    for entry in archive.json("manifest.json"):
        config_bytes = archive.read(entry["Config"])
        diff_ids = _diff_ids(config_bytes, {"layers": entry["Layers"]})
        layers = [import_layer(store, archive.open(name), None, diff_id)
                  for name, diff_id in zip(entry["Layers"], diff_ids, strict=True)]
        tags = [short_name(tag) for tag in entry.get("RepoTags") or []]
        image = store.add_image_with_config(config_bytes, layers, tags[0] if tags else None)
        for tag in tags[1:]:
            store.tag(image, tag)
        loaded += tags or [image.id]
    return loaded


# --- load: layers ------------------------------------------------------------------------------

def _diff_ids(config_bytes: bytes, manifest: dict) -> list[str]:
    try:
        diff_ids = json.loads(config_bytes).get("rootfs", {}).get("diff_ids", [])
    except (ValueError, AttributeError):
        raise ArchiveError("an image config in the archive is not a JSON object") from None
    if len(diff_ids) != len(manifest["layers"]):
        raise ArchiveError("the manifest and the config disagree on the number of layers")
    return [check_digest(d) for d in diff_ids]


def import_layer(store: ImageStore, source, blob_digest: str | None, diff_id: str) -> Layer:
    """One layer of ``load`` or ``pull``, checked and stored in one pass over its bytes."""
    return store_layer(store, source, blob_digest, diff_id)


def store_layer(store: ImageStore, source, blob_digest: str | None = None,
                diff_id: str | None = None) -> Layer:
    """Read a layer (gzip, zstd or plain, told apart by its first bytes, not by a media type)
    once: its bytes are hashed (the blob's digest) and kept as the blob, gzip as they came, a
    plain or zstd one gzipped at the store's level (the store's layers are all gzip, its
    manifests say so); uncompressed, they are hashed (the diff_id) and
    extracted at the same time, into a staging directory that becomes the layer only if the
    digests are right (when they are known: ``import`` learns them here). No tar on disk in
    between, no byte read twice."""
    head = source.read(4)
    gzipped = head[:2] == GZIP_MAGIC
    with store.blobs.writer() as (sink, commit), store.unpacking(diff_id) as staging:
        packed = None if gzipped else gzip.GzipFile(fileobj=sink, mode="wb", mtime=0,
                                                     compresslevel=GZIP_LEVEL)
        raw = HashingWriter(sink if gzipped else None)
        raw.write(head)
        stream = _Tee(source, raw, head)
        unpacked = gzip.GzipFile(fileobj=stream) if gzipped else \
            ZstdReader(stream) if head == ZSTD_MAGIC else stream
        plain = _HashingReader(unpacked, packed)
        if staging.path is not None:
            extract_layer(plain, staging.path, max_bytes=MAX_LAYER)
        try:
            plain.drain()  # the end-of-tar padding, and for gzip its trailer: all are hashed
            stream.drain()
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # a gzip trailer's CRC, ...
            raise ArchiveError(f"the layer's gzip stream is broken after its tar: {exc}") from None
        if blob_digest and raw.digest != blob_digest:
            raise ArchiveError(f"layer {blob_digest} is corrupt: its bytes hash to "
                               f"{raw.digest}")
        if diff_id not in (None, plain.digest):
            raise ArchiveError(f"layer diff_id mismatch: the config says {diff_id}, the "
                               f"layer's uncompressed tar hashes to {plain.digest}")
        staging.keep(plain.digest)
        if packed is not None:
            packed.close()
        return Layer(commit(), plain.digest, sink.size)


class _HashingReader:
    """Hashes (the diff_id) what is read through it, copying it to ``target`` if one is
    given, and stops a stream larger than MAX_LAYER."""

    def __init__(self, stream, target=None):
        self.stream, self.counted = stream, HashingWriter(target)

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.counted.write(data)
        if self.counted.size > MAX_LAYER:
            raise ArchiveError(f"a layer is larger than {MAX_LAYER} bytes uncompressed")
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return self.counted.digest


class _Tee:
    """Reads from ``source`` (after the ``head`` already read), copying to ``sink``."""

    def __init__(self, source, sink: HashingWriter, head: bytes):
        self.source, self.sink, self.head = source, sink, head

    def read(self, size: int = -1) -> bytes:
        if not self.head:
            return self._read(size)
        if 0 <= size <= len(self.head):
            data, self.head = self.head[:size], self.head[size:]
            return data
        data, self.head = self.head, b""
        return data + self._read(size - len(data) if size > 0 else -1)

    def _read(self, size: int) -> bytes:
        data = self.source.read(size)
        self.sink.write(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


# --- import ----------------------------------------------------------------------------------

def import_tarball(path: Path, name: str | None, config: dict, comment: str) -> Image:
    """A flat root filesystem tar (plain or gzip) becomes a one-layer image."""
    store = ImageStore()
    history = [{"created_by": f"minidocker import {os.path.basename(path)}",
                "comment": comment}]
    with open(path, "rb") as source, store.transaction():  # from the layer to the name
        layer = store_layer(store, source)
        return store.add_image(new_config([layer.diff_id], config, history), [layer], name)


__all__ = ["ArchiveError", "import_layer", "import_tarball",
           "load", "save"]
