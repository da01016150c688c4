"""Checker of lab 11 — a pull by hand: the token, the manifest, the blobs, the digests.

The student pulls an image from a registry with nothing but HTTP requests (httpx). For every
step the sandbox (sandbox.py) gets a network namespace of its own, with only ``lo``, and a tmpfs
on the scratch directory; there the checker starts minidocker's registry with token auth
(``registry.recording.LocalRegistry``: served from a thread, every request written down) and
one user, and stores in it, as a push would have:

* ``library/busybox:latest``, an OCI *index* of three entries, in this order: an attestation
  (platform ``unknown/unknown``), busybox for another architecture, and busybox for this
  machine (the store's busybox image);
* ``lab/tampered:manifest``, an index whose one entry names a manifest whose bytes were
  changed on disk after the push, and ``lab/tampered:blob``, an image whose layer's bytes were.

Then it calls the student's function of the step, reads what the server heard, and checks what
came back: the token opens the repository, the manifest is this machine's, a blob is what its
digest says, a pull leaves every blob under its own name, and each tampered piece is refused.

Spec: distribution-spec spec.md ("Pulling manifests", "Pulling blobs"); distribution's
docs/spec/auth/token.md (the challenge and the token request); image-spec image-index.md
(platforms), descriptor.md (digests). Tools: httpx (the student's HTTP client).
Used by: ``minidocker lab check 11``; the lab is labs/11-registry/.
"""

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote

import httpx

from minidocker import kernel
from minidocker.image.store import CONFIG, INDEX, LAYER, MANIFEST, ImageStore
from minidocker.labs.framework import Lab, Step, function
from minidocker.labs.sandbox import CheckFailed, call_student, describe_error, mount_scratch
from minidocker.registry.auth import Htpasswd, TokenAuth, htpasswd_line
from minidocker.registry.manifests import put_manifest
from minidocker.registry.pull import Platform
from minidocker.registry.recording import Exchange, LocalRegistry
from minidocker.registry.storage import Storage

USER, PASSWORD = "student", "lab11-s3cret"
BUSYBOX, TAMPERED = "library/busybox", "lab/tampered"
EMPTY = "application/vnd.oci.empty.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
DIGEST = re.compile(r"\bsha256:[0-9a-f]{64}\b")


@dataclass
class Workspace:
    """Made on the host side, once per check: busybox's blobs, and an empty directory."""

    scratch: str
    config: bytes  # busybox's config (this machine's architecture)
    layer: str  # the path of its layer's blob in the image store


@dataclass
class Served:
    """What the checker stored in the registry, for the step to compare with."""

    registry: LocalRegistry
    policy: TokenAuth
    this: Platform
    other: Platform
    config: str  # digest of this machine's config
    manifest: str  # digest of this machine's manifest
    other_manifest: str
    attestation: str
    tampered_manifest: str  # the digest its index names (the bytes no longer hash to it)
    tampered_layer: str  # the digest its manifest names

    @property
    def url(self) -> str:
        return self.registry.url

    def token(self) -> str:
        """A pull token for both repositories, as the token server would give the student."""
        scopes = [f"repository:{BUSYBOX}:pull", f"repository:{TAMPERED}:pull"]
        return self.policy.issue(USER, scopes)["token"]


@contextmanager
def workspace() -> Iterator[Workspace]:
    store = ImageStore()
    busybox = store.get("busybox")
    config = store.blobs.path(busybox.manifest["config"]["digest"]).read_bytes()
    layer = str(store.blobs.path(busybox.manifest["layers"][0]["digest"]))
    scratch = tempfile.mkdtemp(prefix="minidocker-lab11-")
    try:
        yield Workspace(scratch, config, layer)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- the registry the steps talk to ---------------------------------------------------------------

@contextmanager
def registry(space: Workspace) -> Iterator[Served]:
    """In the sandbox: loopback of its own, the registry's files on a tmpfs, the server up."""
    kernel.unshare(kernel.CLONE_NEWNET)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    mount_scratch(space.scratch)
    htpasswd = os.path.join(space.scratch, "htpasswd")
    with open(htpasswd, "w") as f:
        f.write(htpasswd_line(USER, PASSWORD) + "\n")
    policy = TokenAuth(Htpasswd(htpasswd))
    root = os.path.join(space.scratch, "registry")
    served = fill(Storage(root), space)
    with LocalRegistry(root, auth=policy) as server:
        yield Served(server, policy, **served)


