"""Stage 1 — namespaces: a process that sees its own world.

A namespace wraps one kind of global resource so that the processes inside see their own copy:
``uts`` the hostname, ``pid`` the process ids, ``mnt`` the mount table, ``ipc`` System V IPC,
``net`` network devices, ``user`` uids and capabilities, ``cgroup`` the cgroup root. Every
process's namespaces are listed as links in ``/proc/<pid>/ns``; two processes share a namespace
when the links name the same inode.

``spawn()`` tells the container's birth as the kernel sees it: fork a *shim*, which unshares the
PID namespace so that its next child is PID 1; that child unshares the other namespaces, waits
for the parent's "go" (cgroup joined), runs the caller's setup (the root filesystem, stage 2)
and execs the command. With a user namespace the shim makes it *first* and waits until the
parent has written its uid and gid maps: every namespace made after it is owned by it, which
is what lets root-inside mount /proc for its PID namespace and sysfs for its network one. The shim stays behind as the container's parent:
it waits for PID 1 and exits with its status, 128+N when a signal N killed it. With ``adopt``
the shim exits as soon as PID 1 is born instead, and the caller — a *child subreaper*
(prctl PR_SET_CHILD_SUBREAPER) — becomes PID 1's parent and waits for it itself, as conmon and
containerd's shim do with ``runc create``: one process less per container (the monitor host).

Every child that works for a parent (the shim, ``enter``, ``exec``, ``export``, sharing
/dev/shm) talks back through one *report pipe* (``in_child``, ``fork_child``): JSON lines that
name each step, then the value, or the error as one ``StepFailed`` naming the step that failed.

Man pages: namespaces(7) pid_namespaces(7) user_namespaces(7) unshare(2) setns(2) clone(2)
prctl(2) nsenter(1). Used by: notebook 01-namespaces, lab 01-namespaces.
"""

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import tempfile
import termios
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import BinaryIO, TypeVar

from minidocker import explain, kernel
from minidocker.errors import MinidockerError

# Docker's names for the namespace types, the clone flag of each, and what it isolates.
NAMESPACES: dict[str, tuple[int, str]] = {
    "uts": (kernel.CLONE_NEWUTS, "hostname and NIS domain name"),
    "pid": (kernel.CLONE_NEWPID, "process IDs: the container's first process is PID 1"),
    "mnt": (kernel.CLONE_NEWNS, "the mount table, and so the filesystem tree"),
    "ipc": (kernel.CLONE_NEWIPC, "System V IPC objects and POSIX message queues"),
    "net": (kernel.CLONE_NEWNET, "network devices, addresses, routes, firewall rules"),
    "user": (kernel.CLONE_NEWUSER, "user and group IDs, and capabilities"),
    "cgroup": (kernel.CLONE_NEWCGROUP, "the root of the cgroup tree the process sees"),
}
CONTAINER_NAMESPACES = ("uts", "pid", "mnt", "ipc", "net", "cgroup")  # Docker's default set
SIGNALS_TO_FORWARD = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                      signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)
T = TypeVar("T")


@dataclass(frozen=True)
class IdMap:
    """One line of /proc/<pid>/uid_map: ``count`` ids from ``inside`` map to ``outside``."""

    inside: int = 0
    outside: int = 100000
    count: int = 65536

    def line(self) -> str:
        return f"{self.inside} {self.outside} {self.count}\n"


# --- looking at namespaces --------------------------------------------------------------------

def namespaces_of(pid: int | str = "self") -> dict[str, int]:
    """The namespaces of a process as ``{type: inode}``, read from ``/proc/<pid>/ns``."""
    found = {}
    for kind in NAMESPACES:
        link = os.readlink(f"/proc/{pid}/ns/{kind}")  # e.g. "uts:[4026531838]"
        found[kind] = int(link.split("[")[1].rstrip("]"))
    return found


