"""A container's changes as data: ``diff``, ``commit`` and ``export``.

The container's upper dir *is* its change set (stage 4). ``diff`` reads it; ``commit`` tars it
into one new layer (overlay whiteouts become OCI ``.wh.`` files) on top of the image's layers,
with a config and a history entry; ``export`` writes the whole merged root filesystem as one
flat tar, read through a read-only overlay mounted in a throwaway mount namespace.

Man pages: mount(2) (overlay), tar(5). Used by: notebook 04-union-filesystems, 05-images.
"""

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from minidocker.container import records
from minidocker.image.config import apply_changes
from minidocker.image.store import Image, ImageStore, Layer
from minidocker.state import now

if TYPE_CHECKING:  # export's and diff's modules load when they run: commit needs none of them
    from minidocker.namespaces import Report
    from minidocker.unionfs import Change


def diff(name: str) -> "list[Change]":
    from minidocker import unionfs

    record = records.find(name)
    return unionfs.changes(record.upper, tuple(record.Config.LowerDirs))


def commit(name: str, tag: str | None = None, author: str = "", message: str = "",
           changes: list[str] = ()) -> Image:
    """Turn the container's upper dir into a new image: parent layers + one layer. One store
    transaction, from the parent's lookup to the new name, so that no ``rmi`` or garbage
    collection takes a layer away before the new image names it; inside it, the container's
    own lock while its upper dir is read, so that an ``rm`` waits until the layer is made."""
    record = records.find(name)
    store = ImageStore()
    with store.transaction():
        parent = store.get(record.Image)
        with record.locked():  # NotFound if an rm came first
            layer = store.add_layer_from(record.upper)
        config = child_config(parent, layer, " ".join(record.command), author, message,
                              changes)
        parents = [Layer(d["digest"], diff_id, d["size"]) for d, diff_id
                   in zip(parent.manifest["layers"], parent.diff_ids, strict=True)]
        return store.add_image(config, [*parents, layer], tag)


def child_config(parent: Image, layer: Layer, created_by: str, author: str, message: str,
                 changes: list[str]) -> dict:
    """The parent's config with one more layer, one more history entry and the changes."""
    config = json.loads(json.dumps(parent.config))
    config["config"] = apply_changes(config.get("config", {}), list(changes))
    config["rootfs"]["diff_ids"].append(layer.diff_id)
    entry = {"created": now(), "created_by": created_by}
    entry.update({k: v for k, v in (("author", author), ("comment", message)) if v})
    config["history"] = [*config.get("history", []), entry]
    config["created"] = entry["created"]
    if author:
        config["author"] = author
    return config


def export(name: str, output) -> None:
    """Write the container's root filesystem as one flat tar to ``output``."""
    # What the child runs is imported here, before the fork: the child of a threaded process
    # (the daemon) must not import -- a module's import lock that another thread held at the
    # fork is never released in the child, whose import would then wait forever.
    from minidocker import kernel, namespaces, rootfs, unionfs  # noqa: F401
    from minidocker.image import layers  # noqa: F401

    record = records.find(name)
    lower = [str(record.upper), *record.Config.LowerDirs]
    output.flush()
    namespaces.in_child(f"export {name}", _write_flat_tar,
                        str(record.directory), lower, output.fileno())


def _write_flat_tar(report: "Report", directory: str, lower: list[str], output: int) -> None:
    """The child of ``export``: a throwaway mount namespace, a read-only overlay, the tar."""
    from minidocker import kernel, namespaces, rootfs, unionfs  # loaded by export: no lock
    from minidocker.image.layers import write_layer_tar

    namespaces.close_other_fds({report.fd, output})  # no copy of a pipe's read end held here
    report.step("unshare the mount namespace")
    kernel.unshare(kernel.CLONE_NEWNS)  # the mount lives and dies with this child
    rootfs.make_mounts_private()
    with tempfile.TemporaryDirectory(dir=directory) as merged:
        report.step("mount the layers")
        # Without an upper dir, overlayfs mounts read-only: a pure view of the layers.
        options = "lowerdir=" + ":".join(unionfs.escape(d) for d in lower)
        kernel.mount("overlay", merged, "overlay", kernel.MS_RDONLY, options)
        report.step("write the tar")
        with os.fdopen(os.dup(output), "wb") as out:
            write_layer_tar(Path(merged), out)
        kernel.umount2(merged, kernel.MNT_DETACH)
