"""The container's record on disk: one JSON file per container, written atomically.

``$MINIDOCKER_ROOT/containers/<id>/config.json`` holds what ``inspect`` shows (Docker's field
names); next to it live the overlay's ``upper``, ``work`` and ``merged`` dirs, the log file and
the monitor's attach socket.

Two processes write a record: the CLI (``rename``, ``stop``, ``pause``) and the container's
monitor (running, exited, restarting). Each change is a read-modify-write under an flock(2) on
the container's ``lock`` file, so neither loses the other's update; and a record that ``rm``
has removed is never written again (a monitor finishing late cannot bring it back).

What concerns all containers at once — a name is free, an image is unused, a directory has
no record — is decided under one more lock, ``containers.lock`` (``all_locked``): create
holds it from finding the image to saving the record, rename while it claims the new name,
prune and image and volume removal while they look for users. The engine's lock order is
always this lock first, then the image store's lock (image/store.py), then a volume's
``mount.lock`` (localdriver.py: start holds it until the record says running), then a
container's own lock, so two commands never wait for each other in a circle.

Man pages: flock(2), rename(2).
"""

import contextlib
import fcntl
import os
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from minidocker import events
from minidocker.container.config import Config, HostConfig
from minidocker.container.names import random_name
from minidocker.errors import Conflict, NotFound
from minidocker.state import now, read_json, state_root, write_json

if TYPE_CHECKING:  # cgroups loads on first use: commit, ps, inspect never touch one
    from minidocker.cgroups import Cgroup

STATUSES = ("created", "running", "paused", "restarting", "exited", "dead")


def new_state() -> dict:
    return {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
            "OOMKilled": False, "Dead": False, "Pid": 0, "PidStart": 0, "ExitCode": 0, "Error": "",
            "StartedAt": "", "FinishedAt": "", "MonitorPid": 0, "MonitorStart": 0,
            "ManuallyStopped": False}


@dataclass
class ContainerRecord:
    Id: str
    Name: str
    Image: str
    Config: Config
    HostConfig: HostConfig
    Created: str = field(default_factory=now)
    State: dict = field(default_factory=new_state)
    Mounts: list = field(default_factory=list)  # stage 7: what inspect lists as Mounts
    NetworkSettings: dict = field(default_factory=dict)  # stage 8
    RestartCount: int = 0
    LogPath: str = ""
    # The parent of its cgroup, fixed at create (its --cgroup-parent, or the engine's
    # $MINIDOCKER_CGROUP_PARENT then): every later command looks there, whatever its own
    # environment says ("" in a record older than this field: today's parent).
    CgroupParent: str = ""

    def __post_init__(self):
        self.State = {**new_state(), **self.State}  # a record written by an older version
        if isinstance(self.Config, dict):  # read from disk: the typed objects again
            self.Config = Config.from_dict(self.Config)
        if isinstance(self.HostConfig, dict):
            self.HostConfig = HostConfig.from_dict(self.HostConfig)

    @property
    def directory(self) -> Path:
        return containers_dir() / self.Id

    @property
    def upper(self) -> Path:
        """The container's own layer, its changes: overlayfs's upper dir (where
        ``unionfs.OverlayDirs.under`` puts it)."""
        return self.directory / "upper"

    @property
    def command(self) -> list[str]:
        return self.Config.command

    @property
    def status(self) -> str:
        return self.State["Status"]

    def cgroup(self) -> "Cgroup":
        """The container's cgroup, below the parent its record keeps since create."""
        from minidocker import cgroups

        return cgroups.for_container(self.Id, self.HostConfig.CgroupParent, self.CgroupParent)

    def save(self) -> None:
        status = self.State["Status"]  # Docker's booleans, always derived from the status
        self.State.update(Running=status in ("running", "paused", "restarting"),
                          Paused=status == "paused", Restarting=status == "restarting",
                          Dead=status == "dead")
        write_json(self.directory / "config.json", self.to_dict())

    def to_dict(self) -> dict:
        """The record as JSON, in the shape ``docker inspect`` shows."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**data, "Config": self.Config.to_dict(), "HostConfig": self.HostConfig.to_dict()}

    def reload(self) -> "ContainerRecord":
        fresh = load(self.Id)
        self.__dict__.update(fresh.__dict__)
        return self

    @contextlib.contextmanager
    def locked(self):
        """Hold the record's lock, with this object refreshed from disk; saved at the end.
        Raises NotFound if the container was removed meanwhile."""
        with _lock(self.directory):
            self.reload()
            yield self
            self.save()

    def update_state(self, **changes) -> None:
        """Change State fields in one locked read-modify-write."""
        with self.locked():
            self.State.update(changes)

    def mark_running(self, pid: int) -> None:
        """Running, watched by this process (the monitor): its volumes mounted, started."""
        self.update_state(Status="running", Pid=pid, PidStart=start_time(pid), MonitorPid=os.getpid(),
                          MonitorStart=start_time(os.getpid()), StartedAt=now(), ExitCode=0, Error="",
                          OOMKilled=False)
        for mount in self.Mounts:
            if mount.get("Type") == "volume":
                events.emit("volume", "mount", mount["Name"], {
                    "container": self.Id, "destination": mount["Destination"],
                    "driver": mount.get("Driver") or "local", "read/write": mount.get("RW"),
                    "propagation": mount.get("Propagation") or ""})
        self.event("start")

    def monitor_alive(self) -> bool:
        """The monitor named by the record still runs: same PID and start time (a reused PID
        or a zombie has another, see ``start_time``)."""
        pid = self.State.get("MonitorPid") or 0
        return pid > 0 and start_time(pid) == self.State.get("MonitorStart")

    def pid1_alive(self) -> bool:
        """The container's PID 1 still runs (neither gone nor a zombie, nor its PID reused by
        another process: same start time). A record may say "running" a moment after it
        ended: until its monitor has released the container."""
        pid = self.State.get("Pid") or 0
        started = start_time(pid) if pid > 0 else 0
        return started != 0 and self.State.get("PidStart", started) == started  # (or none kept)

    def event(self, action: str, **attributes) -> None:
        """Tell ``docker events`` what happened to this container (minidocker/events.py),
        with Docker's attributes: its labels, image and name."""
        events.emit("container", action, self.Id, {**self.Config.Labels, "image":
                                                   self.Config.Image, "name": self.Name,
                                                   **attributes})

    def mark_exited(self, exit_code: int, oom_killed: bool = False, error: str = "") -> None:
        self.update_state(Status="exited", Pid=0, PidStart=0, MonitorPid=0, ExitCode=exit_code, FinishedAt=now(),
                          OOMKilled=oom_killed, Error=error)

    def remove(self) -> None:
        with _lock(self.directory, must_exist=False):
            shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def _lock(directory: Path, must_exist: bool = True):
    try:
        fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        if must_exist:
            raise NotFound(f"No such container: {directory.name[:12]} (it was removed)") from None
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if must_exist and not (directory / "config.json").exists():
            raise NotFound(f"No such container: {directory.name[:12]} (it was removed)")
        yield
    finally:
        os.close(fd)


