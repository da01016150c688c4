"""Garbage collection: mark every blob a manifest needs, sweep the rest.

Deleting a blob or a manifest through the API only removes a link; the bytes stay in the
blob store, since another repository may link them too. Collection walks every repository:
*mark* each manifest revision and everything it references (config, layers, the manifests of
an index), then *sweep* each blob no mark reached, and the layer links that pointed at it.
Like distribution's, it must run while no push is under way (stop the server): a blob
uploaded but not yet named by a manifest looks like garbage.

Model: distribution's ``registry/storage/garbagecollect.go`` (``registry garbage-collect``).
Used by: ``minidocker registry garbage-collect [--dry-run]``; notebook 11-registries.
"""

import shutil
from collections.abc import Iterator
from pathlib import Path

from minidocker.registry import manifests
from minidocker.registry.errors import RegistryError
from minidocker.registry.paths import ALGORITHMS, Layout
from minidocker.registry.storage import Storage, linked_digests


def mark(storage: Storage) -> set[str]:
    """The digests of every manifest revision and of everything those manifests name."""
    marked = set()
    for name in storage.repositories():
        for digest in linked_digests(storage.layout.revisions(name)):
            marked.add(digest)
            try:
                body = storage.layout.blob_data(digest).read_bytes()
                media_type, document = manifests.parse_manifest(body)
            except (FileNotFoundError, RegistryError):
                continue
            marked.update(d for _, d in manifests.references(document, media_type))
            if document.get("layers"):  # non-distributable layers stored here anyway
                marked.update(d["digest"] for d in document["layers"])
    return marked


def stored_blobs(layout: Layout) -> Iterator[str]:
    for algorithm in ALGORITHMS:
        for data in sorted((layout.blobs() / algorithm).glob("*/*/data")):
            yield f"{algorithm}:{data.parent.name}"


def garbage_collect(root: str | Path, dry_run: bool = False) -> list[str]:
    """Sweep unmarked blobs; returns one line per blob deleted (or, dry, to be deleted)."""
    storage = Storage(Path(root))
    layout = storage.layout
    marked = mark(storage)
    swept = [digest for digest in stored_blobs(layout) if digest not in marked]
    lines = [f"{'would delete' if dry_run else 'deleted'} blob {d}" for d in swept]
    if dry_run:
        return lines + [f"{len(marked)} blobs marked, {len(swept)} blobs eligible for deletion"]
    for digest in swept:
        shutil.rmtree(layout.blob_dir(digest))
    for name in storage.repositories():
        for digest in linked_digests(layout.layers(name)):
            if digest in swept:
                shutil.rmtree(layout.layer_link(name, digest).parent)
    return lines + [f"{len(marked)} blobs marked, {len(swept)} blobs deleted"]

