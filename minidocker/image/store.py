"""Stage 5 — the image store: images as the OCI image layout, which skopeo and umoci read.

An image is three kinds of JSON and some tars, all stored as content-addressed blobs:

    index.json ──> manifest ──> config   (the image ID is the config's digest)
                           └──> layers   (gzip'd tars; the config lists each one's
                                          *uncompressed* digest as rootfs.diff_ids)

``$MINIDOCKER_ROOT/oci/`` is an OCI image layout (``oci-layout``, ``index.json``,
``blobs/sha256/``): ``index.json`` names each tag with the annotation
``org.opencontainers.image.ref.name``. Next to it, ``layers/<diff_id>/`` holds each layer
unpacked once — overlayfs stacks those directories as the read-only lower dirs of every
container that uses them, so images that share a base share its files on disk.

Every write is atomic (blob: temp file + rename; index.json: temp file + rename; layer dir:
extract into a temp dir + rename), so a ``kill -9`` at any moment leaves a store that works,
and a reader never sees half a file. Writers take turns: every change happens in a
*transaction* that holds the store lock, an flock(2) on ``oci.lock`` (beside the layout), from its first blob to
its ``index.json`` update. Garbage collection runs under the same lock, so it never sees, and
never deletes, a blob or layer that a writer has made but not yet named. Readers take no lock:
they see the index before or after a change, never during one. The engine's lock order is
containers lock (``records.all_locked``), then this store lock, then one container's lock.

A registry names an image by the digest of *its* manifest, which need not be the store's
(a pull re-writes a Docker manifest as an OCI one): that digest is remembered per repository
in ``repodigests.json`` beside the layout (``127.0.0.1:5000/app@sha256:...`` -> the store's
manifest digest), Docker's ``RepoDigests``, so that ``run app@sha256:...`` finds what a pull
or a push saw. It is written like ``index.json``: atomically, under the store lock.

An image whose blobs are not all there (a disk fault, an older version's crash) is listed with
its ``damage``; using it is an error that names it, and ``image prune`` drops it.

Spec: opencontainers/image-spec image-layout.md, manifest.md, config.md, layer.md.
Man pages: flock(2), rename(2).
Used by: notebooks 02-root-filesystems, 04-union-filesystems, 05-images; lab 05-images.
"""

import contextlib
import fcntl
import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from minidocker import events, humanize
from minidocker.errors import MinidockerError, NotFound
from minidocker.image import DEFAULT_PATH  # noqa: F401  (Docker's PATH; re-exported)
from minidocker.image.blobs import (
    BlobStore,
    HashingWriter,
    check_digest,
    is_abandoned,
    temp_prefix,
)
from minidocker.image.reference import Reference, parse_reference
from minidocker.state import atomic_write, now, state_root, write_json

OCI_LAYOUT = {"imageLayoutVersion": "1.0.0"}
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_PLAIN = "application/vnd.oci.image.layer.v1.tar"
REF_NAME = "org.opencontainers.image.ref.name"
DIGEST_HEX = re.compile(r"^[a-f0-9]{64}$")
ID_PREFIX = re.compile(r"^(sha256:)?[a-f0-9]{4,64}$")
# gzip level of the layers minidocker writes (commit, build, import, a plain layer loaded):
# 1, zlib's fastest. Measured on a tar of Python's standard library (50 MiB, text): level 6
# (gzip's and Docker's default) takes 3.6x as long for a blob 12% smaller, level 3 1.4x as
# long for 5% smaller (bench/README.md, "Layers"). Same level, same zlib -> the same bytes.
GZIP_LEVEL = 1


@dataclass
class Layer:
    digest: str  # of the blob as stored (gzip)
    diff_id: str  # of the uncompressed tar
    size: int  # of the blob


