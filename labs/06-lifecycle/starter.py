"""Lab 06 — a monitor: keep a command running, logged and accounted for, after you return.

``minidocker run -d`` returns at once, and yet someone must hold the container's output, write
its log, wait for it and record how it ended. That someone is the *monitor* (podman's conmon;
minidocker's container/monitor.py). Here you write a small one, with ``os`` and ``select``:

    spawn_detached(work)                         step 1: fork, setsid, fork
    capture(argv, log_path, on_start)            step 2: stdout and stderr as JSON lines
    run_monitor(argv, log_path, state_path)      step 3: the state file, running then exited
    start_monitor(argv, log_path, state_path)    step 4: all together, detached

Check your work:

    sudo minidocker lab check 06                # this file
    sudo minidocker lab check 06 PATH           # a copy of it

Steps and hints: labs/06-lifecycle/README.md. Man pages: fork(2), setsid(2), credentials(7),
pipe(7), select(2), waitpid(2), rename(2).
"""

import json  # json.dumps, json.dump
import os  # os.fork, os.setsid, os.pipe, os.dup2, os.read, os.waitpid, os.replace, os._exit
import select  # select.select
from datetime import datetime, timezone

from minidocker.labs.given import exec_command, wait_for  # noqa: F401

# --- given: exec_command(argv) and wait_for(pid), from minidocker.labs.given ------------


def now() -> str:
    """The time as Docker's logs write it: UTC, RFC 3339, microseconds."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- yours: one function per step --------------------------------------------------------------

def spawn_detached(work) -> int:
    """Step 1: run ``work()`` in a process that is no child of the caller and has a session of
    its own; return its PID at once (do not wait for ``work``). The caller keeps no child, not
    even a zombie."""
    # TODO Step 1: a pipe; fork; in the child: setsid, fork again; the grandchild calls work()
    #              and then os._exit(0); the child sends the grandchild's PID up the pipe and
    #              exits. The caller reads the PID and reaps the child (waitpid).
    raise NotImplementedError("Step 1: spawn_detached() is not written yet")


def capture(argv: list[str], log_path: str, on_start=lambda pid: None) -> int:
    """Step 2: run ``argv`` with its stdout and stderr going into two pipes; call
    ``on_start(pid)`` once it runs; append one JSON line per line of output to ``log_path``,
    ``{"log": "hello\\n", "stream": "stdout", "time": now()}``; wait for the command and
    return its exit code."""
    # TODO Step 2: two pipes; fork; the child puts their write ends on fds 1 and 2 and execs.
    #              The parent closes the write ends, reads both read ends with select() until
    #              both are at end-of-file, keeps half lines until their newline comes, then
    #              waits for the command.
    raise NotImplementedError("Step 2: capture() is not written yet")


def run_monitor(argv: list[str], log_path: str, state_path: str) -> int:
    """Step 3: ``capture`` the command, with its state in ``state_path``: first
    ``{"status": "running", "pid": PID}``, at the end ``{"status": "exited", "pid": PID,
    "exit_code": CODE}``; a reader must never find the file half-written. Return the code."""
    # TODO Step 3: write the state from on_start, and again after capture() returns; each time
    #              to a temporary file in the same directory, then os.replace() it.
    raise NotImplementedError("Step 3: run_monitor() is not written yet")


def start_monitor(argv: list[str], log_path: str, state_path: str) -> int:
    """Step 4: start a detached monitor (``run_monitor``) for ``argv``; return its PID at
    once."""
    # TODO Step 4: one line, with the functions of steps 1 and 3.
    raise NotImplementedError("Step 4: start_monitor() is not written yet")
