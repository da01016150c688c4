"""Every path the registry touches on disk, made in one place, from checked names only.

The layout is distribution's, so that a directory written by Debian's ``docker-registry`` is
served by minidocker and the other way round::

    <root>/docker/registry/v2/
      blobs/<algorithm>/<first two hex>/<hex>/data          the content, stored once
      repositories/<name>/
        _layers/<algorithm>/<hex>/link                      this repository may serve that blob
        _manifests/revisions/<algorithm>/<hex>/link         a manifest pushed here
        _manifests/tags/<tag>/current/link                  what the tag points at now
        _manifests/tags/<tag>/index/<algorithm>/<hex>/link  every manifest the tag ever named
        _manifests/referrers/<algorithm>/<subject hex>/<algorithm>/<hex>/link
                                                            (minidocker's own: a manifest
                                                            whose ``subject`` is that digest)
        _uploads/<id>/data, startedat                       a push in progress

A link file holds a digest (``sha256:<hex>``): repositories point into the one blob store.
Each name, tag, digest and upload id is held to the spec's grammar *before* it becomes a path
component: the grammar admits no ``/`` in a tag, no ``.``/``..`` component in a name (each
component starts with a letter or digit) and nothing but hex in a digest, so no request can
name a path outside the root.

Spec: distribution-spec spec.md, "Pulling manifests" (the ``<name>`` and tag grammar) and
image-spec descriptor.md, "Digests". Model: distribution's ``registry/storage/paths.go``.
Used by: notebook 11-registries (the tree of a pushed image beside the image store's).
"""

import re
from dataclasses import dataclass
from pathlib import Path

from minidocker.registry.errors import RegistryError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
NAME_MAX = 255
TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
# The algorithms this registry can verify, with the length of their hex encoding.
ALGORITHMS = {"sha256": 64, "sha512": 128}
DIGEST = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")
UPLOAD_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def check_name(name: str) -> str:
    if len(name) > NAME_MAX or not NAME.match(name):
        raise RegistryError("NAME_INVALID", f"invalid repository name {name!r}: lowercase "
                            "components of letters and digits, separated by '.', '_', '-' "
                            "inside a component and '/' between them", detail={"name": name})
    return name


def check_tag(tag: str) -> str:
    if not TAG.match(tag):
        raise RegistryError("MANIFEST_INVALID", f"invalid tag {tag!r}: letters, digits, '_', "
                            "'.' and '-', at most 128, not starting with '.' or '-'",
                            detail={"tag": tag})
    return tag


def check_digest(digest: str) -> tuple[str, str]:
    """``algorithm:hex`` -> (algorithm, hex), for the algorithms this registry can verify."""
    match = DIGEST.match(digest)
    if not match:
        raise RegistryError("DIGEST_INVALID", f"invalid digest {digest!r}: expected "
                            "<algorithm>:<hex>", detail={"digest": digest})
    algorithm, encoded = match.groups()
    if algorithm not in ALGORITHMS:
        raise RegistryError("DIGEST_INVALID", f"unsupported digest algorithm {algorithm!r}: "
                            f"this registry knows {', '.join(ALGORITHMS)}",
                            detail={"digest": digest})
    if len(encoded) != ALGORITHMS[algorithm] or not re.fullmatch(r"[a-f0-9]+", encoded):
        raise RegistryError("DIGEST_INVALID", f"invalid digest {digest!r}: {algorithm} takes "
                            f"{ALGORITHMS[algorithm]} lowercase hex digits",
                            detail={"digest": digest})
    return algorithm, encoded


def check_upload_id(upload_id: str) -> str:
    if not UPLOAD_ID.match(upload_id):
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"unknown upload {upload_id!r}",
                            detail={"uuid": upload_id})
    return upload_id


@dataclass(frozen=True)
class Layout:
    """The path mapper: one method per kind of path, each checking what it is given."""

    root: Path  # the registry's root directory (distribution's ``rootdirectory``)

    @property
    def v2(self) -> Path:
        return self.root / "docker" / "registry" / "v2"

    # Blob store
    def blobs(self) -> Path:
        return self.v2 / "blobs"

    def blob_dir(self, digest: str) -> Path:
        algorithm, encoded = check_digest(digest)
        return self.blobs() / algorithm / encoded[:2] / encoded

    def blob_data(self, digest: str) -> Path:
        return self.blob_dir(digest) / "data"

    # Repositories
    def repositories(self) -> Path:
        return self.v2 / "repositories"

    def repository(self, name: str) -> Path:
        return self.repositories() / check_name(name)

    def layers(self, name: str) -> Path:
        return self.repository(name) / "_layers"

    def layer_link(self, name: str, digest: str) -> Path:
        return self.layers(name) / _digest_dirs(digest) / "link"

    # Manifests and tags
    def revisions(self, name: str) -> Path:
        return self.repository(name) / "_manifests" / "revisions"

    def revision_link(self, name: str, digest: str) -> Path:
        return self.revisions(name) / _digest_dirs(digest) / "link"

    def tags(self, name: str) -> Path:
        return self.repository(name) / "_manifests" / "tags"

    def tag_dir(self, name: str, tag: str) -> Path:
        return self.tags(name) / check_tag(tag)

    def tag_current_link(self, name: str, tag: str) -> Path:
        return self.tag_dir(name, tag) / "current" / "link"

    def tag_index_link(self, name: str, tag: str, digest: str) -> Path:
        return self.tag_dir(name, tag) / "index" / _digest_dirs(digest) / "link"

    def referrers(self, name: str, subject: str) -> Path:
        return self.repository(name) / "_manifests" / "referrers" / _digest_dirs(subject)

    def referrer_link(self, name: str, subject: str, digest: str) -> Path:
        return self.referrers(name, subject) / _digest_dirs(digest) / "link"

    # Uploads
    def upload_dir(self, name: str, upload_id: str) -> Path:
        return self.repository(name) / "_uploads" / check_upload_id(upload_id)

    def upload_data(self, name: str, upload_id: str) -> Path:
        return self.upload_dir(name, upload_id) / "data"

    def upload_startedat(self, name: str, upload_id: str) -> Path:
        return self.upload_dir(name, upload_id) / "startedat"


def _digest_dirs(digest: str) -> Path:
    """``sha256:<hex>`` -> ``sha256/<hex>``: how a link directory names a digest."""
    algorithm, encoded = check_digest(digest)
    return Path(algorithm) / encoded