@dataclass
class Image:
    id: str  # the config's digest, as Docker shows it
    manifest_digest: str
    manifest: dict
    config: dict
    tags: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)  # RepoDigests: name@sha256:... a registry saw
    damage: str = ""  # what the store lacks of it ("blob sha256:... is missing"), if anything

    @property
    def diff_ids(self) -> list[str]:
        return self.config.get("rootfs", {}).get("diff_ids", [])

    def layer_dirs(self) -> tuple[str, ...]:
        """The unpacked layers, top first, as overlayfs wants its lowerdir list. A layer that
        occurs twice (two steps that changed the same files alike, or the empty layer Docker's
        builds repeat) is listed once, at its top place: overlayfs refuses a lower dir given
        twice (ELOOP), and the lower copy could only show what the upper one shows already."""
        return tuple(dict.fromkeys(str(layer_dir(d)) for d in reversed(self.diff_ids)))

    @property
    def size(self) -> int:
        return sum(layer["size"] for layer in self.manifest["layers"])

    @property
    def short_id(self) -> str:
        return self.id.split(":")[1][:12]


def human_size(size: float) -> str:
    """Sizes as ``docker images`` prints them: 3 significant digits, powers of 1000."""
    return humanize.size(size)


def layout_dir() -> Path:
    return state_root() / "oci"


@dataclass
class Staging:
    """Where ``ImageStore.unpacking`` lets a layer be extracted, and the digest to keep it by."""
    path: Path | None
    diff_id: str | None = None

    def keep(self, diff_id: str) -> None:
        self.diff_id = diff_id


def layer_dir(diff_id: str) -> Path:
    return state_root() / "layers" / check_digest(diff_id).split(":")[1]


class DamagedImage(MinidockerError):
    """An image whose blobs or layers are not all in the store."""


_held = 0  # how many transactions of this process are open: the flock is taken by the first


