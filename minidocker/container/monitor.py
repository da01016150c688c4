"""Stage 6 — the monitor: the small process that stays with a container, as podman's conmon.

Without a daemon, *someone* must hold a detached container's stdio, write its log, wait for it
and record its exit code. That is the monitor, one per running container:

1. ``launch()`` (in the CLI) forks the monitor in a session of its own (setsid(2): no
   terminal, so closing yours does not kill it) — a fork of the CLI, which has the engine
   loaded already, so no second interpreter imports it again — and waits on a pipe until
   the monitor reports "running" or an error;
2. the monitor starts the container with pipes (or a pty with ``-t``) as its stdio. It is a
   *child subreaper* (prctl PR_SET_CHILD_SUBREAPER) and starts it with ``adopt``: the shim
   leaves once PID 1 is born, and PID 1, orphaned, becomes the monitor's own child — as conmon
   adopts runc's PID 1 (one Python process per container, not two). PID 1 dies if the monitor
   dies (PR_SET_PDEATHSIG), so a killed monitor never leaves an unwatched container behind;
3. it copies every output line to the json-file log and to attached clients, and what clients
   type to the container's stdin (relay.py, attach.py). For that it needs none of the engine:
   once the container runs, the monitor execve(2)s the lean watcher (watch.py) — the same
   process, a fraction of the memory — which hands the container back at PID 1's exit. It
   does so once the CLI that launched it has printed the ID and gone (a pidfd polled, a
   moment at most): nobody waits for the watcher, everybody for the CLI;
4. with a HEALTHCHECK, it runs the probes and records their verdicts (health.py);
5. when PID 1 exits: exit code and OOM kill into the record, cgroup removed; then the restart
   policy decides — ``no``; ``on-failure[:N]`` (a non-zero exit, at most N times);
   ``always`` and ``unless-stopped`` (unless a user stopped it) — with a back-off delay that
   doubles from 100 ms, as Docker's does.

A foreground ``minidocker run`` is its own container's monitor: the same loop, with the
terminal as one more attached client.

**One loop, many containers.** The loop (``Loop``) knows nothing of containers: each turn it
asks every ``Monitor`` which fds it waits on and how long it may sleep (a probe due, a restart
back-off ending), calls select(2) once for all of them, and hands each monitor the fds that are
ready. A ``Monitor`` is one container's state machine: ``waiting`` (for an attach client,
``start -a``), ``running``, ``restarting`` (a back-off is a deadline, never a sleep), ``done``.
The daemonless CLI runs the loop with one monitor in it. The daemon (stage 12), and compose
(stage 13) for a project's containers, hand every container to one long-lived *monitor host* (``serve_host``, ``python -m
minidocker.container.monitor --host SOCKET``): the same loop with many monitors in it, a
process apart from the API server as containerd is apart from dockerd. The API server may stop
and start again; the host keeps the containers, and their records name it as their monitor, so
a new API server simply finds them (re-adoption). The host is a child subreaper and starts
containers with ``adopt`` too, so 50 containers cost one process. It exits when its last
container has ended.

**Whose settings?** The host starts containers with *its* environment, and some of the engine's
settings come from there: the default bridge's subnet and ICC (``$MINIDOCKER_BRIDGE_SUBNET``,
``$MINIDOCKER_ICC``: the daemon's ``bip`` and ``icc``, read when the bridge's record is made,
network/store.py) and the cgroup parent (``$MINIDOCKER_CGROUP_PARENT``); runc's network hook
gets them from it too (bundle.py). A host shared by a daemon and a ``compose up`` that were
started with different settings would apply the first comer's to both. So a host is keyed by
those settings (``HOST_SETTINGS``): its socket is ``monitor-host-<key>.sock``, the key a hash
of their values, and a client connects to the host of its own settings — one host per state
root *and* settings; a daemon and a compose with the same settings share it.

Man pages: setsid(2), fork(2), execve(2), pipe(7), waitpid(2), pidfd_open(2),
prctl(2) (PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER), unix(7), pty(7), select(2).
"""

import contextlib
import fcntl
import functools
import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

from minidocker import kernel
from minidocker.container import health, records, watch
from minidocker.container.attach import exit_frame, frame, short_address
from minidocker.container.logs import open_log
from minidocker.container.relay import Loop, Relay, Terminal
from minidocker.container.start import Container, start
from minidocker.container.tty import copy_window_size
from minidocker.errors import MinidockerError
from minidocker.namespaces import Process, Stdio, receive_console
from minidocker.state import state_root

