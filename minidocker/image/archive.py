"""Moving images in and out of the store: ``save``, ``load`` and ``import``.

``save`` writes one tar that two worlds can read: it is an OCI image layout (``oci-layout``,
``index.json``, ``blobs/sha256/...``) — what ``skopeo copy oci-archive:`` and ``podman load``
read — and it also carries Docker's ``manifest.json`` (config and layer paths per image, with
its tags), which makes the same file a docker-archive. ``load`` reads either kind, including
what ``podman save`` writes; every blob is re-hashed and every layer's uncompressed digest is
checked against the config's ``rootfs.diff_ids`` before the image gets a name. ``import`` turns
a flat root filesystem tar into a one-layer image (``FROM scratch`` by hand).

Spec: image-spec image-layout.md; Docker's image tarball format (manifest.json).
"""

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

from minidocker.errors import MinidockerError
from minidocker.image.blobs import HashingWriter, check_digest, sha256_digest
from minidocker.image.store import (
    GZIP_MAGIC,
    INDEX,
    MANIFEST,
    OCI_LAYOUT,
    REF_NAME,
    Image,
    ImageStore,
    Layer,
    new_config,
)

MAX_JSON = 4 << 20  # manifests, configs, indexes: never more than this
MAX_LAYER = 8 << 30  # uncompressed bytes per layer
ACCEPTED_MANIFESTS = (MANIFEST, "application/vnd.docker.distribution.manifest.v2+json")


class ArchiveError(MinidockerError):
    pass


# --- save ------------------------------------------------------------------------------------

def save(images: list[tuple[Image, str | None]], output) -> None:
    """Write the images (each with the name it was asked by) as an OCI + docker archive."""
    store = ImageStore()
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": []}
    docker_manifest, blobs = [], {}
    for image, name in images:
        descriptor = {"mediaType": MANIFEST, "digest": image.manifest_digest,
                      "size": store.blobs.path(image.manifest_digest).stat().st_size}
        if name:
            descriptor["annotations"] = {REF_NAME: name}
        index["manifests"].append(descriptor)
        layers = [layer["digest"] for layer in image.manifest["layers"]]
        docker_manifest.append({"Config": _blob_name(image.id),
                                "RepoTags": [name] if name else [],
                                "Layers": [_blob_name(d) for d in layers]})
        for digest in [image.manifest_digest, image.id, *layers]:
            blobs[digest] = store.blobs.path(digest)
    with tarfile.open(fileobj=output, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "oci-layout", json.dumps(OCI_LAYOUT).encode())
        _add_bytes(tar, "index.json", json.dumps(index).encode())
        _add_bytes(tar, "manifest.json", json.dumps(docker_manifest).encode())
        for digest, path in sorted(blobs.items()):
            info = tarfile.TarInfo(_blob_name(digest))
            info.size, info.mode = path.stat().st_size, 0o644
            with open(path, "rb") as f:
                tar.addfile(info, f)


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + check_digest(digest).split(":")[1]


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


# --- load ------------------------------------------------------------------------------------

def load(path: Path) -> list[str]:
    """Load every image of an OCI archive or a docker-archive; return what was loaded."""
    try:
        archive = tarfile.open(path)
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"{path} is not an image archive (a tar from 'save'): {exc}") from exc
    with archive, ImageStore().scratch() as scratch:
        names = set(archive.getnames())
        if "index.json" in names:
            return _load_oci(archive, Path(scratch))
        if "manifest.json" in names:
            return _load_docker(archive, Path(scratch))
    raise ArchiveError(f"{path} has neither index.json (OCI) nor manifest.json (docker-archive)")


def _load_oci(archive: tarfile.TarFile, scratch: Path) -> list[str]:
    store, loaded = ImageStore(), []
    index = _json(archive, "index.json")
    for descriptor in _manifests(archive, index):
        manifest_bytes = _member_bytes(archive, _blob_name(descriptor["digest"]))
        _verify(manifest_bytes, descriptor["digest"])
        manifest = json.loads(manifest_bytes)
        config_digest = manifest["config"]["digest"]
        config_bytes = _member_bytes(archive, _blob_name(config_digest))
        _verify(config_bytes, config_digest)
        config = json.loads(config_bytes)
        layers = []
        for layer, diff_id in zip(manifest["layers"], _diff_ids(config, manifest), strict=True):
            member = archive.extractfile(_member(archive, _blob_name(layer["digest"])))
            layers.append(_import_layer(store, member, scratch, layer["digest"], diff_id))
        name = _annotated_name(descriptor)
        image = store.add_image_with_config(config_bytes, layers, name)
        loaded.append(name or image.id)
    return loaded


def _manifests(archive: tarfile.TarFile, index: dict) -> list[dict]:
    """The image manifests an index names; a nested index (a multi-platform image) is
    opened and this machine's platform picked."""
    found = []
    for descriptor in index.get("manifests", []):
        if descriptor.get("mediaType") in (INDEX,
                                           "application/vnd.docker.distribution.manifest.list.v2+json"):
            nested = json.loads(_member_bytes(archive, _blob_name(descriptor["digest"])))
            found += [d | {"annotations": descriptor.get("annotations", {})}
                      for d in _manifests(archive, nested)[:1]]
        elif descriptor.get("mediaType", MANIFEST) in ACCEPTED_MANIFESTS:
            found.append(descriptor)
    return found