def fill(storage: Storage, space: Workspace) -> dict:
    """Store the three repositories' blobs and manifests, as pushes would have."""
    this = Platform.this_machine()
    other = Platform("linux", "amd64" if this.architecture == "arm64" else "arm64",
                     None if this.architecture == "arm64" else "v8")
    with open(space.layer, "rb") as f:
        layer = blob(storage, BUSYBOX, f.read())
    config = blob(storage, BUSYBOX, space.config)
    other_config = json.loads(space.config) | {"architecture": other.architecture}
    if other.variant:
        other_config["variant"] = other.variant
    theirs = image(storage, BUSYBOX,
                   blob(storage, BUSYBOX, json.dumps(other_config).encode()), [layer])
    manifest = image(storage, BUSYBOX, config, [layer])
    attestation = image(storage, BUSYBOX, blob(storage, BUSYBOX, b"{}", EMPTY),
                        [blob(storage, BUSYBOX, b'{"_type":"https://in-toto.io/Statement/v1"}',
                              IN_TOTO)])
    index(storage, BUSYBOX, "latest", [
        (attestation, {"os": "unknown", "architecture": "unknown"}),
        (theirs, platform_of(other)), (manifest, platform_of(this))])
    # lab/tampered: a manifest and a layer whose bytes change once they are stored
    storage.link_blob(TAMPERED, layer["digest"])  # as a cross-repository mount would
    copy = image(storage, TAMPERED, blob(storage, TAMPERED, space.config), [layer],
                 annotations={"org.opencontainers.image.description": "tampered with"})
    index(storage, TAMPERED, "manifest", [(copy, platform_of(this))])
    tamper(storage, copy["digest"], lambda data: data.replace(b"tampered with", b"all is well"))
    small = blob(storage, TAMPERED, gzip.compress(a_tar({"etc/motd": b"hello\n"}), mtime=0))
    image(storage, TAMPERED, blob(storage, TAMPERED, space.config), [small], tag="blob")
    tamper(storage, small["digest"], lambda data: bytes(b ^ 0xFF for b in data))
    return {"this": this, "other": other, "config": config["digest"],
            "manifest": manifest["digest"], "other_manifest": theirs["digest"],
            "attestation": attestation["digest"], "tampered_manifest": copy["digest"],
            "tampered_layer": small["digest"]}


def blob(storage: Storage, name: str, data: bytes, media_type: str = "") -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    storage.put_bytes(digest, data)
    storage.link_blob(name, digest)
    media_type = media_type or (LAYER if data[:2] == b"\x1f\x8b" else CONFIG)
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def image(storage: Storage, name: str, config: dict, layers: list[dict], tag: str = "",
          **extra) -> dict:
    body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST, "config": config,
                       "layers": layers} | extra).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    put_manifest(storage, name, tag or digest, body, MANIFEST)
    return {"mediaType": MANIFEST, "digest": digest, "size": len(body)}


def index(storage: Storage, name: str, tag: str, entries: list[tuple[dict, dict]]) -> None:
    body = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        descriptor | {"platform": platform} for descriptor, platform in entries]}).encode()
    put_manifest(storage, name, tag, body, INDEX)


def tamper(storage: Storage, digest: str, change) -> None:
    """Change a stored blob's bytes behind the registry's back (an attacker with the disk)."""
    path = storage.layout.blob_data(digest)
    path.write_bytes(change(path.read_bytes()))


def platform_of(platform: Platform) -> dict:
    found = {"os": platform.os, "architecture": platform.architecture}
    return found | ({"variant": platform.variant} if platform.variant else {})


def a_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in files.items():
            member = tarfile.TarInfo(path)
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
    return buffer.getvalue()


# --- reading what happened ------------------------------------------------------------------------

def short(digest: str) -> str:
    return digest[:19] + "…"


def shortened(text: str) -> str:
    """Every digest in ``text`` cut to 12 hex digits."""
    return DIGEST.sub(lambda m: short(m[0]), text)