def compare(pid_a: int | str, pid_b: int | str = "self") -> dict[str, bool]:
    """For each namespace type: do the two processes share it?"""
    a, b = namespaces_of(pid_a), namespaces_of(pid_b)
    return {kind: a[kind] == b[kind] for kind in NAMESPACES}


def flags_for(kinds: Iterable[str]) -> int:
    """The CLONE_NEW* bits for a set of namespace names; unknown names are a clear error."""
    flags = 0
    for kind in kinds:
        if kind not in NAMESPACES:
            raise MinidockerError(f"unknown namespace type {kind!r}; choose from "
                                  f"{', '.join(NAMESPACES)}")
        flags |= NAMESPACES[kind][0]
    return flags


# --- joining namespaces -----------------------------------------------------------------------

def join(pid: int, kinds: Iterable[str]) -> None:
    """setns(2) into the namespaces of ``pid``, like nsenter(1).

    All the ``/proc/<pid>/ns`` files are opened first, because after joining the mount namespace
    the old ``/proc`` may be gone. The user namespace goes first (it grants the rights for the
    rest). Joining ``pid`` only changes where this process's *children* are born.
    """
    order = sorted(set(kinds), key=lambda k: (k != "user", k == "mnt"))
    fds = [(kind, os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY)) for kind in order]
    try:
        for kind, fd in fds:
            kernel.setns(fd, NAMESPACES[kind][0])
    finally:
        for _, fd in fds:
            os.close(fd)
    if "mnt" in kinds:
        os.chdir("/")


def join_one(pid: int, kind: str) -> None:
    """setns(2) into one namespace of ``pid``, nothing else (``join`` opens several first and
    goes to / after a mount namespace; this is for one kind at a time)."""
    fd = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY)
    try:
        kernel.setns(fd, NAMESPACES[kind][0])
    finally:
        os.close(fd)


# --- one parent/child sync protocol: fork, do a step, report ----------------------------------
#
# Every "fork, join a namespace, do X" in minidocker talks back the same way (runc's sync pipe
# between parentProcess and its child): a close-on-exec pipe carries JSON lines from the child
# to the parent. ``{"step": name}`` says which step of the story runs now, ``{"ok": value}``
# ends it well, ``{"error": reason, "step": name, "exit_code": n}`` ends it badly. EOF with no
# "ok" means the child exec'd (the pipe closed at execve) or died; the parent tells which.

class StepFailed(MinidockerError):
    """A step that a forked child did for us failed; ``step`` names it (e.g. ``"open_tree"``)."""

    def __init__(self, message: str, step: str, exit_code: int | None = None):
        super().__init__(message, exit_code)
        self.step = step


class ExecFailed(StepFailed):
    """The step that failed was execve(2): the command could not be executed (Docker's 126
    when it is not executable, 127 when it is not found)."""


class Report:
    """The child's end of the report pipe."""

    def __init__(self, fd: int):
        self.fd = fd
        self.current = "fork"

    def send(self, **message) -> None:
        os.write(self.fd, (json.dumps(message) + "\n").encode())

    def step(self, name: str) -> None:
        """Name the step that runs now: a failure, or a death, is reported with this name."""
        self.current = name
        self.send(step=name)

    def error(self, reason: str, exit_code: int = 125) -> None:
        self.send(error=reason, step=self.current, exit_code=exit_code)

    def close(self) -> None:
        os.close(self.fd)


