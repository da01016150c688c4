"""Lab 11 — a registry by hand: a reference solution (spoilers: try the lab first).

Check it: sudo minidocker lab check 11 labs/solutions/11-registry.py
"""

import hashlib
import os
import platform
import tempfile

import httpx

MANIFEST_TYPES = ["application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json"]
INDEX_TYPES = ["application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json"]
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def this_platform() -> dict:
    return {"os": "linux", "architecture": GO_ARCH.get(platform.machine(), platform.machine())}


def parse_challenge(header: str) -> dict:
    params = {}
    for part in header.partition(" ")[2].split('",'):
        key, _, value = part.strip().partition("=")
        params[key] = value.strip('"')
    return params


def check_digest(data: bytes, digest: str) -> bytes:
    algorithm, _, expected = digest.partition(":")
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != expected:
        raise ValueError(f"{digest}: the bytes hash to {algorithm}:{actual}")
    return data


def get_token(registry: str, repository: str, username: str, password: str) -> str:
    """Step 1: the token the registry's challenge asks for."""
    url = f"{registry}/v2/{repository}/manifests/latest"
    challenged = httpx.get(url)
    if challenged.status_code != 401:
        raise RuntimeError(f"expected a 401 with a challenge, got {challenged.status_code}")
    challenge = parse_challenge(challenged.headers["WWW-Authenticate"])
    reply = httpx.get(challenge["realm"], auth=(username, password),
                      params={"service": challenge["service"], "scope": challenge["scope"]})
    reply.raise_for_status()
    answer = reply.json()
    return answer.get("token") or answer["access_token"]


def get_manifest(registry: str, repository: str, reference: str, token: str) -> dict:
    """Step 2: the image manifest for this machine, from an index if need be."""
    headers = {"Authorization": f"Bearer {token}",
               "Accept": ", ".join(MANIFEST_TYPES + INDEX_TYPES)}
    reply = httpx.get(f"{registry}/v2/{repository}/manifests/{reference}", headers=headers)
    reply.raise_for_status()
    document = reply.json()
    if document.get("mediaType") in INDEX_TYPES or "manifests" in document:
        wanted = this_platform()
        chosen = next(m for m in document["manifests"]
                      if m.get("platform", {}).get("os") == wanted["os"]
                      and m.get("platform", {}).get("architecture") == wanted["architecture"])
        reply = httpx.get(f"{registry}/v2/{repository}/manifests/{chosen['digest']}",
                          headers=headers)
        reply.raise_for_status()
        check_digest(reply.content, chosen["digest"])
        document = reply.json()
    return document


def get_blob(registry: str, repository: str, digest: str, token: str) -> bytes:
    """Step 3: a blob's bytes, refused unless they hash to ``digest``."""
    reply = httpx.get(f"{registry}/v2/{repository}/blobs/{digest}",
                      headers={"Authorization": f"Bearer {token}"}, follow_redirects=True)
    reply.raise_for_status()
    return check_digest(reply.content, digest)


def pull(registry: str, repository: str, tag: str, username: str, password: str,
         directory: str) -> str:
    """Step 4: the image's config and layers into ``directory/<hex>``; returns the config's
    digest."""
    token = get_token(registry, repository, username, password)
    manifest = get_manifest(registry, repository, tag, token)
    wanted = [manifest["config"]] + manifest["layers"]
    blobs = {d["digest"]: get_blob(registry, repository, d["digest"], token) for d in wanted}
    os.makedirs(directory, exist_ok=True)
    for digest, data in blobs.items():
        fd, temporary = tempfile.mkstemp(dir=directory)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.rename(temporary, os.path.join(directory, digest.split(":")[1]))
    return manifest["config"]["digest"]
