"""Checker of lab 05 — an image by hand: a layer tar, its digests, the JSON, an OCI layout.

The student builds a one-layer-on-busybox image with hashlib, tarfile, gzip and json, and packs
it as an archive. For every step the sandbox (sandbox.py) mounts a tmpfs on a scratch directory
and puts there the files of the new layer (``source/``: a script and the file it prints) and an
empty OCI layout directory (``layout/``). Step 1 reads back the blob the student wrote: its name
is its hash, the gzip holds a tar with the source's files, the diff_id is the hash of that tar.
Step 2 hands the student the layers (busybox's, copied from the store, and the new one, made by
the checker) and reads the layout the student writes as any tool would, then lets skopeo read
it. Step 3 gives the student a complete layout to pack, and step 4 runs the whole story; each
archive is loaded with ``minidocker load -i`` and run with ``minidocker run --rm``, and the
image is removed from the store afterwards.

Spec: opencontainers/image-spec image-layout.md, manifest.md, config.md, layer.md,
descriptor.md. Tools: skopeo(1) (``skopeo inspect oci:DIR:NAME``), when installed.
Used by: ``minidocker lab check 05``; the lab is labs/05-images/.
"""

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from minidocker import kernel
from minidocker.errors import NotFound
from minidocker.image.blobs import DIGEST, sha256_digest
from minidocker.image.layers import GZIP_MAGIC, write_layer_tar
from minidocker.image.store import (
    CONFIG,
    INDEX,
    LAYER,
    MANIFEST,
    OCI_LAYOUT,
    REF_NAME,
    ImageStore,
)
from minidocker.labs.framework import Lab, Step, function
from minidocker.labs.sandbox import CheckFailed, call_student

# The new layer: a script, the file it prints, and a symlink (a layer keeps links as links).
HELLO = "#!/bin/sh\necho \"hello from an image built by hand\"\ncat /etc/motd\n"
MOTD = "its top layer brought /usr/local/bin/hello and this /etc/motd\n"
SOURCE = {"usr/local/bin/hello": (HELLO, 0o755), "etc/motd": (MOTD, 0o644)}
SYMLINK = ("usr/local/bin/hi", "hello")
CMD = ["/usr/local/bin/hello"]
OUTPUT = [HELLO.splitlines()[1].split('"')[1], MOTD.strip()]  # what the image must print
NAME = "lab05-hello"  # the images' repository; each check tags its own
CLI_TIMEOUT = 15  # seconds for one minidocker or skopeo command


@dataclass
class Workspace:
    """Made on the host side, once per check."""

    scratch: str  # an empty directory: each sandbox mounts a tmpfs on it
    base: list[dict]  # busybox's layers: digest, size, diff_id and where its blob is
    architecture: str  # as the busybox image says: this machine's, in Go's spelling
    token: str  # in the tags of this check's images, so that they can all be removed


@dataclass
class Stage:
    """One step's directories, in the sandbox's tmpfs."""

    source: str  # the files of the new layer
    layout: str  # an empty directory: the OCI layout to write
    archive: str  # where an archive goes


@contextmanager
def workspace() -> Iterator[Workspace]:
    """The busybox image's layers and a scratch directory; afterwards, no image of this check
    stays in the store, whatever happened to the steps."""
    store = ImageStore()
    busybox = store.get("busybox")
    base = [{"digest": layer["digest"], "size": layer["size"], "diff_id": diff_id,
             "blob": str(store.blobs.path(layer["digest"]))}
            for layer, diff_id in zip(busybox.manifest["layers"], busybox.diff_ids, strict=True)]
    scratch = tempfile.mkdtemp(prefix="minidocker-lab05-")
    space = Workspace(scratch, base, busybox.config.get("architecture", ""), str(os.getpid()))
    try:
        yield space
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        for image in ImageStore().images():
            for tag in image.tags:
                if tag.startswith(f"{NAME}:") and tag.endswith(f"-{space.token}"):
                    remove_image(tag)


