"""Where a student's code runs during a check: a throwaway sandbox that plays "the host".

A lab asks the student to unshare, mount, pivot_root and set hostnames: things that would change
this machine if they ran here. So every step runs in a *sandbox*: a forked process that is PID 1
of its own PID namespace and has its own mount, UTS and IPC namespaces. For the checks the
sandbox *is* the host: its hostname, its namespaces and its mount table are what "the host is
unchanged" is measured against.

Its mounts are private towards the real machine, then made *shared* again inside, the way a
systemd host's are. A mount that the student forgets to make private therefore propagates back
into the sandbox, where the checker sees it (mount_namespaces(7), "shared subtrees").

Nothing outlives a check: when the sandbox's PID 1 exits, the kernel kills every process left in
its PID namespace, and the mount namespace, with all its mounts, goes with its last process.
A keeper process waits for the sandbox and kills it when a step runs past its time.

Man pages: pid_namespaces(7) mount_namespaces(7) unshare(2) fork(2) pipe(2) prctl(2) proc(5).
Used by: every lab checker (``minidocker lab check``).
"""

import json
import os
import select
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from minidocker import kernel

PASS, FAIL, TODO = "PASS", "FAIL", "TODO"
# Where code that is not the student's lives: this package, Python's library, frozen modules.
NOT_THE_STUDENTS = tuple({str(Path(__file__).resolve().parents[1]) + os.sep,
                          sys.prefix + os.sep, sys.base_prefix + os.sep, "<"})
NAMESPACE_FILES = ("uts", "ipc", "mnt", "net", "pid", "pid_for_children", "cgroup", "user")

# The sandbox's own /proc, opened before any student code runs. Files are opened *relative to
# it* (openat(2)), so they stay readable even if the student mounts something over /proc.
_host_proc: int | None = None


class CheckFailed(Exception):
    """The student's code ran, but the kernel shows something other than what the step asks.
    The message says what was seen and what to do."""


@dataclass
class Outcome:
    status: str  # PASS, FAIL or TODO
    detail: str  # what the checker saw, or what is missing


# --- the sandbox --------------------------------------------------------------------------------

def run_sandboxed(check: Callable[[], str], timeout: float) -> Outcome:
    """Run ``check`` in a fresh sandbox and return its outcome.

    ``check`` returns a sentence saying what it saw (the step passes), raises ``CheckFailed``
    (it fails), or lets the student's ``NotImplementedError`` through (it is still a TODO).
    """
    keeper, read_fd = fork_with_pipe(lambda write_fd: _keeper(check, write_fd, timeout))
    report = _read_all(read_fd)
    os.waitpid(keeper, 0)
    if not report:
        return Outcome(FAIL, "the check's sandbox died without a report")
    return Outcome(**json.loads(report.splitlines()[0]))


def _keeper(check: Callable[[], str], write_fd: int, timeout: float) -> None:
    """The sandbox's parent: it makes the PID namespace, waits, and enforces the time limit."""
    try:
        kernel.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL)  # the checker dies -> we die
        kernel.unshare(kernel.CLONE_NEWPID)  # our next child is PID 1 of a new namespace
        sandbox = os.fork()
        if sandbox == 0:
            _sandbox(check, write_fd)
        timed_out = []

        def on_alarm(_signum, _frame):
            timed_out.append(True)
            os.kill(sandbox, signal.SIGKILL)  # PID 1 dies: the kernel kills the rest

        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(max(1, round(timeout)))
        os.waitpid(sandbox, 0)  # returns when the whole PID namespace is gone
        if timed_out:
            _send(write_fd, Outcome(FAIL, f"still running after {timeout:g} s, so it was "
                                    "stopped: does something wait forever (a child that never "
                                    "exits, a missing exec or waitpid)?"))
    except BaseException as exc:
        _send(write_fd, Outcome(FAIL, f"the check's sandbox failed: {exc}"))
    os._exit(0)


def _sandbox(check: Callable[[], str], write_fd: int) -> None:
    """PID 1 of the sandbox: isolate, run the check, report. Never returns."""
    global _host_proc
    try:
        kernel.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL)
        kernel.unshare(kernel.CLONE_NEWNS | kernel.CLONE_NEWUTS | kernel.CLONE_NEWIPC)
        kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)  # cut from the machine
        kernel.mount("proc", "/proc", "proc", kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)
        kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_SHARED)  # shared, inside only
        _host_proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
        outcome = Outcome(PASS, check())
    except NotImplementedError as exc:
        outcome = Outcome(TODO, str(exc))
    except CheckFailed as exc:
        outcome = Outcome(FAIL, str(exc))
    except BaseException as exc:
        outcome = Outcome(FAIL, describe_error(exc))
    if _host_proc is not None and process_id() != "1":  # not the sandbox: a student's child
        _stop_escaped_child()
    _send(write_fd, outcome)
    os._exit(0)


def _send(fd: int, outcome: Outcome) -> None:
    os.write(fd, (json.dumps(outcome.__dict__) + "\n").encode())


def _read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


