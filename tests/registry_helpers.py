"""Helpers for the registry tests: start a registry on a free loopback port of the test
session's private network namespace, and push small images to it with raw HTTP (httpx)."""

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 20,
                  host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


class Server:
    """A registry process (minidocker's, or another command) on <host>:<port> (loopback
    unless told), stopped by its PID."""

    def __init__(self, argv: list[str], port: int, log: Path, host: str = "127.0.0.1"):
        self.port, self.log = port, log
        self.url = f"http://{host}:{port}"
        self.host = f"{host}:{port}"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        try:
            wait_for_port(port, self.proc, host=host)
        except RuntimeError:
            self.stop()
            raise RuntimeError(log.read_text()) from None

    def rss(self) -> int:
        """The server's resident memory, in bytes."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            kb = next(line.split()[1] for line in f if line.startswith("VmRSS:"))
        return int(kb) * 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def minidocker_registry(root: Path, log: Path, *options: str,
                        host: str = "127.0.0.1") -> Server:
    """``minidocker registry serve`` on a free port of ``host``, with more ``options``
    (``--auth``, ``--tls``...); ``server.root`` is its storage."""
    port = free_port()
    argv = [sys.executable, "-m", "minidocker.cli", "registry", "serve",
            "--addr", f"{host}:{port}", "--root", str(root), *options]
    server = Server(argv, port, log, host=host)
    server.root = root
    return server


def distribution_registry(root: Path, workdir: Path) -> Server:
    """Debian's ``docker-registry`` (distribution 2.8) serving ``root`` on loopback."""
    port = free_port()
    config = distribution_config(root, workdir, port)
    return Server(["docker-registry", "serve", str(config)], port, workdir / "registry.log")


def distribution_config(root: Path, workdir: Path, port: int = 5000) -> Path:
    """A config of our own: filesystem storage in ``root``, deletes enabled, loopback only."""
    config = workdir / "config.yml"
    config.write_text(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
""")
    return config


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def push_blob(client: httpx.Client, name: str, data: bytes) -> str:
    """POST then PUT: the monolithic push."""
    digest = digest_of(data)
    started = client.post(f"/v2/{name}/blobs/uploads/")
    assert started.status_code == 202, started.text
    done = client.put(started.headers["location"], params={"digest": digest}, content=data,
                      headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201, done.text
    return digest


def descriptor(media_type: str, data: bytes, **extra) -> dict:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data)} | extra


def image_manifest(config: bytes, layers: list[bytes], **extra) -> bytes:
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, config),
                "layers": [descriptor(OCI_LAYER, layer) for layer in layers]} | extra
    return json.dumps(manifest, indent=3).encode()  # indent: bytes no serializer would make


def push_image(client: httpx.Client, name: str, reference: str, layers: list[bytes],
               config: bytes = b'{"architecture":"amd64","os":"linux"}',
               **extra) -> tuple[bytes, str]:
    """Push the blobs and the manifest; returns the manifest's bytes and digest."""
    for blob in [config, *layers]:
        push_blob(client, name, blob)
    manifest = image_manifest(config, layers, **extra)
    response = put_manifest(client, name, reference, manifest)
    assert response.status_code == 201, response.text
    return manifest, response.headers["docker-content-digest"]


def put_manifest(client: httpx.Client, name: str, reference: str, body: bytes,
                 media_type: str = OCI_MANIFEST) -> httpx.Response:
    return client.put(f"/v2/{name}/manifests/{reference}", content=body,
                      headers={"Content-Type": media_type})


def error_code(response: httpx.Response) -> str:
    """The spec's error code of a refusal (and the body must be the spec's JSON)."""
    return response.json()["errors"][0]["code"]
