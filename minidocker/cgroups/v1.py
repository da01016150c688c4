"""The cgroup v1 driver: one hierarchy per controller.

In v1 each controller (memory, cpu, cpuacct, cpuset, pids, freezer) has its own tree, mounted
at ``/sys/fs/cgroup/<controller>`` (sometimes two share one mount, like ``cpu,cpuacct``). A
container's cgroup is therefore one directory in each tree, and the process joins each of them.

Files written: memory.limit_in_bytes, memory.memsw.limit_in_bytes, memory.soft_limit_in_bytes,
memory.swappiness, memory.oom_control, cpu.cfs_period_us, cpu.cfs_quota_us, cpu.shares,
cpuset.cpus and cpuset.mems (which must be set before a task may join), blkio.weight (or
blkio.bfq.weight, with the BFQ I/O scheduler), blkio.throttle.read_bps_device and
write_bps_device ("MAJOR:MINOR BYTES"), pids.max, freezer.state, devices.deny/devices.allow. Read: cpuacct.usage, memory.usage_in_bytes,
memory.oom_control, pids.current.

Man pages: cgroups(7), cpuset(7); kernel docs admin-guide/cgroup-v1/.
Used by: notebook 03-cgroups on a v1 or hybrid machine, lab 03-cgroups (``controller_mounts``).
"""

import os
import time
from pathlib import Path

from minidocker.cgroups.base import Cgroup, Stats, make_dir, read_int, read_keyed, write_file
from minidocker.cgroups.limits import Limits, block_device_number, pids_max

CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "devices", "blkio")
UNLIMITED = 2**63 - 4096  # what v1 reports for "no limit" (PAGE_COUNTER_MAX in bytes)
NO_IO_WEIGHT = ("Your kernel does not support Block I/O weight or the cgroup is not mounted. "
                "Weight discarded.")  # Docker's warning


def weight_file(blkio: Path) -> Path | None:
    """CFQ's ``blkio.weight``, or BFQ's ``blkio.bfq.weight`` (Linux 5.0+); None where the
    kernel has neither (no proportional I/O scheduler: ``none``, ``mq-deadline``)."""
    return next((blkio / n for n in ("blkio.weight", "blkio.bfq.weight")
                 if (blkio / n).exists()), None)


def controller_mounts() -> dict[str, Path]:
    """Where each v1 controller is mounted, read from the kernel's mount table."""
    mounts: dict[str, Path] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" - ")
        if len(fields) != 2 or not fields[1].startswith("cgroup "):
            continue
        mount_point = Path(fields[0].split()[4])
        for option in fields[1].split()[2].split(","):
            if option in CONTROLLERS:
                mounts.setdefault(option, mount_point)
    return mounts


