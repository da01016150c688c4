"""Stage 11, the client: ``push``, ``pull``, ``login`` against minidocker's registry (open,
Basic, token, TLS) and Debian's ``docker-registry`` (distribution 2.8), as a user runs them.

Each pull goes into a fresh state root (``MINIDOCKER_ROOT`` of its own), so what it stores
is what came over the wire. Servers listen on loopback of the test session's private network
namespace; the TLS and insecure-registry tests add a non-loopback address to ``lo`` there,
since loopback is always an insecure registry (as in Docker).
"""

import base64
import contextlib
import gzip
import http.server
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import tarfile
import threading
import time

import httpx
import pytest

from tests.conftest import MINIDOCKER, minidocker
from tests.registry_helpers import (
    OCI_INDEX,
    Server,
    descriptor,
    digest_of,
    distribution_config,
    free_port,
    minidocker_registry,
    push_blob,
    push_image,
    put_manifest,
)

SERVICE_IP = "10.213.0.1"  # a non-loopback address on lo, inside the test's network namespace


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """An open registry on loopback, shared by the module's tests."""
    folder = tmp_path_factory.mktemp("open-registry")
    yield (server := minidocker_registry(folder / "storage", folder / "serve.log"))
    server.stop()


@pytest.fixture
def fresh(tmp_path):
    """``minidocker`` with a state root of its own (nothing in it) and its own config.json."""
    root = tmp_path / "state"
    root.mkdir(mode=0o711)
    env = {"MINIDOCKER_ROOT": str(root), "MINIDOCKER_CONFIG": str(tmp_path / "config")}

    def run(*args, **kwargs):
        return minidocker(*args, env={**env, **kwargs.pop("env", {})}, timeout=120, **kwargs)
    run.root, run.env = root, env
    run.config = {"MINIDOCKER_CONFIG": env["MINIDOCKER_CONFIG"]}  # for the main store's push
    return run


def ok(result) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def refused(result) -> str:
    """A clean failure: exit 1 (or run's 125), one message, no traceback."""
    assert result.returncode in (1, 125), result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


def image_id(run, name) -> str:
    return ok(run("inspect", "-f", "{{.Id}}", name)).strip()


def tagged(name: str) -> str:
    ok(minidocker("tag", "busybox", name))
    return name


@pytest.fixture(scope="module")
def service_ip():
    subprocess.run(["ip", "addr", "replace", f"{SERVICE_IP}/32", "dev", "lo"], check=True)
    return SERVICE_IP


# --- push and pull against minidocker's own server ---------------------------------------------

def test_push_then_pull_into_a_fresh_store_gives_the_same_image_and_it_runs(registry, fresh):
    name = tagged(f"{registry.host}/busybox:1")
    pushed = ok(minidocker("push", name))
    assert f"The push refers to repository [{registry.host}/busybox]" in pushed
    assert ": Pushed" in pushed and "1: digest: sha256:" in pushed and " size: " in pushed
    again = ok(minidocker("push", name))
    assert ": Layer already exists" in again and ": Pushed" not in again

    pulled = ok(fresh("pull", name))
    for line in ("1: Pulling from busybox", ": Pulling fs layer", ": Download complete",
                 ": Pull complete", "Digest: sha256:",
                 f"Status: Downloaded newer image for {name}"):
        assert line in pulled
    assert pulled.strip().endswith(name)
    assert image_id(fresh, name) == image_id(minidocker, "busybox")
    manifest_digest = pushed.split("digest: ")[1].split()[0]
    assert f"Digest: {manifest_digest}" in pulled  # the same bytes, so the same digest
    assert ok(fresh("run", "--rm", "--network", "none", name, "echo", "hi")) == "hi\n"
    assert f"Status: Image is up to date for {name}" in ok(fresh("pull", name))


