"""Manifests, tags and referrers: the names a registry gives to content.

A manifest is stored as a blob, byte for byte as the client sent it (its digest is the hash
of exactly those bytes), and linked into the repository under ``_manifests/revisions``. A tag
is a link to one revision. Before a manifest is accepted its JSON is parsed, its
``mediaType`` must agree with the request's ``Content-Type``, and every blob or manifest it
names must already be in the repository; a ``subject`` (the manifest it annotates: a
signature, an SBOM) may point anywhere and is recorded so that the referrers API can list it.

The type served back is read from the manifest itself (its ``mediaType``, or its shape when
the field is absent), which also serves the manifests that distribution wrote.

Spec: distribution-spec spec.md, "Pulling manifests", "Pushing Manifests", "Pushing Manifests
with Subject", "Listing Tags", "Listing Referrers", "Deleting tags", "Deleting Manifests";
image-spec manifest.md and image-index.md. Model: distribution's ``registry/storage``
``manifeststore.go`` and ``tagstore.go``.
Used by: notebook 11-registries (a push that names a missing layer, refused).
"""

import hashlib
import json
import shutil

from minidocker.registry.errors import RegistryError
from minidocker.registry.paths import check_digest, check_tag
from minidocker.registry.storage import Storage, linked_digests, read_link, write_link

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEXES = {OCI_INDEX, DOCKER_LIST}
MANIFEST_TYPES = {OCI_MANIFEST, DOCKER_MANIFEST} | INDEXES
MAX_MANIFEST = 4 << 20  # the spec asks registries to take at least 4 MB


def is_digest(reference: str) -> bool:
    return ":" in reference


def parse_manifest(body: bytes, content_type: str | None = None) -> tuple[str, dict]:
    """The manifest's media type and its JSON, or MANIFEST_INVALID saying what is wrong."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError("MANIFEST_INVALID", f"the manifest is not JSON: {exc}") from None
    except RecursionError:  # [[[[...]]]] a million deep
        raise RegistryError("MANIFEST_INVALID", "the manifest's JSON is nested too deeply") \
            from None
    if not isinstance(document, dict) or document.get("schemaVersion") != 2:
        raise RegistryError("MANIFEST_INVALID", "a manifest is a JSON object with "
                            "schemaVersion 2 (schema 1 manifests are not accepted)")
    declared = document.get("mediaType")
    header = (content_type or "").split(";")[0].strip() or None
    if declared is not None and header is not None and declared != header:
        raise RegistryError("MANIFEST_INVALID", f"the manifest's mediaType {declared!r} is not"
                            f" the request's Content-Type {header!r}")
    media_type = declared or _shape(document)
    if media_type not in MANIFEST_TYPES:
        raise RegistryError("MANIFEST_INVALID", f"unsupported manifest type {media_type!r}: "
                            f"this registry takes {', '.join(sorted(MANIFEST_TYPES))}")
    _check_descriptors(document, media_type)
    return media_type, document


def stored_media_type(body: bytes) -> str:
    """The type to serve a stored manifest with: its own ``mediaType``, else its shape. Read
    leniently: what is stored was accepted once (perhaps by another registry)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return "application/octet-stream"
    if not isinstance(document, dict):
        return "application/octet-stream"
    return document.get("mediaType") or _shape(document)


def _shape(document: dict) -> str:
    """An OCI manifest may omit its mediaType: an index lists manifests, an image has a
    config."""
    return OCI_INDEX if "manifests" in document else OCI_MANIFEST


def _check_descriptors(document: dict, media_type: str) -> None:
    listed = ("manifests",) if media_type in INDEXES else ("config", "layers")
    for field in listed:
        value = document.get(field)
        for descriptor in value if isinstance(value, list) else [value]:
            if not isinstance(descriptor, dict) or not isinstance(descriptor.get("digest"), str):
                raise RegistryError("MANIFEST_INVALID", f"{field} needs descriptors with a "
                                    "digest")
            try:
                check_digest(descriptor["digest"])
            except RegistryError as exc:
                raise RegistryError("MANIFEST_INVALID", f"{field}: {exc}") from None


def references(document: dict, media_type: str) -> list[tuple[str, str]]:
    """(kind, digest) of everything the manifest needs in its repository. A layer with
    ``urls`` (a non-distributable layer) lives elsewhere and is not required here."""
    if media_type in INDEXES:
        return [("manifest", d["digest"]) for d in document["manifests"]]
    needed = [("blob", document["config"]["digest"])]
    return needed + [("blob", d["digest"]) for d in document.get("layers", [])
                     if not d.get("urls")]