def heard(exchanges: list[Exchange]) -> str:
    """``GET /v2/... → 401, GET /token?... [Basic] → 200``: the requests, as the server saw them."""
    lines = []
    for e in exchanges:
        scheme = e.request_headers.get("authorization", "").partition(" ")[0]
        lines.append(f"{e.method} {shortened(unquote(e.target))}"
                     f"{f' [{scheme}]' if scheme else ''} → {e.status}")
    return ", ".join(lines) or "nothing"


def refused(call, *args) -> str:
    """Call the student's function on something tampered: it must raise. Returns the error."""
    try:
        result = call_student(call, *args)
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - any refusal will do, the student picks the kind
        return shortened(describe_error(exc))
    shown = f"{len(result)} bytes" if isinstance(result, bytes) else type(result).__name__
    raise CheckFailed(f"your code accepted it and returned {shown}")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- the steps --------------------------------------------------------------------------------------

def check_token(student, space: Workspace) -> str:
    get_token = function(student, "get_token")
    with registry(space) as served:
        token = call_student(get_token, served.url, BUSYBOX, USER, PASSWORD)
        said = heard(served.registry.exchanges)
        if not isinstance(token, str) or not token:
            raise CheckFailed(f"get_token() returned {token!r}: return the token string, the "
                              f"\"token\" field of the token server's JSON (the server heard: "
                              f"{said})")
        asked = [e for e in served.registry.exchanges if e.path == "/token"]
        if not asked:
            raise CheckFailed(f"your code never asked the token server: the server heard "
                              f"{said}. Send a request to the registry first; its 401 answer's "
                              "WWW-Authenticate header names the token server (realm=)")
        first = served.registry.exchanges.index(asked[0])
        if not any(e.status == 401 for e in served.registry.exchanges[:first]):
            raise CheckFailed(f"your code asked the token server without being challenged "
                              f"first (the server heard: {said}): take realm, service and "
                              "scope from the WWW-Authenticate header of a 401, not from "
                              "constants, as Docker does for any registry")
        check = httpx.get(f"{served.url}/v2/{BUSYBOX}/manifests/latest",
                          headers={"Authorization": f"Bearer {token}", "Accept": INDEX})
        if check.status_code != 200:
            raise CheckFailed(f"the registry refuses your token ({check.status_code}, "
                              f"{check.headers.get('www-authenticate', '')}): ask the token "
                              "server with the user's password (HTTP Basic) and the scope the "
                              f"challenge names (the server heard: {said})")
    return f"the server heard: {said}; the token opens {BUSYBOX} (GET manifests/latest → 200)"


def check_manifest(student, space: Workspace) -> str:
    get_manifest = function(student, "get_manifest")
    with registry(space) as served:
        token = served.token()
        manifest = call_student(get_manifest, served.url, BUSYBOX, "latest", token)
        said = heard(served.registry.exchanges)
        if not isinstance(manifest, dict):
            raise CheckFailed(f"get_manifest() returned {type(manifest).__name__}, not the "
                              f"manifest as a dict (json.loads of its bytes); the server heard: "
                              f"{said}")
        which = {served.other_manifest: f"the manifest for {served.other}",
                 served.attestation: "the attestation (platform unknown/unknown), which "
                 "describes the image but is not one"}
        config = (manifest.get("config") or {}).get("digest")
        if "manifests" in manifest:
            raise CheckFailed(f"you returned the index (mediaType {manifest.get('mediaType')}): "
                              f"it lists one manifest per platform; fetch the one for "
                              f"{served.this} by its digest (the server heard: {said})")
        if config != served.config:
            got = next((what for digest, what in which.items()
                        if any(e.path.endswith(digest) for e in served.registry.exchanges)),
                       "another manifest")
            raise CheckFailed(f"you returned {got}; this machine is {served.this}: pick the "
                              f"index entry whose platform says so (the server heard: {said})")
        try:
            error = refused(get_manifest, served.url, TAMPERED, "manifest", token)
        except CheckFailed:
            raise CheckFailed(f"the tampered manifest was accepted: {TAMPERED}'s index names "
                              f"{short(served.tampered_manifest)}, but the bytes the registry "
                              "sends for it hash to something else; hash the bytes fetched by "
                              "digest and raise unless they match") from None
    return (f"the index lists unknown/unknown, {served.other} and {served.this}; you fetched "
            f"{served.this}'s manifest {short(served.manifest)} and refused the tampered one "
            f"({error})")