MAX_BACKOFF = 10.0  # seconds between restarts, at most
STEADY = 10.0  # a container that ran this long restarts without delay again


USE_HOST = False  # our caller hands its containers to the monitor host (the daemon, compose)
HOST_IDLE = 2.0  # seconds the host lingers after its last container has ended
STARTING_HOST = threading.Lock()
# the environment's settings that the host's code reads for a container's start, and what
# their absence means (network/store.py, cgroups/__init__.py, bundle.py's network hook)
HOST_SETTINGS = {"MINIDOCKER_BRIDGE_SUBNET": "", "MINIDOCKER_ICC": "true",
                 "MINIDOCKER_CGROUP_PARENT": ""}


def host_socket() -> Path:
    """Where the monitor host of this state root and of our settings (``HOST_SETTINGS``,
    unset counted as their default) listens: started with the same, it applies ours."""
    import hashlib  # here: a detached run without the host hashes nothing

    values = [os.environ.get(name) or unset for name, unset in HOST_SETTINGS.items()]
    key = hashlib.sha256(json.dumps(values).encode()).hexdigest()[:12]
    return state_root() / f"monitor-host-{key}.sock"


def use_host() -> None:
    """From now on ``launch()`` hands containers to the monitor host (``host_socket()`` at
    each launch, started when none answers) instead of starting a monitor process for each."""
    global USE_HOST
    USE_HOST = True


def launch(record: records.ContainerRecord, wait_for_attach: bool = False) -> int:
    """Start a detached monitor for the container — a process of its own, or the monitor host
    after ``use_host`` — and return PID 1 once it runs. With ``wait_for_attach`` the container
    starts only after one client has attached (``start -a``: no output is lost)."""
    if USE_HOST:
        host = host_socket()  # of the state root and settings we have now
        for attempt in range(3):  # a host that was just leaving (idle) closes on us: again
            with suppress_reconnect(attempt == 2):
                return read_reports(record, ask_host(host, record, wait_for_attach),
                                    wait_for_attach, host.with_suffix(".log"))
    status_r, status_w = os.pipe()
    if len(os.listdir("/proc/self/task")) == 1:  # a fork of us has the engine loaded already
        work = functools.partial(monitor_detached, record.Id, status_w, wait_for_attach,
                                 os.getpid())
    else:  # a fork would inherit locks our other threads hold: a new interpreter instead
        argv = [sys.executable, "-m", "minidocker.container.monitor", record.Id, str(status_w),
                *(["--wait-for-attach"] if wait_for_attach else [])]
        work = functools.partial(exec_detached, argv, status_w)
    daemonize(work, status_w, record.directory / "monitor.log")
    os.close(status_w)
    return read_reports(record, os.fdopen(status_r, "rb"), wait_for_attach,
                        record.directory / "monitor.log")


def read_reports(record: records.ContainerRecord, reports, wait_for_attach: bool,
                 log: Path) -> int:
    """What the monitor says of the first start: PID 1, or the error it raises."""
    with reports:
        for line in reports:
            report = json.loads(line)
            if "error" in report:
                raise MinidockerError(report["error"], report["exit_code"])
            if "running" in report:
                return report["running"]
            if "listening" in report and wait_for_attach:
                return 0  # the caller attaches now; the start follows
    raise HostLeft(f"the monitor of {record.Name} died while starting it; see {log}")


class HostLeft(MinidockerError):
    """The monitor ended before it said how the start went."""


@contextlib.contextmanager
def suppress_reconnect(last: bool):
    """Retry on a host that went away (it closed its socket as we came), unless ``last``."""
    try:
        yield
    except (HostLeft, ConnectionError):
        if last:
            raise


def ask_host(path: Path, record: records.ContainerRecord, wait_for_attach: bool):
    """Connect to the monitor host (start it if none answers), ask it to start the container;
    returns the connection to read its reports from."""
    connection = connect_host(path)
    request = {"start": record.Id, "wait_for_attach": wait_for_attach}
    connection.sendall((json.dumps(request) + "\n").encode())
    return connection.makefile("rb")


