"""Stage 6 — HEALTHCHECK: a process that runs is not yet a process that works.

``Up 3 minutes`` only says PID 1 has not exited; a web server can be up and answer nothing.
A healthcheck asks the container itself, again and again: a probe command runs *inside* it,
exactly as ``exec`` runs one (its cgroup, its namespaces, its user), and its exit code is the
verdict — 0 healthy, anything else unhealthy. Docker's rules (moby ``daemon/health.go``):

* the test comes from the image (``HEALTHCHECK CMD ...``) or from ``run --health-cmd``;
  ``CMD`` runs an argv, ``CMD-SHELL`` runs a line with ``/bin/sh -c``, ``NONE`` (and
  ``--no-healthcheck``) turns the image's check off;
* the first probe runs one ``Interval`` after the start (default 30 s), then one ``Interval``
  after the end of the previous one; during the ``StartPeriod`` the probes come every
  ``StartInterval`` (default 5 s) and a failure does not count yet — the status stays
  ``starting`` until the first success;
* a probe that outlives ``Timeout`` (default 30 s) is killed and counts as a failure
  (exit code -1, "Health check exceeded timeout");
* ``Retries`` failures in a row (default 3) make the container ``unhealthy``; one success
  makes it ``healthy`` again;
* ``State.Health`` keeps the status, the failing streak and the last five results, each
  output cut at 4096 bytes; ``ps`` shows ``(healthy)``; each change is a ``health_status``
  event.

Who runs the probes? In Docker, the daemon. Here, the container's monitor (monitor.py): the
probe is one more child in its select(2) loop, never a blocking wait, so the logs keep
flowing while a probe runs.

Spec: the Dockerfile reference, HEALTHCHECK; the Engine API's ``HealthConfig`` and
``Health`` objects. Man pages: setpgid(2), killpg(3), waitpid(2).
"""

import contextlib
import os
import re
import signal
import time
from dataclasses import dataclass, field

from minidocker import events
from minidocker.container import records
from minidocker.errors import MinidockerError
from minidocker.state import now

SECOND = 1_000_000_000  # the API counts durations in nanoseconds
DEFAULT_INTERVAL = DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_START_INTERVAL = 5 * SECOND
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096  # bytes of a probe's output kept in State.Health.Log


# --- the configuration: HealthConfig ----------------------------------------------------------