def check_blob(student, space: Workspace) -> str:
    get_blob = function(student, "get_blob")
    with registry(space) as served:
        token = served.token()
        data = call_student(get_blob, served.url, BUSYBOX, served.config, token)
        said = heard(served.registry.exchanges)
        if not isinstance(data, bytes):
            raise CheckFailed(f"get_blob() returned {type(data).__name__}: return the blob's "
                              f"bytes (response.content); the server heard: {said}")
        if sha256(data) != served.config:
            raise CheckFailed(f"get_blob() returned {len(data)} bytes that hash to "
                              f"{short(sha256(data))}, not the config {short(served.config)} "
                              f"asked for (the server heard: {said})")
        try:
            error = refused(get_blob, served.url, TAMPERED, served.tampered_layer, token)
        except CheckFailed:
            raise CheckFailed(f"the tampered layer {short(served.tampered_layer)} was "
                              "accepted: its bytes hash to something else; hash what arrives "
                              "(hashlib.sha256) and refuse it (raise) unless it is the digest "
                              "you asked for") from None
    return (f"got the config {short(served.config)} ({len(data)} bytes, its hash checked) and "
            f"refused the tampered layer ({error})")


def check_pull(student, space: Workspace) -> str:
    pull = function(student, "pull")
    with registry(space) as served:
        pulled = os.path.join(space.scratch, "pulled")
        image_id = call_student(pull, served.url, BUSYBOX, "latest", USER, PASSWORD, pulled)
        said = heard(served.registry.exchanges)
        requests = len(served.registry.exchanges)
        if image_id != served.config:
            raise CheckFailed(f"pull() returned {image_id!r}, not the image ID (the digest of "
                              f"this machine's config, {short(served.config)}); the server "
                              f"heard: {said}")
        files = stored(pulled)
        config = json.loads(files.get(served.config, b"{}"))
        layers = [sha256(gzip.decompress(data)) for digest, data in files.items()
                  if data[:2] == b"\x1f\x8b"]
        if layers != config.get("rootfs", {}).get("diff_ids"):
            raise CheckFailed(f"{pulled} holds {len(files)} blob(s) under their names, not the "
                              "config and the busybox layer its rootfs.diff_ids name: write "
                              "each blob to DIRECTORY/<its 64 hex digits>")
        tampered = os.path.join(space.scratch, "tampered")
        try:
            error = refused(pull, served.url, TAMPERED, "blob", USER, PASSWORD, tampered)
        except CheckFailed:
            raise CheckFailed(f"pull() of {TAMPERED}:blob went through, though its layer's "
                              "bytes do not hash to the digest its manifest names: check each "
                              "blob (get_blob) before you write it") from None
        stored(tampered)
    return (f"{requests} requests, from the 401 to the last blob; {len(files)} blobs in "
            f"{os.path.basename(pulled)}/, "
            f"each under its digest, the layer un-gzips to the config's diff_id; the tampered "
            f"pull was refused ({error}) with nothing half-stored")


def stored(directory: str) -> dict[str, bytes]:
    """The blobs a pull wrote: each file's name must be its hash."""
    found = {}
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        if sha256(data)[7:] != name:
            raise CheckFailed(f"{os.path.basename(directory)}/{name} holds bytes that hash to "
                              f"{short(sha256(data))}: a pull stores only what it checked, "
                              "each blob under its own digest, and leaves nothing else behind")
        found["sha256:" + name] = data
    return found


LAB = Lab(
    directory="11-registry",
    steps=(
        Step(1, "the token: a 401, its challenge, the token server", check_token),
        Step(2, "the manifest: from the index, this machine's, its digest checked",
             check_manifest),
        Step(3, "a blob, refused unless it hashes to its digest", check_blob),
        Step(4, "the whole pull: every blob checked and stored under its digest", check_pull),
    ),
    workspace=workspace,
)
