"""Checker of lab 06 — a monitor: keep a command running, logged and accounted for, after the
caller has returned.

The student writes a minimal monitor, the job of minidocker's ``container/monitor.py`` (and of
podman's conmon): detach from the caller (fork, setsid, fork again), capture a command's stdout
and stderr as JSON lines, record its exit code in a state file, and reap every child. Each step
is checked on real processes, through what the kernel shows: a process's parent, session and
terminal (``/proc/<pid>/stat``), the children a caller still has (``waitpid``), the lines and
the file the student's code wrote, a zombie that should not be there.

The student's functions are called by a *caller*, a child the checker forks for the purpose:
so an orphan goes to the sandbox's PID 1 (the checker), never back to the caller, exactly as a
detached monitor goes to init when ``minidocker run -d`` exits. The files live in a tmpfs that
each step's sandbox mounts on a scratch directory, gone when the step ends.

Man pages: fork(2), setsid(2), credentials(7), pipe(7), select(2), waitpid(2), rename(2), proc(5).
Used by: ``minidocker lab check 06``; the lab is labs/06-lifecycle/.
"""

import json
import os
import re
import select
import signal
import time
from collections.abc import Callable
from pathlib import Path

from minidocker.labs.framework import Lab, Step, function, scratch_workspace
from minidocker.labs.sandbox import (
    CheckFailed,
    call_student,
    fork_with_pipe,
    in_child,
    mount_scratch,
    received,
    send_answer,
)

SH = "/bin/sh"
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")  # RFC 3339, UTC, as Docker's
BIG = 100_000  # bytes of one stderr line: more than a pipe holds (64 KiB), so both must be read
# Step 2's command: lines on both streams, one longer than a pipe, a last one with no newline.
CHATTY = [SH, "-c", f"echo one; echo two >&2; head -c {BIG} /dev/zero | tr '\\0' x >&2; "
          "echo >&2; echo three; printf four; exit 5"]
EXPECTED = {"stdout": ["one\n", "three\n", "four"], "stderr": ["two\n", "x" * BIG + "\n"]}


def scratch_dir(scratch: str) -> Path:
    mount_scratch(scratch)  # gone with the sandbox
    return Path(scratch)


# --- the caller: a child of the checker that calls the student's function --------------------------

def in_caller(body: Callable[[], dict]) -> dict:
    """Run ``body`` in a forked child, the *caller*, and return the dict it returns; what it
    raised is raised here (a ``NotImplementedError`` stays one). The caller is reaped."""
    return in_child(body, "the process that called your function died before it could report")


def children_left() -> str:
    """In the caller: "none", "running" (a child not yet exited) or "zombie" (exited, not
    reaped): what waitpid(-1, WNOHANG) says."""
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return "none"
    return "running" if pid == 0 else "zombie"


def stat(pid: int) -> dict:
    """A few fields of /proc/<pid>/stat (proc(5)): state, ppid, session, tty_nr."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return {}
    fields = text.rsplit(")", 1)[1].split()
    return {"state": fields[0], "ppid": int(fields[1]), "session": int(fields[3]),
            "tty_nr": int(fields[4])}


def wait_until(condition: Callable[[], object], timeout: float, poll: float = 0.01):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            return result
        time.sleep(poll)
    return result


def reap_all() -> None:
    """The checker is the sandbox's init: reap the orphans that came to it."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# --- step 1: detach -------------------------------------------------------------------------------

