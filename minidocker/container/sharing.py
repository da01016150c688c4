"""Stage 6 meets stages 1 and 9: sharing namespaces, and user namespaces.

``--ipc/--pid/--uts/--network host`` keep a kind of the host's namespaces (it is simply not
unshared); ``container:NAME`` joins that container's (setns(2) by the PID of its PID 1). POSIX
shared memory lives in /dev/shm rather than in the IPC namespace, so it is brought along: a
mount of *another* mount namespace, which needs open_tree(2) and move_mount(2).

A container in a user namespace cannot reach into the state root (0700, root's): the host's
root joins its mount namespace and mounts the overlay and volumes for it
(``mount_from_outside``).

Man pages: setns(2), open_tree(2), move_mount(2), user_namespaces(7), mount_namespaces(7).
"""

import os

from minidocker import kernel, namespaces, rootfs, unionfs
from minidocker.container import records
from minidocker.container.config import HostConfig, IpcMode
from minidocker.errors import MinidockerError
from minidocker.state import state_root


def shared_pids(host: HostConfig) -> dict[str, int]:
    """The namespaces joined from another container (``container:ID``), as ``{kind: PID}``:
    setns(2) goes by the PID of that container's PID 1, which must be running."""
    join = {}
    for kind, container in host.shared().items():
        other = records.find(container)
        if other.State["Status"] != "running":
            raise MinidockerError(f"cannot join the {kind} namespace of container "
                                  f"{other.Name}: it is not running (start it first)")
        join[kind] = other.State["Pid"]
    return join


def share_ipc_memory(root: str, mode: IpcMode, pid: int | None) -> None:
    """POSIX shared memory (shm_open(3)) lives as files in /dev/shm, not in the IPC namespace:
    ``--ipc host`` and ``--ipc container:C`` also bring the host's or C's /dev/shm."""
    target = os.path.join(root, "dev/shm")
    if mode.is_host:
        kernel.mount("/dev/shm", target, None, kernel.MS_BIND)  # our copy of the host's mount
    elif pid:
        mount_from_namespace(pid, "/dev/shm", target)


def mount_from_namespace(pid: int, path: str, target: str) -> None:
    """Bind a mount of *another* mount namespace here. mount(2) refuses (EINVAL: its source
    must be in our namespace), so a child joins that namespace, clones the mount there
    (open_tree(2)), comes back and attaches the clone at ``target`` (move_mount(2))."""
    ours = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        namespaces.in_child(f"share {path} of process {pid}", _clone_and_attach,
                            pid, path, target, ours)
    finally:
        os.close(ours)


def _clone_and_attach(report: namespaces.Report, pid: int, path: str, target: str,
                      ours: int) -> None:
    report.step("join the mount namespace")
    namespaces.join_one(pid, "mnt")
    report.step("open_tree")
    tree = kernel.open_tree(path, kernel.OPEN_TREE_CLONE | kernel.OPEN_TREE_CLOEXEC)
    report.step("come back to our mount namespace")
    kernel.setns(ours, kernel.CLONE_NEWNS)
    report.step("move_mount")
    kernel.move_mount(tree, target)


def userns_root(state: str) -> str:
    """Where a user-namespace container's root is put for it: on a tmpfs over an empty
    directory of the host (only in the container's mount namespace) that is not above the
    state root."""
    for place in ("/mnt", "/media", "/run", "/tmp"):
        if os.path.isdir(place) and not (state + "/").startswith(place + "/"):
            return os.path.join(place, "rootfs")
    raise MinidockerError("--userns private needs an empty directory such as /mnt")


def mount_from_outside(pid: int, dirs: unionfs.OverlayDirs, data_mounts,
                       nodev: bool = True) -> None:
    """For a container in a user namespace: join its mount namespace as the host's root,
    mount its overlay and volumes there, then move them to ``userns_root`` (MS_MOVE). Root
    inside the container could not: its host uid (100000) may not traverse the state root
    (0700). The container then only pivots into what we mounted."""
    root = userns_root(str(state_root()))
    namespaces.in_child(f"mount the root of the user-namespace container of process {pid}",
                        _mount_root_for, pid, dirs, data_mounts, nodev, root)


def _mount_root_for(report: namespaces.Report, pid: int, dirs: unionfs.OverlayDirs,
                    data_mounts, nodev: bool, root: str) -> None:
    report.step("join the mount namespace")
    namespaces.join(pid, ["mnt"])
    rootfs.make_mounts_private()  # nothing we mount may propagate to the host
    report.step("mount the overlay")
    unionfs.mount_overlay(dirs, nodev=nodev)
    report.step("mount the volumes")
    data_mounts(dirs.merged)
    report.step(f"move the root to {root}")
    kernel.mount("tmpfs", os.path.dirname(root), "tmpfs", kernel.MS_NOSUID, "mode=755")
    os.mkdir(root)
    kernel.mount(dirs.merged, root, None, kernel.MS_MOVE)
