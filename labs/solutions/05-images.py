"""Lab 05 — images: a reference solution (spoilers: try the lab first).

Check it: sudo minidocker lab check 05 labs/solutions/05-images.py
"""

import gzip
import hashlib
import io
import json
import os
import tarfile

OCI_LAYOUT = {"imageLayoutVersion": "1.0.0"}
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def write_blob(layout: str, data: bytes) -> str:
    """Step 1 (and 2): store ``data`` under its own hash; return its digest."""
    hex_digits = hashlib.sha256(data).hexdigest()
    folder = os.path.join(layout, "blobs", "sha256")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, hex_digits), "wb") as f:
        f.write(data)
    return "sha256:" + hex_digits


def write_layer(source: str, layout: str) -> dict:
    """Step 1: a gzip'd tar of ``source`` as a blob; its digest, size and diff_id."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir(source)):
            # arcname: the path inside the layer, not on this machine. tar.add recurses
            # into directories and keeps modes and symlinks.
            tar.add(os.path.join(source, name), arcname=name)
    tar_bytes = buffer.getvalue()
    blob = gzip.compress(tar_bytes, mtime=0)  # mtime=0: same files, same digest
    return {"digest": write_blob(layout, blob), "size": len(blob),
            # The diff_id hashes the tar itself: it names the files, however they were
            # compressed, and a tool checks it once it has unpacked the layer.
            "diff_id": "sha256:" + hashlib.sha256(tar_bytes).hexdigest()}


def write_json_blob(layout: str, value: dict, media_type: str) -> dict:
    """A JSON blob, and the descriptor that points at it (descriptor.md)."""
    data = json.dumps(value).encode()
    return {"mediaType": media_type, "digest": write_blob(layout, data), "size": len(data)}


def write_image(layout: str, layers: list[dict], cmd: list[str], name: str) -> None:
    """Step 2: config and manifest as blobs, index.json naming the image, oci-layout."""
    config = {
        "architecture": GO_ARCH.get(os.uname().machine, os.uname().machine),
        "os": "linux",
        "config": {"Cmd": cmd},  # the defaults of the container's process
        "rootfs": {"type": "layers", "diff_ids": [layer["diff_id"] for layer in layers]},
        "history": [{"created_by": "lab 05, by hand"} for _ in layers],  # one per layer
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": write_json_blob(layout, config, CONFIG),
        # The blobs as stored: the gzip's digest and size.
        "layers": [{"mediaType": LAYER, "digest": layer["digest"], "size": layer["size"]}
                   for layer in layers],
    }
    descriptor = write_json_blob(layout, manifest, MANIFEST)
    descriptor["annotations"] = {REF_NAME: name}
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [descriptor]}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump(OCI_LAYOUT, f)


def pack(layout: str, archive: str) -> None:
    """Step 3: the layout as a tar, its entries named by their path inside it."""
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir(layout)):
            tar.add(os.path.join(layout, name), arcname=name)


def build_image(layout: str, base: list[dict], source: str, cmd: list[str], name: str,
                archive: str) -> None:
    """Step 4: one layer from ``source`` on top of ``base``, named ``name``, packed."""
    top = write_layer(source, layout)  # Step 1
    write_image(layout, base + [top], cmd, name)  # Step 2
    pack(layout, archive)  # Step 3