def _annotated_name(descriptor: dict) -> str | None:
    annotations = descriptor.get("annotations", {})
    name = annotations.get("io.containerd.image.name") or annotations.get(REF_NAME)
    if name and ":" not in name.rsplit("/", 1)[-1] and "/" not in name:
        return None  # a bare tag like "latest" (podman oci-archive) names no repository
    return name.removeprefix("docker.io/library/").removeprefix("docker.io/") if name else None


def _load_docker(archive: tarfile.TarFile, scratch: Path) -> list[str]:
    store, loaded = ImageStore(), []
    for entry in _json(archive, "manifest.json"):
        config_bytes = _member_bytes(archive, entry["Config"])
        config = json.loads(config_bytes)
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        if len(diff_ids) != len(entry["Layers"]):
            raise ArchiveError("manifest.json and the config disagree on the number of layers")
        layers = [_import_layer(store, archive.extractfile(_member(archive, name)), scratch,
                                None, diff_id)
                  for name, diff_id in zip(entry["Layers"], diff_ids, strict=True)]
        tags = entry.get("RepoTags") or [None]
        image = store.add_image_with_config(config_bytes, layers, tags[0])
        for tag in tags[1:]:
            store.tag(image, tag)
        loaded += [t for t in tags if t] or [image.id]
    return loaded


def _import_layer(store: ImageStore, source, scratch: Path, blob_digest: str | None,
                  diff_id: str) -> Layer:
    """Decompress one layer to a temp file (hashing both forms), check the digests, store."""
    tar_path = scratch / "layer.tar"
    blob_hash = HashingWriter()
    with open(tar_path, "wb") as out:
        diff_hash = HashingWriter(out)
        _decompress(source, blob_hash, diff_hash)
    if blob_digest and blob_hash.digest != blob_digest:
        raise ArchiveError(f"layer {blob_digest} is corrupt: its bytes hash to "
                           f"{blob_hash.digest}")
    if diff_hash.digest != diff_id:
        raise ArchiveError(f"layer diff_id mismatch: the config says {diff_id}, the layer's "
                           f"uncompressed tar hashes to {diff_hash.digest}")
    return store.add_layer(tar_path)


def _decompress(source, raw: HashingWriter, plain: HashingWriter) -> None:
    head = source.read(2)
    raw.write(head)
    stream = _Tee(source, raw, head)
    reader = gzip.GzipFile(fileobj=stream) if head == GZIP_MAGIC else stream
    while chunk := reader.read(1 << 20):
        plain.write(chunk)
        if plain.size > MAX_LAYER:
            raise ArchiveError(f"a layer is larger than {MAX_LAYER} bytes uncompressed")


class _Tee:
    """Reads from ``source`` (after the ``head`` already read), copying to ``sink``."""

    def __init__(self, source, sink: HashingWriter, head: bytes):
        self.source, self.sink, self.head = source, sink, head

    def read(self, size: int = -1) -> bytes:
        if self.head:
            data, self.head = self.head, b""
            if size < 0 or size > len(data):
                data += self._read(size - len(data) if size > 0 else -1)
            return data
        return self._read(size)

    def _read(self, size: int) -> bytes:
        data = self.source.read(size)
        self.sink.write(data)
        return data


def _diff_ids(config: dict, manifest: dict) -> list[str]:
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(manifest["layers"]):
        raise ArchiveError("the manifest and the config disagree on the number of layers")
    return [check_digest(d) for d in diff_ids]


def _member(archive: tarfile.TarFile, name: str) -> tarfile.TarInfo:
    try:
        member = archive.getmember(name)
    except KeyError:
        raise ArchiveError(f"the archive lacks {name}") from None
    if not member.isfile():
        raise ArchiveError(f"{name} in the archive is not a regular file")
    return member


def _member_bytes(archive: tarfile.TarFile, name: str) -> bytes:
    member = _member(archive, name)
    if member.size > MAX_JSON:
        raise ArchiveError(f"{name} is larger than {MAX_JSON} bytes")
    return archive.extractfile(member).read()


def _json(archive: tarfile.TarFile, name: str):
    try:
        return json.loads(_member_bytes(archive, name))
    except ValueError as exc:
        raise ArchiveError(f"{name} in the archive is not valid JSON: {exc}") from None


def _verify(data: bytes, digest: str) -> None:
    if sha256_digest(data) != check_digest(digest):
        raise ArchiveError(f"blob {digest} is corrupt: its bytes hash to {sha256_digest(data)}")


# --- import ----------------------------------------------------------------------------------

def import_tarball(path: Path, name: str | None, config: dict, comment: str) -> Image:
    """A flat root filesystem tar (plain or gzip) becomes a one-layer image."""
    store = ImageStore()
    with store.scratch() as scratch, open(path, "rb") as source:
        tar_path = Path(scratch) / "layer.tar"
        with open(tar_path, "wb") as out:
            plain = HashingWriter(out)
            _decompress(source, HashingWriter(), plain)
        layer = store.add_layer(tar_path)
    history = [{"created_by": f"minidocker import {os.path.basename(path)}",
                "comment": comment}]
    return store.add_image(new_config([layer.diff_id], config, history), [layer], name)


__all__ = ["ArchiveError", "import_tarball", "load", "save"]
