"""The container's record on disk: one JSON file per container, written atomically.

``$MINIDOCKER_ROOT/containers/<id>/config.json`` holds what ``inspect`` shows (Docker's field
names); next to it live the overlay's ``upper``, ``work`` and ``merged`` dirs.
"""

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from minidocker.container.names import random_name
from minidocker.errors import Conflict, NotFound
from minidocker.state import now, read_json, state_root, write_json


@dataclass
class ContainerRecord:
    Id: str
    Name: str
    Image: str
    Config: dict
    HostConfig: dict
    Created: str = field(default_factory=now)
    State: dict = field(default_factory=lambda: {"Status": "created", "Pid": 0, "ExitCode": 0,
                                                 "OOMKilled": False, "StartedAt": "",
                                                 "FinishedAt": ""})

    @property
    def directory(self) -> Path:
        return containers_dir() / self.Id

    def save(self) -> None:
        write_json(self.directory / "config.json", asdict(self))

    def mark_running(self, pid: int) -> None:
        self.State.update(Status="running", Pid=pid, StartedAt=now())
        self.save()

    def mark_exited(self, exit_code: int, oom_killed: bool = False) -> None:
        self.State.update(Status="exited", Pid=0, ExitCode=exit_code, FinishedAt=now(),
                          OOMKilled=oom_killed)
        self.save()

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def containers_dir() -> Path:
    return state_root() / "containers"


def all_records() -> list[ContainerRecord]:
    records = []
    for path in sorted(containers_dir().glob("*/config.json")):
        try:
            records.append(ContainerRecord(**read_json(path)))
        except (ValueError, TypeError, FileNotFoundError):
            continue  # unreadable, or removed by an 'rm' at this moment: skipped, never fatal
    return sorted(records, key=lambda r: r.Created, reverse=True)


def find(name_or_id: str) -> ContainerRecord:
    """A container by full name, full ID or unique ID prefix."""
    records = all_records()
    for record in records:
        if name_or_id in (record.Name, record.Id):
            return record
    matches = [r for r in records if r.Id.startswith(name_or_id)] if len(name_or_id) >= 3 else []
    if len(matches) == 1:
        return matches[0]
    raise NotFound(f"No such container: {name_or_id} (see 'minidocker ps -a')")


def claim_name(name: str | None) -> str:
    taken = {r.Name for r in all_records()}
    if name is None:
        return random_name(taken)
    if name in taken:
        raise Conflict(f'The container name "{name}" is already in use. Remove that container '
                       f"('minidocker rm {name}') or choose another --name.")
    return name
