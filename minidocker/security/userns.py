"""User namespaces: root in the container, an unprivileged user on the host.

``--userns private`` gives the container a user namespace whose uid and gid maps send
container ids 0..65535 to host ids 100000..165535 (``--uidmap 0:100000:65536`` chooses
others, podman's syntax). Root inside then has every capability *over the container's own
namespaces* and none over the host: a file it creates belongs to host uid 100000, a process
it starts is uid 100000 in the host's ``ps``, and if it ever got out it would be nobody.

The namespace's uid map is written by the parent (see ``namespaces.spawn``), and the user
namespace is made *before* the PID, mount and network ones, so that it owns them.

The files must follow the map: the image's layers are owned by host uid 0, which inside the
namespace is nobody (65534) — root inside could not write its own /etc. Two ways out:

* an **idmapped mount** (mount_setattr(2) with MOUNT_ATTR_IDMAP, Linux ≥ 5.12 for ext4/xfs,
  6.3 for tmpfs): the kernel shifts ids on the fly, nothing is copied;
* a **chown**: a copy of each layer with every owner shifted by the map, kept per map
  (``$MINIDOCKER_ROOT/userns/<map>/<layer>``) and shared by the containers using it — what
  podman does on kernels without idmapped mounts.

This kit does the chown (``shift_layers``), which works on every kernel and every
filesystem, including the tmpfs the tests run on; ``inspect`` says which ran.

Man pages: user_namespaces(7), mount_setattr(2), chown(2).
Docker docs: "Isolate containers with a user namespace" (``--userns-remap``).
Used by: notebook 09-security (``--userns``), notebook 01-namespaces (the user namespace).
"""

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from minidocker.errors import MinidockerError
from minidocker.image.blobs import is_abandoned
from minidocker.namespaces import IdMap
from minidocker.state import state_root


def parse_userns(mode: str | None, uidmap: str | None) -> dict | None:
    """``--userns`` and ``--uidmap`` as the record keeps them: None (no user namespace) or
    the map ``{"inside", "outside", "count"}``."""
    if mode in (None, "", "host"):
        if uidmap:
            raise MinidockerError("--uidmap needs --userns private")
        return None
    if mode != "private":
        raise MinidockerError(f"invalid --userns mode '{mode}': use host or private")
    if not uidmap:
        return vars(IdMap())
    try:
        inside, outside, count = (int(n) for n in uidmap.split(":"))
    except ValueError:
        raise MinidockerError(f"invalid --uidmap '{uidmap}': use CONTAINER_ID:HOST_ID:COUNT, "
                              "e.g. 0:100000:65536") from None
    if inside != 0 or outside <= 0 or count < 1:
        raise MinidockerError(f"invalid --uidmap '{uidmap}': the map must start at container "
                              "id 0 and send it to a host id above 0")
    return {"inside": inside, "outside": outside, "count": count}


def shifted(owner: int, idmap: IdMap) -> int:
    """A host owner as the map shows it from the host: id N inside is ``outside + N``."""
    if idmap.inside <= owner < idmap.inside + idmap.count:
        return owner - idmap.inside + idmap.outside
    return owner


def shift_layers(layer_dirs: list[str], idmap: IdMap) -> list[str]:
    """The image's layers as copies owned through the map (made once per map and layer)."""
    return [str(_shifted_copy(Path(layer), idmap)) for layer in layer_dirs]


def copies_of(layer_dirs: list[str], idmap: IdMap) -> set[Path]:
    """Where the shifted copies of these layers live (made or not yet)."""
    return {copy_path(Path(layer), idmap) for layer in layer_dirs}


def copy_path(layer: Path, idmap: IdMap) -> Path:
    return state_root() / "userns" / f"{idmap.outside}-{idmap.count}" / layer.name


def _shifted_copy(layer: Path, idmap: IdMap) -> Path:
    target = copy_path(layer, idmap)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".tmp-{os.getpid()}-{layer.name}")
    shutil.rmtree(temporary, ignore_errors=True)
    subprocess.run(["cp", "-a", str(layer), str(temporary)], check=True)
    chown_tree(temporary, idmap)
    try:
        os.rename(temporary, target)  # another container may have made it meanwhile: fine
    except OSError:
        shutil.rmtree(temporary, ignore_errors=True)
    return target


def chown_tree(top: Path, idmap: IdMap) -> None:
    """Shift the owner of ``top`` and everything below it (symlinks themselves, not their
    targets: lchown)."""
    paths = [str(top)]
    for folder, dirs, files in os.walk(top):
        paths += [os.path.join(folder, name) for name in dirs + files]
    for path in paths:
        info = os.lstat(path)
        os.lchown(path, shifted(info.st_uid, idmap), shifted(info.st_gid, idmap))


def own_writable_dirs(paths: list[str], idmap: IdMap) -> None:
    """The overlay's upper and work dirs belong to root *inside* (host uid ``outside``)."""
    for path in paths:
        os.makedirs(path, exist_ok=True)
        info = os.lstat(path)
        if info.st_uid != idmap.outside:
            os.lchown(path, idmap.outside, idmap.outside)


def own_empty_dirs(paths: list[str], idmap: IdMap) -> None:
    """A volume nobody has written to yet (new and empty, ``nocopy``) is given to root inside;
    one with content keeps its owners (Docker's userns-remap keeps one volume store per map)."""
    for path in paths:
        if os.path.isdir(path) and not os.listdir(path) and os.lstat(path).st_uid == 0:
            os.lchown(path, idmap.outside, idmap.outside)


def collect_garbage(copies_in_use: set[Path]) -> list[str]:
    """Remove the shifted copies that no container uses any more (``copies_in_use``: those of
    every container that exists), and what killed copiers left; a copy being made now (its
    temporary name carries a live PID) stays."""
    removed = []
    for folder in (state_root() / "userns").glob("*"):
        for copy in folder.iterdir():
            temporary = copy.name.startswith(".tmp-")
            if (is_abandoned(copy.name) if temporary else copy not in copies_in_use):
                shutil.rmtree(copy, ignore_errors=True)
                removed.append(str(copy))
        with contextlib.suppress(OSError):
            folder.rmdir()  # the map's folder, once no copy is left in it
    return removed