# --- calling the student's code ----------------------------------------------------------------

def call_student(function: Callable, *args):
    """Call a function of the student's file.

    The student forks; if a forked child raises or returns instead of exec'ing, it would carry
    on running the *checker's* code. Here such a child is stopped, after saying why on stderr.
    """
    caller = process_id()
    try:
        result = function(*args)
    except BaseException as exc:
        if process_id() != caller:
            _stop_escaped_child(exc)
        raise
    if process_id() != caller:
        _stop_escaped_child()
    return result


def process_id() -> str:
    """This process's PID as the sandbox numbers it. ``os.getpid()`` would not do: the
    sandbox is PID 1, and so is a student's child that starts a new PID namespace."""
    return os.readlink("self", dir_fd=_host_proc)


def _stop_escaped_child(exc: BaseException | None = None) -> None:
    what = f"raised {describe_error(exc)}" if exc else "returned instead of exec'ing a command"
    os.write(2, f"a child process that your code forked {what}; the checker stopped it\n"
             .encode())
    os._exit(1)


def describe_error(exc: BaseException) -> str:
    """``OSError: [Errno 22] ... (starter.py line 42)``: the error, and the line of the
    student's file where it came from (the last frame that is not minidocker's or Python's)."""
    where = ""
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith(NOT_THE_STUDENTS):
            where = f" ({os.path.basename(filename)} line {tb.tb_lineno})"
        tb = tb.tb_next
    return f"{type(exc).__name__}: {exc}{where}"


