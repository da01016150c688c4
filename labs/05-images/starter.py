"""Lab 05 — images: build one by hand, with hashlib, tarfile, gzip and json.

An image is a few files that name each other by hash (the OCI image layout):

    index.json ──> manifest ──> config   (Cmd, architecture, and rootfs.diff_ids:
                           └──> layers    the hash of each layer's *uncompressed* tar)

Each of them is a *blob*, stored as ``blobs/sha256/<hex>`` where ``<hex>`` is the SHA-256 of
its bytes; a layer blob is a gzip'd tar of files. You build an image that adds one layer (a
script) on top of busybox's, as an OCI layout directory, then pack it into an archive that
``minidocker load -i`` reads, and the checker runs it with ``minidocker run --rm``.

Use the standard library only: ``hashlib``, ``tarfile``, ``gzip``, ``json``, ``os``. Not
``minidocker.image``, which would do the lesson for you.

Check your work (the checker runs your code in a sandbox, on a scratch tmpfs, and removes the
images it loaded when it is done):

    sudo minidocker lab check 05                # this file
    sudo minidocker lab check 05 PATH           # a copy of it

Steps and hints: labs/05-images/README.md. Spec: github.com/opencontainers/image-spec,
image-layout.md, descriptor.md, manifest.md, config.md, layer.md.
"""

import gzip  # gzip.compress
import hashlib  # hashlib.sha256(data).hexdigest()
import io  # io.BytesIO: a tar built in memory
import json  # json.dumps(value).encode()
import os  # os.path.join, os.makedirs, os.listdir, os.uname
import tarfile  # tarfile.open(fileobj=..., mode="w"), tar.add(path, arcname=...)

# --- given: the names the spec uses ----------------------------------------------------------

OCI_LAYOUT = {"imageLayoutVersion": "1.0.0"}  # the content of the file oci-layout
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"  # the annotation that names an image
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}  # os.uname().machine -> the spec's name

# --- yours: one function per step --------------------------------------------------------------

def write_blob(layout: str, data: bytes) -> str:
    """Step 1 (and 2): store ``data`` in the layout directory ``layout`` under its own hash
    and return its digest, ``"sha256:<64 hex digits>"``."""
    # TODO Step 1: hash the bytes, write them to layout/blobs/sha256/<hex digits> (make the
    #              directories if they are missing), return "sha256:" + the hex digits.
    raise NotImplementedError("Step 1: write_blob() is not written yet")


def write_layer(source: str, layout: str) -> dict:
    """Step 1: make a layer of the directory ``source``: a tar of its files, gzip'd, stored as
    a blob of ``layout``. Return ``{"digest": ..., "size": ..., "diff_id": ...}``: the
    digest and size of the blob (the gzip), and the digest of the uncompressed tar."""
    # TODO Step 1: tar every file of source under its path inside source ("etc/motd"),
    #              gzip the tar, store the gzip with write_blob, and hash both forms.
    raise NotImplementedError("Step 1: write_layer() is not written yet")


def write_image(layout: str, layers: list[dict], cmd: list[str], name: str) -> None:
    """Step 2: write the image made of ``layers`` (each as write_layer returns it, bottom
    first; their blobs are already in ``layout``) that runs ``cmd``: its config and its
    manifest as blobs, then ``index.json`` naming it ``name`` and the ``oci-layout`` file."""
    # TODO Step 2: the config (architecture, os, config.Cmd, rootfs.diff_ids, history), the
    #              manifest (the config's and each layer's descriptor: mediaType, digest,
    #              size), index.json (one descriptor of the manifest, with the name in its
    #              annotations), oci-layout.
    raise NotImplementedError("Step 2: write_image() is not written yet")


def pack(layout: str, archive: str) -> None:
    """Step 3: write the layout directory ``layout`` as the tar archive ``archive``, which
    ``minidocker load -i`` reads."""
    # TODO Step 3: a tar whose entries are named by their path inside the layout
    #              ("index.json", "oci-layout", "blobs/sha256/...").
    raise NotImplementedError("Step 3: pack() is not written yet")


# --- given: the story, one step a line -------------------------------------------------------

def build_image(layout: str, base: list[dict], source: str, cmd: list[str], name: str,
                archive: str) -> None:
    """Step 4: an image ``name`` that adds the files of ``source`` on top of the layers
    ``base`` (busybox's, whose blobs are already in ``layout``), packed into ``archive``."""
    top = write_layer(source, layout)  # Step 1
    write_image(layout, base + [top], cmd, name)  # Step 2
    pack(layout, archive)  # Step 3