def put_manifest(storage: Storage, name: str, reference: str, body: bytes,
                 content_type: str | None, tags: list[str] = ()) -> tuple[str, str | None]:
    """Store a manifest pushed to ``name`` under a tag or its digest (plus ``tags``); returns
    its digest and its subject's digest, if it has one."""
    if len(body) > MAX_MANIFEST:
        raise RegistryError("MANIFEST_INVALID", f"the manifest has {len(body)} bytes, more "
                            f"than this registry's limit of {MAX_MANIFEST}", status=413)
    media_type, document = parse_manifest(body, content_type)
    algorithm = check_digest(reference)[0] if is_digest(reference) else "sha256"
    digest = f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"
    if is_digest(reference) and reference != digest:
        raise RegistryError("DIGEST_INVALID", f"the manifest has digest {digest}, not "
                            f"{reference}", detail={"expected": reference, "actual": digest})
    tags = ([] if is_digest(reference) else [reference]) + list(tags)
    for tag in tags:
        check_tag(tag)
    layout = storage.layout
    missing = [{"kind": kind, "digest": d} for kind, d in references(document, media_type)
               if not (layout.revision_link(name, d).exists() if kind == "manifest"
                       else storage.has_blob(name, d))]
    if missing:
        raise RegistryError("MANIFEST_BLOB_UNKNOWN", f"the manifest names {len(missing)} "
                            "blob(s) or manifest(s) not in this repository: push them first",
                            detail=missing)
    storage.put_bytes(digest, body)
    write_link(layout.revision_link(name, digest), digest)
    for tag in tags:
        write_link(layout.tag_index_link(name, tag, digest), digest)
        write_link(layout.tag_current_link(name, tag), digest)
    subject = _subject(document)
    if subject:
        write_link(layout.referrer_link(name, subject, digest), digest)
    return digest, subject


def _subject(document: dict) -> str | None:
    subject = document.get("subject") if isinstance(document, dict) else None
    if isinstance(subject, dict) and isinstance(subject.get("digest"), str):
        try:
            check_digest(subject["digest"])
            return subject["digest"]
        except RegistryError:
            raise RegistryError("MANIFEST_INVALID", "subject has an invalid digest") from None
    return None


def resolve(storage: Storage, name: str, reference: str) -> str:
    """A tag or digest -> the digest of a manifest this repository holds."""
    layout = storage.layout
    if is_digest(reference):
        digest = read_link(layout.revision_link(name, reference))
    else:
        digest = read_link(layout.tag_current_link(name, reference))
        if digest and not layout.revision_link(name, digest).exists():
            digest = None
    if digest is None:
        raise RegistryError("MANIFEST_UNKNOWN", f"manifest {reference} is not in repository "
                            f"{name}", detail={"name": name, "reference": reference})
    return digest


def get_manifest(storage: Storage, name: str, reference: str) -> tuple[bytes, str, str]:
    """The stored bytes, their media type and digest."""
    digest = resolve(storage, name, reference)
    try:
        body = storage.layout.blob_data(digest).read_bytes()
    except FileNotFoundError:
        raise RegistryError("MANIFEST_UNKNOWN", f"manifest {digest} has no content in the "
                            "blob store (garbage-collected?)", detail={"digest": digest}) from None
    return body, stored_media_type(body), digest


def delete_manifest(storage: Storage, name: str, reference: str) -> None:
    """Deleting a tag removes the tag; deleting a digest removes the revision, every tag that
    points at it and its entry among its subject's referrers."""
    layout = storage.layout
    if not is_digest(reference):
        if read_link(layout.tag_current_link(name, reference)) is None:
            raise RegistryError("MANIFEST_UNKNOWN", f"tag {reference} is not in repository "
                                f"{name}", detail={"tag": reference})
        shutil.rmtree(layout.tag_dir(name, reference))
        return
    digest = resolve(storage, name, reference)
    for tag in list_tags(storage, name):
        if read_link(layout.tag_current_link(name, tag)) == digest:
            shutil.rmtree(layout.tag_dir(name, tag))
    try:
        subject = _subject(json.loads(layout.blob_data(digest).read_bytes()))
    except (OSError, ValueError, RecursionError, RegistryError):
        subject = None  # its bytes are gone or unreadable: there is no referrer entry to undo
    if subject:
        shutil.rmtree(layout.referrer_link(name, subject, digest).parent, ignore_errors=True)
    shutil.rmtree(layout.revision_link(name, digest).parent)


def list_tags(storage: Storage, name: str) -> list[str]:
    """The repository's tags in ASCII order (Go's ``sort.Strings``, as the spec asks)."""
    if not storage.layout.repository(name).is_dir():
        raise RegistryError("NAME_UNKNOWN", f"repository {name} is not known",
                            detail={"name": name})
    folder = storage.layout.tags(name)
    tags = folder.iterdir() if folder.is_dir() else []
    return sorted(t.name for t in tags if (t / "current" / "link").is_file())


def list_referrers(storage: Storage, name: str, subject: str,
                   artifact_type: str | None = None) -> list[dict]:
    """Descriptors of the manifests in ``name`` whose subject is ``subject``."""
    found = []
    for digest in linked_digests(storage.layout.referrers(name, subject)):
        if not storage.layout.revision_link(name, digest).exists():
            continue
        body = storage.layout.blob_data(digest).read_bytes()
        media_type, document = parse_manifest(body)
        descriptor = {"mediaType": media_type, "digest": digest, "size": len(body)}
        kind = document.get("artifactType") or (
            None if media_type in INDEXES else document["config"].get("mediaType"))
        if kind:
            descriptor["artifactType"] = kind
        if document.get("annotations"):
            descriptor["annotations"] = document["annotations"]
        if artifact_type is None or kind == artifact_type:
            found.append(descriptor)
    return found