def connect_host(path: Path, timeout: float = 10.0) -> socket.socket:
    """A connection to the monitor host; start it if none answers. Threads of one caller
    (compose starting services side by side) start one host between them: a second host
    would wait out the first one's lock before leaving (hold_host_lock)."""
    deadline = time.monotonic() + timeout
    while (connection := try_connect(path)) is None:
        if time.monotonic() > deadline:
            raise MinidockerError(f"the monitor host does not answer on {path}; see "
                                  f"{path.with_suffix('.log')}")
        with STARTING_HOST:
            if (connection := try_connect(path)) is not None:
                break
            start_host(path)
    return connection


def warm_host(path: Path | None = None, stage: str = "network") -> None:
    """Start the monitor host (ours: ``host_socket()``, unless ``path``) if none runs, and have
    it load ``stage`` now: a caller about to start many containers (compose's up) pays both
    while it makes their networks. Only a head start: a host that was just leaving (idle)
    drops us, and the first start brings up a new one."""
    with connect_host(path or host_socket()) as connection, contextlib.suppress(ConnectionError):
        connection.sendall((json.dumps({"prepare": stage}) + "\n").encode())
        connection.recv(1)  # EOF: done


def try_connect(path: Path) -> socket.socket | None:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with short_address(path) as address:
            connection.connect(address)
        return connection
    except (FileNotFoundError, ConnectionRefusedError):
        connection.close()
        return None


def start_host(path: Path) -> None:
    """Start the monitor host, detached as a monitor is; wait until it listens (or has found
    another host already serving, and left)."""
    status_r, status_w = os.pipe()
    argv = [sys.executable, "-m", "minidocker.container.monitor", "--host", str(path),
            str(status_w)]
    daemonize(functools.partial(exec_detached, argv, status_w), status_w,
              path.with_suffix(".log"))
    os.close(status_w)
    with os.fdopen(status_r, "rb") as reports:
        reports.read()  # EOF: it listens, or it left


def daemonize(work: Callable[[], None], keep_fd: int, log: Path) -> None:
    """Run ``work()`` detached, the classic way: fork, setsid(2) (a session of its own, no
    terminal), fork again and exit, so the daemon is nobody's child here (init adopts it) and
    can never become our zombie. Its stdio: /dev/null in and out, errors to ``log``; of our
    other fds it keeps ``keep_fd`` and those Python opened (close-on-exec, all of them).
    ``work`` runs in a fork of us, and never returns into our code: os._exit ends it."""
    sys.stdout.flush()  # what we printed but did not write yet is not written twice
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                os.chdir("/")
                null = os.open(os.devnull, os.O_RDWR)
                os.dup2(null, 0)
                os.dup2(null, 1)
                os.dup2(open_stderr(log, null), 2)
                close_inherited_fds({keep_fd})  # what the launcher's parent gave it stays
                work()
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(0)
    os.waitpid(child, 0)


def open_stderr(log: Path, fallback: int) -> int:
    """The daemon's stderr: ``log``, or ``fallback`` (/dev/null) when its directory has gone
    meanwhile (a container removed while its monitor was starting: the monitor then finds no
    record and says so on its status pipe, not with a traceback on the caller's terminal)."""
    try:
        return os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except FileNotFoundError:
        return fallback


