"""Lab 06 — a monitor: a reference solution (spoilers: try the lab first).

The monitor detaches with the classic double fork, starts the command with two pipes as its
stdout and stderr, reads both with select() (one line of JSON per line of output), waits for
the command, and writes the state file atomically (temporary file + rename).

Check it: sudo minidocker lab check 06 labs/solutions/06-lifecycle.py
"""

import json
import os
import select
from datetime import UTC, datetime

from minidocker.labs.given import exec_command, wait_for

# --- given: exec_command(argv) and wait_for(pid), from minidocker.labs.given ------------


def now() -> str:
    """The time as Docker's logs write it: UTC, RFC 3339, microseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- the four steps -------------------------------------------------------------------------

def spawn_detached(work) -> int:
    """Step 1: run ``work()`` in a grandchild that is not ours and has its own session."""
    read_fd, write_fd = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(read_fd)
        os.setsid()  # a new session: no controlling terminal, no hangup from the caller's
        detached = os.fork()  # not a session leader, so it can never get a terminal back
        if detached == 0:
            os.close(write_fd)
            os.chdir("/")  # hold no directory of the caller's busy
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            try:
                work()
            finally:
                os._exit(0)
        os.write(write_fd, str(detached).encode())
        os._exit(0)  # the grandchild is an orphan now: the kernel gives it to init
    os.close(write_fd)
    with os.fdopen(read_fd) as reader:
        detached = int(reader.read())
    os.waitpid(middle, 0)  # reap the middle child: no zombie
    return detached


def capture(argv: list[str], log_path: str, on_start=lambda pid: None) -> int:
    """Step 2: run ``argv``; log its stdout and stderr as JSON lines; return its exit code."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(err_r)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        exec_command(argv)
    os.close(out_w)  # else we would hold the write ends open, and never see end-of-file
    os.close(err_w)
    on_start(pid)
    streams = {out_r: "stdout", err_r: "stderr"}
    partial = {out_r: b"", err_r: b""}
    with open(log_path, "ab") as log:
        def write(stream: str, line: bytes) -> None:
            entry = {"log": line.decode(errors="replace"), "stream": stream, "time": now()}
            log.write(json.dumps(entry).encode() + b"\n")
            log.flush()

        while streams:
            for fd in select.select(list(streams), [], [])[0]:
                data = os.read(fd, 65536)
                if not data:  # end of file: the command (and its children) closed it
                    if partial[fd]:
                        write(streams[fd], partial[fd])
                    os.close(fd)
                    del streams[fd]
                    continue
                *lines, partial[fd] = (partial[fd] + data).split(b"\n")
                for line in lines:
                    write(streams[fd], line + b"\n")
    return wait_for(pid)


def write_state(state_path: str, state: dict) -> None:
    """Replace the state file in one step: a reader sees the old file or the new, whole."""
    temporary = f"{state_path}.tmp-{os.getpid()}"
    with open(temporary, "w") as f:
        json.dump(state, f)
    os.replace(temporary, state_path)  # rename(2) is atomic within a filesystem


def run_monitor(argv: list[str], log_path: str, state_path: str) -> int:
    """Step 3: capture ``argv``, with its state (running, then exited) in ``state_path``."""
    started = {}

    def running(pid: int) -> None:
        started["pid"] = pid
        write_state(state_path, {"status": "running", "pid": pid, "started": now()})

    code = capture(argv, log_path, running)
    write_state(state_path, {"status": "exited", "pid": started["pid"], "exit_code": code,
                             "finished": now()})
    return code


def start_monitor(argv: list[str], log_path: str, state_path: str) -> int:
    """Step 4: a detached monitor for ``argv``; returns its PID at once."""
    return spawn_detached(lambda: run_monitor(argv, log_path, state_path))
