"""Stage 6 — a container's resources: what it uses (``docker stats``) and what it may use
(``docker update``).

``stats`` asks the container's cgroup driver (stage 3, v1 or v2: the caller never knows which)
and the kernel's other counters, and returns them in the Engine API's ``ContainerStats``
shape: ``cpu_stats`` with the machine's own CPU time beside the container's (``/proc/stat``:
a CPU percentage is the container's share of the time that passed on all CPUs), the
``memory_stats`` with the controller's own ``memory.stat`` (the docker CLI subtracts the page
cache it can reclaim), ``pids_stats``, ``blkio_stats`` (bytes per device and operation) and
``networks`` (``/proc/<pid>/net/dev``, read through PID 1, so it is the container's own
network namespace that answers).

``update`` changes the limits of a container, running or not: the new ``Limits`` are the old
ones with what was asked replaced, written to its cgroup by the same ``set_limits`` that start
uses, then to its record (so ``inspect`` and the next start see them); the restart policy
goes to the record, where the monitor reads it at the next exit.

Man pages: cgroups(7), proc(5) (/proc/stat, /proc/<pid>/net/dev).
Spec: Docker Engine API v1.50, "ContainerStats", "ContainerUpdate".
"""

import dataclasses
import os
from datetime import UTC, datetime

from minidocker.cgroups.limits import Limits
from minidocker.cgroups.limits import online_cpus as cpus_online
from minidocker.container import records
from minidocker.container.config import RestartPolicy
from minidocker.container.lifecycle import ACTIVE
from minidocker.errors import MinidockerError

ZERO_TIME = "0001-01-01T00:00:00Z"


def stats(record: records.ContainerRecord, previous: dict | None = None) -> dict:
    """One sample of ``GET /containers/{id}/stats``; ``previous`` (the sample before) becomes
    its ``precpu_stats``, as dockerd sends it."""
    running = record.status in ACTIVE and record.State["Pid"] > 0
    sample = _sample(record) if running else None
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    result = {
        "id": record.Id, "name": f"/{record.Name}",
        "read": now if sample else ZERO_TIME,
        "preread": previous["read"] if previous else ZERO_TIME,
        "num_procs": 0, "storage_stats": {},
        "cpu_stats": sample["cpu"] if sample else {"cpu_usage": {"total_usage": 0},
                                                   "throttling_data": {}},
        "precpu_stats": previous["cpu_stats"] if previous else
        {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
        "memory_stats": sample["memory"] if sample else {},
        "pids_stats": sample["pids"] if sample else {},
        "blkio_stats": sample["blkio"] if sample else _no_blkio(),
    }
    if sample and sample["networks"]:
        result["networks"] = sample["networks"]
    return result


def _sample(record: records.ContainerRecord) -> dict:
    used = record.cgroup().stats()
    return {
        "cpu": {"cpu_usage": {"total_usage": used.cpu_usage_ns,
                              "usage_in_usermode": used.cpu_user_ns,
                              "usage_in_kernelmode": used.cpu_system_ns},
                "system_cpu_usage": system_cpu_ns(), "online_cpus": online_cpus(),
                "throttling_data": {"periods": 0, "throttled_periods": 0,
                                    "throttled_time": 0}},
        "memory": {"usage": used.memory_usage, "stats": used.memory_stat,
                   "limit": used.memory_limit or host_memory(),
                   "failcnt": used.oom_kills},
        "pids": {"current": used.pids_current,
                 **({"limit": used.pids_limit} if used.pids_limit else {})},
        "blkio": {**_no_blkio(), "io_service_bytes_recursive": [
            {"major": major, "minor": minor, "op": op, "value": value}
            for major, minor, op, value in used.io_bytes]},
        "networks": networks(record.State["Pid"]) if record.HostConfig.NetworkMode.is_private
        else {},
    }


def _no_blkio() -> dict:
    return {k: None for k in ("io_service_bytes_recursive", "io_serviced_recursive",
                              "io_queue_recursive", "io_service_time_recursive",
                              "io_wait_time_recursive", "io_merged_recursive",
                              "io_time_recursive", "sectors_recursive")}


def system_cpu_ns() -> int:
    """The machine's CPU time since boot, all CPUs, in ns: the first line of /proc/stat
    (user nice system idle iowait irq softirq steal, in clock ticks)."""
    with open("/proc/stat") as f:
        ticks = sum(int(v) for v in f.readline().split()[1:9])
    return ticks * (1_000_000_000 // os.sysconf("SC_CLK_TCK"))


def online_cpus() -> int:
    return len(cpus_online())


def host_memory() -> int:
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) * 1024


def networks(pid: int) -> dict:
    """Each interface of the network namespace of ``pid`` but ``lo``, with Docker's counter
    names, from /proc/<pid>/net/dev."""
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return {}
    result = {}
    for line in lines:
        name, _, numbers = line.partition(":")
        values = [int(v) for v in numbers.split()]
        if name.strip() == "lo" or len(values) < 12:
            continue
        result[name.strip()] = {
            "rx_bytes": values[0], "rx_packets": values[1], "rx_errors": values[2],
            "rx_dropped": values[3], "tx_bytes": values[8], "tx_packets": values[9],
            "tx_errors": values[10], "tx_dropped": values[11]}
    return result


# --- update --------------------------------------------------------------------------------------

def update(record: records.ContainerRecord, changes: Limits,
           restart: RestartPolicy | None = None) -> list[str]:
    """``docker update``: the limits set in ``changes`` (None: unchanged; ``pids_limit``
    -1: unlimited again) replace the container's, in its cgroup if it runs and in its record; the restart policy too. Returns
    the warnings of limits this cgroup version cannot apply."""
    wanted = {k: v for k, v in dataclasses.asdict(changes).items() if v is not None}
    if restart is not None and restart.Name != "no" and record.HostConfig.AutoRemove:
        raise MinidockerError("Restart policy cannot be updated because AutoRemove is enabled "
                              "for the container")
    with record.locked():
        old = record.HostConfig.Resources
        if "memory" in wanted and "memory_swap" not in wanted and old.memory_swap not in (
                None, -1):
            wanted["memory_swap"] = None  # Docker: swap follows memory unless given
        if {"cpu_quota", "cpu_period"} & wanted.keys() and "nano_cpus" not in wanted:
            wanted["nano_cpus"] = None  # a quota of its own: no longer --cpus
        new = dataclasses.replace(old, **wanted)
        if new.pids_limit is not None and new.pids_limit < 0:  # lifted: unlimited again
            new = dataclasses.replace(new, pids_limit=None)
        if new.memory_reservation and new.memory and new.memory_reservation > new.memory:
            raise MinidockerError("Minimum memory limit can not be less than memory "
                                  "reservation limit, see usage")
        if record.status in ACTIVE:
            _write_cgroup(record, dataclasses.replace(Limits(), **wanted))
        record.HostConfig.Resources = new
        if restart is not None:
            record.HostConfig.RestartPolicy = restart
    return record.cgroup().warnings(changes)


def _write_cgroup(record: records.ContainerRecord, changes: Limits) -> None:
    try:
        record.cgroup().set_limits(changes)
    except OSError as exc:
        raise MinidockerError(f"Cannot update container {record.Name}: the kernel refused "
                              f"the new limits ({exc.strerror or exc}); a memory limit below "
                              "what the container uses now cannot be set") from None
