"""The one interface every cgroup driver offers, and what it reports.

A cgroup is a directory in a cgroup filesystem: create it with mkdir, move a process in by
writing its PID to ``cgroup.procs``, set a limit by writing a file, read usage from another,
remove it with rmdir once it is empty. The two kernel interfaces (v1: one tree per controller;
v2: one unified tree) differ only in which files those are, so each driver is a small class
behind this interface and callers never ask which version runs.

Man pages: cgroups(7), cgroup_namespaces(7); kernel docs cgroup-v1/*.rst, cgroup-v2.rst.
Used by: notebook 03-cgroups, lab 03-cgroups (its checker reads cgroup files with ``read_keyed``).
"""

import contextlib
import os
import signal
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from minidocker import explain
from minidocker.cgroups.limits import Limits


@dataclass(frozen=True)
class Stats:
    """A container's usage, as the kernel counts it."""

    cpu_usage_ns: int  # CPU time consumed by every process in the cgroup, ever
    memory_usage: int  # bytes charged now
    memory_limit: int | None  # bytes, None = unlimited
    pids_current: int
    pids_limit: int | None  # None = unlimited
    oom_kills: int  # processes the kernel killed for going over the memory limit
    forks_refused: int  # fork(2)s that failed with EAGAIN because of the pids limit
    # for docker stats: the CPU time split, the memory controller's own counters
    # (memory.stat), bytes read and written per block device ((major, minor, op, bytes))
    cpu_user_ns: int = 0
    cpu_system_ns: int = 0
    memory_stat: dict = field(default_factory=dict)
    io_bytes: tuple = ()


class Cgroup(ABC):
    """One container's cgroup. ``name`` is a path below the hierarchy root, e.g.
    ``minidocker/<container id>``."""

    version: str  # "v1" or "v2"
    discarded: dict[str, str] = {}  # Limits fields this version cannot apply -> the warning
    owns_parent = True  # minidocker's own parent goes with its last container; not one
    # given with --cgroup-parent, which may be shared with others (Docker leaves it too)

    def __init__(self, name: str):
        self.name = name

    @abstractmethod
    def directories(self) -> list[Path]:
        """Every directory this cgroup is made of (one per v1 controller, one in v2)."""

    @abstractmethod
    def create(self) -> None: ...

    @abstractmethod
    def set_limits(self, limits: Limits) -> None: ...

    def warnings(self, limits: Limits) -> list[str]:
        """What of ``limits`` this version discards, one warning each (Docker's wording)."""
        return [text for name, text in self.discarded.items() if getattr(limits, name)]

    @abstractmethod
    def stats(self) -> Stats: ...

    @abstractmethod
    def freeze(self) -> None: ...

    @abstractmethod
    def thaw(self) -> None: ...

    def allow_devices(self, rules: list[str]) -> bool:
        """Let the container use only these devices; False if this driver cannot (cgroup v2
        does it with an eBPF program, which this kit does not load: see stage 9)."""
        return False

    def add_process(self, pid: int) -> None:
        """Move ``pid`` (and from then on its children) into this cgroup."""
        for directory in self.directories():
            write_file(directory / "cgroup.procs", str(pid))

    def pids(self) -> list[int]:
        procs = self.directories()[0] / "cgroup.procs"
        try:
            return [int(p) for p in procs.read_text().split()]
        except OSError:  # no such cgroup, or (ENODEV) one being removed at this moment
            return []

    def exists(self) -> bool:
        return any(d.is_dir() for d in self.directories())

    def kill_all(self) -> None:
        """SIGKILL every process in the cgroup, until it is empty."""
        for _ in range(100):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def destroy(self) -> None:
        """Kill what is left, then rmdir every directory (deepest first)."""
        if not self.exists():
            return
        self.thaw()  # a frozen process cannot die
        self.kill_all()
        for directory in self.directories():
            _rmdir_retrying(directory, self.kill_all)
            try:
                if self.owns_parent:
                    directory.parent.rmdir()  # the shared parent goes with its last container
            except OSError:
                pass


def _rmdir_retrying(directory: Path, kill_all) -> None:
    """rmdir(2) fails with EBUSY while the kernel still tears down the last task — or while a
    start racing this removal (``prune`` of a container being started) has put a new process
    in: that one is killed too."""
    for attempt in range(200):
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if attempt % 20 == 19:
                kill_all()
            time.sleep(0.01)
    with contextlib.suppress(FileNotFoundError):  # another remover (rm, prune) was quicker
        directory.rmdir()


def write_file(path: Path, value: str) -> None:
    """Write one cgroup file: this is how every limit reaches the kernel (cgroups(7))."""
    explain.step("write", f"{path}, {value!r}")
    path.write_text(value)


def make_dir(path: Path) -> None:
    """mkdir(2) in a cgroup filesystem: the kernel fills the new directory with its files."""
    if not path.is_dir():
        explain.step("mkdir", str(path))
    for _ in range(10):  # the shared parent may go with another container's last rmdir meanwhile
        try:
            path.mkdir(parents=True, exist_ok=True)
            return
        except FileNotFoundError:
            continue
    path.mkdir(parents=True, exist_ok=True)


def read_int(path: Path, default: int = 0) -> int:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return default
    return default if text == "max" else int(text)


def read_keyed(path: Path) -> dict[str, int]:
    """A flat keyed file such as ``memory.events``: "key value" per line."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    return {k: int(v) for k, v in (line.split()[:2] for line in lines if line.strip())}
