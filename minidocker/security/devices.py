"""Devices: which device nodes a container may open, and ``--device``.

A device node is only a name for a (type, major, minor) triple; whoever may open it reaches the
driver behind it — ``/dev/sda`` is the host's whole disk. A container's own ``/dev`` holds only
harmless nodes (null, zero, random, tty, ...), but root in the container keeps CAP_MKNOD and
could *make* ``b 8:0`` anywhere. So the kernel is asked to refuse the open itself:

* cgroup v1: the ``devices`` controller — ``devices.deny`` ``a`` (nothing), then
  ``devices.allow`` one rule per permitted device (``c 1:3 rwm``: char 1:3, read, write,
  mknod), Docker's default list below;
* cgroup v2 has no such files: runc loads an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE). This
  kit does not; there, the root filesystem is mounted ``nodev`` and ``/dev`` is made read-only
  after it is filled, so a node made by the container opens nothing either;
* ``--device /dev/X[:/dev/Y][:rwm]`` makes the node in the container's ``/dev`` and allows it;
* ``--privileged`` allows every device (``a *:* rwm``) and copies the host's nodes in.

Man pages: mknod(2), cgroups(7); kernel docs admin-guide/cgroup-v1/devices.rst.
Docker docs: ``run --device``, ``--privileged``. Used by: notebook 09-security (``--device``, the
devices controller).
"""

import os
import stat
from dataclasses import dataclass

from minidocker import kernel
from minidocker.errors import MinidockerError
from minidocker.rootfs import make_device

# Docker's default device rules (runc's AllowedDevices): mknod of anything, and these opens.
DEFAULT_RULES = [
    "c *:* m", "b *:* m",  # making nodes is allowed; opening them is what counts
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",  # null zero full random urandom
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm",  # tty console ptmx
    "c 136:* rwm",  # the pty slaves, /dev/pts/N
    "c 10:200 rwm",  # /dev/net/tun
]
PRIVILEGED_RULES = ["a *:* rwm"]


@dataclass
class Device:
    """One ``--device``: the host node, where it appears inside, and what may be done."""

    host_path: str
    container_path: str
    permissions: str  # a subset of "rwm"
    kind: str  # "c" or "b"
    major: int
    minor: int
    mode: int

    def rule(self) -> str:
        return f"{self.kind} {self.major}:{self.minor} {self.permissions}"

    def to_dict(self) -> dict:
        return vars(self).copy()


def parse_device(spec: str) -> Device:
    """``--device HOST[:CONTAINER][:PERMISSIONS]``, checked against the host's node."""
    parts = spec.split(":")
    host = parts[0]
    inside = host
    permissions = "rwm"
    if len(parts) == 2:
        if set(parts[1]) <= set("rwm") and not parts[1].startswith("/"):
            permissions = parts[1]
        else:
            inside = parts[1]
    elif len(parts) == 3:
        inside, permissions = parts[1], parts[2]
    elif len(parts) > 3:
        raise MinidockerError(f"invalid --device {spec}: use HOST[:CONTAINER][:rwm]")
    if not permissions or not set(permissions) <= set("rwm"):
        raise MinidockerError(f"invalid --device {spec}: permissions are letters of 'rwm'")
    if not os.path.isabs(host):
        raise MinidockerError(f"invalid --device {spec}: the host path must be absolute "
                              "(/dev/fuse)")
    try:
        info = os.stat(host)
    except OSError as exc:
        raise MinidockerError(f"error gathering device information while adding device "
                              f"{host}: {exc.strerror} (give a device node of this host, e.g. "
                              "/dev/fuse; 'ls /dev' lists them)") from exc
    if not os.path.normpath(inside).startswith("/dev/"):
        raise MinidockerError(f"invalid --device {spec}: the container path must be a name "
                              "under /dev (HOST:/dev/xvda)")
    if not (stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)):
        raise MinidockerError(f"--device {host}: not a device node (a character or block "
                              "device is needed)")
    kind = "c" if stat.S_ISCHR(info.st_mode) else "b"
    return Device(host, inside, permissions, kind, os.major(info.st_rdev),
                  os.minor(info.st_rdev), stat.S_IMODE(info.st_mode))


def rules_for(devices: list[Device], privileged: bool) -> list[str]:
    if privileged:
        return PRIVILEGED_RULES
    return DEFAULT_RULES + [d.rule() for d in devices]


def make_node(dev_dir: str, device: Device) -> None:
    """Make ``device`` inside the container's /dev (``dev_dir``: that tmpfs, before
    pivot_root). Only there: a path through a symlink could lead out to the host's files."""
    relative = os.path.relpath(os.path.normpath(device.container_path), "/dev")
    parts = relative.split("/")
    if parts[0] == ".." or any(os.path.islink(os.path.join(dev_dir, *parts[:depth]))
                               for depth in range(1, len(parts))):
        raise MinidockerError(f"--device {device.host_path}:{device.container_path}: the "
                              "container path must be a name under /dev, not through a link")
    target = os.path.join(dev_dir, relative)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.ismount(target):  # a node of the default set bound in a user namespace
        kernel.umount2(target, kernel.MNT_DETACH)
    if os.path.lexists(target):
        os.unlink(target)
    kind = stat.S_IFCHR if device.kind == "c" else stat.S_IFBLK
    make_device(target, device.mode | kind, device.major, device.minor, device.host_path)


def host_devices(root: str = "/dev") -> list[Device]:
    """Every device node of the host (for ``--privileged``), but not the host's terminals."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ("pts", "shm", "mqueue", "hugepages")]
        for name in files:
            path = os.path.join(folder, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
                if path in ("/dev/console", "/dev/ptmx", "/dev/tty") or name.startswith("tty"):
                    continue
                kind = "c" if stat.S_ISCHR(info.st_mode) else "b"
                found.append(Device(path, path, "rwm", kind, os.major(info.st_rdev),
                                    os.minor(info.st_rdev), stat.S_IMODE(info.st_mode)))
    return found
