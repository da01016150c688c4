"""The container's log: what it printed, one JSON object per line, as Docker's json-file driver.

The monitor reads the container's stdout and stderr pipes and appends (jsonfile.py's
``LogWriter``), for every line::

    {"log": "hello\\n", "stream": "stdout", "time": "2026-11-22T22:04:52.123456Z"}

to ``<container>/container-json.log``. A chatty container cannot fill the disk: when the file
grows past ``max-size`` it is renamed to ``.1`` (``.1`` to ``.2``, ...; at most ``max-file``
files) and a new one begins — log rotation, as logrotate(8) does it for daemons.

``minidocker logs`` reads the files back, oldest first; ``-f`` keeps reading as the file grows
(and follows a rotation, by noticing the name now points to a new inode).

``--log-driver`` chooses: ``json-file`` (the default), ``local`` (Docker's compact binary
format; minidocker writes the same JSON lines, so ``logs`` reads both) or ``none``: nothing is
kept, and ``logs`` refuses, as Docker's does.

Man pages: pipe(7), rename(2), inotify(7) (which ``-f`` could use; it polls instead).
"""

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from minidocker.cgroups.limits import parse_bytes
from minidocker.container.jsonfile import LogWriter, NoLog
from minidocker.errors import MinidockerError

LOG_DRIVERS = ("json-file", "local", "none")


def open_log(path: Path, log_config: dict) -> LogWriter | NoLog:
    """The writer the container's LogConfig asks for."""
    if log_config.get("Type") == "none":
        return NoLog()
    options = log_config.get("Config") or {}
    max_file = options.get("max-file", "3")
    if not str(max_file).isdigit():
        raise MinidockerError(f"--log-opt max-file={max_file}: give a number of files, e.g. 3")
    return LogWriter(path, parse_bytes("--log-opt max-size", options.get("max-size", "10m")),
                     int(max_file))


def check_log_config(driver: str, options: dict) -> dict:
    """``--log-driver`` and its ``--log-opt``s as Docker's HostConfig.LogConfig, checked now
    rather than when the first line is written."""
    if driver not in LOG_DRIVERS:
        raise MinidockerError(f"invalid --log-driver '{driver}': minidocker has "
                              f"{', '.join(LOG_DRIVERS)}")
    if driver == "none":
        if options:
            raise MinidockerError(f"--log-driver none keeps no log: drop --log-opt "
                                  f"{next(iter(options))}")
        return {"Type": "none", "Config": {}}
    config = {"max-size": "10m", "max-file": "3"}
    for key, value in options.items():
        if key not in config:
            raise MinidockerError(f"unknown log opt '{key}={value}' for the {driver} log "
                                  "driver: use max-size=SIZE or max-file=N")
        config[key] = str(value)
    parse_bytes("--log-opt max-size", config["max-size"])
    if not config["max-file"].isdigit() or int(config["max-file"]) < 1:
        raise MinidockerError(f"--log-opt max-file={config['max-file']}: give a number of "
                              "files, 1 or more")
    return {"Type": driver, "Config": config}


def check_readable(log_config: dict) -> None:
    """``logs`` of a container whose driver keeps nothing: Docker's refusal."""
    if log_config.get("Type") == "none":
        raise MinidockerError('configured logging driver does not support reading (the '
                              'container runs with --log-driver none)')


@dataclass
class LogEntry:
    stream: str
    text: str
    time: str


def log_files(path: Path) -> list[Path]:
    """The log and its rotated predecessors, oldest first."""
    rotated = sorted(path.parent.glob(f"{path.name}.*"), key=lambda p: -int(p.suffix[1:])
                     if p.suffix[1:].isdigit() else 0)
    return [p for p in rotated if p.suffix[1:].isdigit()] + ([path] if path.exists() else [])


def read_entries(path: Path, tail: int | None = None) -> list[LogEntry]:
    """Every entry of the log files (the last ``tail`` ones), oldest first."""
    entries: deque[LogEntry] = deque(maxlen=tail if tail is not None and tail >= 0 else None)
    for file in log_files(path):
        with open(file, "rb") as f:
            entries.extend(_parse(f.read().splitlines()))
    return list(entries)


def _parse(lines: list[bytes]) -> Iterator[LogEntry]:
    for line in lines:
        try:
            entry = json.loads(line)
            yield LogEntry(entry["stream"], entry["log"], entry["time"])
        except (ValueError, KeyError):
            continue  # a line cut by a crash mid-write: skipped


def follow(path: Path, still_running: Callable[[], bool], tail: int | None = None,
           poll: float = 0.1) -> Iterator[LogEntry]:
    """The last ``tail`` entries, then every entry added from now on, until the container
    stops. The current file is read through one open handle, so no line is shown twice or
    lost between "what was there" and "what came"."""
    f = _open(path)
    inode = os.fstat(f.fileno()).st_ino if f else None
    old = [e for file in log_files(path)[:-1] if f for e in read_entries(file)]
    buffer = f.read() if f else b""
    *lines, buffer = buffer.split(b"\n")
    old += list(_parse(lines))
    yield from old[len(old) - tail:] if tail is not None and 0 <= tail < len(old) else old
    while True:
        chunk = f.read() if f else b""
        if chunk:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            yield from _parse(lines)
            continue
        if _rotated(path, inode):  # the monitor began a new file: read that from its start
            if f:  # (after what the old one got since our last read)
                *lines, buffer = (buffer + f.read()).split(b"\n")
                yield from _parse(lines)
                f.close()
            f = _open(path)
            inode = os.fstat(f.fileno()).st_ino if f else None
            continue
        if not still_running():
            break
        time.sleep(poll)
    if f:
        f.close()


def _open(path: Path):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


def _rotated(path: Path, inode: int | None) -> bool:
    try:
        return path.stat().st_ino != inode
    except FileNotFoundError:
        return False