def stage(space: Workspace) -> Stage:
    """In the sandbox: a tmpfs on the scratch directory, the new layer's files, an empty
    layout directory."""
    kernel.mount("tmpfs", space.scratch, "tmpfs", 0, "mode=755")
    here = Stage(*(os.path.join(space.scratch, d) for d in ("source", "layout", "image.tar")))
    for name, (text, mode) in SOURCE.items():
        path = os.path.join(here.source, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
    os.symlink(SYMLINK[1], os.path.join(here.source, SYMLINK[0]))
    os.makedirs(here.layout)
    return here


def image_name(space: Workspace, step: int) -> str:
    return f"{NAME}:step{step}-{space.token}"


def short(digest: str) -> str:
    return digest[:19] + "…"


# --- what the checker builds itself: the layers and layouts the steps start from --------------

def place_base(space: Workspace, layout: str) -> list[dict]:
    """Copy busybox's layer blobs from the store into ``layout``; return their records."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    for layer in space.base:
        shutil.copyfile(layer["blob"], blob_path(layout, layer["digest"]))
    return [{k: layer[k] for k in ("digest", "size", "diff_id")} for layer in space.base]


def put_blob(layout: str, data: bytes) -> str:
    digest = sha256_digest(data)
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(blob_path(layout, digest), "wb") as f:
        f.write(data)
    return digest


def reference_layer(source: str, layout: str) -> dict:
    """The new layer as the checker makes it (the engine's deterministic tar, gzip'd)."""
    tar = io.BytesIO()
    write_layer_tar(source, tar)
    blob = gzip.compress(tar.getvalue(), mtime=0)
    return {"digest": put_blob(layout, blob), "size": len(blob),
            "diff_id": sha256_digest(tar.getvalue())}


def reference_image(layout: str, layers: list[dict], architecture: str, name: str) -> None:
    """A complete layout for step 3: config, manifest, index.json, oci-layout."""
    config = json.dumps({
        "architecture": architecture, "os": "linux", "config": {"Cmd": CMD},
        "rootfs": {"type": "layers", "diff_ids": [layer["diff_id"] for layer in layers]},
        "history": [{"created_by": "lab 05's checker"} for _ in layers]}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": put_blob(layout, config),
                   "size": len(config)},
        "layers": [{"mediaType": LAYER, "digest": layer["digest"], "size": layer["size"]}
                   for layer in layers]}).encode()
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": MANIFEST, "digest": put_blob(layout, manifest), "size": len(manifest),
         "annotations": {REF_NAME: name}}]}
    for filename, value in (("index.json", index), ("oci-layout", OCI_LAYOUT)):
        with open(os.path.join(layout, filename), "w") as f:
            json.dump(value, f)


# --- reading a layout as a tool would -------------------------------------------------------

def blob_path(layout: str, digest: str) -> str:
    return os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1])


def read_blob(layout: str, digest, what: str) -> bytes:
    """The blob ``digest`` names, checked: a well-formed digest, a file, the right hash."""
    if not isinstance(digest, str) or not DIGEST.match(digest):
        raise CheckFailed(f"the {what}'s digest is {digest!r}: write it as \"sha256:\" and the "
                          "64 lowercase hex digits of the SHA-256 of its bytes")
    path = blob_path(layout, digest)
    if not os.path.isfile(path):
        raise CheckFailed(f"the {what} {short(digest)} is not in the layout: a blob lives at "
                          f"blobs/sha256/<hex digits of its digest> (no {path})")
    with open(path, "rb") as f:
        data = f.read()
    if sha256_digest(data) != digest:
        raise CheckFailed(f"blobs/sha256/{digest[7:19]}… holds bytes that hash to "
                          f"{short(sha256_digest(data))}: a blob's name is the SHA-256 of "
                          "exactly the bytes in it")
    return data


def read_json(data: bytes, what: str) -> dict:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise CheckFailed(f"the {what} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise CheckFailed(f"the {what} is {type(value).__name__} JSON: it should be an object")
    return value


def check_descriptor(descriptor, media_type: str, data: bytes, what: str) -> None:
    """A descriptor (descriptor.md) says what a blob is: its media type and exact size."""
    if not isinstance(descriptor, dict):
        raise CheckFailed(f"the {what}'s descriptor is {descriptor!r}: an object with "
                          "mediaType, digest and size")
    if descriptor.get("mediaType") != media_type:
        raise CheckFailed(f"the {what}'s mediaType is {descriptor.get('mediaType')!r}, not "
                          f"{media_type!r} (OCI's types: Docker's are refused by some tools)")
    if descriptor.get("size") != len(data):
        raise CheckFailed(f"the {what}'s descriptor says size {descriptor.get('size')!r}, but "
                          f"the blob has {len(data)} bytes")


def read_layout(layout: str, name: str) -> tuple[dict, dict]:
    """Follow the layout from ``oci-layout`` and ``index.json`` to the manifest and config of
    the image ``name``, checking every step; return (manifest, config)."""
    marker = os.path.join(layout, "oci-layout")
    if not os.path.isfile(marker):
        raise CheckFailed("the layout has no oci-layout file: write "
                          f"{json.dumps(OCI_LAYOUT)} there; it says which layout version "
                          "this directory is")
    with open(marker, "rb") as f:
        if read_json(f.read(), "oci-layout file") != OCI_LAYOUT:
            raise CheckFailed(f"oci-layout should hold {json.dumps(OCI_LAYOUT)}")
    index_path = os.path.join(layout, "index.json")
    if not os.path.isfile(index_path):
        raise CheckFailed("the layout has no index.json: it names the images of the layout")
    with open(index_path, "rb") as f:
        index = read_json(f.read(), "index.json")
    if index.get("schemaVersion") != 2 or index.get("mediaType") != INDEX:
        raise CheckFailed(f"index.json should be an object with \"schemaVersion\": 2 and "
                          f"\"mediaType\": \"{INDEX}\"")
    named = [d for d in index.get("manifests") or []
             if isinstance(d, dict) and (d.get("annotations") or {}).get(REF_NAME) == name]
    if not named:
        refs = [(d.get("annotations") or {}).get(REF_NAME) for d in index.get("manifests") or []
                if isinstance(d, dict)]
        raise CheckFailed(f"index.json names no image {name!r} (its manifests are named "
                          f"{refs}): the manifest's descriptor carries the name in its "
                          f"annotations, as {REF_NAME!r}")
    manifest_bytes = read_blob(layout, named[0].get("digest"), "manifest")
    check_descriptor(named[0], MANIFEST, manifest_bytes, "manifest")
    manifest = read_json(manifest_bytes, "manifest")
    if manifest.get("schemaVersion") != 2 or manifest.get("mediaType") != MANIFEST:
        raise CheckFailed(f"the manifest should have \"schemaVersion\": 2 and \"mediaType\": "
                          f"\"{MANIFEST}\"")
    config_descriptor = manifest.get("config") or {}
    config_bytes = read_blob(layout, config_descriptor.get("digest"), "config")
    check_descriptor(config_descriptor, CONFIG, config_bytes, "config")
    return manifest, read_json(config_bytes, "config")


def check_layers(manifest: dict, config: dict, layers: list[dict]) -> None:
    """The manifest lists the blobs as stored; the config lists the tars' own hashes."""
    listed = manifest.get("layers")
    if not isinstance(listed, list) or not all(isinstance(d, dict) for d in listed) \
            or len(listed) != len(layers):
        raise CheckFailed(f"the manifest lists {len(listed or [])} layers, not the "
                          f"{len(layers)} you were given")
    for number, (descriptor, layer) in enumerate(zip(listed, layers, strict=True), start=1):
        if descriptor.get("digest") != layer["digest"]:
            order = " (bottom layer first: busybox's, then the new one)" \
                if any(d.get("digest") == layer["digest"] for d in listed) else ""
            listed_digest = descriptor.get("digest")
            shown = short(listed_digest) if isinstance(listed_digest, str) else listed_digest
            raise CheckFailed(f"the manifest's layer {number} is {shown}, not "
                              f"{short(layer['digest'])}{order}")
        if descriptor.get("mediaType") != LAYER or descriptor.get("size") != layer["size"]:
            raise CheckFailed(f"layer {number}'s descriptor should say mediaType {LAYER!r} and "
                              f"size {layer['size']} (the gzip blob's)")
    rootfs = config.get("rootfs") or {}
    diff_ids = [layer["diff_id"] for layer in layers]
    if rootfs.get("diff_ids") == [layer["digest"] for layer in layers]:
        raise CheckFailed("rootfs.diff_ids lists the layers' digests, which hash the gzip'd "
                          "blobs: a diff_id is the hash of the *uncompressed* tar; tools check "
                          "it after unpacking")
    if rootfs != {"type": "layers", "diff_ids": diff_ids}:
        raise CheckFailed(f"the config's rootfs is {rootfs!r}: it should be {{\"type\": "
                          f"\"layers\", \"diff_ids\": [...]}} with each layer's diff_id, "
                          "bottom first")


def check_config(config: dict, architecture: str) -> None:
    if config.get("architecture") != architecture or config.get("os") != "linux":
        raise CheckFailed(f"the config says architecture {config.get('architecture')!r} and os "
                          f"{config.get('os')!r}; this machine is {architecture!r} (Go's name, "
                          "as busybox's config says) and 'linux'")
    if (config.get("config") or {}).get("Cmd") != CMD:
        where = " (it belongs inside the config's \"config\" object)" if "Cmd" in config else ""
        raise CheckFailed(f"config.Cmd is {(config.get('config') or {}).get('Cmd')!r}, not "
                          f"{CMD}{where}")
    history = config.get("history")
    layers = len(config["rootfs"]["diff_ids"])
    made_layers = [h for h in history or [] if isinstance(h, dict) and not h.get("empty_layer")]
    if not isinstance(history, list) or len(made_layers) != layers:
        raise CheckFailed(f"history has {len(made_layers)} entries that made a layer, for "
                          f"{layers} layers: one entry per layer (e.g. {{\"created_by\": "
                          "\"...\"}), in the same order")


# --- the tools: skopeo, minidocker load and run -------------------------------------------

def skopeo_inspect(layout: str, name: str) -> str:
    """What ``skopeo inspect oci:LAYOUT:NAME`` says, or that skopeo is not installed."""
    if shutil.which("skopeo") is None:
        return "skopeo is not installed here, so its check was skipped"
    result = tool(["skopeo", "inspect", f"oci:{layout}:{name}"])
    if result.returncode != 0:
        raise CheckFailed(f"skopeo inspect oci:<layout>:{name} refused the layout: "
                          f"{last_line(result.stderr)}")
    info = json.loads(result.stdout)
    return (f"skopeo inspect reads it too ({info.get('Os')}/{info.get('Architecture')}, "
            f"{len(info.get('Layers') or [])} layers)")


def tool(argv: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=CLI_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"'{' '.join(argv[:3])} ...' ran for more than {CLI_TIMEOUT} s "
                          "and was stopped") from None


def minidocker(*args: str) -> subprocess.CompletedProcess:
    """The minidocker command a student would type, run by this Python."""
    return tool([sys.executable, "-m", "minidocker.cli", *args])


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(nothing on stderr)"


def archive_names(archive: str) -> list[str]:
    if not os.path.isfile(archive):
        raise CheckFailed(f"there is no archive at {archive}: write the tar there")
    try:
        with tarfile.open(archive) as tar:
            return tar.getnames()
    except (tarfile.TarError, OSError) as exc:
        raise CheckFailed(f"the archive is not a tar ({exc})") from None


def naming_hint(names: list[str]) -> str:
    """Why an archive's names may not be what ``load`` looks for."""
    if "index.json" in names:
        return ""
    found = next((n for n in names if n.endswith("index.json")), None)
    if found is None:
        return " (the archive has no index.json at all: pack the whole layout)"
    return (f" (its entries are named like {found!r}: name each by its path inside the "
            "layout, 'index.json', 'oci-layout', 'blobs/sha256/...', e.g. with "
            "tar.add(path, arcname=...))")


def load_and_run(archive: str, name: str) -> str:
    """``minidocker load -i ARCHIVE`` then ``minidocker run --rm NAME``; the image is removed
    afterwards. Returns what the image printed."""
    names = archive_names(archive)
    try:
        loaded = minidocker("load", "-i", archive)
        if loaded.returncode != 0:
            raise CheckFailed(f"minidocker load -i refused the archive: "
                              f"{last_line(loaded.stderr)}{naming_hint(names)}")
        if f"Loaded image: {name}" not in loaded.stdout:
            raise CheckFailed(f"minidocker load read the archive but named no image {name!r} "
                              f"(it said: {last_line(loaded.stdout)})")
        ran = minidocker("run", "--rm", name)
    finally:
        remove_image(name)
    missing = [line for line in OUTPUT if line not in ran.stdout]
    if ran.returncode != 0 or missing:
        raise CheckFailed(f"minidocker run --rm {name} exited with {ran.returncode} and "
                          f"printed {ran.stdout.strip()!r}, not {OUTPUT[0]!r} then the motd "
                          f"(stderr: {last_line(ran.stderr)})")
    return " / ".join(ran.stdout.strip().splitlines())


def remove_image(name: str) -> None:
    """Take the image out of the store, with the blobs and layers nothing else uses."""
    store = ImageStore()
    try:
        store.delete(store.get(name))
    except NotFound:
        pass


# --- step 1: a layer --------------------------------------------------------------------------

def as_layer(returned) -> dict:
    if not isinstance(returned, dict) or not {"digest", "size", "diff_id"} <= set(returned):
        raise CheckFailed(f"write_layer() returned {returned!r}: return a dict with the keys "
                          "'digest', 'size' and 'diff_id'")
    return returned


def member_name(name: str) -> str:
    """A tar member's path inside the layer: ``./etc/motd`` and ``etc/motd`` are the same."""
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def check_tar_contents(tar_bytes: bytes) -> list[str]:
    """The tar holds the source's files under their paths in the layer; return its names."""
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
            members = {member_name(m.name): m for m in tar.getmembers()}
            contents = {name: tar.extractfile(m).read().decode(errors="replace")
                        for name, m in members.items() if m.isfile()}
    except tarfile.TarError as exc:
        raise CheckFailed(f"the blob, un-gzipped, is not a tar ({exc})") from None
    for name, (text, mode) in SOURCE.items():
        if name not in members:
            elsewhere = next((m for m in members if m.endswith("/" + name)), None)
            if elsewhere:
                raise CheckFailed(f"the tar names a file {elsewhere!r}: name each file by its "
                                  f"path inside the layer ({name!r}), not on this machine "
                                  "(tar.add(path, arcname=...))")
            raise CheckFailed(f"the tar has no {name!r}: put every file of the source "
                              "directory in it")
        if contents.get(name) != text:
            raise CheckFailed(f"{name} in the tar is not the source's file")
        if members[name].mode & 0o777 != mode:
            raise CheckFailed(f"{name} has mode {members[name].mode & 0o777:o} in the tar, "
                              f"not {mode:o}: keep the files' modes (the script must stay "
                              "executable)")
    link = members.get(SYMLINK[0])
    if link is None or not link.issym() or link.linkname != SYMLINK[1]:
        raise CheckFailed(f"{SYMLINK[0]} should be a symlink to {SYMLINK[1]!r} in the tar: "
                          "a layer keeps a symlink as a link, not as a copy of its target")
    return sorted(members)


def check_layer(student, space: Workspace) -> str:
    here = stage(space)
    layer = as_layer(call_student(function(student, "write_layer"), here.source, here.layout))
    blob = read_blob(here.layout, layer["digest"], "layer")
    if layer["size"] != len(blob):
        raise CheckFailed(f"size is {layer['size']!r}, but the blob has {len(blob)} bytes")
    if not blob.startswith(GZIP_MAGIC):
        raise CheckFailed(f"the blob is no gzip stream (it starts with {blob[:4]!r}): the "
                          "layer's media type is tar+gzip, so gzip the tar before storing it")
    tar_bytes = gzip.decompress(blob)
    if layer["diff_id"] == layer["digest"]:
        raise CheckFailed("diff_id is the digest of the gzip: a diff_id is the hash of the "
                          "*uncompressed* tar (the same layer gzip'd another way keeps it)")
    if layer["diff_id"] != sha256_digest(tar_bytes):
        raise CheckFailed(f"diff_id is {layer['diff_id']!r}, but the uncompressed tar in the "
                          f"blob hashes to {short(sha256_digest(tar_bytes))}")
    names = check_tar_contents(tar_bytes)
    return (f"blob {short(layer['digest'])} ({len(blob)} bytes of gzip) holds a tar of "
            f"{len(names)} entries ({', '.join(n for n in names if n in SOURCE or n == SYMLINK[0])}"
            f", ...); diff_id {short(layer['diff_id'])} is the hash of that tar, uncompressed")


# --- step 2: config, manifest, index.json -----------------------------------------------------

def check_image(student, space: Workspace) -> str:
    here = stage(space)
    layers = place_base(space, here.layout) + [reference_layer(here.source, here.layout)]
    name = image_name(space, 2)
    call_student(function(student, "write_image"), here.layout, [dict(la) for la in layers],
                 list(CMD), name)
    manifest, config = read_layout(here.layout, name)
    check_layers(manifest, config, layers)
    check_config(config, space.architecture)
    skopeo = skopeo_inspect(here.layout, name)
    return (f"index.json names {name}: manifest -> config ({config['os']}/"
            f"{config['architecture']}, Cmd {CMD}) and {len(layers)} layers, every size and "
            f"digest right, diff_ids in the config; {skopeo}")


# --- step 3: an archive that minidocker loads ---------------------------------------------------

def check_pack(student, space: Workspace) -> str:
    here = stage(space)
    name = image_name(space, 3)
    layers = place_base(space, here.layout) + [reference_layer(here.source, here.layout)]
    reference_image(here.layout, layers, space.architecture, name)
    call_student(function(student, "pack"), here.layout, here.archive)
    printed = load_and_run(here.archive, name)
    return (f"minidocker load -i took the archive as {name}, and minidocker run --rm "
            f"printed: {printed}")


# --- step 4: the whole story ------------------------------------------------------------------

def check_story(student, space: Workspace) -> str:
    here = stage(space)
    name = image_name(space, 4)
    base = place_base(space, here.layout)
    try:
        call_student(function(student, "build_image"), here.layout, base, here.source,
                     list(CMD), name, here.archive)
    except NotImplementedError as exc:
        raise NotImplementedError(f"Step 4: build_image() needs steps 1 to 3 ({exc})") from None
    skopeo = skopeo_inspect(here.layout, name)
    printed = load_and_run(here.archive, name)
    return (f"your image, from your layer to your archive: minidocker run --rm {name} printed: "
            f"{printed}; {skopeo}")


LAB = Lab(
    directory="05-images",
    steps=(
        Step(1, "a layer: a tar, gzip'd, stored under its digest; its diff_id", check_layer),
        Step(2, "the config, the manifest and index.json of an OCI layout", check_image),
        Step(3, "an archive that minidocker load accepts, and that runs", check_pack),
        Step(4, "the whole story: build_image(), loaded and run", check_story),
    ),
    workspace=workspace,
)
