"""Stage 11 with the real peers: skopeo, podman and distribution (Debian's docker-registry).

skopeo copies busybox from minidocker's image store (its OCI layout) into minidocker's
registry and back out to another layout, and the manifest is the same bytes all the way;
podman pulls from the registry, pushes a retagged copy and pulls that back. distribution and
minidocker then share one storage directory: what skopeo pushed through one is pulled
through the other, both ways, and each one's garbage collector finds nothing to delete in
what the other wrote. Servers listen on loopback in the session's private network
namespace, each stopped by its PID; the peers' writes under /var and /run land on the
throwaway overlay of ``test_interop``'s ``work`` fixture, podman's storage in its temp dir.
"""

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from minidocker.image.store import layout_dir
from tests.conftest import TIMEOUT_SCALE
from tests.conftest import minidocker as md
from tests.registry_helpers import (
    distribution_config,
    distribution_registry,
    minidocker_registry,
    push_image,
)
from tests.test_interop import need, peer, work  # noqa: F401  (work is a fixture)

pytestmark = pytest.mark.slow


@pytest.fixture
def registry(work, tmp_path):  # noqa: F811
    server = minidocker_registry(tmp_path / "root", tmp_path / "serve.log")
    server.root = tmp_path / "root"
    yield server
    server.stop()


def layout_manifest(layout: Path, ref: str) -> bytes:
    """The manifest bytes an OCI layout holds for the ref name ``ref``."""
    index = json.loads((layout / "index.json").read_text())
    found = [d for d in index["manifests"]
             if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref]
    assert len(found) == 1, index
    algorithm, encoded = found[0]["digest"].split(":")
    return (layout / "blobs" / algorithm / encoded).read_bytes()


def skopeo_copy(work: Path, source: str, target: str) -> None:  # noqa: F811
    peer(work, need("skopeo"), "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
         source, target)


def test_skopeo_copies_the_store_into_the_registry_and_back(work, registry, tmp_path):  # noqa: F811
    store = layout_dir()
    original = layout_manifest(store, "busybox:latest")
    skopeo_copy(work, f"oci:{store}:busybox:latest", f"docker://{registry.host}/busybox:latest")
    served = httpx.get(f"{registry.url}/v2/busybox/manifests/latest")
    assert served.content == original
    assert served.headers["content-type"] == json.loads(original)["mediaType"]
    back = tmp_path / "back"
    skopeo_copy(work, f"docker://{registry.host}/busybox:latest", f"oci:{back}:busybox:latest")
    assert layout_manifest(back, "busybox:latest") == original
    raw = peer(work, "skopeo", "inspect", "--raw", "--tls-verify=false",
               f"docker://{registry.host}/busybox:latest", binary=True)
    assert raw == original


def podman_argv(work: Path) -> list:  # noqa: F811
    """podman with its own storage in the module's short temp dir (its runroot must stay
    short), nothing of the machine's."""
    return [need("podman"), "--root", work / "registry-podman", "--runroot", work / "rr",
            "--tmpdir", work / "tmp", "--storage-driver", "vfs", "--cgroup-manager",
            "cgroupfs", "--events-backend", "file"]


def test_podman_pushes_to_and_pulls_from_the_registry(work, registry):  # noqa: F811
    podman = podman_argv(work)
    store = layout_dir()
    skopeo_copy(work, f"oci:{store}:busybox:latest", f"docker://{registry.host}/busybox:latest")
    source, copy = f"{registry.host}/busybox:latest", f"{registry.host}/podman/busybox:v2"
    peer(work, *podman, "pull", "--tls-verify=false", source)
    image_id = peer(work, *podman, "image", "inspect", "--format", "{{.Id}}", source).strip()
    peer(work, *podman, "tag", source, copy)
    peer(work, *podman, "push", "--tls-verify=false", copy)
    peer(work, *podman, "rmi", "-a", "-f")
    peer(work, *podman, "pull", "--tls-verify=false", copy)
    assert peer(work, *podman, "image", "inspect", "--format", "{{.Id}}", copy).strip() == \
        image_id  # the same config, so the same image
    tags = httpx.get(f"{registry.url}/v2/podman/busybox/tags/list").json()
    assert tags == {"name": "podman/busybox", "tags": ["v2"]}


def roundtrip_through_shared_root(work, tmp_path, first, second):  # noqa: F811
    """skopeo pushes busybox through ``first``, then pulls it through ``second`` serving the
    same directory; the manifest arrives byte for byte."""
    root = tmp_path / "shared-root"
    store = layout_dir()
    original = layout_manifest(store, "busybox:latest")
    server = first(root, tmp_path)
    try:
        skopeo_copy(work, f"oci:{store}:busybox:latest", f"docker://{server.host}/team/bb:1")
    finally:
        server.stop()
    server = second(root, tmp_path)
    try:
        out = tmp_path / "out"
        skopeo_copy(work, f"docker://{server.host}/team/bb:1", f"oci:{out}:bb")
        assert layout_manifest(out, "bb") == original
        tags = httpx.get(f"{server.url}/v2/team/bb/tags/list").json()
        assert tags["tags"] == ["1"]
    finally:
        server.stop()


