"""Helpers for the registry tests: start a registry on a free loopback port of the test
session's private network namespace (minidocker/viz/servers.py, shared with bench/registry.py),
and push small images to it with raw HTTP (httpx)."""

import hashlib
import json
import os
from pathlib import Path

import httpx

from minidocker.viz import servers
from minidocker.viz.servers import (  # noqa: F401  (the tests take them from here)
    Server,
    distribution_config,
    distribution_registry,
    free_port,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REPO_ROOT = Path(__file__).resolve().parent.parent


def minidocker_registry(root: Path, log: Path, *options: str,
                        host: str = "127.0.0.1") -> Server:
    """``minidocker registry serve`` of this checkout on a free port of ``host``, with more
    ``options`` (``--auth``, ``--tls``...); ``server.root`` is its storage."""
    return servers.minidocker_registry(root, log, *options, host=host,
                                       env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


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
