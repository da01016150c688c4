"""Resource limits as ``docker run`` takes them, checked before anything is created.

``-m 32m``, ``--cpus 0.5``, ``--cpuset-cpus 0-1``, ``--pids-limit 20`` ... each flag becomes one
field of ``Limits``, in the kernel's units (bytes, microseconds, CPU and memory-node lists,
bytes per second for a block device). Each driver then writes them to the files of its cgroup
version: the memory controller's soft limit, swappiness and OOM killer, the cpuset's CPUs and
memory nodes, the io controller's weight and throttles (v1 calls it ``blkio``).

Man pages: cgroups(7), cpuset(7); Docker's "Runtime options with Memory, CPUs, and GPUs";
kernel docs admin-guide/cgroup-v1/blkio-controller.rst, cgroup-v2.rst ("IO").
Used by: notebook 03-cgroups (``run -m``, ``--cpus``, ``--pids-limit``), bench/run.py.
"""

import math
import os
import re
import stat
from dataclasses import dataclass, fields

from minidocker.errors import MinidockerError

UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
MAX_BYTES = 2**63 - 1  # the kernel's counters are signed 64-bit
MIN_MEMORY = 6 * 1024**2  # Docker's minimum for -m
DEFAULT_CPU_PERIOD = 100_000  # microseconds: the CFS period --cpus is spread over


