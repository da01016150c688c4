"""The cgroup v2 driver: one unified hierarchy.

In v2 there is one tree (``/sys/fs/cgroup`` on a v2-only machine, ``/sys/fs/cgroup/unified``
on a hybrid one). A parent hands controllers to its children by writing ``+memory +cpu ...`` to
its ``cgroup.subtree_control``; a process lives in exactly one cgroup. Freezing and killing are
core features: ``cgroup.freeze`` and ``cgroup.kill``.

Files written: memory.max, memory.swap.max, memory.low, cpu.max ("quota period"), cpu.weight,
cpuset.cpus, cpuset.mems, io.weight, io.max ("MAJOR:MINOR rbps=N wbps=N"), pids.max,
cgroup.freeze, cgroup.kill. v2 has no swappiness per cgroup and no switch for the OOM killer:
``--memory-swappiness`` and ``--oom-kill-disable`` are discarded with a warning, as Docker does
(``DISCARDED``). Read: cpu.stat, memory.current, memory.events,
pids.current, cgroup.events.

Man pages: cgroups(7); kernel docs admin-guide/cgroup-v2.rst.
Used by: notebook 03-cgroups on a v2 machine (Ubuntu 24.04, the classroom VM), lab 03-cgroups.
"""

import time
from pathlib import Path

from minidocker.cgroups.base import Cgroup, Stats, make_dir, read_int, read_keyed, write_file
from minidocker.cgroups.limits import (
    Limits,
    block_device_number,
    cpu_weight,
    io_weight,
    pids_max,
)

WANTED = ("cpu", "cpuset", "io", "memory", "pids")
DISCARDED = {"memory_swappiness": "cgroup v2 has no per-cgroup swappiness: "
                                  "--memory-swappiness discarded",
             "oom_kill_disable": "cgroup v2 cannot disable the OOM killer: --oom-kill-disable "
                                 "discarded"}