@dataclass
class Child:
    """A forked child seen from its parent: its pid and the read end of its report pipe."""

    pid: int
    task: str  # what the child does for us: "cannot {task}: {step}: {reason}"
    reports: BinaryIO
    step: str = "fork"

    def read(self) -> dict | None:
        """The next report, or None at EOF: no write end is left (exec'd, exited or died)."""
        line = self.reports.readline()
        if not line:
            return None
        report = json.loads(line)
        self.step = report.get("step", self.step)
        return report

    def gather(self, keys: set[str]) -> dict:
        """Read reports until every key has arrived; an error report (or EOF) raises it."""
        found: dict = {}
        while not keys <= found.keys():
            report = self.read()
            if report is None or "error" in report:
                raise self.failed(report)
            found.update(report)
        return found

    def wait_exec(self) -> None:
        """Read until EOF, which means the command was exec'd (execve closed the close-on-exec
        pipe); an error report raises it."""
        while (report := self.read()) is not None:
            if "error" in report:
                raise self.failed(report)

    def result(self):
        """The value the child's work returned, once the child has exited."""
        value = self.gather({"ok"})["ok"]
        os.waitpid(self.pid, 0)
        return value

    def failed(self, report: dict | None) -> StepFailed:
        """Reap the child; its error report (None: it died without one) as the error to raise."""
        status = os.waitpid(self.pid, 0)[1]
        if report is None:
            report = {"error": f"the child process {_how_it_ended(status)} before it reported",
                      "step": self.step, "exit_code": 125}
        return failure(report, self.task)


def failure(report: dict, task: str = "") -> StepFailed:
    """The one error a failed step becomes: "cannot TASK: STEP: reason". A command that could
    not be exec'd keeps Docker's own words ('exec: "x": executable file not found ...'), and so
    does ``spawn`` (no task): its reasons are whole sentences already."""
    code, step = report["exit_code"], report.get("step", "")
    if step == "execve":
        return ExecFailed(report["error"], step, code)
    message = f"cannot {task}: {step}: {report['error']}" if task else report["error"]
    return StepFailed(message, step, code)


def fork_child(task: str, work: Callable[..., object], *args, failure_code: int = 125) -> Child:
    """fork(2) a child that runs ``work(report, *args)`` and reports how it went; the caller
    reads the reports (``result``, ``gather``, ``wait_exec``). An exception in ``work``
    reports ``failure_code`` (125: the engine failed; exec uses 126: the command could not
    start)."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)  # close-on-exec: no command inherits it
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _run_and_report(Report(write_fd), work, args, failure_code)
    os.close(write_fd)
    return Child(pid, task, os.fdopen(read_fd, "rb"))


def in_child(task: str, work: Callable[..., T], *args) -> T:
    """Run ``work(report, *args)`` in a forked child and return what it returns (JSON-able).
    The child may join namespaces, chroot or unshare: none of it touches this process. A
    failure raises ``StepFailed`` naming the step: "cannot TASK: STEP: reason"."""
    child = fork_child(task, work, *args)
    with child.reports:
        return child.result()


def _run_and_report(report: Report, work: Callable, args: tuple, failure_code: int) -> None:
    """The child's side: run the work, report its value or its error, exit. Never returns."""
    code = failure_code
    try:
        report.send(ok=work(report, *args))
        code = 0
    except MinidockerError as exc:
        code = exc.exit_code
        report.error(str(exc), code)
    except BaseException as exc:
        report.error(str(exc) or type(exc).__name__, code)
    finally:
        os._exit(code)


def _how_it_ended(wait_status: int) -> str:
    if os.WIFSIGNALED(wait_status):
        return f"was killed by {signal.Signals(os.WTERMSIG(wait_status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(wait_status)}"


# --- running a command in the namespaces of another process -------------------------------------

def enter(pid: int, argv: list[str],
          kinds: Iterable[str] = CONTAINER_NAMESPACES) -> subprocess.CompletedProcess:
    """Run ``argv`` inside the namespaces of ``pid`` and capture its output (nsenter, by hand).

    A forked child joins the namespaces; since joining a PID namespace only affects children,
    it forks once more so that the command really lives in the target's PID namespace. A
    command that cannot be found raises ``ExecFailed``, as subprocess.run would.
    """
    kinds = [k for k in kinds if namespaces_of(pid)[k] != namespaces_of("self")[k]]
    out_r, out_w = os.pipe()
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a chatty stderr cannot block us
        child = fork_child(f"enter the namespaces of process {pid}", _join_and_run,
                           pid, kinds, argv, out_w, errors.fileno())
        os.close(out_w)
        out = _read_all(out_r)  # until the command, or the child that failed, is gone
        with child.reports:
            child.wait_exec()
        status = os.waitpid(child.pid, 0)[1]
        errors.seek(0)
        err = errors.read()
    return subprocess.CompletedProcess(argv, _exit_code(status), out.decode(), err.decode())


