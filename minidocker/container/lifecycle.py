"""Stage 6 — the lifecycle after ``start``: the states a container goes through, and the
commands that move it between them.

::

    created --start--> running --(PID 1 exits)--> exited --start--> running ...
                       running --pause--> paused --unpause--> running
                       exited  --(restart policy)--> restarting --> running
                       any     --rm--> (gone)

``TRANSITIONS`` below is that table as data; notebook 06 draws it. The monitor (monitor.py)
moves a container to running, exited and restarting; these functions are the user's moves:
``stop`` sends the image's StopSignal (SIGTERM unless the image says otherwise), waits, then
SIGKILLs every process through the cgroup; ``kill`` sends one signal to PID 1; ``pause``
freezes the cgroup; ``rm`` removes what the container held. ``run_in_foreground`` is
``docker run`` without ``-d``: create, then start with this process as the monitor and our
terminal attached, signals passed on (``SignalProxy``). ``logs`` reads back what it printed.

The record is never trusted blindly: ``refresh()`` checks that the monitor still lives (by PID
*and* start time, so a reused PID cannot fool it). A container whose monitor was killed is
marked exited and its processes and cgroup are removed: the record follows the kernel's truth.

Man pages: kill(2), signal(7), cgroups(7) (freezer, cgroup.kill), waitpid(2).
Docker: ``docker run --help`` (--sig-proxy), ``docker logs --help``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from minidocker.container import records, teardown
from minidocker.container.config import parse_signal
from minidocker.container.logs import LogEntry, check_readable, follow, read_entries
from minidocker.container.names import check_name
from minidocker.errors import Conflict, MinidockerError, NotFound
from minidocker.filters import Filters
from minidocker.namespaces import SIGNALS_TO_FORWARD

POD_INFRA_LABEL = "io.minidocker.pod.infra"  # "true" on a pod's infra (cluster/pods.py)

# (from, command or event, to): the container state machine, drawn by notebook 06.
TRANSITIONS = [
    ("created", "start", "running"),
    ("running", "PID 1 exits", "exited"),
    ("running", "stop / kill", "exited"),
    ("running", "pause", "paused"),
    ("paused", "unpause", "running"),
    ("paused", "stop / kill", "exited"),
    ("exited", "restart policy", "restarting"),
    ("restarting", "back-off over", "running"),
    ("restarting", "stop", "exited"),
    ("exited", "start / restart", "running"),
    ("created", "rm", "removed"),
    ("exited", "rm", "removed"),
    ("running", "rm -f", "removed"),
]
ACTIVE = ("running", "paused", "restarting")


def refresh(record: records.ContainerRecord) -> records.ContainerRecord:
    """Make the record tell the truth: an active container whose monitor is gone is exited,
    and whatever it left in the kernel is released."""
    if record.status in ACTIVE and not monitor_alive(record):
        try:
            with record.locked():
                dead = record.status in ACTIVE and not monitor_alive(record)
        except MinidockerError:
            return record
        if dead:  # also a 'run --rm' whose CLI was killed: it is removed now
            teardown.finish(record, record.State.get("ExitCode") or 137,
                            error="its monitor died")
    return record


def monitor_alive(record: records.ContainerRecord) -> bool:
    """The monitor named by the record still runs: same PID and start time (a reused PID
    or a zombie has another, see ``records.start_time``)."""
    return record.monitor_alive()


def find(name: str) -> records.ContainerRecord:
    """A container as it is now; one that the refresh has just removed is not found."""
    record = refresh(records.find(name))
    if not still_recorded(record):
        raise NotFound(f"No such container: {name} (it was removed: its 'run --rm' ended)")
    return record


def current_records() -> list[records.ContainerRecord]:
    """Every container as it is now (``ps``), without those the refresh removed."""
    return [r for r in map(refresh, records.all_records()) if still_recorded(r)]


def still_recorded(record: records.ContainerRecord) -> bool:
    """False once ``refresh`` has finished a ``run --rm`` whose CLI was killed: the record
    in memory outlives the one on disk."""
    return (record.directory / "config.json").exists()


def start(record: records.ContainerRecord, attach: bool = False) -> int:
    """``start``: a created or exited container runs again, under a new monitor. Started by
    hand, its restart policy begins afresh (RestartCount 0), as Docker's does. A pod's infra
    container brings its running members into its new namespaces (``rejoin``)."""
    if record.status in ACTIVE:
        return record.State["Pid"]
    from minidocker.container.monitor import launch  # here: ps and logs never need it
    with record.locked():  # NotFound here, cleanly, if an rm or prune came first
        record.State["ManuallyStopped"] = False
        record.RestartCount = 0
    pid = launch(record, wait_for_attach=attach)
    if not attach:  # attached, it runs only once its client comes: no namespaces to join yet
        rejoin(record)
    return pid


def rejoin(infra: records.ContainerRecord) -> None:
    """A pod's infra container started anew holds new network, IPC and UTS namespaces; its
    members still running sit in the old ones, which only they keep alive. Each is restarted
    into the new ones, as podman's ``pod restart`` and Kubernetes' kubelet do when a pod's
    sandbox is replaced. (A plain ``--network container:X`` is left alone, as Docker leaves
    it.)"""
    if infra.Config.Labels.get(POD_INFRA_LABEL) != "true":
        return
    for member in records.all_records():
        if infra.Id in member.HostConfig.shared().values() and \
                refresh(member).status in ACTIVE:
            restart(member)


def run_in_foreground(record: records.ContainerRecord, sig_proxy: bool = True) -> int:
    """``docker run`` without ``-d``: this process is the container's monitor, with our
    terminal attached (output logged too, so ``logs`` works later); returns the exit code.
    With ``sig_proxy`` False (``--sig-proxy=false``) signals to us do not reach PID 1."""
    from minidocker.container import tty as terminal
    from minidocker.container.monitor import Monitor
    from minidocker.container.relay import Terminal

    interactive, raw = record.Config.OpenStdin, record.Config.Tty and record.Config.OpenStdin
    proxy = SignalProxy(raw_terminal=raw, forward=sig_proxy)
    monitor = Monitor(record, local=Terminal(interactive))
    with terminal.raw_terminal(0) if raw else contextlib.nullcontext():
        code = monitor.run(on_start=lambda container: proxy.deliver_to(container.process))
    if monitor.container and monitor.container.oom_killed:
        limit = record.HostConfig.Resources.memory or 0
        print(f"minidocker: container {record.Name} was killed by the kernel's OOM "
              f"killer: it went over its memory limit ({limit // 2**20} MiB, -m). Give it "
              "more memory or make it use less.", file=sys.stderr)
    return code


class SignalProxy:
    """docker run's --sig-proxy: signals sent to the CLI go on to the container's PID 1.
    Installed before the container starts; what arrives early is held and delivered later.
    With ``forward`` False (``--sig-proxy=false``) they are ignored instead: PID 1 never hears
    them, and the CLI — the container's monitor in a foreground run — stays with it (stop it
    with ``minidocker stop`` or ``kill``)."""

    def __init__(self, raw_terminal: bool, forward: bool = True):
        self.process, self.pending = None, []
        proxied = [s for s in SIGNALS_TO_FORWARD if s != signal.SIGWINCH]
        if raw_terminal:  # Ctrl-C arrives as a byte through the raw pty: pass on only
            proxied = [signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2]
        for signum in proxied:
            signal.signal(signum, self._received if forward else signal.SIG_IGN)

    def _received(self, signum, _frame) -> None:
        if self.process is None:
            self.pending.append(signum)
        else:
            self.process.signal(signum)

    def deliver_to(self, process) -> None:
        self.process = process
        for signum in self.pending:
            process.signal(signum)


def stop(record: records.ContainerRecord, timeout: int | None = None) -> None:
    """``stop``: StopSignal to PID 1, then SIGKILL to all after ``timeout`` seconds."""
    if record.status not in ACTIVE:
        return
    record.update_state(ManuallyStopped=True)  # no restart policy brings it back
    if timeout is None:
        timeout = record.Config.StopTimeout
    timeout = 10 if timeout is None else timeout
    cgroup = record.cgroup()
    if record.status == "paused":
        cgroup.thaw()  # a frozen process cannot act on its signal
    stop_signal = parse_signal(record.Config.StopSignal or "SIGTERM")
    _signal(record, stop_signal)
    record.event("kill", signal=stop_signal)  # Docker's stop: kill, die, stop
    if not _wait_for_exit(record, timeout):
        cgroup.kill_all()
        _wait_for_exit(record, None)  # the monitor records the end once it has torn down
    record.event("stop")


def kill(record: records.ContainerRecord, signame: str = "KILL") -> None:
    """``kill``: one signal to PID 1 (SIGKILL by default). Killed with SIGKILL or its stop
    signal, a container stays down; another signal (a HUP to reload) keeps its restart
    policy, as in Docker."""
    signum = parse_signal(signame)
    if record.status not in ("running", "paused"):
        raise Conflict(f"Cannot kill container {record.Name}: it is not running")
    if signum in (signal.SIGKILL, parse_signal(record.Config.StopSignal or "SIGTERM")):
        record.update_state(ManuallyStopped=True)
    if record.status == "paused" and signum == signal.SIGKILL:
        record.cgroup().thaw()
    _signal(record, signum)
    record.event("kill", signal=signum)
    if signum == signal.SIGKILL:
        _wait_for_exit(record, None)


def restart(record: records.ContainerRecord, timeout: int | None = None) -> None:
    stop(record, timeout)
    start(record.reload())


def pause(record: records.ContainerRecord) -> None:
    if record.status != "running":
        raise Conflict(f"Container {record.Name} is not running" if record.status != "paused"
                       else f"Container {record.Name} is already paused")
    record.cgroup().freeze()
    record.update_state(Status="paused")
    record.event("pause")


def unpause(record: records.ContainerRecord) -> None:
    if record.status != "paused":
        raise Conflict(f"Container {record.Name} is not paused")
    record.cgroup().thaw()
    record.update_state(Status="running")
    record.event("unpause")


def rm(record: records.ContainerRecord, force: bool = False, volumes_too: bool = False) -> None:
    """``rm``: a stopped container goes; a running one only with ``force`` (SIGKILL first);
    ``volumes_too`` (``rm -v``): its anonymous volumes with it."""
    refuse_if_joined(record)
    if record.status in ACTIVE:
        if not force:
            raise Conflict(f"You cannot remove a {record.status} container {record.Id[:12]}. "
                           "Stop it first, or use 'minidocker rm -f'.")
        record.update_state(ManuallyStopped=True)
        if end_watcher(record):
            record.event("die", exitCode=128 + signal.SIGKILL)  # what its end would have said
        for _ in range(3):  # a monitor may be restarting it right now: kill that run too
            teardown.release(record)  # thaw and SIGKILL through the cgroup: all of it
            if _wait_for_monitor(record, 2):
                break
    teardown.remove(record, volumes_too)


def end_watcher(record: records.ContainerRecord) -> bool:
    """``rm -f`` of a container whose monitor has become the lean watcher (watch.py): it only
    relays, and would load the whole engine to record an exit that we are about to delete.
    We end it instead (SIGKILL; PID 1 follows it, PR_SET_PDEATHSIG), and do the rest here.
    True if there was such a watcher."""
    pid = record.State.get("MonitorPid") or 0
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            is_watcher = b"minidocker.container.watch" in f.read()
    except OSError:
        return False
    if not (is_watcher and monitor_alive(record)):  # the start time: not a reused PID
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


def refuse_if_joined(record: records.ContainerRecord) -> None:
    """A container whose namespaces running containers joined (``--network container:X``,
    a pod's infra) is not removed under them, as podman refuses: they would be left in
    namespaces that no record names."""
    joined = sorted(other.Name for other in records.all_records()
                    if record.Id in other.HostConfig.shared().values()
                    and refresh(other).status in ACTIVE)
    if joined:
        raise Conflict(f"cannot remove container {record.Name}: running container(s) "
                       f"{', '.join(joined)} share its namespaces (stop or remove them first)")


def prune(chosen: Filters | None = None) -> tuple[list[str], int]:
    """``container prune``: remove every container that is not running (``chosen``:
    ``until=``, ``label=`` narrow them), and the directories of creates that were killed
    before they saved a record. No create runs meanwhile. The IDs removed, and the space
    reclaimed: their writable layers' bytes, as dockerd counts it."""
    removed, reclaimed, chosen = [], 0, chosen or Filters()
    with records.all_locked():
        for record in records.all_records():
            if (refresh(record).status not in ACTIVE
                    and chosen.match_prune(record.Config.Labels, record.Created)):
                size = rw_size(record)
                try:
                    rm(record)
                except Conflict:  # running containers joined its namespaces: it stays
                    continue
                removed.append(record.Id)
                reclaimed += size
        for directory in records.unrecorded_dirs():
            shutil.rmtree(directory, ignore_errors=True)
    return removed, reclaimed


def rw_size(record: records.ContainerRecord) -> int:
    """The bytes the container wrote: its overlay upper dir (``SizeRw``, ``ps -s``)."""
    from minidocker.volumes import disk_usage

    return disk_usage(record.upper) if record.upper.exists() else 0


def collect_layer_copies() -> list[str]:
    """``system prune``: remove the ``--userns private`` layer copies (security/userns.py)
    that no container needs any more; each container that exists, running or not, keeps its
    own. No create runs meanwhile."""
    from minidocker.security import userns  # here: ps and logs never need it

    with records.all_locked():
        in_use = {copy for r in records.all_records()
                  if r.HostConfig.UsernsMode.is_private and r.HostConfig.UsernsMap
                  for copy in userns.copies_of(r.Config.LowerDirs, r.HostConfig.UsernsMap)}
        return userns.collect_garbage(in_use)


def wait(record: records.ContainerRecord) -> int:
    """``wait``: block until the container stops; its exit code."""
    while refresh(record).status in ACTIVE or record.status == "created":
        time.sleep(0.1)  # a created container too: Docker waits for it to run and stop
        record.reload()
    return record.State["ExitCode"]


def logs(record: records.ContainerRecord, follow_output: bool = False,
         tail: str = "all") -> Iterator[LogEntry]:
    """``logs [-f] [--tail N]``: what the container printed, oldest first; with
    ``follow_output``, more as it comes, until the container stops. ``tail`` is read as
    dockerd reads it (Go's ``strconv.Atoi``): anything not a whole number, ``all`` or ``x``,
    means every line."""
    check_readable(record.HostConfig.LogConfig)
    count = int(tail) if re.fullmatch(r"[+-]?\d+", tail) else None

    def running() -> bool:
        try:
            return refresh(record.reload()).status in ACTIVE
        except MinidockerError:
            return False

    path = Path(record.LogPath)
    return iter(follow(path, running, count) if follow_output else read_entries(path, count))


def rename(record: records.ContainerRecord, new_name: str) -> None:
    old_name = record.Name
    if new_name == old_name:  # a bad request (400), as moby's
        raise MinidockerError(f"Renaming a container with the same name as its current "
                              f"name ({old_name}): give it a new name")
    with records.all_locked():
        new_name = records.claim_name(check_name(new_name))
        with record.locked():
            record.Name = new_name
    record.event("rename", oldName=f"/{old_name}")


def top(record: records.ContainerRecord, ps_args: list[str] | None = None) -> str:
    """``top``: the container's processes, as ``ps -f`` on the host shows them (host PIDs)."""
    if record.status not in ("running", "paused"):
        raise Conflict(f"Container {record.Name} is not running")
    pids = record.cgroup().pids()
    if not pids:
        return ""
    result = subprocess.run(["ps", *(ps_args or ["-f"]), "-p", ",".join(map(str, pids))],
                            capture_output=True, text=True)
    if result.returncode not in (0, 1) or result.stderr.strip():  # 1: none left, or a bad flag
        why = (result.stderr.strip() or f"exit status {result.returncode}").splitlines()[0]
        raise MinidockerError(f"ps failed: {why} (top passes its options to ps(1): see "
                              "'ps --help all')")
    return result.stdout


def _signal(record: records.ContainerRecord, signum: int) -> None:
    """``signum`` to PID 1, if there is one: between two runs (``restarting``) the record's
    Pid is 0, and kill(2) with pid 0 would signal *our own* process group."""
    pid = record.State["Pid"]
    if pid > 0 and record.HostConfig.Runtime == "runc":
        from minidocker.container import runc  # its bundle's modules only for its containers

        runc.kill(record.Id, signum)  # runc kill: the OCI runtime's own word for it
    elif pid > 0:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _wait_for_exit(record: records.ContainerRecord, timeout: float | None) -> bool:
    """Wait until the record says the container has ended; False after ``timeout`` seconds.
    ``None``: after a SIGKILL, as long as it takes, as moby's ``Kill`` (its monitor ends it
    once its network and cgroup are released: seconds on a slow machine; a monitor that died
    is found out by ``refresh``)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            if refresh(record.reload()).status not in ACTIVE:
                return True
        except MinidockerError:
            return True  # removed meanwhile
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _wait_for_monitor(record: records.ContainerRecord, timeout: float) -> bool:
    """Wait until the container's monitor is done with it; False if it still holds it. A
    monitor holds ``monitor.lock`` while it watches the container: a monitor process until it
    ends, the daemon's monitor host (which stays, for the others) until it lets this one go."""
    deadline = time.monotonic() + timeout
    while _monitor_holds(record):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _monitor_holds(record: records.ContainerRecord) -> bool:
    try:
        fd = os.open(record.directory / "monitor.lock", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # free: nobody watches it
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