def test_a_push_to_another_repository_mounts_the_blobs(registry):
    tagged(f"{registry.host}/busybox:1")
    ok(minidocker("push", f"{registry.host}/busybox:1"))
    other = tagged(f"{registry.host}/team/copy:1")
    pushed = ok(minidocker("push", other))
    assert ": Mounted from busybox" in pushed
    minidocker("rmi", other)


def test_pull_by_digest_checks_the_bytes_against_it(registry, fresh):
    name = tagged(f"{registry.host}/busybox:pinned")
    digest = ok(minidocker("push", name)).split("digest: ")[1].split()[0]
    pulled = ok(fresh("pull", f"{registry.host}/busybox@{digest}"))
    assert f"Digest: {digest}" in pulled
    assert image_id(fresh, digest) == image_id(minidocker, "busybox")


def test_run_pulls_a_missing_image_first(registry, fresh):
    name = tagged(f"{registry.host}/busybox:run")
    ok(minidocker("push", name))
    result = fresh("run", "--rm", "--network", "none", name, "echo", "pulled")
    assert result.returncode == 0, result.stderr
    assert f"Unable to find image '{name}' locally" in result.stderr
    assert "Pull complete" in result.stderr
    assert result.stdout == "pulled\n"


def test_missing_tag_and_unreachable_registry_are_one_clear_line(registry, fresh):
    error = refused(fresh("pull", f"{registry.host}/busybox:nope"))
    assert "manifest unknown" in error
    error = refused(fresh("pull", f"127.0.0.1:{free_port()}/busybox"))
    assert "is the registry running there" in error


# --- what the client refuses ------------------------------------------------------------------

