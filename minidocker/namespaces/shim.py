"""Stage 1 — namespaces: a process that sees its own world, born by the kernel's rules.

``spawn()`` tells the container's birth as the kernel sees it: fork a *shim*, which unshares the
PID namespace so that its next child is PID 1; that child unshares the other namespaces, waits
for the parent's "go" (cgroup joined), runs the caller's setup (the root filesystem, stage 2)
and execs the command. With a user namespace the shim makes it *first* and waits until the
parent has written its uid and gid maps: every namespace made after it is owned by it, which
is what lets root-inside mount /proc for its PID namespace and sysfs for its network one.

The shim stays behind as the container's parent: it waits for PID 1 and exits with its status,
128+N when a signal N killed it, passing on the signals it gets. With ``adopt`` the shim exits
as soon as PID 1 is born instead, and the caller — a *child subreaper* (prctl
PR_SET_CHILD_SUBREAPER) — becomes PID 1's parent and waits for it itself, as conmon and
containerd's shim do with ``runc create``: one process less per container (the monitor host).

Man pages: unshare(2), clone(2), pid_namespaces(7), user_namespaces(7), prctl(2). Used by:
``start`` (stage 6), notebook 01-namespaces, lab 01-namespaces.
"""

import contextlib
import ctypes
import os
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from minidocker import explain, kernel
from minidocker.errors import MinidockerError
from minidocker.namespaces.entering import join_one
from minidocker.namespaces.kinds import CONTAINER_NAMESPACES, flags_for
from minidocker.namespaces.pid1 import (
    Stdio,
    close_other_fds,
    connect_stdio,
    execute,
    mini_init,
    open_console,
    reset_signal_dispositions,
)
from minidocker.namespaces.sync import Child, exit_code_of, fork_child


@dataclass(frozen=True)
class IdMap:
    """One line of /proc/<pid>/uid_map: ``count`` ids from ``inside`` map to ``outside``."""

    inside: int = 0
    outside: int = 100000
    count: int = 65536

    def line(self) -> str:
        return f"{self.inside} {self.outside} {self.count}\n"


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
            self.exit_code = exit_code_of(os.waitpid(self.shim_pid, 0)[1])
        return self.exit_code

    def poll(self) -> int | None:
        """The exit code if the shim has ended, else None (waitpid with WNOHANG)."""
        if self.exit_code is None:
            pid, status = os.waitpid(self.shim_pid, os.WNOHANG)
            if pid:
                self.exit_code = exit_code_of(status)
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
        close_other_fds(set())  # the report and go pipes too: the shim only waits now
        if adopt:
            os._exit(0)  # PID 1 is orphaned: the subreaper above us adopts it
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(signum, lambda s, _frame: os.kill(child, s))
        os._exit(exit_code_of(os.waitpid(child, 0)[1]))
    except BaseException as exc:
        report.error(f"shim: {exc}")
        os._exit(125)


def _container_process(report, argv, flags, env, stdio, setup, init, go_r, join,
                       adopt=False) -> None:
    """What becomes the container: unshare, wait for "go", set up, exec. Never returns."""
    try:
        if not adopt:
            kernel.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL)  # the shim dies -> we die
        reset_signal_dispositions()
        connect_stdio(stdio)
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