def _join_and_run(report: Report, pid: int, kinds: list[str], argv: list[str],
                  stdout: int, stderr: int) -> None:
    """The child of ``enter``: join, fork into the PID namespace, exec. Never returns."""
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    report.step(f"join the {', '.join(kinds) or 'no'} namespaces")
    join(pid, kinds)
    if "pid" in kinds:
        report.step("fork into the PID namespace")
        fork_into_pid_namespace(report)
    close_other_fds({report.fd})  # nothing of ours reaches the container, as with exec
    execute(argv, dict(os.environ), report)


def fork_into_pid_namespace(report: Report) -> None:
    """After setns(2) into a PID namespace only our *children* are born in it: fork. This
    process stays behind as the command's parent: it passes signals on, waits, and exits with
    the command's status. Returns in the child only."""
    child = os.fork()
    if child:
        report.close()  # the parent reads until the command's execve closes the last copy
        os._exit(wait_forwarding_signals(child))


def wait_forwarding_signals(child: int) -> int:
    """Wait for ``child`` and return its exit code (128+N for signal N); SIGTERM, SIGINT and
    SIGHUP meanwhile go on to it."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: os.kill(child, s))
    while True:
        try:
            return _exit_code(os.waitpid(child, 0)[1])
        except InterruptedError:
            continue


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


# --- starting a process in new namespaces -----------------------------------------------------

@dataclass
class Stdio:
    """The three file descriptors the container's PID 1 gets. With ``-t`` there is a
    ``console`` socket instead: the container makes its terminal in its own ``/dev/pts`` and
    sends the master end back through it (runc's "console socket")."""

    stdin: int = 0
    stdout: int = 1
    stderr: int = 2
    console: socket.socket | None = None


@dataclass
class Process:
    """A running process in its own namespaces, and the shim that waits for it."""

    pid: int  # PID 1 of the new PID namespace, as the host numbers it
    shim_pid: int
    exit_code: int | None = field(default=None)

    def signal(self, signum: int) -> None:
        """Send a signal to the container's PID 1 (it only sees signals it has a handler for,
        except SIGKILL and SIGSTOP: see pid_namespaces(7))."""
        if self.exit_code is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def wait(self) -> int:
        """Wait for the shim, which exits with PID 1's exit code (128+N for signal N)."""
        if self.exit_code is None:
            self.exit_code = _exit_code(os.waitpid(self.shim_pid, 0)[1])
        return self.exit_code

    def poll(self) -> int | None:
        """The exit code if the shim has ended, else None (waitpid with WNOHANG)."""
        if self.exit_code is None:
            pid, status = os.waitpid(self.shim_pid, os.WNOHANG)
            if pid:
                self.exit_code = _exit_code(status)
        return self.exit_code


def spawn(argv: list[str], kinds: Iterable[str] = CONTAINER_NAMESPACES, *,
          env: dict[str, str] | None = None, stdio: Stdio | None = None,
          setup: Callable[[], None] | None = None,
          before_start: Callable[[int], None] | None = None,
          user_map: IdMap | None = None, init: bool = False,
          join: dict[str, int] | None = None, adopt: bool = False) -> Process:
    """Start ``argv`` as PID 1 of new namespaces and return once it has exec'd.

    ``setup`` runs inside the new namespaces just before exec (stage 2 builds the root
    filesystem there). ``before_start(pid)`` runs in the parent while the child waits (later
    stages join the cgroup there). A failure in either, or a command that cannot be exec'd,
    raises ``MinidockerError`` with Docker's exit code (125, 126 or 127). With ``init`` the
    PID 1 is ``mini_init``, which runs ``argv`` as its child (``--init``). ``join`` names
    namespaces to share instead of create, ``{kind: pid}`` (``--pid container:X``,
    ``--ipc container:X``, ``--network container:X``): setns(2) into that process's. With
    ``adopt`` the shim leaves once PID 1 is born and the caller becomes PID 1's parent.
    """
    join = join or {}
    kinds = set(kinds) - set(join)
    flags = flags_for(kinds)
    if "user" in kinds:
        user_map = user_map or IdMap()
    go_r, go_w = os.pipe2(os.O_CLOEXEC)  # parent -> child: one byte = "go on"
    # child -> parent: the report pipe (JSON lines; EOF = the command exec'd)
    with child_subreaper() if adopt else contextlib.nullcontext():
        shim = fork_child("", _shim, argv, flags, env, stdio or Stdio(), setup, init, go_r,
                          go_w, join, adopt)
        os.close(go_r)
        return _start(shim, go_w, user_map, before_start, adopt)


def _start(shim: Child, go_w: int, user_map: IdMap | None,
           before_start: Callable[[int], None] | None, adopt: bool) -> Process:
    """The parent's side of spawn: id maps, wait for PID 1, ``before_start``, "go"."""
    with shim.reports:
        try:
            if user_map:  # the shim made the user namespace first: give it its id maps
                shim.gather({"userns"})
                write_id_maps(shim.pid, user_map)
                os.write(go_w, b"u")
            # Two reports, in either order: the shim's "pid", the child's "unshared".
            started = shim.gather({"pid", "unshared"})
            if adopt:  # the shim has left: PID 1 is our child now (we are a subreaper)
                os.waitpid(shim.pid, 0)
                shim.pid = started["pid"]  # whom a failure reaps from now on
        except BaseException:
            os.close(go_w)
            raise
        process = Process(pid=started["pid"], shim_pid=started["pid"] if adopt else shim.pid)
        try:
            if before_start:
                before_start(process.pid)
        except BaseException as exc:
            os.close(go_w)  # the child sees EOF instead of "go" and gives up
            process.signal(signal.SIGKILL)
            process.wait()
            if isinstance(exc, OSError):
                raise MinidockerError(f"cannot prepare the container: {exc}") from exc
            raise
        os.write(go_w, b"g")
        os.close(go_w)
        shim.wait_exec()
    return process


def write_id_maps(pid: int, idmap: IdMap) -> None:
    """Give a new user namespace its uid and gid maps (user_namespaces(7))."""
    for name in ("uid_map", "gid_map"):
        explain.step("write", f"/proc/{pid}/{name}, {idmap.line().strip()!r}")
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(idmap.line())


@contextlib.contextmanager
def child_subreaper():
    """For a while, we are a child subreaper (prctl(2)): an orphan below us (PID 1 when its
    shim or ``runc create`` exits) becomes our child instead of init's. Only for a while:
    afterwards other orphans below us (a daemon's double fork) go to init as before."""
    was = ctypes.c_int(0)
    kernel.prctl(kernel.PR_GET_CHILD_SUBREAPER, ctypes.addressof(was))
    kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)
    try:
        yield
    finally:
        kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, was.value)


