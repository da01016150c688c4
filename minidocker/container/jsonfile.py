"""The json-file log driver's writer: one JSON object per line of output, rotated by size.

For every line the container prints, the monitor appends::

    {"log": "hello\\n", "stream": "stdout", "time": "2026-11-22T22:04:52.123456Z"}

to ``<container>/container-json.log``; past ``max-size`` bytes the file is renamed to ``.1``
(``.1`` to ``.2``, ...; at most ``max-file`` files) and a new one begins — log rotation, as
logrotate(8) does it for daemons. Reading the log back (``minidocker logs``) and checking the
``--log-opt`` values is logs.py's work.

This module is kept to the standard library's small modules: the detached container's watcher
(watch.py) writes the log for the container's whole life, and every module it imports is
memory it keeps (see relay.py).

Man pages: pipe(7), rename(2).
"""

import json
import os
import time

LOG_NAME = "container-json.log"


def timestamp() -> str:
    """Now, as Docker writes a log line's time (RFC 3339, UTC, microseconds)."""
    seconds = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + \
        f".{int(seconds % 1 * 1_000_000):06d}Z"


class LogWriter:
    """Append a container's output to its json-file log, rotating by size."""

    def __init__(self, path: "str | os.PathLike", max_size: int = 10 * 2**20, max_file: int = 3):
        self.path = os.fspath(path)
        self.max_size, self.max_file = max_size, max(1, max_file)
        self.partial = {"stdout": b"", "stderr": b""}
        self.file = self.open()

    def write(self, stream: str, data: bytes) -> None:
        """Log complete lines; keep a trailing half line until its newline comes."""
        data = self.partial[stream] + data
        *lines, self.partial[stream] = data.split(b"\n")
        for line in lines:
            self._append(stream, line + b"\n")

    def flush_partial(self) -> None:
        """At the end of the output: log what was printed without a final newline."""
        for stream, rest in self.partial.items():
            if rest:
                self._append(stream, rest)
            self.partial[stream] = b""

    def _append(self, stream: str, line: bytes) -> None:
        entry = {"log": line.decode(errors="replace"), "stream": stream, "time": timestamp()}
        self.file.write(json.dumps(entry).encode() + b"\n")
        if self.file.tell() >= self.max_size:
            self.rotate()

    def rotate(self) -> None:
        self.file.close()
        if self.max_file == 1:
            os.unlink(self.path)  # one file: start a new one (a follower sees a new inode)
        else:
            for n in range(self.max_file - 1, 0, -1):
                older = f"{self.path}.{n}"
                if n == self.max_file - 1 and os.path.exists(older):
                    os.unlink(older)
                previous = f"{self.path}.{n - 1}" if n > 1 else self.path
                if os.path.exists(previous):
                    os.rename(previous, older)
        self.file = self.open()

    def open(self):
        """The log file, unbuffered: each line is one write(2) at once (a follower sees it),
        and no buffer (a page or two) is kept per container by the process that logs many."""
        return open(self.path, "ab", buffering=0)

    def close(self) -> None:
        self.flush_partial()
        self.file.close()


class NoLog:
    """``--log-driver none``: the output goes to attached clients only, never to disk."""

    def write(self, stream: str, data: bytes) -> None:
        pass

    def flush_partial(self) -> None:
        pass

    def close(self) -> None:
        pass
