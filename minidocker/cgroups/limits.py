"""Resource limits as ``docker run`` takes them, checked before anything is created.

``-m 32m``, ``--cpus 0.5``, ``--cpuset-cpus 0-1``, ``--pids-limit 20`` ... each flag becomes one
field of ``Limits``, in the kernel's units (bytes, microseconds, CPU lists). Each driver then
writes them to the files of its cgroup version.

Man pages: cgroups(7); Docker's "Runtime options with Memory, CPUs, and GPUs".
Used by: notebook 03-cgroups (``run -m``, ``--cpus``, ``--pids-limit``), bench/run.py.
"""

import math
import re
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
    cpu_period: int | None = None  # microseconds: --cpu-period
    cpu_shares: int | None = None  # relative weight, 1024 = normal: --cpu-shares
    cpuset_cpus: str | None = None  # CPU list: --cpuset-cpus
    pids_limit: int | None = None  # processes: --pids-limit

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


def parse_cpu_list(text: str) -> set[int]:
    """``0-2,5`` -> {0, 1, 2, 5} (the kernel's "cpu list" format, cpuset(7))."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def build_limits(memory=None, memory_swap=None, cpus=None, cpu_shares=None, cpu_period=None,
                 cpu_quota=None, cpuset_cpus=None, pids_limit=None) -> Limits:
    """Turn ``run``'s flag values (strings as typed, or None) into checked ``Limits``."""
    mem = parse_bytes("--memory", memory) if memory is not None else None
    mem = mem or None  # -m 0: no limit, as in Docker
    if mem is not None and mem < MIN_MEMORY:
        raise MinidockerError("Minimum memory limit allowed is 6MB (--memory)")
    swap = _memory_swap(memory_swap, mem)
    period, quota = _cpu_quota(cpus, cpu_period, cpu_quota)
    shares = _int_in("--cpu-shares", cpu_shares, 2, 262144)
    return Limits(memory=mem, memory_swap=swap, cpu_quota=quota, cpu_period=period,
                  cpu_shares=shares, cpuset_cpus=_cpuset(cpuset_cpus),
                  pids_limit=_pids(pids_limit))


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
    if text is None:
        return None
    try:
        wanted = parse_cpu_list(text)
    except ValueError:
        raise MinidockerError(f"invalid value '{text}' for --cpuset-cpus: use a CPU list "
                              "such as 0, 0-1 or 0,2") from None
    missing = wanted - online_cpus()
    if missing:
        have = ",".join(map(str, sorted(online_cpus())))
        raise MinidockerError(f"Requested CPUs are not available - requested {text}, "
                              f"available: {have}")
    return text


def _pids(text):
    value = _int_in("--pids-limit", text, -1, 2**31)
    return None if value is None or value <= 0 else value  # 0 and -1 mean unlimited


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


