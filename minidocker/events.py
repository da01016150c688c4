"""The engine's event log: what happened to which object, as ``docker events`` shows it.

Every stage that changes something a user can name — a container started, an image tagged, a
network connected, a volume mounted — calls ``emit`` once. The event is one line of JSON in
Docker's shape, appended to ``$MINIDOCKER_ROOT/events.log``::

    {"Type": "container", "Action": "start", "Actor": {"ID": "3f2a...",
     "Attributes": {"image": "busybox", "name": "web"}}, "scope": "local",
     "time": 1733300000, "timeNano": 1733300000123456789}

dockerd keeps its events in memory (the last 256) and loses them when it stops; minidocker
has no daemon to keep them, so they live in a file every process can append to and every
reader can follow (``docker events`` is ``tail -f`` of it, filtered). The file is kept small:
when it passes ``MAX_BYTES`` it is renamed to ``events.log.1`` (the previous one goes), under
an flock(2) so two writers never rotate twice. Each event is one write(2) of one line to a
file opened with ``O_APPEND``: the kernel puts the line at the end as one piece, so lines of
two writers never interleave and a reader never sees half of one that was not being written.
An event that cannot be written is lost, never an error of the operation it reports.

Where it sits: below every stage (beside ``filters``, above ``errors`` and ``state``), so the
image store, the volumes, the networks and the containers all report their own changes, and
the CLI, the daemon and build reading them need nothing else.

Man pages: open(2) (O_APPEND), write(2), flock(2), rename(2).
Spec: Docker Engine API v1.50, "SystemEvents" (EventMessage); ``docker events --help``.
"""

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from minidocker.errors import MinidockerError
from minidocker.state import state_root

MAX_BYTES = 1 << 20  # the log (and its one rotated predecessor) each stay below 1 MiB
POLL_SECONDS = 0.1


def log_path() -> Path:
    return state_root() / "events.log"


