"""The build cache: a step already done on the same parent, the same way, is not done again.

Docker's classic builder keeps every step's result as an image, and before running a step it
looks for an image made by the same step on the same parent. A step is "the same" when its key
is: the key hashes

* the parent image's ID (which covers every earlier step, the base image and its ENVs);
* the instruction after variable expansion (``COPY $SRC /app`` with SRC=a differs from SRC=b);
* the build args it uses (a RUN sees them all, in its environment);
* for COPY and ADD, a checksum of the copied files' names, types, modes, link targets and
  content — not their mtimes, which a ``git clone`` changes without changing anything else.

The keys live in ``$MINIDOCKER_ROOT/build-cache.json`` (key -> image ID), rewritten atomically
under the image store's lock, as every store change is; ``images`` hides the steps' images
that are no build's result, as ``docker images`` hides intermediate images (``-a`` shows them). The images themselves stay in the
store, untagged; ``builder prune`` deletes those no tag and no container uses, and forgets
the keys. ``image prune`` keeps the steps under an image that is still there (they are its
parents, as in Docker); a key whose image is gone (``rmi``, a pruned chain) is simply a miss.

Spec: Docker's "Build cache" (docs.docker.com/build/cache), moby builder/dockerfile
(imageProbe, the classic builder's cache), the tarsum idea of the classic ADD/COPY cache.
Used by: the builder, notebook 10-builds, lab 10-build (the student writes ``step_key`` and
``files_checksum``, and the builder runs with them: ``KeyRules``).
"""

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from minidocker.errors import MinidockerError
from minidocker.image.store import Image, ImageStore
from minidocker.state import state_root, write_json


def step_key(parent_id: str, instruction: str, args: Mapping[str, str],
             files_checksum: str = "") -> str:
    """The cache key of one step (see the module docstring for what goes in and why)."""
    material = json.dumps([parent_id, instruction, sorted(args.items()), files_checksum])
    return "sha256:" + hashlib.sha256(material.encode()).hexdigest()


def files_checksum(root: Path, sources: Iterable[str]) -> str:
    """A checksum of the files a COPY/ADD reads (``sources``: paths in ``root``): for each
    node under each source, its path relative to the source, type, mode, size, link target
    and content; mtime excluded."""
    digest = hashlib.sha256()
    for source_path in sources:
        source = root / source_path
        digest.update(b"source\0" + os.fsencode(source_path) + b"\0")
        for relative, path in _nodes(source):
            st = os.lstat(path)
            digest.update(f"{relative}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode)}"
                          f"\0{st.st_size if stat.S_ISREG(st.st_mode) else 0}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                digest.update(os.fsencode(os.readlink(path)))
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as content:
                    while chunk := content.read(1 << 20):
                        digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _nodes(source: Path):
    """(relative name, path) of ``source`` and, for a directory, everything below, sorted."""
    yield ".", source
    if source.is_dir() and not source.is_symlink():
        for folder, dirs, files in os.walk(source):
            dirs.sort()
            for name in sorted(dirs + files):
                path = Path(folder) / name
                yield str(path.relative_to(source)), path


@dataclass(frozen=True)
class KeyRules:
    """How the builder makes a step's key: the two functions above, unless it is given others
    (lab 10-build hands it the student's, and checks the hits and misses they give)."""

    step_key: Callable[[str, str, Mapping[str, str], str], str] = step_key
    files_checksum: Callable[[Path, Iterable[str]], str] = files_checksum


def cache_file() -> Path:
    return state_root() / "build-cache.json"


class BuildCache:
    """Step keys and the images they made. ``build-cache.json`` holds ``keys`` (key -> image
    ID) and ``images``: every image a build step made, also those a ``--no-cache`` build has
    since replaced under their key, so that ``builder prune`` finds them all. Reads need no
    lock; writes happen inside a store transaction (the image and its key are named together)."""

    def __init__(self, store: ImageStore):
        self.store = store
        self.known: dict[str, Image] | None = None  # the store's images, read once a build

    def read(self) -> dict:
        try:
            data = json.loads(cache_file().read_text())
        except FileNotFoundError:
            return {"keys": {}, "images": [], "finals": []}
        except ValueError as err:
            raise MinidockerError(f"{cache_file()} is not valid JSON ({err}); remove it "
                                  "(the build cache only) and build again") from None
        return {"keys": data.get("keys") or {}, "images": data.get("images") or [],
                "finals": data.get("finals") or []}

    def lookup(self, key: str) -> Image | None:
        """The image a step with this key made, if it is still whole in the store. The store
        is read at the first lookup of a build, not at every step."""
        image_id = self.read()["keys"].get(key)
        if image_id is None:
            return None
        if self.known is None:
            self.known = {image.id: image for image in self.store.images()}
        image = self.known.get(image_id)
        return image if image is not None and not image.damage else None

    def record(self, key: str, image: Image) -> None:
        with self.store.transaction():
            data = self.read()
            data["keys"][key] = image.id
            data["images"] = list(dict.fromkeys([*data["images"], image.id]))
            write_json(cache_file(), data)
        if self.known is not None:
            self.known[image.id] = image

    def image_ids(self) -> set[str]:
        return set(self.read()["images"])

    def mark_final(self, image: Image) -> None:
        """A build's result: ``images`` lists it even untagged (Docker's ``<none>``)."""
        if image.id in self.read()["finals"]:
            return  # a build of cache hits writes nothing new
        with self.store.transaction():
            data = self.read()
            data["finals"] = list(dict.fromkeys([*data["finals"], image.id]))
            write_json(cache_file(), data)

    def intermediate_ids(self) -> set[str]:
        """The build steps' images that are no build's result: ``images`` hides them."""
        data = self.read()
        return set(data["images"]) - set(data["finals"])

    def prune(self, users: Mapping[str, list[str]]) -> list[str]:
        """``builder prune``: delete the build steps' images that no tag and no container uses
        (``users``: image ID -> containers), forget every key. Returns the deleted IDs."""
        deleted = []
        with self.store.transaction():
            made = self.image_ids()
            for image in self.store.images():
                if image.id in made and not image.tags and not users.get(image.id):
                    self.store.delete(image)
                    deleted.append(image.id)
            write_json(cache_file(), {"keys": {}, "images": [], "finals": []})
            self.store.collect_garbage()
        return deleted
