"""``push``: an image from the store into a registry, sending only what it lacks.

The story (``push()`` reads in this order):

1. ping and authenticate for ``pull,push`` on the repository (``client.Session``);
2. for each layer, then the config: ``HEAD /v2/<name>/blobs/<digest>`` — 200 means the
   registry has it ("Layer already exists"); otherwise, if the image has another name on the
   same registry, ask the registry to *mount* the blob from that repository
   (``POST .../blobs/uploads/?mount=<digest>&from=<other>``, 201 "Mounted from ..."), which
   copies nothing; otherwise upload it: ``POST .../blobs/uploads/`` opens a session (202 and a
   ``Location``), ``PUT <Location>?digest=<digest>`` sends the bytes and closes it (201) — the
   registry re-hashes them and refuses a mismatch;
3. ``PUT /v2/<name>/manifests/<tag>`` with the manifest's exact bytes from the store, so its
   digest (``Docker-Content-Digest``, checked) is the one printed at the end:
   ``latest: digest: sha256:... size: 528``.

The blobs go before the manifest because a registry refuses a manifest that names blobs it
does not have (``MANIFEST_BLOB_UNKNOWN``).

Spec: distribution-spec spec.md ("Pushing blobs", "Pushing a blob monolithically",
"Mounting a blob from another repository", "Pushing Manifests").
Used by: ``minidocker push``; notebook 11-registries.
"""

from collections.abc import Iterator
from pathlib import Path

import httpx

from minidocker import events
from minidocker.errors import MinidockerError
from minidocker.image.blobs import sha256_digest
from minidocker.image.store import Image, ImageStore
from minidocker.registry.client import (
    RegistryClientError,
    Session,
    Target,
    locate,
    short_digest,
)
from minidocker.registry.progress import Report

CHUNK = 1 << 20


def push(name: str, report: Report, insecure: tuple[str, ...] = (),
         login: tuple[str, str] | None = None) -> str:
    """Push the image ``name`` names; returns the manifest's digest. ``login`` as for
    ``pull``."""
    target = locate(name)
    if target.digest:
        raise MinidockerError(f"cannot push a digest reference ({name}): push a tag")
    store = ImageStore()
    image = store.get(f"{target.name}:{target.tag}")
    manifest = store.blobs.read(image.manifest_digest)
    sources = mount_sources(image, target)
    report.line(f"The push refers to repository [{target.host}/{target.repository}]")
    layers = image.manifest["layers"]
    for layer in reversed(layers):  # Docker lists the top layer first
        report.status(short_digest(layer["digest"]), "Preparing")
    with Session(target, ("pull", "push"), insecure, also_pull=sources,
                 login=login) as session:
        for layer in reversed(layers):
            push_blob(session, store, layer, sources, report)
        push_blob(session, store, image.manifest["config"], sources, None)
        digest = push_manifest(session, target, manifest, image.manifest["mediaType"])
    store.add_repo_digest(image, target.name, digest)  # its RepoDigest, as Docker records
    report.line(f"{target.tag}: digest: {digest} size: {len(manifest)}")
    events.emit("image", "push", f"{target.name}:{target.tag}", {"name": f"{target.name}:{target.tag}"})
    return digest


def mount_sources(image: Image, target: Target) -> tuple[str, ...]:
    """The other repositories of the same registry this image is named in: a blob pushed
    there once can be mounted from there."""
    found = []
    for tag in image.tags:
        other = locate(tag)
        if other.host == target.host and other.repository != target.repository:
            found.append(other.repository)
    return tuple(dict.fromkeys(found))


def push_blob(session: Session, store: ImageStore, descriptor: dict, sources: tuple[str, ...],
              report: Report | None) -> None:
    """HEAD, then mount, then upload: the cheapest way the registry can get the blob."""
    digest, short = descriptor["digest"], short_digest(descriptor["digest"])
    say = report.status if report else (lambda _layer, _text: None)
    if session.request("HEAD", f"blobs/{digest}").status_code == 200:
        return say(short, "Layer already exists")
    location = None
    for source in sources:
        started = session.request("POST", "blobs/uploads/",
                                  params={"mount": digest, "from": source})
        if started.status_code == 201:
            return say(short, f"Mounted from {source}")
        if started.status_code == 202:  # the source lacks it: a normal upload was opened
            location = started.headers.get("location")
            break
    if location is None:
        started = session.request("POST", "blobs/uploads/")
        if started.status_code != 202 or "location" not in started.headers:
            raise session.fail(started, f"starting the upload of {digest}")
        location = started.headers["location"]
    upload(session, store.blobs.path(digest), descriptor, location, report)
    say(short, "Pushed")


def upload(session: Session, path: Path, descriptor: dict, location: str,
           report: Report | None) -> None:
    """end-6, the monolithic PUT: the whole blob with ``?digest=`` to close the session."""
    digest, short = descriptor["digest"], short_digest(descriptor["digest"])
    if report:
        report.transfer(short, "Pushing", descriptor["size"])

    def body() -> Iterator[bytes]:
        with open(path, "rb") as blob:
            while chunk := blob.read(CHUNK):
                if report:
                    report.advance(short, len(chunk))
                yield chunk

    url = location if location.startswith(("http://", "https://")) else session.base + location
    # keep the Location's own query (distribution's _state): it is part of the session's name
    url = str(httpx.URL(url).copy_merge_params({"digest": digest}))
    done = session.request("PUT", url, body=body,
                           headers={"Content-Length": str(descriptor["size"]),
                                    "Content-Type": "application/octet-stream"})
    if done.status_code != 201:
        raise session.fail(done, f"uploading {digest}")


def push_manifest(session: Session, target: Target, manifest: bytes, media_type: str) -> str:
    response = session.request("PUT", f"manifests/{target.tag}", body=manifest,
                               headers={"Content-Type": media_type})
    if response.status_code != 201:
        raise session.fail(response, f"pushing the manifest of {target}")
    digest = sha256_digest(manifest)
    claimed = response.headers.get("docker-content-digest", digest)
    if claimed != digest:
        raise RegistryClientError(f"the registry stored the manifest as {claimed}, but its "
                                  f"bytes hash to {digest}")
    return digest