def check_detach(student, scratch: str) -> str:
    spawn_detached = function(student, "spawn_detached")
    report = scratch_dir(scratch) / "detached.json"

    def work():  # runs in the process the student detached
        written = report.with_suffix(".part")  # renamed whole: the checker never reads half
        written.write_text(json.dumps({"pid": os.getpid()}))
        os.replace(written, report)
        time.sleep(3)

    def call() -> dict:
        began = time.monotonic()
        returned = call_student(spawn_detached, work)
        return {"returned": returned, "took": time.monotonic() - began,
                "children": children_left(), "caller": os.getpid(), "session": os.getsid(0)}

    seen = in_caller(call)
    if not wait_until(report.exists, timeout=5):
        raise CheckFailed("work() never ran: call it in the detached (grandchild) process")
    detached = json.loads(report.read_text())["pid"]
    try:
        if seen["took"] > 1:
            raise CheckFailed(f"spawn_detached() took {seen['took']:.1f} s, while work() runs "
                              "for 3 s: return as soon as the detached process has started, do "
                              "not wait for it")
        if seen["returned"] != detached:
            raise CheckFailed(f"spawn_detached() returned {seen['returned']!r}, but work() ran "
                              f"in PID {detached}: return the PID of the detached process (the "
                              "grandchild); send it up through a pipe")
        if seen["children"] == "running":
            raise CheckFailed("the caller still has a running child after spawn_detached() "
                              "returned: fork twice (the middle child exits at once), so that "
                              "the detached process is not the caller's child")
        if seen["children"] == "zombie":
            raise CheckFailed("the caller has a zombie child: reap the middle child with "
                              "waitpid() after it has exited")
        facts = stat(detached)
        if not facts:
            raise CheckFailed("the detached process was gone already: keep work() running")
        if facts["ppid"] == seen["caller"]:
            raise CheckFailed("the detached process's parent is the caller: fork twice")
        if facts["session"] == seen["session"]:
            raise CheckFailed("the detached process is in the caller's session: call "
                              "os.setsid() in the first child, before the second fork")
        if facts["session"] == detached:
            raise CheckFailed("the detached process leads its session, so it could still "
                              "acquire a controlling terminal: setsid() in the first child, "
                              "then fork again")
        if facts["tty_nr"] != 0:
            raise CheckFailed("the detached process still has a controlling terminal")
        return (f"returned PID {detached} in {seen['took'] * 1000:.0f} ms; its parent is now "
                f"PID {facts['ppid']} (the init it was given to), not the caller; its session "
                f"is {facts['session']} (not the caller's, and not its own); no terminal; the "
                "caller has no child left")
    finally:
        kill(detached)
        wait_until(lambda: stat(detached).get("state") in (None, "Z"), timeout=2)
        reap_all()


# --- step 2: capture the output --------------------------------------------------------------------

def read_log(log: Path) -> list[dict]:
    if not log.exists():
        raise CheckFailed(f"there is no log file {log}: create it (append one line per entry)")
    entries = []
    for number, line in enumerate(log.read_text().splitlines(), 1):
        try:
            entry = json.loads(line)
        except ValueError:
            raise CheckFailed(f"line {number} of the log is not JSON: {line[:60]!r}; write one "
                              "json.dumps(...) per line") from None
        if not isinstance(entry, dict) or set(entry) != {"log", "stream", "time"}:
            raise CheckFailed(f"line {number} of the log is {line[:80]!r}: give each entry "
                              'exactly the keys "log", "stream" and "time"')
        if not TIME.match(str(entry["time"])):
            raise CheckFailed(f"line {number}: time {entry['time']!r} is not like "
                              '"2026-01-31T12:34:56.789012Z" (UTC, RFC 3339)')
        entries.append(entry)
    return entries


def by_stream(entries: list[dict]) -> dict[str, list[str]]:
    streams: dict[str, list[str]] = {"stdout": [], "stderr": []}
    for entry in entries:
        if entry["stream"] not in streams:
            raise CheckFailed(f"stream {entry['stream']!r}: use \"stdout\" or \"stderr\"")
        streams[entry["stream"]].append(entry["log"])
    return streams


def shorten(lines: list[str]) -> list[str]:
    return [line if len(line) < 40 else f"{line[:10]}...({len(line)} characters)"
            for line in lines]


def expect_lines(entries: list[dict], expected: dict[str, list[str]]) -> None:
    found = by_stream(entries)
    for stream, lines in expected.items():
        if found[stream] != lines:
            raise CheckFailed(f"the log's {stream} lines are {shorten(found[stream])}, but the "
                              f"command printed {shorten(lines)}: one entry per line, the "
                              "newline kept; keep a half line until the rest comes (or the "
                              "end)")