@dataclass(frozen=True)
class Limits:
    """What a container may use; ``None`` means "no limit"."""

    memory: int | None = None  # bytes: -m
    memory_swap: int | None = None  # bytes of memory+swap: --memory-swap (-1 = unlimited)
    cpu_quota: int | None = None  # microseconds per period: --cpus or --cpu-quota
    nano_cpus: int | None = None  # --cpus as Docker keeps it (1e9 = one CPU): quota/period
    cpu_period: int | None = None  # microseconds: --cpu-period
    cpu_shares: int | None = None  # relative weight, 1024 = normal: --cpu-shares
    cpuset_cpus: str | None = None  # CPU list: --cpuset-cpus
    pids_limit: int | None = None  # processes: --pids-limit (-1 in an update: lift it)
    memory_reservation: int | None = None  # bytes, a soft limit: --memory-reservation
    memory_swappiness: int | None = None  # 0..100, how eagerly it is swapped out
    oom_kill_disable: bool | None = None  # --oom-kill-disable: wait for memory instead
    cpuset_mems: str | None = None  # NUMA memory-node list: --cpuset-mems
    blkio_weight: int | None = None  # 10..1000, a relative share of disk time
    blkio_device_read_bps: tuple[tuple[str, int], ...] | None = None  # ((device, bytes/s),)
    blkio_device_write_bps: tuple[tuple[str, int], ...] | None = None

    def any(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def parse_bytes(flag: str, text: str) -> int:
    """``32m`` -> 33554432, like Docker (units b, k, m, g; a plain number is bytes)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmg]?)b?", text.strip().lower())
    if not match:
        raise MinidockerError(f"invalid value '{text}' for {flag}: use a number with an "
                              "optional unit b, k, m or g (e.g. 32m, 1g)")
    value = int(float(match[1]) * UNITS[match[2] or "b"])
    if value > MAX_BYTES:
        raise MinidockerError(f"invalid value '{text}' for {flag}: it is larger than the "
                              "kernel can count (at most 8 EiB)")
    return value


def online_cpus() -> set[int]:
    return parse_cpu_list(open("/sys/devices/system/cpu/online").read().strip())


def online_memory_nodes() -> set[int]:
    """The NUMA nodes this machine has (one, node 0, on most laptops and VMs)."""
    try:
        return parse_cpu_list(open("/sys/devices/system/node/online").read().strip())
    except FileNotFoundError:  # a kernel without NUMA support: everything is node 0
        return {0}


def parse_cpu_list(text: str) -> set[int]:
    """``0-2,5`` -> {0, 1, 2, 5} (the kernel's "cpu list" format, cpuset(7))."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def build_limits(memory=None, memory_swap=None, cpus=None, cpu_shares=None, cpu_period=None,
                 cpu_quota=None, cpuset_cpus=None, pids_limit=None, memory_reservation=None,
                 memory_swappiness=None, oom_kill_disable=False, cpuset_mems=None,
                 blkio_weight=None, device_read_bps=(), device_write_bps=()) -> Limits:
    """Turn ``run``'s flag values (strings as typed, or None) into checked ``Limits``."""
    mem = parse_bytes("--memory", memory) if memory is not None else None
    mem = mem or None  # -m 0: no limit, as in Docker
    if mem is not None and mem < MIN_MEMORY:
        raise MinidockerError("Minimum memory limit allowed is 6MB (--memory)")
    swap = _memory_swap(memory_swap, mem)
    period, quota = _cpu_quota(cpus, cpu_period, cpu_quota)
    nano = round(float(cpus) * 1e9) if cpus is not None else None
    shares = _int_in("--cpu-shares", cpu_shares, 2, 262144)
    weight = _int_in("--blkio-weight", blkio_weight, 0, 1000)
    if weight and weight < 10:
        raise MinidockerError(f"invalid value '{blkio_weight}' for --blkio-weight: the range "
                              "is from 10 to 1000 (0: the default)")
    swappiness = _int_in("--memory-swappiness", memory_swappiness, -1, 100)
    return Limits(memory=mem, memory_swap=swap, cpu_quota=quota, cpu_period=period,
                  nano_cpus=nano,
                  cpu_shares=shares, cpuset_cpus=_cpuset(cpuset_cpus),
                  pids_limit=_pids(pids_limit),
                  memory_reservation=_reservation(memory_reservation, mem),
                  memory_swappiness=None if swappiness in (None, -1) else swappiness,
                  oom_kill_disable=True if oom_kill_disable else None,
                  cpuset_mems=_memory_nodes(cpuset_mems), blkio_weight=weight or None,
                  blkio_device_read_bps=_device_rates("--device-read-bps", device_read_bps),
                  blkio_device_write_bps=_device_rates("--device-write-bps",
                                                       device_write_bps))


def _reservation(text, memory):
    """``--memory-reservation``: a soft limit, enforced only when the host runs short; it
    must stay below the hard limit (-m), as Docker checks."""
    if text is None:
        return None
    value = parse_bytes("--memory-reservation", text) or None
    if value is not None and value < MIN_MEMORY:
        raise MinidockerError("Minimum memory reservation allowed is 6MB "
                              "(--memory-reservation)")
    if value is not None and memory is not None and value > memory:
        raise MinidockerError("Minimum memory limit can not be less than memory reservation "
                              "limit, see usage (--memory-reservation must be below -m)")
    return value


def _memory_nodes(text):
    return None if text is None else _node_list("--cpuset-mems", text, online_memory_nodes(),
                                                "memory nodes")


def _node_list(flag, text, online, what):
    """A cpuset list (``0-1,3``) of CPUs or memory nodes this machine has, as Docker checks."""
    try:
        wanted = parse_cpu_list(text)
    except ValueError:
        raise MinidockerError(f"invalid value '{text}' for {flag}: use a list of {what} such "
                              "as 0, 0-1 or 0,2") from None
    if wanted - online:
        have = ",".join(map(str, sorted(online)))
        raise MinidockerError(f"Requested {what} are not available - requested {text}, "
                              f"available: {have} ({flag})")
    return text


def _device_rates(flag, specs):
    """``--device-read-bps /dev/vda:1mb``: a block device of the host and bytes per second."""
    rates = []
    for spec in specs:
        path, sep, rate = spec.rpartition(":")
        if not sep or not path.startswith("/dev/"):
            raise MinidockerError(f"invalid value '{spec}' for {flag}: use DEVICE:RATE, a "
                                  "block device under /dev and bytes per second (/dev/vda:1mb)")
        if block_device_number(path) is None:
            raise MinidockerError(f"invalid value '{spec}' for {flag}: {path} is not a block "
                                  "device of this host (see lsblk)")
        rates.append((path, parse_bytes(flag, rate)))
    return tuple(rates) or None


def block_device_number(path: str) -> str | None:
    """``MAJOR:MINOR`` of a block device, as the io controller's files name it; None if
    ``path`` is not a block device."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISBLK(st.st_mode):
        return None
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def _memory_swap(text, memory):
    if text is None:
        return None
    if memory is None:
        raise MinidockerError("You should always set the memory limit (-m) when using "
                              "--memory-swap")
    if text.strip() == "-1":
        return -1
    swap = parse_bytes("--memory-swap", text)
    if swap < memory:
        raise MinidockerError("Minimum memoryswap limit should be larger than memory limit, "
                              "see usage")
    return swap


def _cpu_quota(cpus, period_text, quota_text):
    if cpus is not None and (period_text is not None or quota_text is not None):
        raise MinidockerError("Conflicting options: --cpus and --cpu-period/--cpu-quota "
                              "cannot both be set")
    if cpus is not None:
        try:
            value = float(cpus)
        except ValueError:
            value = -1
        available = len(online_cpus())
        if not 0 < value <= available:
            raise MinidockerError(f"invalid value '{cpus}' for --cpus: give a number of CPUs "
                                  f"greater than 0 and at most {available} (e.g. 0.5)")
        return DEFAULT_CPU_PERIOD, int(value * DEFAULT_CPU_PERIOD)
    period = _int_in("--cpu-period", period_text, 1000, 1_000_000)
    quota = _int_in("--cpu-quota", quota_text, 1000, 10**12)
    if quota is not None and period is None:
        period = DEFAULT_CPU_PERIOD
    return period, quota


def _cpuset(text):
    return None if text is None else _node_list("--cpuset-cpus", text, online_cpus(), "CPUs")


def _pids(text):
    value = _int_in("--pids-limit", text, -1, 2**31)
    return None if value is None or value <= 0 else value  # 0 and -1 mean unlimited


def pids_max(limit: int) -> str:
    """``pids.max``: a number, or ``max`` for -1 (``update --pids-limit -1`` lifts it)."""
    return "max" if limit < 0 else str(limit)


def _int_in(flag, text, low, high):
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise MinidockerError(f"invalid value '{text}' for {flag}: give a whole number from "
                              f"{low} to {high}")
    return value


def cpu_weight(shares: int) -> int:
    """cgroup v1 ``cpu.shares`` (2..262144) -> v2 ``cpu.weight`` (1..10000), as runc (since
    1.3.2) and crun (since 1.23) map it: a quadratic in log2(shares) that sends the minimum,
    the default and the maximum onto each other (2 -> 1, 1024 -> 100, 262144 -> 10000). The
    linear map they used before sent the default 1024 to 39, so a container with default shares
    got less than half the weight of a process outside it (runc issue #4772, crun #1721)."""
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    log = math.log2(shares)
    return math.ceil(10 ** ((log * log + 125 * log) / 612 - 7 / 34))


def io_weight(blkio_weight: int) -> int:
    """cgroup v1 ``blkio.weight`` (10..1000) -> v2 ``io.weight`` (1..10000), as runc maps it."""
    return 1 + ((blkio_weight - 10) * 9999) // 990


