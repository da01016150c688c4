"""Stage 7 — volumes: data that lives outside the container's union filesystem.

A container's writes land in its overlay's upper dir, which goes when the container is removed
and is slow for heavy I/O. A *volume* is a directory of the host bind-mounted into the
container's tree, so its data bypasses the union fs and outlives the container. Three kinds:
a *bind* mount shows any host path (``-v /srv/www:/usr/share/nginx/html:ro``); a *named volume*
is a directory minidocker manages under ``$MINIDOCKER_ROOT/volumes/<name>/_data``
(``-v db:/var/lib/db``); a *tmpfs* mount is memory that vanishes with the container.
A new, empty volume is *seeded* once with what the image has at its mount point, so a database
image's initial files appear in it. Lifetimes: a named volume lives until ``volume rm``; an
*anonymous* one (``-v /data``, or a path in the image's ``VOLUME`` list) gets a random name and
goes with ``rm -v``, ``run --rm`` or ``volume prune``. ``--volumes-from`` copies another
container's mounts: the "data container" pattern of sharing volumes by naming one container.
A volume made with the local driver's options is the filesystem they name: ``-o type=none -o
o=bind -o device=/srv`` is that host directory; ``-o type=tmpfs -o device=tmpfs -o o=size=64m``
is memory mounted on ``_data`` while containers use it (localdriver.py).

The mounts are made inside the container's own mount namespace, on the overlay and before
pivot_root, so the host never sees them; mount points are found name by name inside the root,
so a symlink in the image cannot point a mount at the host.

Man pages: mount(2) mount_namespaces(7) tmpfs(5) statvfs(3). Used by: ``run -v/--mount/--tmpfs
/--volumes-from``, ``minidocker volume ...``, notebook 07-volumes.
"""

import csv
import fcntl
import io
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterable
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from minidocker import events, kernel, localdriver, rootfs
from minidocker.cgroups.limits import parse_bytes
from minidocker.errors import Conflict, MinidockerError, NotFound
from minidocker.filters import Filters
from minidocker.state import now, read_json, state_root, write_json

VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")  # Docker's rule for local volumes
ANONYMOUS_LABEL = "com.docker.volume.anonymous"  # how Docker >= 23 marks anonymous volumes
MAX_SYMLINKS = 40  # like the kernel's path walk (path_resolution(7))
# The kernel's own trees in a container: no mount may cover them or go inside (runc refuses
# /proc and what is in it; minidocker /sys as well). Each says why.
KERNEL_TREES = {
    "/proc": "the container's procfs, which the runtime itself reads and writes "
             "(/proc/self/...) and whose masked and read-only paths protect the host",
    "/sys": "the container's read-only sysfs, which keeps the host's devices and cgroups out "
            "of reach",
}
# Files of /proc that lxcfs emulates (a container's own uptime, meminfo...): runc allows a bind
# on each of them, and so do we.
LXCFS_PROC_FILES = frozenset({
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid", "/proc/sys/crypto/fips_enabled"})
# The local driver's options (moby's volume/local): mount(8)'s -t TYPE, the DEVICE and -o
# OPTIONS, each useless without the others: a bind is that directory, any other type is mounted
# on the volume's _data while containers use it (localdriver.py).
LOCAL_DRIVER_OPTIONS = ("type", "device", "o")


# --- volumes on disk --------------------------------------------------------------------------

@dataclass
class Volume:
    """One volume: ``volume.json`` next to its ``_data`` directory."""

    Name: str
    Mountpoint: str
    CreatedAt: str = field(default_factory=now)
    Labels: dict = field(default_factory=dict)
    Driver: str = "local"
    Scope: str = "local"
    Anonymous: bool = False  # made for one container (-v /data): rm -v and prune remove it
    Seeded: bool = False  # the image's files were copied in (done once, by the first mount)
    # The local driver's -o type=,device=,o= as the client sent them: None when it sent none
    # (null in inspect, {} for an empty object: dockerd keeps either as it came)
    Options: dict | None = None

    @property
    def options(self) -> dict:
        return self.Options or {}

    @property
    def data(self) -> str:
        """Where the volume's files are: its ``_data``, or the device of a bind volume."""
        return self.options["device"] if is_bind_options(self.options) else self.Mountpoint

    @property
    def directory(self) -> Path:
        return volumes_dir() / self.Name

    @property
    def driver_mounted(self) -> bool:
        """A filesystem the local driver mounts on ``_data`` (a tmpfs, a device), not a
        plain directory nor a bind."""
        return bool(self.options) and not is_bind_options(self.options)

    def save(self) -> None:
        write_json(self.directory / "volume.json", asdict(self))

    def inspect(self) -> dict:
        """As ``docker volume inspect`` shows it."""
        labels = {**self.Labels, **({ANONYMOUS_LABEL: ""} if self.Anonymous else {})}
        return {"CreatedAt": self.CreatedAt, "Driver": self.Driver, "Labels": labels,
                "Mountpoint": self.Mountpoint, "Name": self.Name, "Options": self.Options,
                "Scope": self.Scope}


def volumes_dir() -> Path:
    return state_root() / "volumes"


def check_volume_name(name: str) -> str:
    if len(name) > 255:  # it becomes a directory name: NAME_MAX
        raise MinidockerError(f"volume name {name[:20]}... is too long ({len(name)} "
                              "characters): at most 255")
    if not VOLUME_NAME.fullmatch(name):
        raise MinidockerError(
            f'"{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path")
    return name


def check_driver_options(options: dict) -> dict:
    """The local driver's options, checked as moby's ``volume/local`` does: only ``type``,
    ``device`` and ``o``, and each needs the others (``mount -t TYPE -o O DEVICE``)."""
    for key in options:
        if key not in LOCAL_DRIVER_OPTIONS:
            raise MinidockerError(f'invalid option: "{key}": the local driver knows '
                                  + ", ".join(LOCAL_DRIVER_OPTIONS) + " (e.g. -o type=none -o "
                                  "o=bind -o device=/srv/data)")
    for key in options:
        for needed in LOCAL_DRIVER_OPTIONS if key == "o" else ("type", "device"):
            if needed not in options:
                raise MinidockerError(f'missing required option: "{needed}" (-o {key}= needs '
                                      f"-o {needed}= too)")
    if is_bind_options(options) and not os.path.isabs(options["device"]):
        raise MinidockerError(f"invalid device {options['device']!r} for a bind volume: give "
                              "an absolute path of this host")
    return dict(options)


def is_bind_options(options: dict) -> bool:
    """``-o type=none -o o=bind -o device=/path``: the volume is that host directory."""
    return bool({"bind", "rbind"} & set(options.get("o", "").split(",")))


def create_volume(name: str | None = None, labels: dict | None = None,
                  anonymous: bool = False, options: dict | None = None) -> Volume:
    """Make a volume (a random 64-hex name if none is given). Like Docker, creating a name
    that exists returns the existing volume."""
    options = None if options is None else check_driver_options(options)
    name = check_volume_name(name) if name else os.urandom(32).hex()
    (volumes_dir() / name).mkdir(parents=True, exist_ok=True)
    with volume_locked(name):  # two creates at once: the second finds the first's volume
        try:
            return get_volume(name)
        except NotFound:
            pass
        directory = volumes_dir() / name
        (directory / "_data").mkdir(mode=0o755, exist_ok=True)
        volume = Volume(name, str(directory / "_data"), Labels=dict(labels or {}),
                        Anonymous=anonymous, Options=options)
        volume.save()  # written last: a volume exists once its volume.json does
    events.emit("volume", "create", name, {"driver": "local"})
    return volume


def get_volume(name: str) -> Volume:
    try:
        data = read_json(volumes_dir() / name / "volume.json")
    except (FileNotFoundError, NotADirectoryError, ValueError):
        raise NotFound(f"No such volume: {name} (see 'minidocker volume ls')") from None
    known = {f.name for f in fields(Volume)}
    return Volume(**{k: v for k, v in data.items() if k in known})


def list_volumes() -> list[Volume]:
    found = []
    for path in sorted(volumes_dir().glob("*/volume.json")):
        if path.parent.name.startswith("."):  # one being removed
            continue
        try:
            found.append(get_volume(path.parent.name))
        except NotFound:
            continue  # removed at this moment
    return found


VOLUME_FILTERS = ("dangling", "driver", "label", "name")
VOLUME_PRUNE_FILTERS = ("label", "label!")  # as Docker's: a volume record has no until=


def select_volumes(volumes: list[Volume], filters, in_use: set[str]) -> list[Volume]:
    """``volume ls --filter``: ``dangling`` (true: no container uses it, ``in_use`` being
    the names some container uses), ``driver``, ``label``, ``name`` (a regular expression);
    the rules are minidocker/filters.py's."""
    return [v for v in volumes if volume_matches(v, filters, in_use)]


def volume_matches(v: Volume, f, in_use: set[str]) -> bool:
    return (f.match_bool("dangling", v.Name not in in_use) and f.match("driver", v.Driver.__eq__)
            and f.match_labels(v.Labels) and f.match_name(v.Name))


def volume_users(containers: Iterable[tuple[str, list]]) -> dict[str, list[str]]:
    """Which containers use which volume: from ``(container name, its Mounts)`` pairs (the
    ``Mounts`` of each container record, dicts or ``Mount``s) to ``{volume: [containers]}``."""
    users: dict[str, list[str]] = {}
    for container, mounts in containers:
        for mount in mounts or []:
            mount = mount if isinstance(mount, Mount) else Mount.from_dict(mount)
            if mount.Type == "volume":
                users.setdefault(mount.Name, []).append(container)
    return users


def remove_volume(name: str, in_use: dict[str, list[str]], force: bool = False) -> None:
    """Delete a volume and its data; refused while a container (even a stopped one) uses it.
    ``force`` only makes a missing volume no error, as in Docker."""
    try:
        volume = get_volume(name)
    except NotFound:
        if force:
            return
        raise
    if in_use.get(volume.Name):
        users = ", ".join(in_use[volume.Name])
        raise Conflict(f"volume {volume.Name} is in use by container {users}: remove the "
                       f"container first ('minidocker rm {in_use[volume.Name][0]}')")
    if volume.driver_mounted:  # left mounted by a crash: nobody uses it (checked above)
        with localdriver.mount_locked(volume.directory):
            localdriver.unmount(volume.Mountpoint)
    # Renamed away first, so the volume disappears in one step even if the delete is cut short.
    doomed = volumes_dir() / f".removing-{os.getpid()}-{volume.Name}"
    os.rename(volume.directory, doomed)
    shutil.rmtree(doomed)
    events.emit("volume", "destroy", volume.Name, {"driver": "local"})


def prune_volumes(in_use: dict[str, list[str]], everything: bool = False,
                  chosen: Filters | None = None) -> tuple[list[str], int]:
    """Remove unused volumes: anonymous ones only, or all with ``everything`` (``-a``), as
    Docker >= 23 does; ``chosen`` (``label=``, ``label!=``) narrows them. Returns the names
    removed and the bytes reclaimed."""
    removed, reclaimed, chosen = [], 0, chosen or Filters()
    for leftover in volumes_dir().glob(".removing-*"):  # from an rm that was cut short
        if not os.path.exists(f"/proc/{leftover.name.split('-')[1]}"):
            shutil.rmtree(leftover, ignore_errors=True)
    for volume in list_volumes():
        if (in_use.get(volume.Name) or not (volume.Anonymous or everything)
                or not chosen.match_labels(volume.inspect()["Labels"])):
            continue
        size = disk_usage(Path(volume.Mountpoint))
        try:
            remove_volume(volume.Name, in_use, force=True)
        except OSError:
            continue
        removed.append(volume.Name)
        reclaimed += size
    return removed, reclaimed


def remove_anonymous(mounts: list, in_use: dict[str, list[str]]) -> list[str]:
    """``rm -v`` and ``run --rm``: remove a container's anonymous volumes that no *other*
    container uses (``in_use`` must not count the container being removed)."""
    removed = []
    for mount in mounts:
        mount = mount if isinstance(mount, Mount) else Mount.from_dict(mount)
        if mount.Type == "volume" and mount.Anonymous and not in_use.get(mount.Name):
            remove_volume(mount.Name, in_use, force=True)
            removed.append(mount.Name)
    return removed


def disk_usage(path: Path) -> int:
    """Bytes of the regular files under ``path``, each inode once (hard links)."""
    seen, total = set(), 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


# --- what a container mounts ------------------------------------------------------------------

@dataclass
class Mount:
    """One mount as ``docker inspect`` lists it under ``Mounts``."""

    Type: str  # "bind", "volume" or "tmpfs"
    Source: str  # the host path (a volume's _data dir); "" for tmpfs
    Destination: str  # the path inside the container
    Name: str = ""  # the volume's name
    Driver: str = ""  # "local" for volumes
    Mode: str = ""  # what the user wrote: "ro", "z", ...
    RW: bool = True
    Propagation: str = ""  # "rprivate" for binds: nothing flows back to the host
    Anonymous: bool = False
    NoCopy: bool = False  # volume-nocopy: never seed from the image
    Options: str = ""  # tmpfs mount data, e.g. "size=65536k,mode=1777"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Mount":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class MountRequest:
    """What the user asked for, before volumes exist: the result of parsing one flag."""

    type: str  # "bind", "volume" or "tmpfs"
    source: str  # host path, volume name ("" = a new anonymous volume) or ""
    target: str
    readonly: bool = False
    mode: str = ""
    nocopy: bool = False
    tmpfs_options: str = ""
    create_source: bool = False  # -v makes a missing host directory; --mount refuses
    # --mount's volume-opt= and volume-label=: a volume made for it (unless it exists) has them
    driver_options: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)


def container_path(path: str, spec: str, flag: str) -> str:
    if not path.startswith("/"):
        raise MinidockerError(f"invalid mount path '{path}' in '{spec}': the path inside "
                              "the container must be absolute (e.g. /data)")
    path = os.path.normpath(path).replace("//", "/")
    if path == "/":
        raise MinidockerError(f"invalid mount path in '{spec}': a mount cannot replace "
                              "the container's root '/'")
    check_destination(path, f"{flag} {spec}")
    return path


def check_destination(path: str, where: str) -> None:
    """Refuse a mount over or inside /proc and /sys (``-v /tmp:/proc`` would hide the real
    procfs from the runtime's own checks), as runc's checkProcMount does."""
    tree = kernel_tree(path)
    if tree:
        raise MinidockerError(f"{where}: cannot mount at {path}: {tree} is "
                              f"{KERNEL_TREES[tree]}; choose another destination "
                              f"(e.g. /mnt{path})")


def kernel_tree(path: str) -> str | None:
    """The kernel tree (/proc or /sys) that ``path`` is or is inside, if any."""
    for tree in KERNEL_TREES:
        if (path == tree or path.startswith(tree + "/")) and path not in LXCFS_PROC_FILES:
            return tree
    return None


def parse_volume(spec: str) -> MountRequest:
    """``-v``: ``/ctr``, ``SOURCE:/ctr`` or ``SOURCE:/ctr:MODE``, where SOURCE is an absolute
    host path (a bind) or a volume name, and MODE a comma list of ro, rw, z, Z, nocopy."""
    parts = spec.split(":")
    if len(parts) == 1:
        return MountRequest("volume", "", container_path(spec, spec, "-v"), mode="")
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise MinidockerError(f"invalid volume specification: '{spec}' (use "
                              "/host/path:/ctr/path[:ro], NAME:/ctr/path[:ro] or /ctr/path)")
    source, target, mode = parts[0], container_path(parts[1], spec, "-v"), ",".join(parts[2:])
    kind = "bind" if source.startswith("/") else "volume"
    if kind == "volume":
        check_volume_name(source)
    options = set(mode.split(",")) if mode else set()
    allowed = {"ro", "rw", "z", "Z", "private", "rprivate"} | ({"nocopy"} if kind == "volume"
                                                                else set())
    if not options <= allowed or {"ro", "rw"} <= options or {"z", "Z"} <= options:
        raise MinidockerError(f"invalid mode: '{mode}' in '{spec}' (use ro or rw, optionally "
                              "with z, Z" + (", nocopy" if kind == "volume" else "") + ")")
    if kind == "bind":
        source = os.path.normpath(source)
    default_mode = "z" if kind == "volume" else ""
    return MountRequest(kind, source, target, readonly="ro" in options,
                        mode=mode or default_mode, nocopy="nocopy" in options,
                        create_source=kind == "bind")


MOUNT_KEYS = {"type", "source", "target", "readonly", "volume-nocopy", "volume-driver",
              "volume-opt", "volume-label", "tmpfs-size", "tmpfs-mode", "bind-propagation",
              "consistency"}


def parse_mount(spec: str) -> MountRequest:
    """``--mount type=bind|volume|tmpfs,source=..,target=..[,readonly][,volume-nocopy]
    [,volume-driver=local][,volume-opt=K=V][,volume-label=K=V][,tmpfs-size=..][,tmpfs-mode=..]``
    (``src``, ``destination``/``dst``, ``ro`` as aliases). A field in double quotes may hold
    commas: ``"volume-opt=o=size=64m,uid=1000"`` (see ``mount_fields``)."""
    values: dict[str, str] = {}
    driver_options: dict[str, str] = {}
    labels: dict[str, str] = {}
    for item in mount_fields(spec):
        key, has_value, value = item.partition("=")
        key = {"src": "source", "destination": "target", "dst": "target",
               "ro": "readonly"}.get(key.strip().lower(), key.strip().lower())
        if key not in MOUNT_KEYS:
            raise MinidockerError(f"unexpected key '{key}' in '{item}' of --mount {spec}")
        if key in {"readonly", "volume-nocopy"} and not has_value:
            value = "true"
        if key in {"volume-opt", "volume-label"}:  # KEY=VALUE each, repeatable
            name, _, setting = value.partition("=")
            if name:
                (driver_options if key == "volume-opt" else labels)[name] = setting
        values[key] = value
    kind = values.get("type", "volume")
    if kind not in {"bind", "volume", "tmpfs"}:
        raise MinidockerError(f"invalid mount type '{kind}' in --mount {spec}: use bind, "
                              "volume or tmpfs")
    if not values.get("target"):
        raise MinidockerError(f"target is required in --mount {spec} (target=/path)")
    target, source = container_path(values["target"], spec, "--mount"), values.get("source", "")
    for key in values:
        if key.startswith(("tmpfs-", "volume-", "bind-")) and not key.startswith(kind + "-"):
            raise MinidockerError(f"cannot mix '{key}' with mount type '{kind}' in --mount "
                                  f"{spec}")
    if values.get("bind-propagation", "rprivate") not in {"private", "rprivate"}:
        raise MinidockerError("bind-propagation: minidocker keeps every mount private "
                              "(private or rprivate)")
    request = MountRequest(kind, source, target, readonly=_bool(values, "readonly", spec))
    if kind == "bind":
        if not source.startswith("/"):
            raise MinidockerError(f"invalid mount config for type \"bind\": the source must "
                                  f"be an absolute host path in --mount {spec}")
        request.source = os.path.normpath(source)
        if not os.path.exists(request.source):
            raise MinidockerError(f"bind source path does not exist: {request.source}")
    elif kind == "volume":
        if source:
            check_volume_name(source)
        if values.get("volume-driver", "local") not in {"local", ""}:
            raise MinidockerError(f"unknown volume driver '{values['volume-driver']}' in "
                                  f"--mount {spec}: minidocker has only 'local'")
        request.nocopy, request.mode = _bool(values, "volume-nocopy", spec), "z"
        request.driver_options, request.labels = driver_options, labels
    else:
        if source:
            raise MinidockerError(f"invalid mount config for type \"tmpfs\": a tmpfs has no "
                                  f"source in --mount {spec}")
        request.tmpfs_options = tmpfs_options(values.get("tmpfs-size"),
                                              values.get("tmpfs-mode"), spec)
    return request


def mount_fields(spec: str) -> list[str]:
    """The comma-separated fields of a ``--mount`` text, read as CSV as Docker's CLI reads
    them (Go's encoding/csv): a field in double quotes may hold commas and ``""``."""
    try:
        return next(csv.reader([spec], strict=True))
    except (csv.Error, StopIteration) as error:
        raise MinidockerError(f"invalid --mount {spec}: {error or 'empty'} (quote a field "
                              'that holds commas whole: "volume-opt=o=size=1m,uid=1000")') \
            from None


def mount_text(fields: list[str]) -> str:
    """``mount_fields`` backwards: the ``--mount`` text, a field quoted if it holds a comma."""
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(fields)
    return line.getvalue()


def parse_tmpfs(spec: str) -> MountRequest:
    """``--tmpfs /path[:size=64m,mode=1777,ro]``."""
    path, _, option_text = spec.partition(":")
    options = dict(o.partition("=")[::2] for o in option_text.split(",") if o)
    unknown = set(options) - {"size", "mode", "ro", "rw"}
    if unknown:
        raise MinidockerError(f"unknown tmpfs option '{sorted(unknown)[0]}' in --tmpfs "
                              f"{spec}: use size=, mode=, ro or rw")
    return MountRequest("tmpfs", "", container_path(path, spec, "--tmpfs"),
                        readonly="ro" in options,
                        tmpfs_options=tmpfs_options(options.get("size"), options.get("mode"),
                                                    spec))


def tmpfs_options(size: str | None, mode: str | None, spec: str) -> str:
    """The data string for mount(2) of a tmpfs(5): ``size=<bytes>,mode=<octal>``."""
    options = []
    if size:
        options.append(f"size={parse_bytes('tmpfs-size', size)}")
    if mode:
        if not re.fullmatch(r"[0-7]{1,4}", mode):
            raise MinidockerError(f"invalid tmpfs mode '{mode}' in {spec}: use octal "
                                  "permissions, e.g. 1777")
        options.append(f"mode={mode}")
    return ",".join(options)


def _bool(values: dict, key: str, spec: str) -> bool:
    value = values.get(key, "false").lower()
    if value not in {"true", "1", "false", "0"}:
        raise MinidockerError(f"invalid value for {key}: '{value}' in --mount {spec} "
                              "(use true or false)")
    return value in {"true", "1"}


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """``--volumes-from CONTAINER[:ro|:rw]`` -> (container, mode)."""
    container, _, mode = spec.partition(":")
    if not container or mode not in {"", "ro", "rw"}:
        raise MinidockerError(f"invalid --volumes-from '{spec}': use CONTAINER, "
                              "CONTAINER:ro or CONTAINER:rw")
    return container, mode


def volumes_from(mounts: list, mode: str = "") -> list[Mount]:
    """The mounts another container has, for ``--volumes-from``: the same volumes and binds
    (never its tmpfs: that memory is its own); ``ro`` makes them all read-only."""
    copied = []
    for mount in mounts:
        mount = mount if isinstance(mount, Mount) else Mount.from_dict(mount)
        if mount.Type == "tmpfs":
            continue
        if mode:
            mount = Mount(**{**asdict(mount), "RW": mode == "rw", "Mode": mode})
        copied.append(mount)
    return copied


def resolve(requests: list[MountRequest], image_volumes: Iterable[str] = (),
            inherited: Iterable[Mount] = ()) -> list[Mount]:
    """Turn requests into mounts, making the volumes they need. ``inherited`` (from
    ``--volumes-from``) comes first, the user's requests replace it at the same destination,
    and every path of the image's ``Volumes`` that nothing covers gets an anonymous volume.
    The result is sorted so that a parent is mounted before what is mounted inside it."""
    seen = set()
    for request in requests:
        if request.target in seen:
            raise MinidockerError(f"Duplicate mount point: {request.target}")
        seen.add(request.target)
    mounts = {mount.Destination: mount for mount in inherited}
    for request in requests:
        mounts[request.target] = _realize(request)
    for path in image_volumes:
        if kernel_tree(os.path.normpath(path).replace("//", "/")):
            continue  # an old systemd image's VOLUME /sys/fs/cgroup: left out, not refused
        path = container_path(path, path, "the image's VOLUME")
        if path not in mounts:
            mounts[path] = _realize(MountRequest("volume", "", path))
    return sorted(mounts.values(), key=lambda m: m.Destination.count("/"))


def _realize(request: MountRequest) -> Mount:
    rw, target = not request.readonly, request.target
    if request.type == "bind":
        if request.create_source and not os.path.exists(request.source):
            os.makedirs(request.source, exist_ok=True)  # what `docker run -v` does
        return Mount("bind", request.source, target, Mode=request.mode, RW=rw,
                     Propagation="rprivate")
    if request.type == "tmpfs":
        return Mount("tmpfs", "", target, RW=rw, Options=request.tmpfs_options)
    anonymous = not request.source
    volume = create_volume(request.source or None, labels=request.labels, anonymous=anonymous,
                           options=request.driver_options or None)  # an existing one stays
    readonly = "ro" in volume.options.get("o", "").split(",")  # o=...,ro: for every container
    return Mount("volume", volume.data, target, Name=volume.Name, Driver=volume.Driver,
                 Mode=request.mode, RW=rw and not readonly, Anonymous=anonymous,
                 NoCopy=request.nocopy or readonly)


# --- the local driver's mounts: from the first container that starts to the last that stops ----

def driver_mounted(mounts: list) -> list[Volume]:
    """The volumes among a container's mounts that the local driver mounts itself, in name
    order (so that two starts take their locks in one order)."""
    found = {}
    for mount in mounts:
        mount = mount if isinstance(mount, Mount) else Mount.from_dict(mount)
        if mount.Type == "volume" and mount.Name not in found:
            try:
                found[mount.Name] = get_volume(mount.Name)
            except NotFound:
                continue  # removed: nothing of it to mount or unmount
    return [found[name] for name in sorted(found) if found[name].driver_mounted]


@contextmanager
def mounted(mounts: list, running_volumes: Callable[[], set[str]]):
    """A container starts: each of its volumes that the driver mounts is mounted on its
    ``_data`` unless a running container has it mounted already (``running_volumes()``,
    asked under the volume's lock). A mount that no running container uses is stale — a
    monitor killed with SIGKILL before its record said "running", or a stop that has not
    unmounted yet — and is replaced by a new one, as moby's local driver unmounts what an
    unclean shutdown left. The volumes' locks stay held until the ``with`` ends: the caller
    leaves it once the record says "running"."""
    with ExitStack() as held:
        for volume in driver_mounted(mounts):
            held.enter_context(localdriver.mount_locked(volume.directory))
            if (localdriver.is_mounted(volume.Mountpoint)
                    and volume.Name not in running_volumes()):
                localdriver.unmount(volume.Mountpoint)  # a tmpfs starts empty, as in Docker
            localdriver.mount(volume.Name, volume.options, volume.Mountpoint)
        yield


def unmount_unused(mounts: list, running_volumes: Callable[[], set[str]]) -> None:
    """A container has stopped, and its record says so: each of its volumes that the driver
    mounted and that no running container uses now (``running_volumes()``, asked under the
    volume's lock) is unmounted — a tmpfs' data goes with it."""
    for volume in driver_mounted(mounts):
        try:
            with localdriver.mount_locked(volume.directory):
                if volume.Name not in running_volumes():
                    localdriver.unmount(volume.Mountpoint)
        except FileNotFoundError:
            continue  # removed meanwhile (volume rm unmounts first)


# --- inside the container: mounting -----------------------------------------------------------

def mount_all(mounts: list[Mount], root: str, devices_allowed: bool = False) -> None:
    """Mount every volume, bind and tmpfs into ``root`` (the overlay, before pivot_root).
    Runs inside the container's new mount namespace, whose mounts are already private.
    Binds are ``nodev`` and ``nosuid`` (unless ``devices_allowed``, for ``--privileged``): a
    device node the container makes in a volume must open nothing, a setuid file in a host
    directory must not make anyone root."""
    for mount in sorted(mounts, key=lambda m: m.Destination.count("/")):
        is_dir = mount.Type == "tmpfs" or os.path.isdir(mount.Source)
        if mount.Type != "tmpfs" and not os.path.exists(mount.Source):
            raise NotFound(f"cannot mount {mount.Source} at {mount.Destination}: it does "
                           "not exist")
        target = mount_point(root, mount.Destination, is_dir)
        if mount.Type == "volume" and not mount.NoCopy:
            seed(mount.Name, target)
        if mount.Type == "tmpfs":
            flags = kernel.MS_NOSUID | kernel.MS_NODEV | (0 if mount.RW else kernel.MS_RDONLY)
            kernel.mount("tmpfs", target, "tmpfs", flags, mount.Options or None)
            continue
        kernel.mount(mount.Source, target, None, kernel.MS_BIND | kernel.MS_REC)
        restrict(target, readonly=not mount.RW, devices=devices_allowed)


def restrict(target: str, readonly: bool, devices: bool = False) -> None:
    """Make a bind ``nosuid`` and ``nodev`` (and read-only on request) *all the way down*: the
    bind copied the mounts below its source too (``-v /:/host:ro`` brings the host's /proc and
    /sys/fs/cgroup), and each of them must obey the bind's mode, or the container writes the
    host's ``/host/proc/sys/kernel/core_pattern``. Flags are only added, never dropped."""
    flags = (0 if devices else kernel.MS_NODEV | kernel.MS_NOSUID)
    rootfs.add_mount_flags(target, flags | (kernel.MS_RDONLY if readonly else 0))


def mount_point(root: str, destination: str, is_dir: bool) -> str:
    """The host path of ``destination`` inside ``root``, made if missing (a directory, or an
    empty file for a file mount). Walked name by name as the container will see it: a symlink
    in the image is followed *inside* root (an absolute one from root), and a path that
    would climb out of root, or lead into /proc or /sys, is refused."""
    parts = [p for p in destination.split("/") if p]
    resolved: list[str] = []
    links = 0
    through_links = f"{destination} (through the image's symlinks)"
    while parts:
        name = parts.pop(0)
        if name == ".":
            continue
        if name == "..":
            if not resolved:
                raise MinidockerError(f"cannot mount at {destination}: it leads out of the "
                                      "container's root filesystem")
            resolved.pop()
            continue
        path = os.path.join(root, *resolved, name)
        if os.path.islink(path):
            links += 1
            if links > MAX_SYMLINKS:
                raise MinidockerError(f"cannot mount at {destination}: too many symlinks")
            link = os.readlink(path)
            parts = [p for p in link.split("/") if p] + parts
            if link.startswith("/"):
                resolved = []
            continue
        if not os.path.lexists(path):
            check_destination("/" + "/".join([*resolved, name]), through_links)
            if parts or is_dir:
                os.mkdir(path, 0o755)
            else:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            parent = os.lstat(os.path.dirname(path))  # owned like its directory: in a user
            os.lchown(path, parent.st_uid, parent.st_gid)  # namespace, by root *inside*
        elif parts and not os.path.isdir(path):
            raise MinidockerError(f"cannot mount at {destination}: /{'/'.join(resolved + [name])}"
                                  " in the image is not a directory")
        resolved.append(name)
    target = os.path.join(root, *resolved)
    if not resolved:
        raise MinidockerError(f"cannot mount at {destination}: it is the container's root")
    check_destination("/" + "/".join(resolved), through_links)
    if os.path.isdir(target) != is_dir:
        kinds = ("a directory", "a file") if is_dir else ("a file", "a directory")
        raise MinidockerError(f"cannot mount {kinds[0]} at {destination}: the image has "
                              f"{kinds[1]} there")
    return target


# --- seeding a new volume from the image ------------------------------------------------------

@contextmanager
def volume_locked(volume_name: str):
    """Hold the volume's lock (flock(2) on its directory): two containers starting at once
    must not both seed it."""
    fd = os.open(volumes_dir() / volume_name, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def seed(volume_name: str, image_path: str) -> None:
    """The first mount of a new volume copies the image's files at that path into it (with
    their modes, owners and symlinks) and records that it did, so it happens once. A tmpfs
    volume is never seeded: Docker copies at create, into a tmpfs that is gone by the start,
    so its owner and mode stay those of its ``o=`` (uid=, mode=)."""
    with volume_locked(volume_name):
        volume = get_volume(volume_name)
        if volume.Seeded or volume.options.get("type") == "tmpfs":
            return
        data = Path(volume.data)
        if os.path.isdir(image_path) and not any(data.iterdir()):
            copy_tree(image_path, str(data))
            copy_attributes(image_path, str(data), os.lstat(image_path))
        volume.Seeded = True
        volume.save()


def copy_tree(source: str, target: str) -> None:
    """Copy a directory's contents like ``cp -a``: files, directories, symlinks and device
    nodes, with modes, owners and times."""
    for entry in os.scandir(source):
        src, dst = entry.path, os.path.join(target, entry.name)
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISDIR(st.st_mode):
            os.mkdir(dst)
            copy_tree(src, dst)
        elif stat.S_ISREG(st.st_mode):
            shutil.copyfile(src, dst, follow_symlinks=False)
        else:  # char/block devices, fifos, sockets: the node itself, never its content
            os.mknod(dst, st.st_mode, st.st_rdev)
        copy_attributes(src, dst, st)


def copy_attributes(src: str, dst: str, st: os.stat_result) -> None:
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):  # chmod after chown: chown clears setuid bits
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
