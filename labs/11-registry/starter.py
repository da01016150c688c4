"""Lab 11 — a registry by hand: pull an image with nothing but HTTP requests.

``docker pull busybox`` is a short conversation with a registry (the OCI distribution spec):

    GET /v2/NAME/manifests/TAG        401 + WWW-Authenticate: Bearer realm=,service=,scope=
    GET REALM?service=&scope=         (with the user's password) {"token": ...}
    GET /v2/NAME/manifests/TAG        (Authorization: Bearer TOKEN) an index: one manifest
                                      per platform
    GET /v2/NAME/manifests/DIGEST     this machine's manifest: its config and layers, by digest
    GET /v2/NAME/blobs/DIGEST         each blob, whose bytes must hash to DIGEST

You write each request with httpx, and the checks that make a pull safe: a digest is a promise
about bytes, and the client keeps the registry to it.

Use httpx, hashlib, json and os. Not ``minidocker.registry``, which would do the lesson for you.

Check your work (the checker starts a registry with token auth on a loopback of its own, in a
sandbox, and calls your functions):

    sudo minidocker lab check 11                # this file
    sudo minidocker lab check 11 PATH           # a copy of it

Steps and hints: labs/11-registry/README.md. Spec: github.com/opencontainers/distribution-spec
spec.md; distribution's docs/spec/auth/token.md; image-spec image-index.md, descriptor.md.
"""

import hashlib  # hashlib.new("sha256", data).hexdigest()
import os  # os.makedirs, os.path.join, os.rename
import platform  # platform.machine()
import tempfile  # tempfile.mkstemp(dir=...): a file to write, then rename

import httpx  # httpx.get(url, headers={...}, params={...}, auth=(user, password))

# --- given: the names the specs use -------------------------------------------------------------

MANIFEST_TYPES = ["application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json"]
INDEX_TYPES = ["application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json"]
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}  # uname -m -> Go's name


def this_platform() -> dict:
    """This machine, as an index's ``platform`` names it: ``{"os": "linux", "architecture":
    "amd64"}``."""
    return {"os": "linux", "architecture": GO_ARCH.get(platform.machine(), platform.machine())}


def parse_challenge(header: str) -> dict:
    """``Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`` ->
    ``{"realm": "https://auth/token", "service": "reg", "scope": "repository:a:pull"}``."""
    params = {}
    for part in header.partition(" ")[2].split('",'):
        key, _, value = part.strip().partition("=")
        params[key] = value.strip('"')
    return params


# --- yours ---------------------------------------------------------------------------------------

def get_token(registry: str, repository: str, username: str, password: str) -> str:
    """Step 1: a token to pull ``repository`` from ``registry`` (``http://127.0.0.1:PORT``).

    Ask the registry for something (a manifest of the repository): it answers 401, and its
    ``WWW-Authenticate`` header says where to get a token (``realm``), for which ``service``
    and which ``scope``. Ask the realm for a token with those two as query parameters, logged in
    as ``username``/``password`` (HTTP Basic), and return the ``token`` of its JSON answer."""
    raise NotImplementedError("Step 1: get_token() is not written yet: ask for a manifest, "
                              "read the 401's WWW-Authenticate, ask its realm for a token")


def get_manifest(registry: str, repository: str, reference: str, token: str) -> dict:
    """Step 2: the image manifest of ``repository:reference`` for this machine, as a dict.

    Ask for the manifest with ``Authorization: Bearer <token>`` and an ``Accept`` header naming
    the manifest and index types. If the answer is an index (it has ``manifests``), pick the
    entry whose ``platform`` is this machine's (``this_platform()``) and fetch that manifest by
    its digest; its bytes must hash to that digest, or raise."""
    raise NotImplementedError("Step 2: get_manifest() is not written yet: the manifest, or "
                              "from an index the one for this_platform(), its digest checked")


def get_blob(registry: str, repository: str, digest: str, token: str) -> bytes:
    """Step 3: the bytes of the blob ``digest`` (a config or a layer), with the token.

    A registry may answer a blob request with a redirect (to a CDN): follow it. Then hash the
    bytes: return them only if they hash to ``digest``; otherwise raise (ValueError)."""
    raise NotImplementedError("Step 3: get_blob() is not written yet: GET the blob, hash it, "
                              "refuse it unless it hashes to its digest")


def pull(registry: str, repository: str, tag: str, username: str, password: str,
         directory: str) -> str:
    """Step 4: pull ``repository:tag``: its config and every layer, each written to
    ``directory/<the 64 hex digits of its digest>``; return the image's ID (the config's
    digest). A pull that fails (a blob that does not hash to its digest) raises and leaves no
    file in ``directory`` but blobs that were checked."""
    raise NotImplementedError("Step 4: pull() is not written yet: token, manifest, then each "
                              "blob checked and written under its digest")