def check_capture(student, scratch: str) -> str:
    capture = function(student, "capture")
    log = scratch_dir(scratch) / "chatty.log"
    started = []

    def on_start(pid):
        started.append((pid, stat(pid).get("ppid") if isinstance(pid, int) else None))

    code = call_student(capture, CHATTY, str(log), on_start)
    if code != 5:
        raise CheckFailed(f"capture() returned {code!r}; the command exited with 5: return "
                          "its exit code (wait_for gives it)")
    left = children_left()
    if left != "none":
        raise CheckFailed(f"after capture() the caller still has a {left} child: wait for the "
                          "command")
    if len(started) != 1 or started[0][1] != os.getpid():
        raise CheckFailed(f"on_start was called with {[pid for pid, _ in started]}: call "
                          "on_start(pid) once, with the PID of the command (your child)")
    entries = read_log(log)
    expect_lines(entries, EXPECTED)
    times = [e["time"] for e in entries]
    if times != sorted(times):
        raise CheckFailed("the log's times go backwards: take each entry's time when you write it")
    killed = call_student(capture, [SH, "-c", "kill -9 $$"], str(log.with_name("killed.log")),
                          lambda pid: None)
    if killed != 128 + signal.SIGKILL:
        raise CheckFailed(f"a command killed by SIGKILL: capture() returned {killed!r}, not 137 "
                          "(128 + the signal, as a shell says)")
    return (f"{len(entries)} entries, stdout {shorten(EXPECTED['stdout'])}, stderr "
            f"{shorten(EXPECTED['stderr'])} (longer than a pipe holds: both were read at once); "
            "exit code 5, and 137 for a SIGKILL; no zombie left")


# --- step 3: the state file ------------------------------------------------------------------------