class CgroupV1(Cgroup):
    version = "v1"

    def __init__(self, name: str, mounts: dict[str, Path] | None = None):
        super().__init__(name)
        self.mounts = mounts if mounts is not None else controller_mounts()

    def path(self, controller: str) -> Path:
        return self.mounts[controller] / self.name

    def warnings(self, limits: Limits) -> list[str]:
        """As Docker: a weight the kernel cannot apply is discarded, with its warning."""
        blkio = self.mounts.get("blkio")
        unweighted = limits.blkio_weight and (blkio is None or weight_file(blkio) is None)
        return super().warnings(limits) + ([NO_IO_WEIGHT] if unweighted else [])

    def directories(self) -> list[Path]:
        unique = dict.fromkeys(self.path(c) for c in CONTROLLERS if c in self.mounts)
        return list(unique)

    def allow_devices(self, rules: list[str]) -> bool:
        """The devices controller: deny every device ("a"), then allow each rule
        (``c 1:3 rwm`` = char device 1:3 may be read, written and mknod'ed)."""
        if "devices" not in self.mounts:
            return False
        directory = self.path("devices")
        write_file(directory / "devices.deny", "a")
        for rule in rules:
            write_file(directory / "devices.allow", rule)
        return True

    def create(self) -> None:
        for directory in self.directories():
            make_dir(directory)
        if "cpuset" in self.mounts:  # an empty cpuset admits no task: inherit the parent's
            self._inherit_cpuset(self.path("cpuset"))

    def _inherit_cpuset(self, directory: Path) -> None:
        root = self.mounts["cpuset"]
        chain = [directory, *directory.parents]
        for level in reversed(chain[: chain.index(root)]):
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not (level / name).read_text().strip():
                    (level / name).write_text((level.parent / name).read_text())

    def set_limits(self, limits: Limits) -> None:
        memory, cpu = self.path("memory"), self.path("cpu")
        if limits.memory is not None:
            self._set_memory_and_swap(memory, limits)
        if limits.cpu_period is not None:
            write_file(cpu / "cpu.cfs_period_us", str(limits.cpu_period))
        if limits.cpu_quota is not None:
            write_file(cpu / "cpu.cfs_quota_us", str(limits.cpu_quota))
        if limits.cpu_shares is not None:
            write_file(cpu / "cpu.shares", str(limits.cpu_shares))
        if limits.cpuset_cpus is not None:
            write_file(self.path("cpuset") / "cpuset.cpus", limits.cpuset_cpus)
        if limits.pids_limit is not None:
            write_file(self.path("pids") / "pids.max", pids_max(limits.pids_limit))
        self._set_memory_policy(memory, limits)
        if limits.cpuset_mems is not None:
            write_file(self.path("cpuset") / "cpuset.mems", limits.cpuset_mems)
        self._set_io(limits)

    def _set_memory_and_swap(self, memory: Path, limits: Limits) -> None:
        """The kernel keeps memory <= memory+swap at every moment, so a limit that grows (an
        ``update``) needs memsw raised first, and one that shrinks needs it lowered last."""
        swap = limits.memory_swap
        if swap is None:
            swap = 2 * limits.memory  # Docker: as much swap as memory
        steps = [(memory / "memory.limit_in_bytes", limits.memory)]
        memsw = memory / "memory.memsw.limit_in_bytes"
        if memsw.exists():  # only with swap accounting
            growing = swap == -1 or limits.memory > read_int(memory / "memory.limit_in_bytes")
            steps = [(memsw, swap), *steps] if growing else [*steps, (memsw, swap)]
        for path, value in steps:
            write_file(path, str(value))

    def _set_memory_policy(self, memory: Path, limits: Limits) -> None:
        """The memory controller beyond the hard limit: a soft limit the kernel reclaims down
        to when the host runs short, how eagerly to swap, and whether the OOM killer may act
        (with it disabled, a process over -m waits for memory instead of dying)."""
        if limits.memory_reservation is not None:
            write_file(memory / "memory.soft_limit_in_bytes", str(limits.memory_reservation))
        if limits.memory_swappiness is not None:
            write_file(memory / "memory.swappiness", str(limits.memory_swappiness))
        if limits.oom_kill_disable:
            write_file(memory / "memory.oom_control", "1")

    def _set_io(self, limits: Limits) -> None:
        """The blkio controller: a weight (CFQ's blkio.weight, or BFQ's since Linux 5.0) and
        bytes-per-second throttles per block device."""
        blkio = self.path("blkio")
        if limits.blkio_weight is not None and (weight := weight_file(blkio)):  # else discarded
            write_file(weight, str(limits.blkio_weight))
        for name, rates in (("read", limits.blkio_device_read_bps),
                            ("write", limits.blkio_device_write_bps)):
            for device, rate in rates or ():
                write_file(blkio / f"blkio.throttle.{name}_bps_device",
                           f"{block_device_number(device)} {rate}")

    def stats(self) -> Stats:
        memory_limit = read_int(self.path("memory") / "memory.limit_in_bytes", UNLIMITED)
        pids_limit = read_int(self.path("pids") / "pids.max", -1)
        oom = read_keyed(self.path("memory") / "memory.oom_control")
        return Stats(
            cpu_usage_ns=read_int(self.path("cpuacct") / "cpuacct.usage"),
            memory_usage=read_int(self.path("memory") / "memory.usage_in_bytes"),
            memory_limit=None if memory_limit >= UNLIMITED else memory_limit,
            pids_current=read_int(self.path("pids") / "pids.current"),
            pids_limit=None if pids_limit < 0 else pids_limit,
            oom_kills=oom.get("oom_kill", 0),
            forks_refused=read_keyed(self.path("pids") / "pids.events").get("max", 0),
            **self._usage_details())

    def _usage_details(self) -> dict:
        """cpuacct.stat counts in clock ticks (USER_HZ); blkio's throttle file counts every
        byte read or written, per device and operation."""
        ticks = read_keyed(self.path("cpuacct") / "cpuacct.stat")
        to_ns = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        io = []
        try:
            lines = (self.path("blkio") / "blkio.throttle.io_service_bytes").read_text()
        except OSError:
            lines = ""
        for line in lines.splitlines():
            parts = line.split()
            if len(parts) == 3 and ":" in parts[0] and parts[1] in ("Read", "Write"):
                major, minor = parts[0].split(":")
                io.append((int(major), int(minor), parts[1].lower(), int(parts[2])))
        return {"cpu_user_ns": ticks.get("user", 0) * to_ns,
                "cpu_system_ns": ticks.get("system", 0) * to_ns,
                "memory_stat": read_keyed(self.path("memory") / "memory.stat"),
                "io_bytes": tuple(io)}

    def freeze(self) -> None:
        self._freezer("FROZEN")

    def thaw(self) -> None:
        self._freezer("THAWED")

    def _freezer(self, state: str) -> None:
        path = self.path("freezer") / "freezer.state"
        if path.exists():
            path.write_text(state)
            for _ in range(500):  # FREEZING until every task has stopped
                if path.read_text().strip() == state:
                    return
                time.sleep(0.002)
                path.write_text(state)