def close_inherited_fds(keep: set[int]) -> None:
    """Close the fds above 2 that would survive an execve(2) (no FD_CLOEXEC), but ``keep``:
    what our own caller passed down (a test's pipe), which a daemon must not hold open. The
    fds Python opened are close-on-exec (PEP 446) and belong to its objects: they stay."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        with contextlib.suppress(OSError):  # the listing's own fd is gone already
            if fd > 2 and fd not in keep and not fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC:
                os.close(fd)


def exec_detached(argv: list[str], status_fd: int) -> None:
    """In the detached fork: a new program, that reports on ``status_fd``."""
    os.set_inheritable(status_fd, True)
    os.execv(argv[0], argv)


def monitor_detached(container_id: str, status_fd: int, wait_for_attach: bool,
                     launcher: int = 0) -> None:
    """A detached monitor's life: start the container, report "running" (or the error) on
    ``status_fd`` to launch() in process ``launcher``, let that one finish, then watch the
    container (as the lean watcher, see ``hand_off``)."""
    for signum in (signal.SIGHUP, signal.SIGINT, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_IGN)
    os.set_inheritable(status_fd, False)
    launcher_fd = pidfd_of(launcher) if launcher and not wait_for_attach else None

    def report(message: dict) -> None:
        """Tell launch() how the first start went. It may have stopped listening already
        (``start -a`` returns at "listening" to attach): the attached client and the record
        hear of it instead, so a closed pipe is no error."""
        with contextlib.suppress(OSError):
            os.write(status_fd, (json.dumps(message) + "\n").encode())
        if "listening" not in message:
            with contextlib.suppress(OSError):
                os.close(status_fd)
        if "running" in message and launcher_fd is not None:
            let_launcher_finish(launcher_fd)

    try:
        monitor = Monitor(records.load(container_id), adopt=True, watcher=True)
        monitor.run(report, wait_for_attach=wait_for_attach)
    except BaseException as exc:  # anything unexpected: say so, where launch() can read it
        report({"error": f"monitor: {exc}", "exit_code": 125})
        raise


LAUNCHER_WAIT = 0.25  # seconds, at most


def pidfd_of(pid: int) -> int | None:
    """pidfd_open(2): a file descriptor for process ``pid`` that names that process for good
    (a PID may be reused once it has gone) and polls readable once it has exited. Opened
    while the launcher surely lives: it waits for our report."""
    try:
        return os.pidfd_open(pid)
    except OSError:  # it has gone already
        return None


def let_launcher_finish(pidfd: int) -> None:
    """Wait a moment (``LAUNCHER_WAIT`` at most) until the process that launched us (its
    ``pidfd``) has exited. The user waits for it — ``run -d`` prints the ID and leaves — and
    not for what we do next (execve the watcher: a new interpreter starting); on a busy
    machine the two would share the CPU and the command would end later."""
    try:
        select.select([pidfd], [], [], LAUNCHER_WAIT)
    finally:
        os.close(pidfd)


class Monitor:
    """One container's state machine in the loop: it starts, watches, logs and restarts it.

    ``waiting`` (for the first attach client) -> ``running`` -> (PID 1 exits) -> ``restarting``
    (the back-off) -> ``running`` ... -> ``done``. The container's stdio, while it runs, is
    the ``Relay``'s (relay.py)."""

    def __init__(self, record: records.ContainerRecord, local: Terminal | None = None,
                 adopt: bool = False, watcher: bool = False, relay: Relay | None = None,
                 lock: int | None = None):
        # one monitor per container, for its whole life (a watcher hands its lock back)
        self.lock = hold_monitor_lock(record) if lock is None else lock
        self.record = record
        self.adopt = adopt  # we are a child subreaper: PID 1 is our own child, no shim
        self.watcher = watcher  # detached: once it runs, become the lean watcher (watch.py)
        self.relay = relay or Relay(self._listen(record.directory / "attach.sock"),
                                    open_log(Path(record.LogPath), record.HostConfig.LogConfig),
                                    record.Config.Tty, record.Config.StdinOnce, local)
        self.container: Container | None = None
        self.state = "new"
        self.code = 0
        self.report = self.on_start = None
        self.prober: health.Prober | None = None
        self.pid1_gone = False
        self.deadline = 0.0  # the end of a back-off, or of the wait for an attach client
        self.delay = 0.1
        self.began = 0.0
        self.closed = False

    def run(self, report=None, on_start=None, wait_for_attach: bool = False) -> int:
        """The loop with this one container: start it, and again as its restart policy says;
        returns the last exit code. ``report(dict)`` hears "running" (or the error) after the
        first start; without it a first start's error is raised. ``on_start(container)``
        hears of every start."""
        loop = Loop()
        try:
            self.begin(report, on_start, wait_for_attach)
            self.run_in(loop)
        finally:
            loop.close()
        return self.code

    def run_in(self, loop: Loop, look_now: bool = False) -> None:
        """Turn ``loop`` with this container until it is done (``look_now``: take a step
        before the first wait)."""
        try:
            if look_now:
                self.step([])
            loop.add(self)
            loop.run_until(lambda: self.state == "done")
        except BaseException:  # our stdout closed (| head), Ctrl-C, a bug: the container
            self.abort()       # goes, its record is finished, nothing is left behind
            raise

    def begin(self, report=None, on_start=None, wait_for_attach: bool = False) -> None:
        """The first move: start now, or (``start -a``) once a client has attached."""
        self.report, self.on_start = report, on_start
        if wait_for_attach:
            self.state, self.deadline = "waiting", time.monotonic() + 10
            if report:
                report({"listening": True})
        else:
            self.start_running()

    # what the loop asks

    def fds(self) -> list:
        if self.state == "waiting":
            return [self.relay.listener]
        if self.state != "running":
            return []
        return [*self.relay.fds(), *(self.prober.fds() if self.prober else [])]

    def timeout(self) -> float:
        if self.state == "restarting":
            return 0.05  # a user's stop ends the back-off: look at the record often
        if self.state == "waiting":
            return self.deadline - time.monotonic()
        if self.state == "running" and self.prober:
            return self.prober.wait_time()
        return 1.0

    def step(self, ready: list) -> None:
        """One turn of the loop for this container."""
        if self.state == "waiting":
            if self.relay.listener in ready:
                self.relay.accept()
                self.start_running()
            elif time.monotonic() > self.deadline:  # nobody came
                self.finish()
        elif self.state == "running":
            self.watch(ready)
        elif self.state == "restarting":
            self.restart_if_due()

    # running

    def start_running(self) -> None:
        """Start the container; a failure ends this monitor (and is raised, for a first
        start that nobody hears reported). Detached, a running container without probes
        is handed to the lean watcher."""
        self.began = time.monotonic()
        try:
            self.relay.outputs = self.start_once()
        except MinidockerError as exc:
            if self.state in ("new", "waiting") and not self.report:
                self.finish()
                raise
            if self.report:
                self.report({"error": str(exc), "exit_code": exc.exit_code})
                self.report = None
            self.tell_clients_it_failed(exc)
            self.code = exc.exit_code
            self.finish()
            return
        self.state, self.pid1_gone = "running", False
        if self.report:
            self.report({"running": self.container.pid})
            self.report = None
        if self.on_start:
            self.on_start(self.container)
        self.prober = health.prober_for(self.record)  # HEALTHCHECK: probes run from this loop
        if self.watcher and not self.prober:  # probes exec into the container: the engine's
            self.hand_off()

    def start_once(self) -> dict[int, str]:
        """Start the container with fresh stdio; returns its output fds by stream name."""
        config, relay = self.record.Config, self.relay
        tty, with_stdin = config.Tty, config.OpenStdin
        ours, theirs = socket.socketpair() if tty else (None, None)
        out_r, out_w = os.pipe() if not tty else (None, 1)
        err_r, err_w = os.pipe() if not tty else (None, 2)
        if not tty and relay.local and same_file(1, 2) and not os.isatty(1):
            # '2>&1' into a pipe or file: one pipe keeps the order (logged as stdout)
            os.close(err_r)
            os.close(err_w)
            err_r, err_w = None, os.dup(out_w)
        in_r, relay.stdin_w = os.pipe() if with_stdin and not tty else \
            (os.open(os.devnull, os.O_RDONLY), None)
        gc.freeze()  # the shim is forked from us: keep the collector off the pages we share
        try:
            self.container = start(self.record.reload(), Stdio(in_r, out_w, err_w, console=theirs),
                                   adopt=self.adopt)
        finally:
            for fd in (in_r, out_w if not tty else None, err_w if not tty else None):
                if fd is not None:
                    os.close(fd)
            if theirs:
                theirs.close()
        if tty:
            master = relay.master = receive_console(ours)
            if relay.window:
                fcntl.ioctl(master, termios.TIOCSWINSZ, relay.window)
            if relay.local:
                copy_window_size(0, master)
                signal.signal(signal.SIGWINCH, lambda *_: copy_window_size(0, master))
            relay.stdin_w = master if with_stdin else None
            return {master: "stdout"}
        return {out_r: "stdout", err_r: "stderr"} if err_r is not None else {out_r: "stdout"}

    def hand_off(self) -> None:
        """Become the watcher: execve(2) a small program (watch.py) that keeps our PID — so
        PID 1 stays our child — our lock and the relay's pipes and sockets, and only relays
        them; the engine's code and imports go, and with them most of our memory. When PID 1
        exits, the watcher loads the engine again and hands the container back (``resume``)."""
        state = {**self.relay.handoff_state(), "id": self.record.Id, "pid": self.container.pid,
                 "lock": self.lock, "began": self.began, "delay": self.delay}
        os.set_inheritable(self.lock, True)
        try:
            watch.exec_watcher(state)
        except OSError as exc:  # no interpreter to exec: we stay, and watch as we are
            print(f"minidocker monitor: cannot exec the watcher ({exc}); watching on",
                  file=sys.stderr)

    def watch(self, ready: list) -> None:
        """Relay output and input; once PID 1 has exited and its output is drained, record
        the exit."""
        process = self.container.process
        probes = self.prober.fds() if self.prober else []  # before tick: it may close them
        if self.prober:
            self.prober.tick(ready)
        self.relay.relay([fd for fd in ready if fd not in probes])  # the prober read those
        if not self.pid1_gone and process.poll() is not None:
            self.pid1_gone = True  # the rest go with PID 1, also in a PID namespace we share
            self.container.cgroup.kill_all()
            if self.prober:
                self.prober.stop()
                self.prober = None
        if self.pid1_gone and not self.relay.outputs:
            self.exited()

    def exited(self) -> None:
        """PID 1 is gone and its output drained: record the exit, tell the clients, then
        restart or finish as the policy says."""
        self.relay.drained()
        self.code = code = self.container.wait()
        self.relay.tell_clients(exit_frame(code))  # the attached see the end and the code
        if self.should_restart(code):
            steady = time.monotonic() - self.began > STEADY
            self.delay = 0.1 if steady else min(self.delay * 2, MAX_BACKOFF)
            self.begin_back_off()
        else:
            self.finish()

    def abort(self) -> None:
        """Something went wrong in the loop: the container goes, and its record is finished."""
        if self.state == "running" and self.container:
            self.container.cgroup.kill_all()
            self.container.wait()
        if self.state != "done":
            self.finish()

    def finish(self) -> None:
        self.state = "done"
        if self.prober:
            self.prober.stop()
            self.prober = None
        self.close()

    def tell_clients_it_failed(self, exc: MinidockerError) -> None:
        """A start that failed (``exec: "x": executable file not found``): the attached
        clients, who came before the start (``docker run``), hear why on stderr and the exit
        code (127, 126...) — launch() may have returned at "listening" and cannot tell them."""
        self.relay.tell_clients(frame("stderr", f"{exc}\n".encode()) + exit_frame(exc.exit_code))

    def should_restart(self, code: int) -> bool:
        """Docker's restart policies, after an exit with ``code``."""
        try:
            record = self.record.reload()
        except MinidockerError:
            return False  # removed ('rm -f')
        policy = record.HostConfig.RestartPolicy
        if record.State["ManuallyStopped"]:
            return False
        if policy.Name in ("always", "unless-stopped"):
            return True
        if policy.Name == "on-failure" and code != 0:
            limit = policy.MaximumRetryCount
            return limit == 0 or record.RestartCount < limit
        return False

    def begin_back_off(self) -> None:
        """The back-off: "restarting" until a deadline ``delay`` seconds away — a deadline the
        loop looks at, never a sleep: the other containers go on meanwhile."""
        try:
            with self.record.locked():
                self.record.RestartCount += 1
                self.record.State.update(Status="restarting", MonitorPid=os.getpid())
        except MinidockerError:
            self.finish()
            return
        self.state, self.deadline = "restarting", time.monotonic() + self.delay

    def restart_if_due(self) -> None:
        """Restart once the back-off is over, unless a user stopped (or removed) it."""
        try:
            if self.record.reload().State["ManuallyStopped"]:
                self.record.mark_exited(self.record.State["ExitCode"])
                self.finish()
                return
        except MinidockerError:
            self.finish()
            return
        if time.monotonic() >= self.deadline:
            self.start_running()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.relay.close()
        with contextlib.suppress(OSError):
            os.unlink(self.record.directory / "attach.sock")
        with contextlib.suppress(OSError):
            os.close(self.lock)  # the next monitor of this container may come

    @staticmethod
    def _listen(path: Path) -> socket.socket:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with short_address(path) as address:
            listener.bind(address)
        os.chmod(path, 0o600)
        listener.listen(8)
        return listener