def _shim(report, argv, flags, env, stdio, setup, init, go_r, go_w, join, adopt) -> None:
    """The shim: the container's parent on the host (with ``adopt``, only until PID 1 is
    born). It never returns."""
    os.close(go_w)  # only the parent says "go": the read end must see EOF if it gives up
    try:
        kernel.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL)  # our monitor dies -> we die
        signal.set_wakeup_fd(-1)  # the monitor's wake-up pipe is not ours
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP):
            signal.signal(signum, signal.SIG_IGN)  # the CLI proxies terminal signals to PID 1
        if flags & kernel.CLONE_NEWUSER:  # first, so that it owns every namespace after it
            kernel.unshare(kernel.CLONE_NEWUSER)
            report.send(userns=True)
            if os.read(go_r, 1) != b"u":
                os._exit(125)  # the parent could not write our id maps
            os.setresgid(0, 0, 0)  # the maps are written: become root *inside*
            os.setresuid(0, 0, 0)
        if "pid" in join:  # our next child joins another container's PID namespace
            join_one(join["pid"], "pid")
        elif flags & kernel.CLONE_NEWPID:
            kernel.unshare(kernel.CLONE_NEWPID)  # our *next child* is PID 1 of a new namespace
        child = os.fork()
        if child == 0:
            explain.step("clone", "SIGCHLD", f"{os.getpid()} in the shim's PID namespace: the "
                         "container's PID 1 (it is 1 inside)")
            _container_process(report, argv, flags, env, stdio, setup, init, go_r,
                               {k: p for k, p in join.items() if k != "pid"}, adopt)
        report.send(pid=child)
        close_other_fds(set())
        if adopt:
            os._exit(0)  # PID 1 is orphaned: the subreaper above us adopts it  # the report and go pipes too: the shim only waits now
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(signum, lambda s, _frame: os.kill(child, s))
        os._exit(_exit_code(os.waitpid(child, 0)[1]))
    except BaseException as exc:
        report.error(f"shim: {exc}")
        os._exit(125)


