"""Stage 11 with podman as the client: ``podman login``, ``push`` and ``pull`` against
minidocker's server with HTTP Basic (htpasswd) and with the Bearer token flow, over plain HTTP
(``--tls-verify=false``) and over TLS with the kit's CA (``--cert-dir``, podman's certs.d).

podman keeps its images in the module's temp dir (``--root``/``--runroot``, vfs) and its
credentials in an ``--authfile`` there; its writes under /var and /run land on the throwaway
overlay of ``test_interop``'s ``work`` fixture; the servers listen on loopback of the session's
private network namespace and are stopped by their PID.
"""

import json
import subprocess

import pytest

from minidocker.image.store import layout_dir
from tests.conftest import TIMEOUT_SCALE
from tests.conftest import minidocker as md
from tests.registry_helpers import minidocker_registry
from tests.test_interop import need, peer, work  # noqa: F401  (work is a fixture)
from tests.test_registry_interop import podman_argv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def users(work):  # noqa: F811
    path = work / "htpasswd"
    md("registry", "htpasswd", "-p", "wonderland", str(path), "alice")
    return path


@pytest.fixture(scope="module")
def podman(work):  # noqa: F811
    """podman, with busybox from minidocker's store (its OCI layout) in podman's storage."""
    argv = podman_argv(work)
    storage = f"containers-storage:[vfs@{argv[2]}+{argv[4]}]"  # podman's --root, --runroot
    peer(work, need("skopeo"), "copy", f"oci:{layout_dir()}:busybox:latest",
         f"{storage}localhost/busybox:latest")
    return argv


def refused(work, *argv, input: str = "") -> str:  # noqa: F811
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                            input=input, timeout=60 * TIMEOUT_SCALE, env={"TMPDIR": str(work / "tmp"),
                                                          "PATH": "/usr/sbin:/usr/bin:/bin"})
    assert result.returncode != 0, result.stdout
    return result.stderr


def login_push_pull(work, podman, host: str, *transport) -> None:  # noqa: F811
    """Log in, push busybox as HOST/podman/bb:1, forget it, pull it back, log out."""
    auth = ["--authfile", work / "auth.json"]
    wrong = refused(work, *podman, "login", *auth, *transport, "-u", "alice",
                    "--password-stdin", host, input="rabbit\n")
    assert "invalid username/password" in wrong, wrong
    name = f"{host}/podman/bb:1"
    peer(work, *podman, "login", *auth, *transport, "-u", "alice", "-p", "wonderland", host)
    assert host in json.loads((work / "auth.json").read_text())["auths"]
    image_id = peer(work, *podman, "image", "inspect", "--format", "{{.Id}}", "busybox")
    peer(work, *podman, "push", *auth, *transport, "busybox", name)
    peer(work, *podman, "pull", *auth, *transport, name)
    peer(work, *podman, "rmi", name)
    peer(work, *podman, "pull", *auth, *transport, name)
    assert peer(work, *podman, "image", "inspect", "--format", "{{.Id}}", name) == image_id
    peer(work, *podman, "rmi", name)
    peer(work, *podman, "logout", *auth, host)
    anonymous = refused(work, *podman, "push", *auth, *transport, "busybox", name)
    # Basic: "authentication required"; an anonymous token grants nothing: "denied"
    assert "authentication required" in anonymous or "access to the resource is denied" in \
        anonymous, anonymous


@pytest.mark.parametrize("kind", ["htpasswd", "token"])
def test_podman_logs_in_pushes_and_pulls_over_http(work, podman, users, tmp_path, kind):  # noqa: F811
    server = minidocker_registry(tmp_path / "root", tmp_path / "serve.log", "--auth",
                                 f"{kind}:{users}")
    try:
        login_push_pull(work, podman, server.host, "--tls-verify=false")
    finally:
        server.stop()


def test_podman_over_tls_with_the_kits_ca_and_a_token(work, podman, users, tmp_path):  # noqa: F811
    certs, trusted = tmp_path / "certs", tmp_path / "trusted"
    md("registry", "certs", str(certs))
    trusted.mkdir()
    (trusted / "ca.crt").write_bytes((certs / "ca.crt").read_bytes())
    server = minidocker_registry(tmp_path / "root", tmp_path / "serve.log", "--tls",
                                 "--certs", str(certs), "--auth", f"token:{users}")
    try:
        untrusted = refused(work, *podman, "pull", f"{server.host}/nothing:1")
        assert "x509: certificate signed by unknown authority" in untrusted, untrusted
        login_push_pull(work, podman, server.host, "--cert-dir", trusted)
    finally:
        server.stop()