def test_a_tampered_blob_is_refused_and_nothing_is_stored(registry, fresh):
    name = tagged(f"{registry.host}/tampered:1")
    ok(minidocker("push", name))
    manifest = json.loads(httpx.get(f"{registry.url}/v2/tampered/manifests/1", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json"}).content)
    digest = manifest["layers"][0]["digest"]
    hexpart = digest.split(":")[1]
    data = registry.root / f"docker/registry/v2/blobs/sha256/{hexpart[:2]}/{hexpart}/data"
    original = data.read_bytes()
    try:
        data.write_bytes(original[:-10] + bytes(b ^ 0xFF for b in original[-10:]))
        error = refused(fresh("pull", name))
        assert f"verification failed for digest {digest}" in error
        assert "nothing was stored" in error
        assert fresh("images", "-q").stdout.strip() == ""
        blobs = fresh.root / "oci" / "blobs" / "sha256"
        assert not [p for p in blobs.iterdir()] if blobs.is_dir() else True
        layers = fresh.root / "layers"
        assert not [p for p in layers.iterdir() if not p.name.startswith(".tmp-")] \
            if layers.is_dir() else True
    finally:
        data.write_bytes(original)


def small_layer(text: bytes) -> tuple[bytes, str]:
    """A gzip'd layer with one file; returns (blob, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("platform.txt")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    return gzip.compress(raw.getvalue(), mtime=0), digest_of(raw.getvalue())


def test_a_manifest_list_gives_this_machines_platform(registry, fresh):
    from minidocker.image.store import architecture

    client = httpx.Client(base_url=registry.url, timeout=60)
    mine = tagged(f"{registry.host}/multi:mine")
    ok(minidocker("push", mine))
    native = client.get("/v2/multi/manifests/mine", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json"})
    other_arch = "s390x" if architecture() != "s390x" else "amd64"
    layer, diff_id = small_layer(b"other\n")
    config = json.dumps({"architecture": other_arch, "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    other_manifest, other_digest = push_image(client, "multi", "other", [layer], config=config)
    attestation, _ = push_image(client, "multi", "att", [b"{}"])
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        descriptor("application/vnd.oci.image.manifest.v1+json", attestation,
                   platform={"os": "unknown", "architecture": "unknown"}),
        descriptor("application/vnd.oci.image.manifest.v1+json", other_manifest,
                   platform={"os": "linux", "architecture": other_arch}),
        descriptor("application/vnd.oci.image.manifest.v1+json", native.content,
                   platform={"os": "linux", "architecture": architecture()}),
    ]}
    assert put_manifest(client, "multi", "list", json.dumps(index).encode(),
                        OCI_INDEX).status_code == 201
    name = f"{registry.host}/multi:list"
    ok(fresh("pull", name))
    assert image_id(fresh, name) == image_id(minidocker, "busybox")

    # another image on the same layer: the layer is not downloaded again
    native_manifest = json.loads(native.content)
    layers = native_manifest["layers"]
    config_digest = native_manifest["config"]["digest"]
    config = json.loads(client.get(f"/v2/multi/blobs/{config_digest}").content)
    config["config"]["Labels"] = {"variant": "labelled"}
    relabelled = json.dumps(config).encode()
    push_blob(client, "multi", relabelled)
    manifest = native_manifest | {
        "config": descriptor("application/vnd.oci.image.config.v1+json", relabelled),
        "layers": layers}
    assert put_manifest(client, "multi", "labelled", json.dumps(manifest).encode()
                        ).status_code == 201
    again = ok(fresh("pull", f"{registry.host}/multi:labelled"))
    assert f"{layers[0]['digest'][7:19]}: Already exists" in again
    assert "Pulling fs layer" not in again

    ok(fresh("pull", "--platform", f"linux/{other_arch}", name))
    assert json.loads(ok(fresh("inspect", "-f", "{{json .Architecture}}", name))) == other_arch
    error = refused(fresh("pull", "--platform", "linux/mips64le", name))
    assert "no matching manifest for linux/mips64le" in error
    assert f"linux/{other_arch}" in error and "unknown" not in error.split("lists:")[1]
    client.close()


# --- auth ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def users(tmp_path_factory):
    path = tmp_path_factory.mktemp("users") / "htpasswd"
    ok(minidocker("registry", "htpasswd", str(path), "alice", input="wonderland\n"))
    assert path.read_text().startswith("alice:$2b$")
    return path


def auth_registry(tmp_path, users, kind: str) -> Server:
    return minidocker_registry(tmp_path / "root", tmp_path / "serve.log", "--auth",
                               f"{kind}:{users}")


def test_basic_auth_login_push_pull_logout(tmp_path, users, fresh):
    server = auth_registry(tmp_path, users, "htpasswd")
    try:
        name = tagged(f"{server.host}/private:1")
        error = refused(minidocker("push", name, env=fresh.config))
        assert f"run 'minidocker login {server.host}'" in error
        wrong = fresh("login", "-u", "alice", "--password-stdin", server.host,
                      input="rabbit\n")
        assert wrong.returncode == 1
        assert "failed with status: 401 Unauthorized" in refused(wrong)
        assert wrong.stderr.count("\n") == 1

        assert "Login Succeeded" in ok(fresh("login", "-u", "alice", "--password-stdin",
                                            server.host, input="wonderland\n"))
        config = fresh.env["MINIDOCKER_CONFIG"] + "/config.json"
        assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
        auth = json.load(open(config))["auths"][server.host]["auth"]
        assert base64.b64decode(auth) == b"alice:wonderland"

        ok(minidocker("push", name, env=fresh.config))
        ok(fresh("pull", name))
        assert image_id(fresh, name) == image_id(minidocker, "busybox")
        assert f"Removing login credentials for {server.host}" in ok(fresh("logout",
                                                                          server.host))
        assert server.host not in json.load(open(config))["auths"]
    finally:
        server.stop()


def test_token_auth_and_a_token_for_another_scope_is_refused(tmp_path, users, fresh):
    server = auth_registry(tmp_path, users, "token")
    try:
        challenge = httpx.get(f"{server.url}/v2/").headers["www-authenticate"]
        assert challenge.startswith(f'Bearer realm="{server.url}/token",service=')
        ok(fresh("login", "-u", "alice", "-p", "wonderland", server.host))
        name = tagged(f"{server.host}/tokens/app:1")
        ok(minidocker("push", name, env=fresh.config))
        ok(fresh("pull", name))

        grant = httpx.get(f"{server.url}/token", auth=("alice", "wonderland"), params={
            "service": "minidocker-registry", "scope": "repository:other:pull"}).json()
        assert grant["token"] == grant["access_token"] and grant["expires_in"] >= 60
        bearer = {"Authorization": f"Bearer {grant['token']}"}
        refused_here = httpx.get(f"{server.url}/v2/tokens/app/tags/list", headers=bearer)
        assert refused_here.status_code == 401
        assert 'error="insufficient_scope"' in refused_here.headers["www-authenticate"]
        assert 'scope="repository:tokens/app:pull"' in refused_here.headers["www-authenticate"]
        assert httpx.get(f"{server.url}/v2/other/tags/list", headers=bearer).status_code == 404
        anonymous = httpx.get(f"{server.url}/token", params={
            "scope": "repository:tokens/app:pull"}).json()["token"]
        assert httpx.get(f"{server.url}/v2/tokens/app/tags/list", headers={
            "Authorization": f"Bearer {anonymous}"}).status_code == 401
        assert httpx.get(f"{server.url}/token", auth=("alice", "x")).status_code == 401
        ok(fresh("logout", server.host))
        error = refused(fresh("pull", name))  # an anonymous token grants nothing
        assert "requested access to the resource is denied" in error
        assert f"minidocker login {server.host}" in error
    finally:
        server.stop()


# --- TLS and insecure registries --------------------------------------------------------------

def test_tls_with_the_kits_ca_trusted_in_certs_d_and_without_it(tmp_path, service_ip, fresh):
    certs = tmp_path / "certs"
    ok(minidocker("registry", "certs", "--host", service_ip, str(certs)))
    server = minidocker_registry(tmp_path / "root", tmp_path / "serve.log", "--tls",
                                 "--certs", str(certs), host=service_ip)
    host = server.host
    certs_d = tmp_path / "certs.d"
    trusted = {"MINIDOCKER_CERTS_D": str(certs_d)}
    try:
        name = tagged(f"{host}/secure:1")
        error = refused(minidocker("push", name, env=trusted))
        assert "x509: certificate signed by unknown authority" in error
        assert f"{certs_d}/{host}/ca.crt" in error and "--insecure-registry" in error

        (certs_d / host).mkdir(parents=True)
        shutil.copy(certs / "ca.crt", certs_d / host / "ca.crt")
        ok(minidocker("push", name, env=trusted))
        ok(fresh("pull", name, env=trusted))
        assert image_id(fresh, name) == image_id(minidocker, "busybox")
        ok(fresh("pull", "--insecure-registry", host, name))  # unverified, but allowed
    finally:
        server.stop()


def test_plain_http_needs_insecure_registry_off_loopback(tmp_path, service_ip, fresh):
    server = minidocker_registry(tmp_path / "root", tmp_path / "serve.log", host=service_ip)
    host = server.host
    try:
        name = tagged(f"{host}/plain:1")
        error = refused(minidocker("push", name))
        assert "server gave HTTP response to HTTPS client" in error
        assert f"--insecure-registry {host}" in error
        ok(minidocker("push", "--insecure-registry", host, name))
        ok(fresh("pull", name, env={"MINIDOCKER_INSECURE_REGISTRIES": f"{service_ip}/24"}))
    finally:
        server.stop()


# --- a real peer: Debian's docker-registry (distribution 2.8) -------------------------------

@pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry missing")
def test_push_and_pull_against_distribution_with_htpasswd(tmp_path, users, fresh):
    port = free_port()
    config = distribution_config(tmp_path / "root", tmp_path, port)
    config.write_text(config.read_text() + f"""auth:
  htpasswd:
    realm: minidocker-test
    path: {users}
""")
    server = Server(["docker-registry", "serve", str(config)], port, tmp_path / "dist.log")
    try:
        name = tagged(f"{server.host}/peer/busybox:1")
        assert "authentication required" in refused(minidocker("push", name, env=fresh.config))
        ok(fresh("login", "-u", "alice", "--password-stdin", server.host,
                 input="wonderland\n"))
        assert ": Pushed" in ok(minidocker("push", name, env=fresh.config))
        copy = tagged(f"{server.host}/peer/copy:1")
        assert ": Mounted from peer/busybox" in ok(minidocker("push", copy, env=fresh.config))
        pulled = ok(fresh("pull", name))
        assert f"Status: Downloaded newer image for {name}" in pulled
        assert image_id(fresh, name) == image_id(minidocker, "busybox")
        assert ok(fresh("run", "--rm", "--network", "none", name, "echo", "peer")) == "peer\n"
        minidocker("rmi", copy)
    finally:
        server.stop()


@contextlib.contextmanager
def layer_mirror(layer: bytes, stall: bool = False):
    """An HTTP server for one blob, recording each request's headers; with ``stall`` it
    sends half the bytes and then waits (a download that never ends)."""
    seen, release = [], threading.Event()

    class Mirror(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(dict(self.headers))
            self.send_response(200)
            self.send_header("Content-Length", str(len(layer)))
            self.end_headers()
            self.wfile.write(layer[:len(layer) // 2] if stall else layer)
            self.wfile.flush()
            if stall:
                release.wait(60)

        def log_message(self, *args):
            pass

    mirror = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Mirror)
    threading.Thread(target=mirror.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{mirror.server_address[1]}/layer", seen
    finally:
        release.set()
        mirror.shutdown()
        mirror.server_close()


def push_foreign_image(client: httpx.Client, repository: str, layer: bytes, diff_id: str,
                       url: str) -> None:
    """``repository:1``, an image whose one layer is non-distributable: it lives at ``url``."""
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    foreign = descriptor("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                         layer, urls=[url])
    manifest_bytes, _ = push_image(client, repository, "1", [], config=config)
    manifest = json.loads(manifest_bytes) | {"layers": [foreign]}
    assert put_manifest(client, repository, "1",
                        json.dumps(manifest).encode()).status_code == 201


def test_a_foreign_layer_is_fetched_from_its_urls_without_the_registrys_credentials(
        tmp_path, users, fresh):
    layer, diff_id = small_layer(b"foreign\n")
    server = auth_registry(tmp_path, users, "htpasswd")
    try:
        with layer_mirror(layer) as (url, seen), httpx.Client(
                base_url=server.url, auth=("alice", "wonderland"), timeout=60) as client:
            push_foreign_image(client, "foreign", layer, diff_id, url)
            ok(fresh("login", "-u", "alice", "-p", "wonderland", server.host))
            ok(fresh("pull", "--platform", "linux/amd64", f"{server.host}/foreign:1"))
        assert len(seen) == 1 and "Authorization" not in seen[0]
    finally:
        server.stop()


def test_a_pull_killed_mid_download_leaves_nothing_named(registry, fresh):
    layer, diff_id = small_layer(os.urandom(1 << 20))
    with layer_mirror(layer, stall=True) as (url, seen), httpx.Client(
            base_url=registry.url, timeout=60) as client:
        push_foreign_image(client, "stalled", layer, diff_id, url)
        pull = subprocess.Popen([*MINIDOCKER, "pull", "--platform", "linux/amd64",
                                 f"{registry.host}/stalled:1"], env={**os.environ, **fresh.env},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the first half arrives
        os.kill(pull.pid, signal.SIGKILL)
        pull.wait()
    assert seen and pull.returncode == -signal.SIGKILL
    assert fresh("images", "-q").stdout == ""
    leftovers = list((fresh.root / "tmp").glob(".tmp-*"))
    assert leftovers  # the killed pull's download, under its PID
    ok(fresh("image", "prune", "-f"))
    assert not list((fresh.root / "tmp").glob(".tmp-*"))