def close_other_fds(keep: set[int]) -> None:
    """Close every fd the caller had open (its end of the container's stdin pipe, its log,
    its sockets) except stdio and ``keep``. The container process loses them at execve (they
    are close-on-exec), but the shim never execs: a pipe stays open while *any* process holds
    its write end, so the shim's copy would keep the container's stdin from reaching EOF."""
    if explain.listener_fd() is not None:  # run --explain: close-on-exec, gone at execve
        keep = keep | {explain.listener_fd()}
    low = 3
    for fd in sorted(keep | {2}):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def _container_process(report, argv, flags, env, stdio, setup, init, go_r, join,
                       adopt=False) -> None:
    """What becomes the container: unshare, wait for "go", set up, exec. Never returns."""
    try:
        if not adopt:
            kernel.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL)  # the shim dies -> we die
        reset_signal_dispositions()
        _connect_stdio(stdio)
        report.step("unshare")
        kernel.unshare(flags & ~(kernel.CLONE_NEWPID | kernel.CLONE_NEWCGROUP
                                 | kernel.CLONE_NEWUSER))  # the shim made pid and user
        for kind, pid in join.items():  # shared with another container (ipc, net)
            join_one(pid, kind)
        report.send(unshared=True)
        if os.read(go_r, 1) != b"g":
            os._exit(125)  # the parent gave up on us
        if adopt:  # "go" comes once the shim is gone: our parent is the adopter now
            kernel.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL)
        if flags & kernel.CLONE_NEWCGROUP:
            kernel.unshare(kernel.CLONE_NEWCGROUP)  # after the parent put us in our cgroup
        if setup:
            report.step("set up the container")
            setup()
        if stdio.console:
            report.step("open the terminal")
            open_console(stdio.console)
    except MinidockerError as exc:
        report.error(str(exc), exc.exit_code)
        os._exit(exc.exit_code)
    except BaseException as exc:
        report.error(f"container setup failed: {exc} (run 'minidocker doctor' to see what "
                     "this machine is missing)")
        os._exit(125)
    env = env if env is not None else dict(os.environ)
    close_other_fds({report.fd})  # nothing of ours may reach the container (an open
    if init:                       # directory fd is a way out of its root: CVE-2024-21626)
        mini_init(argv, env, report)
    execute(argv, env, report)