class CgroupV2(Cgroup):
    version = "v2"
    discarded = DISCARDED

    def __init__(self, name: str, root: Path = Path("/sys/fs/cgroup")):
        super().__init__(name)
        self.root = root
        self.path = root / name

    def directories(self) -> list[Path]:
        return [self.path]

    def controllers(self) -> set[str]:
        """The controllers this cgroup has (its parent gave them)."""
        available = self.path / "cgroup.controllers"
        return set(available.read_text().split()) if available.exists() else set()

    def create(self) -> None:
        directory = self.root
        for part in Path(self.name).parts:
            enable_controllers(directory)  # a parent passes controllers down before the mkdir
            directory = directory / part
            make_dir(directory)

    def set_limits(self, limits: Limits) -> None:
        needed = _controllers_for(limits)
        missing = needed - self.controllers()
        if missing:
            raise OSError(f"the cgroup v2 controllers {', '.join(sorted(missing))} are not "
                          f"available in {self.root}")
        if limits.memory is not None:
            write_file(self.path / "memory.max", str(limits.memory))
            swap_max = self.path / "memory.swap.max"
            if swap_max.exists():
                swap = limits.memory_swap
                value = "max" if swap == -1 else (swap - limits.memory if swap else
                                                   limits.memory)
                write_file(swap_max, str(value))
        if limits.cpu_quota is not None or limits.cpu_period is not None:
            quota = limits.cpu_quota if limits.cpu_quota is not None else "max"
            write_file(self.path / "cpu.max", f"{quota} {limits.cpu_period or 100000}")
        if limits.cpu_shares is not None:
            write_file(self.path / "cpu.weight", str(cpu_weight(limits.cpu_shares)))
        if limits.cpuset_cpus is not None:
            write_file(self.path / "cpuset.cpus", limits.cpuset_cpus)
        if limits.pids_limit is not None:
            write_file(self.path / "pids.max", pids_max(limits.pids_limit))
        if limits.memory_reservation is not None:
            write_file(self.path / "memory.low", str(limits.memory_reservation))
        if limits.cpuset_mems is not None:
            write_file(self.path / "cpuset.mems", limits.cpuset_mems)
        self._set_io(limits)

    def _set_io(self, limits: Limits) -> None:
        """The io controller: a weight and, per block device, a line of io.max."""
        if limits.blkio_weight is not None:
            write_file(self.path / "io.weight", str(io_weight(limits.blkio_weight)))
        for key, rates in (("rbps", limits.blkio_device_read_bps),
                           ("wbps", limits.blkio_device_write_bps)):
            for device, rate in rates or ():
                write_file(self.path / "io.max", f"{block_device_number(device)} {key}={rate}")

    def stats(self) -> Stats:
        memory_max = read_int(self.path / "memory.max", -1)
        pids_max = read_int(self.path / "pids.max", -1)
        return Stats(
            cpu_usage_ns=read_keyed(self.path / "cpu.stat").get("usage_usec", 0) * 1000,
            memory_usage=read_int(self.path / "memory.current"),
            memory_limit=None if memory_max < 0 else memory_max,
            pids_current=read_int(self.path / "pids.current", len(self.pids())),
            pids_limit=None if pids_max < 0 else pids_max,
            oom_kills=read_keyed(self.path / "memory.events").get("oom_kill", 0),
            forks_refused=read_keyed(self.path / "pids.events").get("max", 0),
            **self._usage_details())

    def _usage_details(self) -> dict:
        """cpu.stat in microseconds; io.stat one line per device: ``8:0 rbytes=N wbytes=N
        ...``."""
        cpu = read_keyed(self.path / "cpu.stat")
        io = []
        try:
            lines = (self.path / "io.stat").read_text()
        except OSError:
            lines = ""
        for line in lines.splitlines():
            device, *pairs = line.split()
            major, _, minor = device.partition(":")
            counts = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
            io += [(int(major), int(minor), op, int(counts.get(key, 0)))
                   for op, key in (("read", "rbytes"), ("write", "wbytes"))]
        return {"cpu_user_ns": cpu.get("user_usec", 0) * 1000,
                "cpu_system_ns": cpu.get("system_usec", 0) * 1000,
                "memory_stat": read_keyed(self.path / "memory.stat"),
                "io_bytes": tuple(io)}

    def freeze(self) -> None:
        self._freeze("1")

    def thaw(self) -> None:
        self._freeze("0")

    def _freeze(self, value: str) -> None:
        if not (self.path / "cgroup.freeze").exists():
            return
        (self.path / "cgroup.freeze").write_text(value)
        for _ in range(500):  # "frozen 1" in cgroup.events once every task has stopped
            if read_keyed(self.path / "cgroup.events").get("frozen") == int(value):
                return
            time.sleep(0.002)

    def kill_all(self) -> None:
        kill = self.path / "cgroup.kill"  # Linux 5.14: the kernel kills them all at once
        if kill.exists() and self.pids():
            kill.write_text("1")
        super().kill_all()


def enable_controllers(directory: Path) -> None:
    """Pass every wanted controller that ``directory`` has down to its children."""
    available = set((directory / "cgroup.controllers").read_text().split())
    enabled = set((directory / "cgroup.subtree_control").read_text().split())
    for controller in sorted(set(WANTED) & available - enabled):
        write_file(directory / "cgroup.subtree_control", f"+{controller}")


def _controllers_for(limits: Limits) -> set[str]:
    needed = set()
    if limits.memory is not None:
        needed.add("memory")
    if limits.cpu_quota is not None or limits.cpu_period is not None or limits.cpu_shares:
        needed.add("cpu")
    if limits.cpuset_cpus is not None:
        needed.add("cpuset")
    if limits.pids_limit is not None:
        needed.add("pids")
    if limits.memory_reservation is not None:
        needed.add("memory")
    if limits.cpuset_mems is not None:
        needed.add("cpuset")
    if (limits.blkio_weight or limits.blkio_device_read_bps
            or limits.blkio_device_write_bps):
        needed.add("io")
    return needed