@dataclass
class CommandRun:
    """What a student's "run this command" function did: its return value, and what the
    command printed on stdout and stderr."""

    returned: object
    stdout: str
    stderr: str

    def said(self) -> dict[str, str]:
        """The probe's tagged lines, ``"pid 1"`` -> ``{"pid": "1"}``."""
        found = {}
        for line in self.stdout.splitlines():
            key, _, value = line.partition(" ")
            found.setdefault(key, value)
        return found

    def stderr_hint(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return f" (stderr said: {lines[-1].strip()})" if lines else ""


def capture_output(function: Callable, *args) -> CommandRun:
    """Call the student's function with stdout and stderr sent into pipes, so that whatever
    the command it starts prints (it inherits both) can be read back."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.close(out_w)
    os.close(err_w)
    try:
        returned = call_student(function, *args)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
    out, err = _read_both(out_r, err_r)
    return CommandRun(returned, out, err)


def _read_both(out_r: int, err_r: int) -> tuple[str, str]:
    """Read two pipes to their ends at once, so that neither writer blocks on a full pipe."""
    data = {out_r: b"", err_r: b""}
    open_fds = [out_r, err_r]
    while open_fds:
        for fd in select.select(open_fds, [], [])[0]:
            chunk = os.read(fd, 65536)
            if chunk:
                data[fd] += chunk
            else:
                open_fds.remove(fd)
                os.close(fd)
    return data[out_r].decode(errors="replace"), data[err_r].decode(errors="replace")


# --- the host's view, before and after -----------------------------------------------------------

def read_proc(name: str) -> str:
    """Read a /proc file (``self/mountinfo``) through the sandbox's /proc, opened when the
    sandbox started: it works even where /proc is covered (lab 01) or not mounted yet
    (lab 02, after pivot_root). ``self`` is always the reader."""
    fd = os.open(name, os.O_RDONLY, dir_fd=_host_proc)
    with os.fdopen(fd) as f:
        return f.read()


def mount_table(mountinfo: str) -> list[dict]:
    """The lines of a /proc/<pid>/mountinfo file (proc(5)) as dicts: id, mount point,
    propagation tags (``shared:3``, empty when private), filesystem type and source."""
    mounts = []
    for line in mountinfo.splitlines():
        fields, _, tail = line.partition(" - ")
        fields, tail = fields.split(), tail.split()
        mounts.append({"id": fields[0], "root": fields[3], "point": _unescape(fields[4]),
                       "tags": fields[6:], "fstype": tail[0], "source": tail[1]})
    return mounts


def _unescape(path: str) -> str:
    """mountinfo writes a space as ``\\040`` (and tab, newline, backslash likewise)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(code, char)
    return path


@dataclass
class HostView:
    """What the sandbox, standing in for the host, looks like: its hostname, the namespaces it
    is in, and its mounts. Taken before and after the student's code, and compared."""

    hostname: str
    namespaces: dict[str, str]
    mounts: dict[str, tuple[str, str]]  # mount id -> (mount point, filesystem type)

    @classmethod
    def now(cls) -> "HostView":
        namespaces = {kind: os.readlink(f"self/ns/{kind}", dir_fd=_host_proc)
                      for kind in NAMESPACE_FILES}
        mounts = {m["id"]: (m["point"], m["fstype"])
                  for m in mount_table(read_proc("self/mountinfo"))}
        return cls(os.uname().nodename, namespaces, mounts)

    def changes(self, later: "HostView") -> list[str]:
        """Sentences saying how the host changed, each with what to do about it."""
        found = []
        for kind, link in self.namespaces.items():
            if later.namespaces[kind] != link:
                found.append(f"your function moved its caller (the host, here) into a new "
                             f"{kind} namespace ({later.namespaces[kind]}): do the unshare in the "
                             "forked child, so that the caller stays where it was")
        if later.hostname != self.hostname:
            found.append(f"the host's hostname changed from {self.hostname!r} to "
                         f"{later.hostname!r}: the hostname was set in a UTS namespace that "
                         "the host shares")
        for mount_id in later.mounts.keys() - self.mounts.keys():
            point, fstype = later.mounts[mount_id]
            found.append(f"a {fstype} mount on {point} appeared in the host's mount table: "
                         "mount only in a mount namespace of your own (CLONE_NEWNS), and make "
                         "its mounts private (MS_REC | MS_PRIVATE) before you mount anything, "
                         "so that nothing propagates back to the host")
        for mount_id in self.mounts.keys() - later.mounts.keys():
            point, fstype = self.mounts[mount_id]
            found.append(f"the host's {fstype} mount on {point} disappeared: unmount only "
                         "inside your own, private mount namespace")
        return found


def expect_host_unchanged(before: HostView) -> None:
    changes = before.changes(HostView.now())
    if changes:
        raise CheckFailed(changes[0])


# --- a child that reports what it saw ------------------------------------------------------------

def in_child(body: Callable[[], object], died: str) -> object:
    """Run ``body`` in a forked child and return what it returns (JSON-able); what it raised is
    raised here again (a ``NotImplementedError`` stays one, a ``CheckFailed`` too). ``died``
    says what went wrong if the child dies before it reports. The child is reaped."""
    child, read_fd = fork_with_pipe(lambda write_fd: send_answer(write_fd, body))
    with os.fdopen(read_fd, "rb") as reader:
        # One line, not the pipe's end: a process the student detached may hold it open.
        line = reader.readline()
    os.waitpid(child, 0)
    if not line:
        raise CheckFailed(died)
    return received(line)


def fork_with_pipe(child_main: Callable[[int], object]) -> tuple[int, int]:
    """Fork a child that runs ``child_main(write_fd)`` and exits; return the child's PID and
    the read end of the pipe, on which the parent hears what it reports."""
    sys.stdout.flush()  # a child must not inherit (and later print) half-written output
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(read_fd)
            child_main(write_fd)
        finally:
            os._exit(0)  # whatever happened, the child never runs on in the parent's code
    os.close(write_fd)
    return child, read_fd


def send_answer(write_fd: int, body: Callable[[], object]) -> None:
    """In a forked child: run ``body`` and send one JSON line up the pipe, ``{"seen": ...}``
    with what it returned, or ``{"todo": ...}`` / ``{"fail": ...}`` with what it raised. What
    JSON cannot say (a student's function may return anything) is sent as its ``repr``."""
    try:
        answer = {"seen": body()}
    except NotImplementedError as exc:
        answer = {"todo": str(exc)}
    except CheckFailed as exc:
        answer = {"fail": str(exc)}
    except BaseException as exc:
        answer = {"fail": describe_error(exc)}
    os.write(write_fd, (json.dumps(answer, default=repr) + "\n").encode())


def received(line: bytes | str) -> object:
    """In the parent: what the child's answer says it saw. What the child raised is raised
    here again."""
    answer = json.loads(line)
    if "todo" in answer:
        raise NotImplementedError(answer["todo"])
    if "fail" in answer:
        raise CheckFailed(answer["fail"])
    return answer["seen"]


# --- a container inside the sandbox --------------------------------------------------------------

def run_in_container(body: Callable[[], dict]) -> dict:
    """Run ``body`` in a forked *container*: PID 1 of a new PID namespace, in a new mount
    namespace whose mounts start as copies (peers) of the sandbox's. Return the dict ``body``
    returns; what it raised is raised here again (a ``NotImplementedError`` stays one)."""
    died = "the container process died before it could report what it saw"

    def shim() -> dict:
        kernel.unshare(kernel.CLONE_NEWPID)  # our next child is PID 1 of a new namespace
        return in_child(lambda: _container(body), died)

    return in_child(shim, died)


def _container(body: Callable[[], dict]) -> dict:
    """The container process: a mount namespace of its own, then ``body``. A child of the
    student's that comes back here is stopped instead of reporting as the container."""
    me = process_id()
    try:
        kernel.unshare(kernel.CLONE_NEWNS)
        return body()
    finally:
        if process_id() != me:
            _stop_escaped_child()


# --- a step's files ----------------------------------------------------------------------------------

def mount_scratch(scratch: str) -> None:
    """In the sandbox: a tmpfs on the lab's scratch directory, so that the host's side of it
    stays empty. It goes with the sandbox's mount namespace."""
    kernel.mount("tmpfs", scratch, "tmpfs", 0, "mode=755")


def write_file(path: str, text: str) -> None:
    """Write ``text`` to ``path``, making the directories above it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def read_file(path: str) -> str | None:
    """A file's text, or None when it cannot be read (not there, not visible from here)."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None