def emit(kind: str, action: str, actor_id: str, attributes: dict | None = None) -> dict:
    """Record one event (``kind`` is Docker's Type: container, image, network, volume,
    daemon); returns it. Never raises: an event is news, not part of the operation."""
    now = time.time_ns()
    event = {"Type": kind, "Action": action,
             "Actor": {"ID": actor_id,
                       "Attributes": {k: str(v) for k, v in (attributes or {}).items()}},
             "scope": "local", "time": now // 1_000_000_000, "timeNano": now}
    line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
    with contextlib.suppress(OSError):
        _append(log_path(), line)
    return event


def health_status(container_id: str, status: str, attributes: dict | None = None) -> dict:
    """A container's health changed: Docker's ``health_status: healthy`` event."""
    return emit("container", f"health_status: {status}", container_id, attributes)


def _append(path: Path, line: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if os.fstat(fd).st_size + len(line) > MAX_BYTES:
            os.close(fd)
            fd = _rotate(path)
        os.write(fd, line)  # one write with O_APPEND: one whole line at the end
    finally:
        os.close(fd)


def _rotate(path: Path) -> int:
    """events.log -> events.log.1 under the rotation lock, once; a fresh log's fd."""
    lock = os.open(path.with_name("events.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_size > MAX_BYTES // 2:  # another writer may have rotated it
                os.replace(path, path.with_name(path.name + ".1"))
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    finally:
        os.close(lock)


# --- reading: the past, then (following) what comes ------------------------------------------

def _lines(path: Path) -> list[bytes]:
    try:
        return path.read_bytes().splitlines(keepends=True)
    except FileNotFoundError:
        return []


def _parse(line: bytes) -> dict | None:
    if not line.endswith(b"\n"):
        return None  # a line being written: read again later
    try:
        return json.loads(line)
    except ValueError:
        return None


def read(since_ns: int = 0, until_ns: int | None = None) -> list[dict]:
    """Every recorded event with ``since_ns <= timeNano <= until_ns``, oldest first."""
    path = log_path()
    events = [e for line in _lines(path.with_name(path.name + ".1")) + _lines(path)
              if (e := _parse(line))]
    return [e for e in events if e["timeNano"] >= since_ns
            and (until_ns is None or e["timeNano"] <= until_ns)]


def follow(since_ns: int | None = None, until_ns: int | None = None,
           stop=lambda: False) -> Iterator[dict]:
    """The events since ``since_ns`` (none of the past when None), then each new one as it is
    written, until ``until_ns`` passes or ``stop()`` says so."""
    tail = Tail()  # from the end as it is now: what comes next is not also in the past
    if since_ns is not None:
        yield from read(since_ns, until_ns)
    while not stop() and (until_ns is None or time.time_ns() <= until_ns):
        news = tail.poll()
        yield from (e for e in news if until_ns is None or e["timeNano"] <= until_ns)
        if not news:
            time.sleep(POLL_SECONDS)


class Tail:
    """``tail -F`` of the log: ``poll()`` returns the events written since the last call,
    without waiting. Follows the log across a rotation (a new inode at the same name: the
    old file's last lines are read from ``events.log.1``)."""

    def __init__(self):
        self.path = log_path()
        self.inode, self.offset = _position(self.path)
        self.pending = b""

    def poll(self) -> list[dict]:
        inode, size = _position(self.path)
        lines: list[bytes] = []
        if inode != self.inode:
            rotated = self.path.with_name(self.path.name + ".1")
            if self.inode and _position(rotated)[0] == self.inode:
                lines += self._read(rotated, self.offset)
            self.inode, self.offset, self.pending = inode, 0, b""
        if size > self.offset:
            lines += self._read(self.path, self.offset)
        return [e for line in lines if (e := _parse(line))]

    def _read(self, path: Path, offset: int) -> list[bytes]:
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset = offset + len(data)
        *complete, self.pending = (self.pending + data).split(b"\n")
        return [line + b"\n" for line in complete]


def _position(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except FileNotFoundError:
        return 0, 0
    return st.st_ino, st.st_size


# --- filters, as ``docker events --filter`` reads them -----------------------------------------

FILTER_KEYS = ("container", "event", "image", "label", "network", "type", "volume", "daemon",
               "scope")


def matches(event: dict, wanted: dict[str, list[str]]) -> bool:
    """Docker's event filters: each key named must match one of its values (keys AND'ed,
    values OR'ed). ``event`` matches the action before a ``:`` (``health_status``)."""
    actor = event["Actor"]
    attributes, kind = actor.get("Attributes", {}), event["Type"]
    names = {actor["ID"], attributes.get("name", "")}

    def one(key: str, value: str) -> bool:
        if key == "type":
            return kind == value
        if key == "event":
            return value in (event["Action"], event["Action"].split(":")[0])
        if key == "scope":
            return event.get("scope") == value
        if key == "label":
            name, sep, wanted_value = value.partition("=")
            return name in attributes and (not sep or attributes[name] == wanted_value)
        if key == "image":
            return value in (attributes.get("image"), *((actor["ID"], attributes.get("name"))
                                                         if kind == "image" else ()))
        if key in ("container", "network", "volume", "daemon"):
            own = kind == key and (value in names or (len(value) >= 3
                                                     and actor["ID"].startswith(value)))
            return own or attributes.get(key) == value
        return False

    return all(any(one(key, v) for v in values) for key, values in wanted.items())


def check_filters(wanted: dict[str, list[str]]) -> None:
    for key in wanted:
        if key not in FILTER_KEYS:
            raise MinidockerError(f"invalid filter '{key}': use one of {', '.join(FILTER_KEYS)}")


# --- times, as --since and --until take them --------------------------------------------------

DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                  "m": 60_000_000_000, "h": 3_600_000_000_000}
# Go's time.ParseDuration: a sign, then numbers (``1``, ``1.5``, ``.5``) each with its unit.
DURATION = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_time(text: str, now_ns: int | None = None) -> int:
    """``--since``/``--until`` as Docker reads them, in ns since the epoch: a Unix time
    (``1733300000``, ``1733300000.5``), an RFC 3339 date (``2026-12-04T21:00:00Z``;
    without a zone, local time), or a Go duration back from now (``10m``, ``1h30m``; a
    negative one, ``-10m``, is ahead of now)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d{1,9})?", text):
        seconds, _, fraction = text.partition(".")
        return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)
    sign, magnitude = (-1, text[1:]) if text[:1] == "-" else (1, text.removeprefix("+"))
    if magnitude and DURATION.sub("", magnitude) == "":
        return now_ns - sign * sum(int(float(n) * DURATION_UNITS[u.replace("μ", "µ")])
                                   for n, u in DURATION.findall(magnitude))
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MinidockerError(f"invalid time {text!r}: give a Unix timestamp, an RFC 3339 "
                              "date (2026-12-04T21:00:00Z) or a duration (10m, 1h30m)") from None
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000