def execute(argv: list[str], env: dict[str, str], report: Report | None = None) -> None:
    """execve(2) the command, searching ``$PATH`` like Docker; on failure report the reason
    with Docker's exit code (127 not found, 126 not executable) and exit. The report pipe is
    close-on-exec: its EOF tells the parent that the exec happened."""
    if report is not None:
        report.step("execve")
    explain.step("execve", ", ".join(repr(arg) for arg in argv))
    try:
        os.execvpe(argv[0], argv, env)
    except FileNotFoundError:
        where = "no such file or directory" if "/" in argv[0] else \
            "executable file not found in $PATH"
        reason, code = f'exec: "{argv[0]}": {where}', 127
    except (PermissionError, IsADirectoryError):
        reason, code = f'exec: "{argv[0]}": permission denied', 126
    except OSError as exc:
        reason, code = f'exec: "{argv[0]}": {exc.strerror}', 126
    if report is not None:
        report.error(reason, code)
    else:
        os.write(2, f"minidocker: {reason}\n".encode())
    os._exit(code)


def reset_signal_dispositions() -> None:
    """An ignored signal stays ignored across execve(2): undo what Python (SIGPIPE, SIGXFSZ),
    the shim (SIGINT, SIGQUIT, SIGTSTP) and a detached monitor (SIGHUP) ignore, so the
    command starts with defaults."""
    for signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGQUIT,
                   signal.SIGTSTP, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def _connect_stdio(stdio: Stdio) -> None:
    for target, fd in enumerate((stdio.stdin, stdio.stdout, stdio.stderr)):
        if fd != target:
            os.dup2(fd, target)


def open_console(console: socket.socket) -> None:
    """Give the container a terminal from its *own* devpts (so ``tty`` names a device that
    exists inside), make it our controlling terminal and stdio, and pass the master end to
    the parent with SCM_RIGHTS. Man pages: pts(4), pty(7), unix(7)."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, kernel.TIOCSPTLCK, struct.pack("i", 0))  # unlockpt(3)
    number = struct.unpack("I", fcntl.ioctl(master, kernel.TIOCGPTN, b"\0" * 4))[0]
    slave = os.open(f"/dev/pts/{number}", os.O_RDWR)  # ptsname(3)
    os.setsid()  # a new session, so that the terminal can become ours
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    os.close(slave)
    socket.send_fds(console, [b"pty"], [master])
    os.close(master)
    console.close()


def receive_console(console: socket.socket) -> int:
    """The parent's side: the pty master the container sent."""
    _message, fds, _flags, _addr = socket.recv_fds(console, 16, 1)
    console.close()
    return fds[0]


def _exit_code(wait_status: int) -> int:
    """A wait status as a shell sees it: the exit code, or 128+N when signal N killed it."""
    code = os.waitstatus_to_exitcode(wait_status)
    return code if code >= 0 else 128 - code


# --- a tiny init: what tini does for a container ----------------------------------------------

def mini_init(argv: list[str], env: dict[str, str], report: Report | None = None) -> None:
    """Be PID 1 properly: fork the command, pass signals on to it, reap every orphan that the
    kernel re-parents to us, and exit with the command's status. Never returns.

    The handlers are in place before we close our end of the report pipe, so by the time the
    parent sees EOF (the command exec'd, the init is ready), no signal can be lost."""
    command: list[int] = []
    for signum in SIGNALS_TO_FORWARD:
        signal.signal(signum, lambda s, _frame: command and os.kill(command[0], s))
    child = os.fork()
    if child == 0:
        for signum in SIGNALS_TO_FORWARD:
            signal.signal(signum, signal.SIG_DFL)
        execute(argv, env, report)
    command.append(child)
    if report is not None:
        report.close()
    while True:
        try:
            pid, status = os.wait()  # any child: the command, or an orphan we inherited
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            os._exit(_exit_code(status))  # the kernel then kills the rest of the namespace