@contextlib.contextmanager
def transaction():
    """Hold the store lock: no other process changes the store or collects garbage meanwhile.
    Nested transactions of one process share the lock (a commit tags the image it adds)."""
    global _held
    if _held:
        _held += 1
        try:
            yield
        finally:
            _held -= 1
        return
    # beside the layout, not in it: skopeo and umoci read oci/ and should see only the layout
    fd = os.open(state_root() / "oci.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _held = 1
        yield
    finally:
        _held = 0
        os.close(fd)


def _mutation(method):
    """A store method that changes the store: it runs inside a transaction."""
    @functools.wraps(method)
    def in_transaction(*args, **kwargs):
        with transaction():
            return method(*args, **kwargs)
    return in_transaction


class ImageStore:
    """The images under the state root. Cheap to make: it reads the disk when asked."""

    def __init__(self):
        self.root = layout_dir()
        self.blobs = BlobStore(self.root)

    transaction = staticmethod(transaction)

    # --- index.json: the names -----------------------------------------------------------------

    def _index(self) -> dict:
        path = self.root / "index.json"
        if not path.exists():
            return {"schemaVersion": 2, "mediaType": INDEX, "manifests": []}
        return json.loads(path.read_text())

    def _write_index(self, index: dict) -> None:
        if not (self.root / "oci-layout").exists():
            atomic_write(self.root / "oci-layout", json.dumps(OCI_LAYOUT).encode())
        write_json(self.root / "index.json", index)

    # --- repodigests.json: what registries call the images ----------------------------------------

    def _repo_digests(self) -> dict[str, str]:
        """``name@sha256:<registry's manifest digest>`` -> the store's manifest digest."""
        path = repo_digests_path()
        return json.loads(path.read_text()) if path.exists() else {}

    def _write_repo_digests(self, digests: dict[str, str]) -> None:
        write_json(repo_digests_path(), digests)

    @_mutation
    def add_repo_digest(self, image: Image, repository: str, digest: str) -> str:
        """Remember that ``repository``'s registry calls ``image`` by ``digest`` (after a pull
        or a push): ``repository@digest`` names it from now on."""
        name = f"{parse_reference(repository).repository}@{check_digest(digest)}"
        digests = self._repo_digests()
        digests[name] = image.manifest_digest
        self._write_repo_digests(digests)
        if name not in image.digests:
            image.digests.append(name)
        return name

    def images(self) -> list[Image]:
        """Every image in the store, its tags gathered (an image may have several). A reader
        that finds a blob missing may have read the index just before an ``rmi`` deleted it:
        it reads again under the lock, where only real damage stays."""
        images = self._read_images()
        if any(image.damage for image in images) and not _held:
            with transaction():
                images = self._read_images()
        return images

    def _read_images(self) -> list[Image]:
        found: dict[str, Image] = {}
        for descriptor in self._index()["manifests"]:
            digest = descriptor["digest"]
            if digest not in found:
                found[digest] = self._load(digest)
            ref = descriptor.get("annotations", {}).get(REF_NAME)
            if ref:
                found[digest].tags.append(ref)
        for name, digest in sorted(self._repo_digests().items()):
            if digest in found:
                found[digest].digests.append(name)
        return sorted(found.values(), key=lambda i: i.config.get("created", ""), reverse=True)

    def _load(self, manifest_digest: str) -> Image:
        """The image a manifest describes. If a blob is missing or corrupt, the image is
        still returned, with ``damage`` saying what is wrong (and, when the manifest itself is
        gone, the manifest's digest standing in for the unknown ID)."""
        image = Image(manifest_digest, manifest_digest, {"layers": []}, {})
        try:
            image.manifest = json.loads(self.blobs.read(manifest_digest))
            image.id = image.manifest["config"]["digest"]
            image.config = json.loads(self.blobs.read(image.id))
        except MinidockerError as problem:
            image.damage = str(problem)
            return image
        image.damage = self._missing_layer(image)
        return image

    def _missing_layer(self, image: Image) -> str:
        for layer in image.manifest["layers"]:
            if not self.blobs.has(layer["digest"]):
                return f"blob {layer['digest']} is missing"
        for diff_id in image.diff_ids:
            if not layer_dir(diff_id).is_dir():
                return f"the unpacked layer {diff_id} is missing"
        return ""

    def get(self, name: str) -> Image:
        """An image to use, by reference (``busybox``, ``mine:1``), full ID or ID prefix; a
        damaged one is an error that says how to remove it."""
        image = self.find(name)
        if image.damage:
            shown = tag_named(name, image) or name
            raise DamagedImage(f"image {shown} is damaged: {image.damage}; remove it with "
                               f"'minidocker rmi -f {shown}' or run 'minidocker image prune'")
        return image

    def find(self, name: str) -> Image:
        """An image by name or ID, damaged or not (``rmi`` removes damaged images too)."""
        images = self.images()
        candidates = [name]
        try:
            candidates.append(canonical_name(parse_reference(name)))
        except MinidockerError:
            if not ID_PREFIX.match(name):
                raise  # neither a name nor an ID: say what is wrong with it as a name
        for image in images:
            if any(c in image.tags or c in image.digests for c in candidates) or \
                    name in (image.id, image.manifest_digest):
                return image
        bare = name.removeprefix("sha256:")
        matches = [i for i in images if len(bare) >= 4 and i.id[7:].startswith(bare)]
        if len(matches) == 1:
            return matches[0]
        present = ", ".join(t for i in images for t in i.tags) or "none"
        raise NotFound(f"Unable to find image '{candidates[-1]}' locally (images here: "
                       f"{present}). Load one with 'minidocker load' or 'minidocker import', "
                       "or create the base image with 'minidocker setup'.")

    @_mutation
    def tag(self, image: Image, reference: str) -> str:
        """Point ``reference`` at ``image`` (moving it away from any other image)."""
        ref = parse_reference(reference)
        if ref.digest:
            raise MinidockerError("refusing to create a tag with a digest reference")
        name = str(ref)
        index = self._index()
        losing = [d for d in index["manifests"] if _ref(d) == name]
        index["manifests"] = [d for d in index["manifests"] if _ref(d) != name]
        for old in losing:  # the image that had this name stays, as <none>:<none>
            if not any(d["digest"] == old["digest"] for d in index["manifests"]):
                index["manifests"].append({k: v for k, v in old.items() if k != "annotations"})
        index["manifests"] = [d for d in index["manifests"]
                              if not (d["digest"] == image.manifest_digest and not _ref(d))]
        index["manifests"].append(_descriptor(image, name))
        self._write_index(index)
        events.emit("image", "tag", image.id, {"name": name})
        return name

    @_mutation
    def untag(self, reference: str) -> Image:
        """Remove one name (a tag or a repo digest); the image stays (untagged) if nothing else
        names it."""
        name = canonical_name(parse_reference(reference))
        image = self.find(name)
        if "@" in name:
            digests = self._repo_digests()
            digests.pop(name, None)
            self._write_repo_digests(digests)
            return image
        index = self._index()
        index["manifests"] = [d for d in index["manifests"] if _ref(d) != name]
        if not any(d["digest"] == image.manifest_digest for d in index["manifests"]):
            index["manifests"].append(_descriptor(image, None))  # kept, as <none>:<none>
        self._write_index(index)
        events.emit("image", "untag", image.id, {"name": name})
        return image

    @_mutation
    def delete(self, image: Image) -> int:
        """Forget the image (all its names), then free blobs and layers nobody uses; the bytes
        of the blobs freed."""
        index = self._index()
        index["manifests"] = [d for d in index["manifests"]
                              if d["digest"] != image.manifest_digest]
        self._write_index(index)
        freed = self.collect_garbage()
        events.emit("image", "delete", image.id, {"name": image.id})
        return freed

    def _forget_repo_digests(self, present: set[str]) -> None:
        """Drop the repo digests of images no longer in ``index.json``."""
        digests = self._repo_digests()
        kept = {name: digest for name, digest in digests.items() if digest in present}
        if kept != digests:
            self._write_repo_digests(kept)

    # --- adding images ---------------------------------------------------------------------------

    @_mutation
    def add_layer(self, tar_path: Path) -> Layer:
        """Store an uncompressed layer tar: gzip it into a blob, unpack it once."""
        with open(tar_path, "rb") as source:
            layer = self._store_blob(lambda sink: shutil.copyfileobj(source, sink, 1 << 20))
        self.unpack(layer.diff_id, tar_path)
        return layer

    def add_layer_from(self, source_dir: Path) -> Layer:
        """Store a directory already in overlay form (a container's upper dir) as a layer, in
        one pass over its files: tar -> the diff_id's hash -> gzip -> the blob's hash -> the
        blob file, no tar on disk in between. Its unpacked copy is ``cp -a`` of the directory
        (cp keeps whiteouts, 0/0 devices, and opaque xattrs): much faster than extracting
        10,000 files again, and the same files. cp runs while the tar is written, a second
        process on a second core; its copy becomes ``layers/<diff_id>`` once that is known."""
        from minidocker.image.layers import write_layer_tar  # the writer: off run's path

        with self.unpacking() as staging:
            copy = subprocess.Popen(["cp", "-a", "--preserve=all", "-T", str(source_dir),
                                     str(staging.path)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            try:
                layer = self._store_blob(lambda sink: write_layer_tar(source_dir, sink))
            except BaseException:
                copy.kill()
                copy.wait()
                raise
            _, errors = copy.communicate()
            if copy.returncode:
                raise MinidockerError(f"cannot copy {source_dir} into the store: "
                                      f"{errors.decode(errors='replace').strip()}")
            staging.keep(layer.diff_id)  # if the layer is there already, it stays
        return layer

    def _store_blob(self, write_tar) -> Layer:
        """``write_tar(sink)`` writes a layer tar: hash it (the diff_id), gzip it at
        GZIP_LEVEL, hash that (the blob's digest) and store it, all as the bytes go by -- in a
        second thread (streams.py), while ``write_tar`` goes on walking the files."""
        import gzip

        from minidocker.image.streams import WriteBehind

        diff_id = HashingWriter()
        with self.blobs.writer() as (sink, commit):
            with gzip.GzipFile(fileobj=sink, mode="wb", mtime=0,
                               compresslevel=GZIP_LEVEL) as packed:
                diff_id.target = packed
                with WriteBehind(diff_id) as behind:
                    write_tar(behind)
            return Layer(commit(), diff_id.digest, sink.size)

    def unpack(self, diff_id: str, tar_path: Path) -> Path:
        """Extract a layer into ``layers/<diff_id>`` unless it is there already."""
        with self.unpacking(diff_id) as staging:
            if staging.path is not None:
                from minidocker.image.layers import extract_layer

                with open(tar_path, "rb") as f:
                    extract_layer(f, staging.path)
                staging.keep(diff_id)
        return layer_dir(diff_id)

    @contextlib.contextmanager
    def unpacking(self, diff_id: str | None = None):
        """``with store.unpacking(diff_id) as staging``: a directory to extract a layer into
        (``staging.path``; None when ``layers/<diff_id>`` is there already). When the block
        ends, it becomes ``layers/<diff_id>`` if ``staging.keep(diff_id)`` was called (the
        digest may be known only once the layer has gone by), else it is removed."""
        if diff_id is not None and layer_dir(diff_id).is_dir():
            yield Staging(None)
            return
        (state_root() / "layers").mkdir(parents=True, exist_ok=True)
        staging = Staging(Path(tempfile.mkdtemp(dir=state_root() / "layers", prefix=temp_prefix())))
        try:
            yield staging
            if staging.diff_id is not None:
                target = layer_dir(staging.diff_id)
                try:
                    os.rename(staging.path, target)
                except OSError:  # another load unpacked the same layer first: keep theirs
                    if not target.is_dir():
                        raise
        finally:
            shutil.rmtree(staging.path, ignore_errors=True)  # gone if it was renamed

    def add_image(self, config: dict, layers: list[Layer], tag: str | None) -> Image:
        """Write config and manifest blobs and name the image."""
        return self.add_image_with_config(_canonical(config), layers, tag)

    @_mutation
    def add_image_with_config(self, config: bytes, layers: list[Layer],
                              tag: str | None) -> Image:
        """The same, keeping a config's exact bytes (so a loaded image keeps its ID)."""
        check_created(config)
        config_digest = self.blobs.put_bytes(config)
        manifest = {
            "schemaVersion": 2, "mediaType": MANIFEST,
            "config": {"mediaType": CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": LAYER, "digest": layer.digest, "size": layer.size}
                       for layer in layers],
        }
        return self.add_manifest(manifest, tag)

    @_mutation
    def add_manifest(self, manifest: dict, tag: str | None) -> Image:
        manifest_digest = self.blobs.put_bytes(_canonical(manifest))
        image = self._load(manifest_digest)
        if tag:
            self.tag(image, tag)
        elif not any(d["digest"] == manifest_digest for d in self._index()["manifests"]):
            index = self._index()
            index["manifests"].append(_descriptor(image, None))
            self._write_index(index)
        image.tags = next((i.tags for i in self.images() if i.id == image.id), [])
        return image

    # --- garbage ------------------------------------------------------------------------------------

    @_mutation
    def collect_garbage(self) -> int:
        """Delete blobs no manifest in index.json refers to, and their unpacked layers. Under
        the store lock: a writer's blobs not yet named are not there to see (its transaction
        holds the lock), and its temp files carry its live PID. The bytes of the blobs deleted
        (a prune's "reclaimed space", in the sizes ``images`` shows)."""
        used_blobs, used_layers, freed = set(), set(), 0
        images = self.images()
        self._forget_repo_digests({image.manifest_digest for image in images})
        for image in images:
            used_blobs |= {image.manifest_digest, image.id}
            used_blobs |= {layer["digest"] for layer in image.manifest["layers"]}
            used_layers |= {layer_dir(d).name for d in image.diff_ids}
        for digest in self.blobs.digests():
            if digest not in used_blobs:
                freed += self.blobs.path(digest).stat().st_size
                self.blobs.delete(digest)
        layers = state_root() / "layers"
        for directory in layers.iterdir() if layers.is_dir() else []:
            if DIGEST_HEX.match(directory.name) and directory.name not in used_layers:
                shutil.rmtree(directory, ignore_errors=True)
        for folder in (self.root / "blobs" / "sha256", layers, scratch_root()):
            for stale in folder.glob(".tmp-*") if folder.is_dir() else []:
                if is_abandoned(stale.name):  # left by a writer that was killed
                    shutil.rmtree(stale) if stale.is_dir() else stale.unlink(missing_ok=True)
        return freed

    def scratch(self) -> tempfile.TemporaryDirectory:
        """A temporary directory on the store's filesystem (renames into place stay cheap)."""
        scratch_root().mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(dir=scratch_root(), prefix=temp_prefix(),
                                           ignore_cleanup_errors=True)  # swept already: fine


def repo_digests_path() -> Path:
    # beside the layout, as oci.lock: the OCI layout itself has no place for them
    return state_root() / "repodigests.json"


def canonical_name(ref: Reference) -> str:
    """How the store spells a reference: ``name:tag``, or ``name@digest`` when a digest is
    given (Docker looks a ``name:tag@digest`` up by its digest alone)."""
    return f"{ref.repository}@{ref.digest}" if ref.digest else str(ref)


def scratch_root() -> Path:
    return state_root() / "tmp"


def tag_named(name: str, image: Image) -> str | None:
    """The name (tag or repo digest) of ``image`` that ``name`` spells (``busybox`` is
    ``busybox:latest``)."""
    candidates = {name}
    with contextlib.suppress(MinidockerError):
        candidates.add(canonical_name(parse_reference(name)))
    return next((t for t in [*image.tags, *image.digests] if t in candidates), None)


def _ref(descriptor: dict) -> str | None:
    return descriptor.get("annotations", {}).get(REF_NAME)


def _descriptor(image: Image, ref: str | None) -> dict:
    descriptor = {"mediaType": MANIFEST, "digest": image.manifest_digest,
                  "size": len(_canonical(image.manifest))}
    if ref:
        descriptor["annotations"] = {REF_NAME: ref}
    return descriptor


def check_created(config: bytes) -> None:
    """A config from outside (``load``, ``pull``) says when the image was made as an RFC 3339
    string, or not at all, as Go's ``time.Time`` reads it: anything else would break every
    listing, which sorts and filters the images by it."""
    from datetime import datetime

    created = json.loads(config).get("created", "")
    try:
        if created != "":
            datetime.fromisoformat(created.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise MinidockerError(f'the image\'s config is broken: its "created" is '
                              f"{json.dumps(created)[:40]}, not a date like "
                              "2024-01-31T12:00:00Z; the image was not stored") from None


def _canonical(value: dict) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def new_config(diff_ids: list[str], config: dict, history: list[dict]) -> dict:
    """An image config (config.md): platform, the process defaults, the layers, history."""
    return {"created": now(), "architecture": architecture(), "os": "linux",
            "config": config, "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history}


def architecture() -> str:
    """This CPU as OCI platforms spell it (Go's GOARCH): x86_64 is amd64, aarch64 arm64."""
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


# --- the names the rest of minidocker uses ---------------------------------------------------

def resolve_image(name: str) -> tuple[Reference | str, Image]:
    """The image a ``run`` or ``create`` names, or NotFound saying what exists."""
    image = ImageStore().get(name)
    try:
        return parse_reference(name), image
    except MinidockerError:
        return name, image


def list_images() -> list[str]:
    return sorted(t for image in ImageStore().images() for t in image.tags)


def single_layer_dir(name: str) -> Path:
    """The unpacked files of a one-layer image such as busybox — to read, or to copy for a
    demo that writes (never write here: every container of the image shares it)."""
    image = ImageStore().get(name)
    if len(image.diff_ids) != 1:
        raise MinidockerError(f"{name} has {len(image.diff_ids)} layers; a flat copy of a "
                              "layered image needs 'minidocker export'")
    return Path(image.layer_dirs()[0])