def resume(loop: Loop, state: dict, relay: Relay) -> None:
    """The watcher's PID 1 has exited (watch.py): a monitor, with the engine loaded again,
    takes the container back as it was handed off — the relay, the lock, the restart
    back-off — records the exit, and restarts it if its policy says so."""
    record = records.load(state["id"])
    os.set_inheritable(state["lock"], False)
    monitor = Monitor(record, adopt=True, watcher=True, relay=relay, lock=state["lock"])
    process = Process(pid=state["pid"], shim_pid=state["pid"])  # our child, as before
    monitor.container = Container(record, process, record.cgroup())
    monitor.state, monitor.began, monitor.delay = "running", state["began"], state["delay"]
    monitor.run_in(loop, look_now=True)  # PID 1 has exited: nothing would wake the loop

def hold_monitor_lock(record: records.ContainerRecord) -> int:
    """flock(2) ``<container>/monitor.lock`` for as long as this process lives (the kernel
    drops it when we die): two ``start`` at once cannot both run the container."""
    fd = os.open(record.directory / "monitor.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise MinidockerError(f"container {record.Name} is already running (another monitor "
                              "holds it)") from None
    return fd


def same_file(fd_a: int, fd_b: int) -> bool:
    """Do two fds lead to the same file (a pipe, a terminal)? Then a reader sees one stream."""
    a, b = os.fstat(fd_a), os.fstat(fd_b)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def serve_host(path: Path, status_fd: int) -> None:
    """The monitor host (the daemon's): one loop for every container handed to it on
    ``path``; it leaves once it has had no container for ``HOST_IDLE`` seconds."""
    lock = hold_host_lock(path.with_suffix(".lock"))
    if lock is None:
        return  # another host serves: launch() connects to it
    kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)  # PID 1 of each container: our child
    listener = Monitor._listen(path)
    loop = Loop(keep_going=True)
    loop.handlers[listener] = lambda: take_request(loop, listener.accept()[0])
    os.close(status_fd)  # "listening": start_host() sees EOF
    idle_since = time.monotonic()
    while loop.monitors or time.monotonic() - idle_since < HOST_IDLE:
        loop.turn()
        if loop.monitors:
            idle_since = time.monotonic()
    listener.close()
    with contextlib.suppress(OSError):
        path.unlink()