@dataclass(frozen=True)
class HealthConfig:
    """``Config.Healthcheck``: the test and its timing, in nanoseconds; 0 means the default."""

    Test: tuple[str, ...] = ()  # ("CMD", argv...), ("CMD-SHELL", line), ("NONE",); (): inherit
    Interval: int = 0
    Timeout: int = 0
    StartPeriod: int = 0
    StartInterval: int = 0
    Retries: int = 0

    @classmethod
    def from_dict(cls, data: dict | None) -> "HealthConfig":
        data = data or {}
        return cls(tuple(data.get("Test") or ()), *(int(data.get(name) or 0) for name in
                   ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries")))

    def to_dict(self) -> dict:
        durations = {"Interval": self.Interval, "Timeout": self.Timeout,
                     "StartPeriod": self.StartPeriod, "StartInterval": self.StartInterval,
                     "Retries": self.Retries}
        return {"Test": list(self.Test), **{k: v for k, v in durations.items() if v}}

    @property
    def enabled(self) -> bool:
        return bool(self.Test) and self.Test[0] != "NONE"

    @property
    def command(self) -> list[str]:
        """The probe's argv."""
        kind, *rest = self.Test
        return ["/bin/sh", "-c", rest[0]] if kind == "CMD-SHELL" else rest

    def seconds(self, name: str, default: int) -> float:
        return (getattr(self, name) or default) / SECOND


def merge(image: dict | None, requested: dict | None) -> dict | None:
    """The container's check: the request's fields over the image's (Docker's rule: an empty
    test or a 0 duration keeps the image's; ``NONE`` turns the image's check off)."""
    if not requested:
        return image or None
    ours, theirs = HealthConfig.from_dict(requested), HealthConfig.from_dict(image)
    if ours.Test[:1] == ("NONE",):
        return {"Test": ["NONE"]}
    merged = HealthConfig(ours.Test or theirs.Test, *(getattr(ours, name) or getattr(theirs, name)
                          for name in ("Interval", "Timeout", "StartPeriod", "StartInterval",
                                       "Retries")))
    return merged.to_dict() if merged.Test else None


def from_flags(cmd: str | None, interval: str | None, timeout: str | None,
               start_period: str | None, start_interval: str | None, retries: int | None,
               disabled: bool) -> dict | None:
    """``--health-*`` and ``--no-healthcheck`` as the docker CLI reads them."""
    given = [v for v in (cmd, interval, timeout, start_period, start_interval, retries)
             if v is not None]
    if disabled:
        if given:
            raise MinidockerError("--no-healthcheck conflicts with --health-* options: "
                                  "give one or the other")
        return {"Test": ["NONE"]}
    if not given:
        return None
    durations = {name: flag_duration(flag, text) for name, flag, text in (
        ("Interval", "--health-interval", interval), ("Timeout", "--health-timeout", timeout),
        ("StartPeriod", "--health-start-period", start_period),
        ("StartInterval", "--health-start-interval", start_interval))}
    if retries is not None and retries < 0:
        raise MinidockerError("--health-retries cannot be negative")
    return HealthConfig(("CMD-SHELL", cmd) if cmd else (), **durations,
                        Retries=retries or 0).to_dict()


def flag_duration(flag: str, text: str | None) -> int:
    nanoseconds = go_duration(text) if text else 0
    if nanoseconds < 0:
        raise MinidockerError(f"{flag} cannot be negative")
    if 0 < nanoseconds < 1_000_000:
        raise MinidockerError(f"{flag} cannot be less than 1ms")
    return nanoseconds


DURATION_UNITS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
                  "s": SECOND, "m": 60 * SECOND, "h": 3600 * SECOND}
DURATION_PART = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def go_duration(text: str) -> int:
    """Go's ``time.ParseDuration``, as Docker reads ``--interval=1m30s``: in nanoseconds.
    Exact decimals, as Go's integer arithmetic (decimal is imported here: off ``run``'s path)."""
    from decimal import Decimal, InvalidOperation

    sign, body = (-1, text[1:]) if text[:1] == "-" else (1, text.removeprefix("+"))
    if body == "0":
        return 0
    total, pos = Decimal(0), 0
    while pos < len(body):
        match = DURATION_PART.match(body, pos)
        if not match or match.group(1) in ("", "."):
            raise MinidockerError(f"time: invalid duration {text!r} (write e.g. 30s, 1m30s, 500ms)")
        try:
            total += Decimal(match.group(1)) * DURATION_UNITS[match.group(2)]
        except InvalidOperation:
            raise MinidockerError(f"time: invalid duration {text!r}") from None
        pos = match.end()
    if not body:
        raise MinidockerError(f"time: invalid duration {text!r}")
    return sign * int(total)


# --- the probes: run by the monitor -----------------------------------------------------------

@dataclass
class Probe:
    """One run of the test: a process in the container, its output pipe, its deadline."""

    pid: int  # the exec'd child here; its process group holds the command too
    output: int  # read end of its stdout+stderr
    start: str
    deadline: float
    data: bytearray = field(default_factory=bytearray)


class Prober:
    """The monitor's health clock for one run of a container: when to probe next, the probe
    that runs, and the verdicts written into the record."""

    def __init__(self, record: records.ContainerRecord, check: HealthConfig):
        self.record, self.check = record, check
        self.began = time.monotonic()
        self.probe: Probe | None = None
        self.next_due = self.began + self.interval()
        self.record.State.pop("Health", None)  # each start begins again, with no event
        self.save(status="starting", streak=0, log=[])

    # the monitor's loop asks these three

    def fds(self) -> list[int]:
        return [self.probe.output] if self.probe else []

    def wait_time(self) -> float:
        """Seconds until something is due: the next probe, or the running one's deadline."""
        due = self.probe.deadline if self.probe else self.next_due
        return max(0.0, due - time.monotonic())

    def tick(self, readable: list[int]) -> None:
        """Read what the probe printed, finish it if it ended or timed out, start one if due."""
        if self.probe and self.probe.output in readable:
            self.read_output()
        if self.probe:
            self.finish_if_done()
        elif time.monotonic() >= self.next_due:
            if self.container_running():
                self.start_probe()
            else:  # paused: no probe, as in Docker; try again one interval later
                self.next_due = time.monotonic() + self.interval()

    def stop(self) -> None:
        """PID 1 is gone: a probe still running goes with it."""
        if self.probe:
            self.kill()
            self.probe = None

    # one probe

    def container_running(self) -> bool:
        try:
            return self.record.reload().status == "running"
        except MinidockerError:  # removed meanwhile
            return False

    def interval(self) -> float:
        in_start_period = time.monotonic() - self.began < self.check.seconds("StartPeriod", 0)
        if in_start_period:
            return self.check.seconds("StartInterval", DEFAULT_START_INTERVAL)
        return self.check.seconds("Interval", DEFAULT_INTERVAL)

    def start_probe(self) -> None:
        from minidocker.container.exec import ExecSpec, start_in  # exec -> start -> create -> us

        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        started = now()
        try:
            pid = start_in(self.record, ExecSpec(self.check.command), write_fd)
        except MinidockerError as exc:  # e.g. the command is not in the image: a failure
            os.close(read_fd)
            self.verdict(started, 126 if "exec" in str(exc) else 1, str(exc))
            return
        finally:
            os.close(write_fd)
        os.set_blocking(read_fd, False)
        timeout = self.check.seconds("Timeout", DEFAULT_TIMEOUT)
        self.probe = Probe(pid, read_fd, started, time.monotonic() + timeout)

    def read_output(self) -> None:
        with contextlib.suppress(BlockingIOError):
            chunk = os.read(self.probe.output, 65536)
            if len(self.probe.data) < MAX_OUTPUT:
                self.probe.data += chunk[:MAX_OUTPUT - len(self.probe.data)]

    def finish_if_done(self) -> None:
        probe = self.probe
        pid, status = os.waitpid(probe.pid, os.WNOHANG)
        if pid:
            self.read_output()
            self.probe = None
            os.close(probe.output)
            self.verdict(probe.start, os.waitstatus_to_exitcode(status),
                         probe.data.decode(errors="replace"))
        elif time.monotonic() >= probe.deadline:
            self.kill()
            self.probe = None
            timeout = self.check.seconds("Timeout", DEFAULT_TIMEOUT)
            self.verdict(probe.start, -1, f"Health check exceeded timeout ({timeout:g}s)")

    def kill(self) -> None:
        """The probe and the command it became: one process group (see start_in)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.probe.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.probe.pid, 0)
        os.close(self.probe.output)

    # the verdict

    def verdict(self, started: str, exit_code: int, output: str) -> None:
        """Docker's rules: a success is healthy; a failure counts once the start period is
        over, and Retries of them in a row are unhealthy."""
        health = self.record.State.get("Health") or {}
        streak, status = health.get("FailingStreak", 0), health.get("Status", "starting")
        in_start_period = time.monotonic() - self.began < self.check.seconds("StartPeriod", 0)
        if exit_code == 0:
            streak, status = 0, "healthy"
        elif not in_start_period:
            streak += 1
            if streak >= (self.check.Retries or DEFAULT_RETRIES):
                status = "unhealthy"
        result = {"Start": started, "End": now(), "ExitCode": exit_code, "Output": output}
        self.save(status, streak, [*health.get("Log", []), result][-MAX_LOG_ENTRIES:])
        self.next_due = time.monotonic() + self.interval()

    def save(self, status: str, streak: int, log: list) -> None:
        """The verdict into the record; a change of status is also an event, as dockerd's
        ``health_status: healthy`` (not the first ``starting`` of each start)."""
        before = (self.record.State.get("Health") or {}).get("Status")
        with contextlib.suppress(MinidockerError), self.record.locked() as record:
            record.State["Health"] = {"Status": status, "FailingStreak": streak, "Log": log}
        self.record.State["Health"] = {"Status": status, "FailingStreak": streak, "Log": log}
        if before and before != status:
            events.health_status(self.record.Id, status, {"name": self.record.Name,
                                                          "image": self.record.Config.Image})


def prober_for(record: records.ContainerRecord) -> Prober | None:
    """The monitor's prober for this start, when the container has a check."""
    check = HealthConfig.from_dict(record.Config.Healthcheck)
    return Prober(record, check) if check.enabled else None


def status_of(record) -> str:
    """``healthy``, ``unhealthy``, ``starting``, or ``none`` (no check): ps's health filter."""
    return (record.State.get("Health") or {}).get("Status", "none")

