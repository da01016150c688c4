"""Stage 11, running a registry: the seeds' ``docker run -d -p 5000:5000 registry`` with the
image the kit builds offline (Debian's distribution, by minidocker's builder), and
``minidocker registry serve --config`` reading distribution's config.yml. Everything listens
on loopback of the test session's private network namespace."""

import sys
import time
from pathlib import Path

import httpx
import pytest

from minidocker.registry.auth import BasicAuth, TokenAuth
from minidocker.registry.config import ConfigError, load_config
from tests import test_pull_push as client_tests
from tests.conftest import minidocker
from tests.registry_helpers import Server, distribution_config, free_port, push_blob

fresh = client_tests.fresh  # the fixture: a state root of its own for each test
ok, refused = client_tests.ok, client_tests.refused


def wait_for_v2(url: str, timeout: float = 20) -> None:
    """Until the registry in the container answers ``GET /v2/``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/v2/", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def test_the_registry_image_runs_detached_and_takes_a_push_and_a_pull(fresh):
    built = ok(minidocker("registry", "image", timeout=120))
    assert "Step 1/6 : FROM scratch" in built and "Successfully tagged registry:latest" in built
    config = ok(minidocker("image", "inspect", "-f", "{{json .Config.Entrypoint}} "
                           "{{json .Config.ExposedPorts}}", "registry"))
    assert config.split() == ['["/bin/registry","serve"]', '{"5000/tcp":{}}']
    port = free_port()
    container = ok(minidocker("run", "-d", "-p", f"127.0.0.1:{port}:5000", "registry")).strip()
    try:
        wait_for_v2(f"http://127.0.0.1:{port}")
        name = f"127.0.0.1:{port}/team/busybox:1"
        ok(minidocker("tag", "busybox", name))
        assert ": Pushed" in ok(minidocker("push", name))
        assert "Pull complete" in ok(fresh("pull", name))
        assert ok(fresh("run", "--rm", "--network", "none", name, "echo", "hi")) == "hi\n"
        # the blobs are in the container's volume, in distribution's layout
        volume = ok(minidocker("inspect", "-f", "{{(index .Mounts 0).Source}}", container))
        assert (Path(volume.strip()) /
                "docker/registry/v2/repositories/team/busybox/_manifests/tags/1").is_dir()
        logs = minidocker("logs", container)  # distribution's own log: it served us
        assert 'msg="listening on [::]:5000"' in logs.stderr
        assert '"PUT /v2/team/busybox/manifests/1 HTTP/1.1" 201' in logs.stdout
    finally:
        minidocker("stop", container)
        ok(minidocker("rm", "-v", container))
        minidocker("rmi", f"127.0.0.1:{port}/team/busybox:1", "registry")
        minidocker("builder", "prune", "-f")  # the build's step images


MORE_CONFIG = """\
  tls:
    certificate: {certs}/server.crt
    key: {certs}/server.key
auth:
  htpasswd:
    realm: from-config
    path: {users}
"""


def test_serve_reads_distributions_config_yml(tmp_path):
    users, certs, port = tmp_path / "htpasswd", tmp_path / "certs", free_port()
    ok(minidocker("registry", "htpasswd", "-p", "wonderland", str(users), "alice"))
    ok(minidocker("registry", "certs", str(certs)))
    # the config the distribution tests use (its http section last), with TLS and Basic auth
    config = distribution_config(tmp_path / "storage", tmp_path, port)
    config.write_text(config.read_text() + MORE_CONFIG.format(certs=certs, users=users))
    server = Server([sys.executable, "-m", "minidocker.cli", "registry", "serve", "--config",
                     str(config)], port, tmp_path / "serve.log")
    try:
        with httpx.Client(base_url=f"https://127.0.0.1:{port}",
                          verify=str(certs / "ca.crt")) as client:
            challenge = client.get("/v2/")
            assert challenge.status_code == 401
            assert challenge.headers["www-authenticate"] == 'Basic realm="from-config"'
            client.auth = ("alice", "wonderland")
            digest = push_blob(client, "app", b"layer")
        blob = tmp_path / "storage/docker/registry/v2/blobs/sha256" / digest[7:9] / digest[7:]
        assert (blob / "data").read_bytes() == b"layer"
    finally:
        server.stop()


def test_config_yml_token_auth_and_its_refusals(tmp_path):
    users = tmp_path / "htpasswd"
    ok(minidocker("registry", "htpasswd", "-p", "x", str(users), "bob"))
    config = tmp_path / "config.yml"

    def load(text: str):
        config.write_text("version: 0.1\n" + text)
        return load_config(config)

    token = load(f"auth:\n  token:\n    realm: https://auth.example/token\n"
                 f"    service: lab\n    htpasswd: {users}\nhttp:\n  addr: :5000\n")
    assert isinstance(token.auth, TokenAuth) and token.addr == "0.0.0.0:5000"
    assert (token.auth.realm, token.auth.service) == ("https://auth.example/token", "lab")
    assert isinstance(load(f"auth:\n  htpasswd:\n    path: {users}\n").auth, BasicAuth)
    for bad, said in [("storage:\n  s3:\n    bucket: b\n", "storage driver s3"),
                      ("auth:\n  token:\n    service: lab\n", "needs 'htpasswd'"),
                      ("auth:\n  silly: {}\n", "not supported"),
                      ("http:\n  tls:\n    key: k\n", "needs both"),
                      ("http: [1]\n", "must be a mapping")]:
        with pytest.raises(ConfigError, match=said):
            load(bad)
    config.write_text("version: 0.2\n")
    error = refused(minidocker("registry", "serve", "--config", str(config)))
    assert "'version: 0.1' is the only config version" in error and error.count("\n") == 1
    missing = refused(minidocker("registry", "image", "--binary", str(tmp_path / "nope")))
    assert "apt-get install docker-registry" in missing and missing.count("\n") == 1