def take_request(loop: Loop, connection: socket.socket) -> None:
    """One request, ``{"start": ID, "wait_for_attach": bool}``: a monitor for that container
    joins the loop; the reports go back on the connection, as launch() reads them."""
    def report(message: dict) -> None:
        with contextlib.suppress(OSError):
            connection.sendall((json.dumps(message) + "\n").encode())
        if "listening" not in message:
            connection.close()

    monitor = None
    try:
        connection.settimeout(5)
        with connection.makefile("rb") as lines:
            request = json.loads(lines.readline())
        if "prepare" in request:  # {"prepare": "network"}: see warm_host()
            prepare(request["prepare"])
            connection.close()
            return
        connection.settimeout(None)
        monitor = Monitor(records.load(request["start"]), adopt=True)
        monitor.begin(report, wait_for_attach=bool(request.get("wait_for_attach")))
    except Exception as exc:  # a bad request, a removed container, one already running
        if monitor:
            monitor.abort()
        report({"error": f"monitor host: {exc}", "exit_code": getattr(exc, "exit_code", 125)})
        return
    loop.add(monitor)


def prepare(stage: str) -> None:
    """Load what the coming starts need while no start waits for it: the network stage
    (pyroute2 alone takes a quarter of a second to import)."""
    if stage == "network":
        importlib.import_module("minidocker.network.endpoints")


def hold_host_lock(path: Path, timeout: float = 5.0) -> int | None:
    """flock(2) the host's lock file: one host per state root. A host that is leaving holds
    it for a moment still: wait a little; None if another host keeps it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.05)


def main(argv: list[str]) -> None:
    """``python -m minidocker.container.monitor ID FD [--wait-for-attach]``: a detached
    monitor, launched by a process with threads; ``... --host SOCKET FD``: the monitor host."""
    if argv[0] != "--host":
        monitor_detached(argv[0], int(argv[1]), "--wait-for-attach" in argv)
        return
    for signum in (signal.SIGHUP, signal.SIGINT, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_IGN)
    os.set_inheritable(int(argv[2]), False)
    serve_host(Path(argv[1]), int(argv[2]))


if __name__ == "__main__":
    main(sys.argv[1:])
