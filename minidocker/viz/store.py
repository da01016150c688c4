"""A state root of a notebook's own: the same outputs whatever the machine's store holds.

A notebook that lists images, layers, containers or volumes would print what the student made
before (the README's tour: ``mine:1``, ``c1``, the volume ``data``) next to its own objects,
and ``image prune`` or ``volume prune`` would take them away. ``own_state_root("05")`` gives the
notebook a fresh, empty state root instead: a new tmpfs (as the test session's state root is,
so that sizes and mountinfo lines do not depend on the disk under /tmp), to which
``$MINIDOCKER_ROOT`` points for the notebook's kernel and every command it runs; the busybox
image is built there (offline, as ``minidocker setup`` does). ``leave_state_root(root)`` points ``$MINIDOCKER_ROOT`` back where
it was, unmounts the tmpfs and removes the directory, once no container is left in it.
A notebook whose kernel is killed before its last cell (nbval does so, with SIGKILL, after a
failing cell, so nothing at exit runs in it) never leaves its root, and a cluster lab it
started keeps running: ``remove_abandoned_roots()``, called by the test session and by
``minidocker.viz.refresh`` once a notebook is over, takes them down. A lab host (the test
session's, refresh's) is a copy of the machine's mounts, so it would also see the root of a
notebook open on the machine (JupyterLab's): ``forget_machine_roots()``, called as the lab host
is made, detaches those copies, so that the lab host never takes one for its own.
Only the files are private: the kernel's objects (the bridge ``minidocker0``, iptables rules,
cgroups) are the machine's, shared with the real state root.
Man pages: mount(2), umount(2), tmpfs(5); see state.py for the state root's layout.
Used by: notebooks 05-07, 14-cluster, 14b-overlay-networks; conftest.py, viz/refresh.py.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from minidocker import kernel
from minidocker.errors import MinidockerError

PREFIX = "minidocker-notebook-"  # notebooks/sanitize.cfg replaces /tmp/minidocker-notebook-...
PREVIOUS = "MINIDOCKER_ROOT_BEFORE_NOTEBOOK"  # where $MINIDOCKER_ROOT pointed before


def own_state_root(notebook: str) -> Path:
    """A fresh state root for this process and its children, holding only busybox."""
    if PREVIOUS in os.environ:
        raise MinidockerError("this process already has a state root of its own: "
                              "call leave_state_root() first")
    root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{notebook}-"))
    kernel.mount("tmpfs", str(root), "tmpfs", 0, "mode=700")  # root's alone, as state.py wants
    os.environ[PREVIOUS] = os.environ.get("MINIDOCKER_ROOT", "")
    os.environ["MINIDOCKER_ROOT"] = str(root)
    from minidocker.image.busybox import create_busybox_image

    create_busybox_image()
    return root


def leave_state_root(root: Path) -> None:
    """Point ``$MINIDOCKER_ROOT`` back where it was and delete ``root`` (with its images and
    volumes); refused while a container is still recorded in it."""
    root = Path(root)
    if os.environ.get("MINIDOCKER_ROOT") != str(root) or PREVIOUS not in os.environ:
        raise MinidockerError(f"{root} is not the state root own_state_root() made here")
    left = sorted(p.name[:12] for p in (root / "containers").glob("*") if p.is_dir()
                  and not p.name.startswith("."))
    if left:
        raise MinidockerError(f"containers are left in {root}: {', '.join(left)}; remove them "
                              "first (minidocker rm -f ...), then leave the state root")
    previous = os.environ.pop(PREVIOUS)
    if previous:
        os.environ["MINIDOCKER_ROOT"] = previous
    else:
        del os.environ["MINIDOCKER_ROOT"]
    kernel.umount2(str(root), kernel.MNT_DETACH)  # its images and volumes go with the tmpfs
    os.rmdir(root)


def mounted_roots() -> list[Path]:
    """The notebooks' state roots mounted in this mount namespace, from /proc/self/mountinfo."""
    prefix = os.path.join(tempfile.gettempdir(), PREFIX)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [Path(p) for p in points if p.startswith(prefix)]


def forget_machine_roots() -> list[Path]:
    """In a lab host just made (a private copy of the machine's mounts): detach the notebook
    state roots it inherited, those of notebooks open on the machine. They are not this lab
    host's to check or take down; the machine keeps them (a private mount namespace sends
    no umount back)."""
    inherited = mounted_roots()
    for root in inherited:
        kernel.umount2(str(root), kernel.MNT_DETACH)
    return inherited


def remove_abandoned_roots() -> list[Path]:
    """Every notebook state root still mounted here, taken down as its notebook's last cells
    would have: the cluster lab in it (``cluster down``: etcd, the nodes' daemons, agents),
    its containers, then the tmpfs. Call it only once the notebook's kernel is gone."""
    removed = mounted_roots()
    for root in removed:
        env = {**os.environ, "MINIDOCKER_ROOT": str(root)}
        cli = [sys.executable, "-m", "minidocker.cli"]
        subprocess.run([*cli, "cluster", "down"], env=env, capture_output=True, timeout=180)
        left = subprocess.run([*cli, "ps", "-aq", "--no-trunc"], env=env, capture_output=True,
                              text=True).stdout.split()
        if left:
            subprocess.run([*cli, "rm", "-f", *left], env=env, capture_output=True, timeout=120)
        kernel.umount2(str(root), kernel.MNT_DETACH)
        os.rmdir(root)
    return removed