def start_time(pid: int) -> int:
    """When a process started, in clock ticks since boot (field 22 of /proc/<pid>/stat): with
    the PID it names one process for good, even after the PID is reused. 0: no such process,
    or a dead one whose parent has not reaped it yet (a zombie, state Z or X)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return 0 if fields[0] in ("Z", "X") else int(fields[19])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return 0


def containers_dir() -> Path:
    return state_root() / "containers"


def load(container_id: str) -> ContainerRecord:
    try:
        return ContainerRecord(**read_json(containers_dir() / container_id / "config.json"))
    except FileNotFoundError:
        raise NotFound(f"No such container: {container_id[:12]} (it was removed)") from None


def all_records() -> list[ContainerRecord]:
    records = []
    for data in record_files():
        try:
            records.append(ContainerRecord(**data))
        except (ValueError, TypeError):
            continue  # unreadable: skipped, never fatal
    return sorted(records, key=lambda r: r.Created, reverse=True)


def record_files():
    """Every record's JSON as read from disk (not yet typed objects, which cost more)."""
    for path in sorted(containers_dir().glob("*/config.json")):
        try:
            data = read_json(path)
        except (ValueError, FileNotFoundError):
            continue  # unreadable, or removed by an 'rm' at this moment: skipped, never fatal
        if isinstance(data, dict):
            yield data


def find(name_or_id: str) -> ContainerRecord:
    """A container by full ID, full name or unique ID prefix. A full ID (what the API's
    clients send) is read alone; the others look at every record."""
    name = name_or_id.lstrip("/")
    if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
        with contextlib.suppress(NotFound, ValueError, TypeError):  # gone, or unreadable
            return load(name)
    records = all_records()
    for record in records:
        if name in (record.Name, record.Id):
            return record
    matches = [r for r in records if r.Id.startswith(name)] if len(name) >= 3 else []
    if len(matches) == 1:
        return matches[0]
    raise NotFound(f"No such container: {name_or_id} (see 'minidocker ps -a')")


@contextlib.contextmanager
def all_locked():
    """Hold ``containers.lock``: no container is created, renamed or pruned meanwhile."""
    fd = os.open(state_root() / "containers.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def unrecorded_dirs() -> list[Path]:
    """Container directories without a record: a create killed before it saved one. Only
    meaningful under ``all_locked`` (a create in progress holds it)."""
    if not containers_dir().is_dir():  # a state root where no container was ever made
        return []
    return [d for d in containers_dir().iterdir()
            if d.is_dir() and not (d / "config.json").exists()]


def images_in_use() -> dict[str, list[str]]:
    """Image ID -> the IDs of the containers made from it (running or not). Act on it under
    ``all_locked``, so that no create takes an image meanwhile (rmi, image prune)."""
    users: dict[str, list[str]] = {}
    for record in all_records():
        users.setdefault(record.Image, []).append(record.Id)
    return users


def volumes_in_use(but: str = "") -> dict[str, list[str]]:
    """Volume name -> the names of the containers that mount it, except the container ``but``
    (the one being removed)."""
    from minidocker.volumes import volume_users

    return volume_users((r.Name, r.Mounts) for r in all_records() if r.Id != but)


@contextlib.contextmanager
def volume_users_held():
    """Which containers use which volume, kept true while the caller removes volumes: the
    containers lock holds back every create (which makes its volumes and saves its record
    under it) until the caller is done, so a volume never goes under a new container."""
    with all_locked():
        yield volumes_in_use()


def running_volumes() -> set[str]:
    """The volumes that running containers mount now: their record says running or paused,
    and their monitor lives (one killed with -9 has taken its container down with it)."""
    from minidocker.volumes import volume_users

    return set(volume_users((r.Name, r.Mounts) for r in all_records()
                            if r.status in ("running", "paused") and r.monitor_alive()))


def claim_name(name: str | None) -> str:
    """A free name (``name``, or a random one); call it under ``all_locked`` and save the
    record before letting go, so that two creates cannot both take one name."""
    taken = {data.get("Name") for data in record_files()}
    if name is None:
        return random_name(taken)
    if name in taken:
        raise Conflict(f'The container name "{name}" is already in use. Remove that container '
                       f"('minidocker rm {name}') or choose another --name.")
    return name