def minidocker_server(root: Path, tmp_path: Path):
    return minidocker_registry(root, tmp_path / "minidocker.log")


def distribution_server(root: Path, tmp_path: Path):
    need("docker-registry")
    return distribution_registry(root, tmp_path)


def test_distribution_serves_what_minidocker_stored(work, tmp_path):  # noqa: F811
    roundtrip_through_shared_root(work, tmp_path, minidocker_server, distribution_server)


def test_minidocker_serves_what_distribution_stored(work, tmp_path):  # noqa: F811
    roundtrip_through_shared_root(work, tmp_path, distribution_server, minidocker_server)


def test_each_garbage_collector_keeps_what_the_other_registry_stored(work, tmp_path):  # noqa: F811
    """distribution's collector over a directory minidocker wrote (referrer links and all),
    minidocker's over one distribution wrote: nothing referenced is eligible."""
    roundtrip_through_shared_root(work, tmp_path, minidocker_server, distribution_server)
    root = tmp_path / "shared-root"
    server = minidocker_server(root, tmp_path)
    try:  # a signature-like artifact whose subject is the image: minidocker records a referrer
        with httpx.Client(base_url=server.url) as client:
            image = client.get("/v2/team/bb/manifests/1")
            subject = {"mediaType": image.headers["content-type"], "size": len(image.content),
                       "digest": image.headers["docker-content-digest"]}
            push_image(client, "team/bb", "sig", [b"signature"], subject=subject)
    finally:
        server.stop()
    assert list((root / "docker/registry/v2/repositories/team/bb/_manifests/referrers")
                .rglob("link"))
    config = distribution_config(root, tmp_path)
    result = peer(work, "docker-registry", "garbage-collect", "--dry-run", config)
    assert "0 blobs and 0 manifests eligible for deletion" in result, result
    other = tmp_path / "other"
    other.mkdir()
    roundtrip_through_shared_root(work, other, distribution_server, minidocker_server)
    collected = md("registry", "garbage-collect", "--dry-run", "--root",
                   str(other / "shared-root"))
    assert collected.returncode == 0 and collected.stdout.endswith(
        "0 blobs eligible for deletion\n"), collected.stdout


def refused_by(work: Path, *argv) -> str:  # noqa: F811
    """Run skopeo expecting it to fail; its stderr."""
    result = subprocess.run([need("skopeo"), *map(str, argv)], capture_output=True, text=True,
                            timeout=60 * TIMEOUT_SCALE, env={**os.environ, "TMPDIR": str(work / "tmp")})
    assert result.returncode != 0, result.stdout
    return result.stderr


@pytest.mark.parametrize("kind", ["htpasswd", "token"])
def test_skopeo_authenticates_with_basic_and_with_a_token(work, tmp_path, kind):  # noqa: F811
    """containers/image, the client of skopeo and podman, against the server's auth: Basic
    from the htpasswd file, or the Bearer token dance with the server's /token endpoint."""
    users = tmp_path / "htpasswd"
    md("registry", "htpasswd", str(users), "alice", input="wonderland\n")
    server = minidocker_registry(tmp_path / "root", tmp_path / "serve.log", "--auth",
                                 f"{kind}:{users}")
    source, target = f"oci:{layout_dir()}:busybox:latest", f"docker://{server.host}/auth/bb:1"
    try:
        anonymous = refused_by(work, "copy", "--dest-tls-verify=false", source, target)
        # Basic: "unauthorized"; an anonymous token: "denied"
        assert "unauthorized" in anonymous or "access to the resource is denied" in anonymous
        peer(work, "skopeo", "copy", "--dest-tls-verify=false", "--dest-creds",
             "alice:wonderland", source, target)
        raw = peer(work, "skopeo", "inspect", "--raw", "--tls-verify=false", "--creds",
                   "alice:wonderland", target)
        assert raw.encode() == layout_manifest(layout_dir(), "busybox:latest")
    finally:
        server.stop()


def test_skopeo_trusts_the_kits_ca_and_refuses_the_server_without_it(work, tmp_path):  # noqa: F811
    """``registry serve --tls`` with the kit's certificate, checked by Go's TLS stack."""
    certs, trusted = tmp_path / "certs", tmp_path / "trusted"
    md("registry", "certs", str(certs))
    trusted.mkdir()
    (trusted / "ca.crt").write_bytes((certs / "ca.crt").read_bytes())
    server = minidocker_registry(tmp_path / "root", tmp_path / "serve.log", "--tls",
                                 "--certs", str(certs))
    source, target = f"oci:{layout_dir()}:busybox:latest", f"docker://{server.host}/tls/bb:1"
    try:
        untrusted = refused_by(work, "copy", source, target)
        assert "x509: certificate signed by unknown authority" in untrusted
        peer(work, "skopeo", "copy", "--dest-cert-dir", trusted, source, target)
        raw = peer(work, "skopeo", "inspect", "--raw", "--cert-dir", trusted, target)
        assert raw.encode() == layout_manifest(layout_dir(), "busybox:latest")
    finally:
        server.stop()