def read_state(path: Path, partial: list[str]) -> dict | None:
    """The state file, or None while it is not there. A file caught half-written is noted."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError:
        partial.append(text)
        return None


def watch_monitor(body: Callable[[], object], state: Path,
                  finish: Callable[[dict, int], None],
                  timeout: float = 8) -> tuple[dict, dict, list[str]]:
    """Run ``body`` (the student's monitor) in a caller; watch the state file until it says
    running, call ``finish(running_state, caller_pid)``, then wait for it to say exited. Returns both
    states and any half-written file seen."""
    partial: list[str] = []
    caller, read_fd = fork_with_pipe(lambda write_fd: send_answer(write_fd, body))
    try:
        running = wait_until(lambda: _status_is(read_state(state, partial), "running"), timeout)
        if not running:
            _answer_of(caller, read_fd)
            raise CheckFailed(f"the state file never said running: write {state.name} as "
                              '{"status": "running", "pid": PID} once the command runs')
        finish(running, caller)
        exited = wait_until(lambda: _status_is(read_state(state, partial), "exited"), timeout)
        _answer_of(caller, read_fd)
        if not exited:
            raise CheckFailed('the state file never said exited: write {"status": "exited", '
                              '"pid": PID, "exit_code": CODE} when the command has ended')
        return running, exited, partial
    finally:
        kill(caller)
        reap_all()


def _status_is(state: dict | None, status: str) -> dict | None:
    return state if isinstance(state, dict) and state.get("status") == status else None


def _answer_of(caller: int, read_fd: int) -> None:
    """If the caller has answered already: raise what it raised."""
    if select.select([read_fd], [], [], 0)[0]:
        with os.fdopen(read_fd, "rb", closefd=True) as reader:
            line = reader.readline()
        if line:
            received(line)


def check_state(student, scratch: str) -> str:
    run_monitor = function(student, "run_monitor")
    directory = scratch_dir(scratch)
    go = directory / "go"
    waiting = [SH, "-c", f"echo started; while [ ! -e {go} ]; do sleep 0.02; done; "
               "echo done >&2; exit 3"]
    state, log = directory / "state.json", directory / "waiting.log"

    def release(running: dict, caller: int) -> None:
        pid = running.get("pid")
        if not isinstance(pid, int) or stat(pid).get("ppid") != caller:
            raise CheckFailed(f"the state file says running with pid {pid!r}, which is not the "
                              "command: write the command's PID (on_start gives it)")
        go.touch()

    running, exited, partial = watch_monitor(
        lambda: call_student(run_monitor, waiting, str(log), str(state)), state, release)
    if exited.get("exit_code") != 3 or exited.get("pid") != running["pid"]:
        raise CheckFailed(f"the state file says {exited}: the command (pid {running['pid']}) "
                          "exited with 3")
    expect_lines(read_log(log), {"stdout": ["started\n"], "stderr": ["done\n"]})

    killed_state = directory / "killed.json"
    sleeper = [SH, "-c", "echo started; exec sleep 30"]
    _, killed, more = watch_monitor(
        lambda: call_student(run_monitor, sleeper, str(directory / "killed.log"),
                             str(killed_state)),
        killed_state, lambda running, _caller: kill(running["pid"]))
    if killed.get("exit_code") != 128 + signal.SIGKILL:
        raise CheckFailed(f"after the command was killed with SIGKILL the state file says "
                          f"{killed}: the exit code is 137")
    partial += more
    if partial:
        raise CheckFailed(f"the state file was caught half-written ({partial[0][:40]!r}): write "
                          "a temporary file in the same directory, then os.replace() it onto "
                          "the state file, so a reader sees the old or the new file, whole")
    return (f"running with pid {running['pid']} (the command), then exited with 3; 137 for a "
            "command killed with SIGKILL; never caught half-written")


# --- step 4: all together: a detached monitor ---------------------------------------------------

def check_monitor(student, scratch: str) -> str:
    start_monitor = function(student, "start_monitor")
    directory = scratch_dir(scratch)
    go, state, log = directory / "go", directory / "state.json", directory / "web.log"
    command = [SH, "-c", f"echo hello; echo oops >&2; while [ ! -e {go} ]; do sleep 0.02; "
               "done; exit 7"]

    def call() -> dict:
        began = time.monotonic()
        returned = call_student(start_monitor, command, str(log), str(state))
        return {"returned": returned, "took": time.monotonic() - began,
                "children": children_left(), "caller": os.getpid(), "session": os.getsid(0)}

    seen = in_caller(call)
    monitor = seen["returned"]
    partial: list[str] = []
    try:
        if not isinstance(monitor, int) or not stat(monitor):
            raise CheckFailed(f"start_monitor() returned {monitor!r}: return the PID of the "
                              "monitor (what spawn_detached returns)")
        if seen["took"] > 2 or seen["children"] != "none":
            raise CheckFailed(f"start_monitor() took {seen['took']:.1f} s and left the caller "
                              f"with a {seen['children']} child: detach the monitor with "
                              "spawn_detached()")
        running = wait_until(lambda: _status_is(read_state(state, partial), "running"), 5)
        if not running:
            raise CheckFailed("the state file never said running: the detached process should "
                              "run run_monitor()")
        pid = running.get("pid")
        facts, monitor_facts = stat(pid), stat(monitor)
        if facts.get("ppid") != monitor:
            raise CheckFailed(f"the command's parent is PID {facts.get('ppid')}, not the "
                              f"monitor ({monitor}): the monitor itself starts the command")
        if monitor_facts["ppid"] == seen["caller"] or monitor_facts["session"] == \
                seen["session"]:
            raise CheckFailed("the monitor is still the caller's child, or in its session")
        go.touch()
        exited = wait_until(lambda: _status_is(read_state(state, partial), "exited"), 5)
        if not exited or exited.get("exit_code") != 7:
            raise CheckFailed(f"the state file says {exited or running}: the command exited "
                              "with 7")
        expect_lines(read_log(log), {"stdout": ["hello\n"], "stderr": ["oops\n"]})
        command_state = stat(pid).get("state")
        if command_state == "Z":
            raise CheckFailed("the command is a zombie: the monitor must wait for it")
        if wait_until(lambda: stat(monitor).get("state") in (None, "Z"), 5) is False:
            raise CheckFailed("the monitor is still running after the command ended: it should "
                              "exit once it has written the exit code")
        return (f"the monitor (PID {monitor}, parent {monitor_facts['ppid']}, own session) ran "
                f"the command (PID {pid}); log: hello on stdout, oops on stderr; exit code 7 "
                "in the state file; the command reaped; the monitor gone")
    finally:
        for pid in (monitor,) if isinstance(monitor, int) else ():
            kill(pid)
        reap_all()


LAB = Lab(
    directory="06-lifecycle",
    steps=(
        Step(1, "spawn_detached(work): fork, setsid, fork; the caller keeps no child",
             check_detach),
        Step(2, "capture(argv, log_path, on_start): stdout and stderr as JSON lines; exit code",
             check_capture),
        Step(3, "run_monitor(argv, log_path, state_path): running, then exited, in a state file",
             check_state),
        Step(4, "start_monitor(argv, log_path, state_path): all together, detached",
             check_monitor),
    ),
    cumulative=True,
    workspace=lambda: scratch_workspace("06"),
)
