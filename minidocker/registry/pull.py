"""``pull``: an image from a registry into the store, trusting nothing but digests.

The story, as the bytes travel (``pull()`` reads in this order):

1. ping the registry and answer its challenge (``client.Session``);
2. ``GET /v2/<name>/manifests/<tag>`` with an ``Accept`` header naming every manifest and
   index type we read — the registry picks which to send, ``Content-Type`` says which it sent;
3. an *index* (a multi-platform image) lists one manifest per platform: pick this machine's
   (``linux/amd64`` on x86_64), or ``--platform``'s, and fetch that manifest *by digest*;
4. the config (the image's ID is its digest) — small, capped, checked;
5. each layer: skipped if the store has its ``diff_id`` already ("Already exists"), otherwise
   streamed to a temp file while it is hashed; a size or digest that differs from the
   manifest's descriptor is refused — that check is what makes a pull from an untrusted
   mirror safe, since the manifest's digest was checked, and it names every blob by digest;
6. store: under the store lock, each layer is unpacked while its uncompressed digest is
   checked against the config's ``diff_id`` in one pass over its bytes
   (``image.archive.import_layer``: the gzip blob kept as it came), then the image
   is named: by its tag, and by ``name@<digest of step 2>`` (Docker's RepoDigest: the store
   may re-write the manifest, and then its own digest differs).
   Downloads happen before the lock is taken and into temp files, so a pull that dies
   leaves nothing with a name; the store's garbage collection removes its temp files.

Spec: distribution-spec spec.md ("Pulling manifests", "Pulling blobs"); image-spec
image-index.md (platforms), manifest.md, descriptor.md (``urls``: non-distributable layers).
Docker docs: "docker pull" (``--platform``, "Image is up to date"); Go's GOARCH names.
Used by: ``minidocker pull``, ``run``/``create`` of a missing image; notebook 11-registries.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import httpx

from minidocker import events
from minidocker.errors import MinidockerError
from minidocker.image.archive import ACCEPTED_MANIFESTS, INDEXES, import_layer
from minidocker.image.blobs import HashingWriter, check_digest, sha256_digest
from minidocker.image.store import Image, ImageStore, layer_dir
from minidocker.registry.client import (
    MAX_CONFIG,
    MAX_MANIFEST,
    RegistryClientError,
    Session,
    Target,
    locate,
    read_capped,
    short_digest,
)
from minidocker.registry.progress import Report

ACCEPT = ", ".join([*ACCEPTED_MANIFESTS, *INDEXES])
CHUNK = 1 << 20
# `uname -m` -> (GOARCH, variant), as Docker names this machine's platform
MACHINES = {"x86_64": ("amd64", None), "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"),
            "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "i686": ("386", None),
            "i386": ("386", None), "ppc64le": ("ppc64le", None), "s390x": ("s390x", None),
            "riscv64": ("riscv64", None)}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @classmethod
    def parse(cls, text: str) -> "Platform":
        """``linux/arm64/v8``, ``linux/amd64``; ``arm64`` alone means linux."""
        parts = text.lower().split("/")
        if len(parts) == 1:
            parts.insert(0, "linux")
        if not 2 <= len(parts) <= 3 or not all(parts):
            raise MinidockerError(f"invalid platform {text!r}: use OS/ARCH[/VARIANT], e.g. "
                                  "linux/amd64 or linux/arm64/v8")
        arch = MACHINES.get(parts[1], (parts[1], None))[0]
        return cls(parts[0], arch, parts[2] if len(parts) == 3 else None)

    @classmethod
    def this_machine(cls) -> "Platform":
        machine = os.uname().machine
        arch, variant = MACHINES.get(machine, (machine, None))
        return cls("linux", arch, variant)

    def accepts(self, entry: dict, exact_variant: bool) -> bool:
        """Does an index entry's ``platform`` describe this platform? Its variant counts only
        with ``exact_variant`` (``arm64`` without one is ``v8``)."""
        arch = MACHINES.get(entry.get("architecture", ""), (entry.get("architecture"), None))[0]
        if (entry.get("os"), arch) != (self.os, self.architecture):
            return False
        if not exact_variant or not self.variant:
            return True
        return (entry.get("variant") or ("v8" if arch == "arm64" else None)) == self.variant


def pick_platform(index: dict, wanted: Platform, asked: bool) -> dict:
    """The index entry for ``wanted``: an exact variant first, then any entry of the right
    OS and CPU unless a variant was asked for. ``unknown/unknown`` entries (BuildKit's
    attestations) are never images to run."""
    entries = [m for m in index.get("manifests", [])
               if (m.get("platform") or {}).get("os") not in (None, "unknown")]
    for exact in (True,) if asked and wanted.variant else (True, False):
        for entry in entries:
            if wanted.accepts(entry["platform"], exact):
                return entry
    listed = ", ".join(str(Platform(p.get("os", "?"), p.get("architecture", "?"),
                                    p.get("variant")))
                       for p in (m["platform"] for m in entries)) or "nothing"
    raise RegistryClientError(f"no matching manifest for {wanted} in the manifest list "
                              f"entries (it lists: {listed}); pick one with --platform")


# --- the story ------------------------------------------------------------------------------

def pull(name: str, report: Report, platform: str | None = None,
         insecure: tuple[str, ...] = (), login: tuple[str, str] | None = None) -> Image:
    """``login``: the user and password to use (the daemon's client sends them); without it,
    those stored by ``minidocker login``, if any."""
    target = locate(name)
    if "@" not in name and ":" not in name.rsplit("/", 1)[-1]:
        report.line("Using default tag: latest")
    wanted = Platform.parse(platform) if platform else Platform.this_machine()
    with Session(target, ("pull",), insecure, login=login) as session:         # 1
        digest, manifest = resolve_manifest(session, target, wanted, bool(platform))  # 2, 3
        report.line(f"{target.reference}: Pulling from {target.repository}")
        config_bytes = fetch_config(session, manifest["config"])               # 4
        diff_ids = check_config(config_bytes, manifest, wanted, bool(platform), report)
        store = ImageStore()
        before = _image_of(store, target)
        with store.scratch() as scratch:
            files = download_layers(session, store, manifest["layers"], diff_ids,  # 5
                                    Path(scratch), report)
            image = store_image(store, target, config_bytes, manifest["layers"],  # 6
                                diff_ids, files, report, digest)
    report.line(f"Digest: {digest}")
    events.emit("image", "pull", str(target), {"name": str(target)})
    if before == image.id:
        report.line(f"Status: Image is up to date for {target}")
    else:
        report.line(f"Status: Downloaded newer image for {target}")
    return image


def resolve_manifest(session: Session, target: Target, wanted: Platform,
                     asked: bool) -> tuple[str, dict]:
    """The image manifest the reference names (through an index, for this platform), with
    the digest of what the reference named (the index's, for a multi-platform image)."""
    body, media_type, digest = fetch_manifest(session, target.reference)
    if media_type in INDEXES:
        entry = pick_platform(_json(body, "index"), wanted, asked)
        body, media_type, _ = fetch_manifest(session, check_digest(entry["digest"]))
    manifest = _json(body, "manifest")
    if media_type not in ACCEPTED_MANIFESTS or manifest.get("schemaVersion") != 2:
        raise RegistryClientError(f"unsupported manifest type {media_type or 'unknown'}: "
                                  "minidocker reads OCI and Docker schema 2 images")
    for descriptor in [manifest["config"], *manifest["layers"]]:
        check_digest(descriptor["digest"])
    return digest, manifest


def fetch_manifest(session: Session, reference: str) -> tuple[bytes, str, str]:
    """The manifest's bytes, media type and digest. Asked for by digest, the bytes must hash
    to it; asked for by tag, a ``Docker-Content-Digest`` the registry sends must match."""
    response = session.request("GET", f"manifests/{reference}", stream=True,
                               headers={"Accept": ACCEPT})
    if response.status_code != 200:
        raise session.fail(response, f"manifest for {session.target.name}:{reference} not "
                                     f"found" if response.status_code == 404 else
                           f"fetching the manifest {reference}")
    body = read_capped(response, MAX_MANIFEST, "manifest")
    digest = sha256_digest(body)
    claimed = reference if reference.startswith("sha256:") else \
        response.headers.get("docker-content-digest", digest)
    if claimed != digest:
        raise RegistryClientError(f"manifest verification failed for {reference}: the registry "
                                  f"sent bytes that hash to {digest}, not {claimed}")
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    return body, _json(body, "manifest").get("mediaType") or media_type, digest


def fetch_config(session: Session, descriptor: dict) -> bytes:
    if descriptor.get("size", 0) > MAX_CONFIG:
        raise RegistryClientError(f"the image config is {descriptor['size']} bytes; "
                                  f"minidocker refuses more than {MAX_CONFIG}")
    response = session.request("GET", f"blobs/{descriptor['digest']}", stream=True)
    if response.status_code != 200:
        raise session.fail(response, f"fetching the config {descriptor['digest']}")
    data = read_capped(response, MAX_CONFIG, "config")
    _verify(descriptor, len(data), sha256_digest(data))
    return data


def check_config(config_bytes: bytes, manifest: dict, wanted: Platform, asked: bool,
                 report: Report) -> list[str]:
    """The config's ``diff_ids``, one per layer; a platform other than the one wanted is an
    error if it was asked for, else a warning (as Docker's)."""
    config = _json(config_bytes, "config")
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(manifest["layers"]):
        raise RegistryClientError(f"the image is broken: its manifest lists "
                                  f"{len(manifest['layers'])} layers, its config "
                                  f"{len(diff_ids)}")
    found = Platform(config.get("os", "?"), config.get("architecture", "?"),
                     config.get("variant"))
    if not wanted.accepts({"os": found.os, "architecture": found.architecture}, False):
        if asked:
            raise RegistryClientError(f"image with platform {found} does not match the "
                                      f"specified platform {wanted}")
        report.line(f"WARNING: The requested image's platform ({found}) does not match the "
                    f"detected host platform ({wanted}) and no specific platform was "
                    "requested")
    return [check_digest(d) for d in diff_ids]


def download_layers(session: Session, store: ImageStore, layers: list[dict],
                    diff_ids: list[str], scratch: Path, report: Report) -> dict[str, Path]:
    """Each layer the store lacks, streamed into ``scratch`` and verified; returns the
    files by blob digest."""
    have = _layers_in_store(store)
    files: dict[str, Path] = {}
    missing = []
    for layer, diff_id in zip(layers, diff_ids, strict=True):
        if diff_id in have:
            report.status(short_digest(layer["digest"]), "Already exists")
        elif layer["digest"] not in files:
            report.status(short_digest(layer["digest"]), "Pulling fs layer")
            files[layer["digest"]] = scratch / f"blob-{layer['digest'][7:]}"
            missing.append(layer)
    for layer in missing:
        download_blob(session, layer, files[layer["digest"]], report)
    return files


def download_blob(session: Session, descriptor: dict, path: Path, report: Report) -> None:
    """GET the blob, hashing as it streams; stop as soon as it is longer than declared."""
    short, digest = short_digest(descriptor["digest"]), descriptor["digest"]
    response = session.request("GET", f"blobs/{digest}", stream=True)
    if response.status_code == 404 and descriptor.get("urls"):
        response.close()
        response = _foreign(descriptor["urls"], digest)
    if response.status_code != 200:
        raise session.fail(response, f"downloading layer {digest}")
    report.transfer(short, "Downloading", descriptor["size"])
    try:
        with open(path, "wb") as out:
            sink = HashingWriter(out)
            for chunk in response.iter_bytes(CHUNK):
                sink.write(chunk)
                report.advance(short, len(chunk))
                if sink.size > descriptor["size"]:
                    break
    except httpx.HTTPError as exc:
        raise RegistryClientError(f"downloading layer {digest} failed: {exc}") from None
    finally:
        response.close()
    report.status(short, "Verifying Checksum")
    _verify(descriptor, sink.size, sink.digest)
    report.status(short, "Download complete")


def _foreign(urls: list[str], digest: str) -> httpx.Response:
    """A non-distributable layer lives elsewhere (descriptor.md ``urls``): fetched with a
    fresh client that carries none of this registry's credentials."""
    for url in urls:
        if not url.startswith(("https://", "http://")):
            continue
        client = httpx.Client(follow_redirects=True, timeout=60)
        try:
            response = client.send(client.build_request("GET", url), stream=True)
        except httpx.HTTPError:
            client.close()
            continue
        if response.status_code == 200:
            return response
        response.close()
        client.close()
    raise RegistryClientError(f"layer {digest} is not in the registry and none of its "
                              f"urls ({', '.join(urls)}) served it")


def _verify(descriptor: dict, size: int, digest: str) -> None:
    if size != descriptor["size"]:
        raise RegistryClientError(f"filesystem layer verification failed for digest "
                                  f"{descriptor['digest']}: the registry sent "
                                  f"{'more than ' if size > descriptor['size'] else ''}{size} "
                                  f"bytes, the manifest says {descriptor['size']}; nothing "
                                  "was stored")
    if digest != descriptor["digest"]:
        raise RegistryClientError(f"filesystem layer verification failed for digest "
                                  f"{descriptor['digest']}: the bytes hash to {digest}; the "
                                  "registry's copy is corrupt or was tampered with, and "
                                  "nothing was stored")


def store_image(store: ImageStore, target: Target, config_bytes: bytes, layers: list[dict],
                diff_ids: list[str], files: dict[str, Path], report: Report,
                digest: str) -> Image:
    """Import the downloaded layers and name the image — by its tag, and by the digest the
    registry calls it (``name@sha256:...``, its RepoDigest): one store transaction."""
    with store.transaction():
        have = _layers_in_store(store)
        stored = []
        for layer, diff_id in zip(layers, diff_ids, strict=True):
            if diff_id not in have:
                report.status(short_digest(layer["digest"]), "Extracting")
                with open(files[layer["digest"]], "rb") as source:
                    have[diff_id] = import_layer(store, source, layer["digest"],
                                                 diff_id)
                report.status(short_digest(layer["digest"]), "Pull complete")
            stored.append(have[diff_id])
        tag = f"{target.name}:{target.tag}" if not target.digest else None
        image = store.add_image_with_config(config_bytes, stored, tag)
        store.add_repo_digest(image, target.name, digest)
        return image


def _layers_in_store(store: ImageStore) -> dict:
    """diff_id -> the store's ``Layer`` for every layer some intact image has."""
    from minidocker.image.store import Layer

    found = {}
    for image in store.images():
        if image.damage:
            continue
        for layer, diff_id in zip(image.manifest["layers"], image.diff_ids, strict=False):
            if layer_dir(diff_id).is_dir():
                found[diff_id] = Layer(layer["digest"], diff_id, layer["size"])
    return found


def _image_of(store: ImageStore, target: Target) -> str | None:
    name = f"{target.name}@{target.digest}" if target.digest else f"{target.name}:{target.tag}"
    return next((i.id for i in store.images() if name in i.tags or name in i.digests), None)


def _json(data: bytes, what: str) -> dict:
    try:
        value = json.loads(data)
    except ValueError:
        raise RegistryClientError(f"the registry sent a {what} that is not JSON") from None
    if not isinstance(value, dict):
        raise RegistryClientError(f"the registry sent a {what} that is not a JSON object")
    return value
