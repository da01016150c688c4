"""Stage 6 — the monitor: the small process that stays with a container, as podman's conmon.

Without a daemon, *someone* must hold a detached container's stdio, write its log, wait for it
and record its exit code. That is the monitor, one per running container:

1. ``launch()`` (in the CLI) starts ``python -m minidocker.container.monitor ID`` in a session
   of its own (setsid(2): no terminal, so closing yours does not kill it) and waits on a pipe
   until the monitor reports "running" or an error;
2. the monitor starts the container with pipes (or a pty with ``-t``) as its stdio; it is the
   parent of the shim, which is the parent of PID 1 (and the shim dies if the monitor dies:
   PR_SET_PDEATHSIG, so a killed monitor never leaves an unwatched container behind);
3. it copies every output line to the json-file log and to attached clients, and what clients
   type to the container's stdin (see attach.py);
4. with a HEALTHCHECK, it runs the probes and records their verdicts (health.py);
5. when PID 1 exits: exit code and OOM kill into the record, cgroup removed; then the restart
   policy decides — ``no``; ``on-failure[:N]`` (a non-zero exit, at most N times);
   ``always`` and ``unless-stopped`` (unless a user stopped it) — with a back-off delay that
   doubles from 100 ms, as Docker's does.

A foreground ``minidocker run`` is its own container's monitor: the same loop, with the
terminal as one more attached client.

Man pages: setsid(2), pipe(7), waitpid(2), prctl(2) (PR_SET_PDEATHSIG), unix(7), pty(7).
"""

import contextlib
import fcntl
import gc
import json
import os
import select
import signal
import socket
import sys
import termios
import time
from pathlib import Path

from minidocker.container import health, records
from minidocker.container.attach import RESIZE, exit_frame, frame, short_address
from minidocker.container.logs import open_log
from minidocker.container.start import Container, start
from minidocker.container.tty import copy_window_size, write_all
from minidocker.errors import MinidockerError
from minidocker.namespaces import Stdio, close_other_fds, receive_console

MAX_BACKOFF = 10.0  # seconds between restarts, at most
STEADY = 10.0  # a container that ran this long restarts without delay again


def launch(record: records.ContainerRecord, wait_for_attach: bool = False) -> int:
    """Start a detached monitor for the container; returns PID 1 once it runs. With
    ``wait_for_attach`` the monitor starts the container only after one client has attached
    (``start -a``: no output is lost)."""
    status_r, status_w = os.pipe()
    argv = [sys.executable, "-m", "minidocker.container.monitor", record.Id, str(status_w)]
    if wait_for_attach:
        argv.append("--wait-for-attach")
    daemonize(argv, status_w, record.directory / "monitor.log")
    os.close(status_w)
    with os.fdopen(status_r, "rb") as reports:
        for line in reports:
            report = json.loads(line)
            if "error" in report:
                raise MinidockerError(report["error"], report["exit_code"])
            if "running" in report:
                return report["running"]
            if "listening" in report and wait_for_attach:
                return 0  # the caller attaches now; the start follows
    raise MinidockerError(f"the monitor of {record.Name} died while starting it; see "
                          f"{record.directory / 'monitor.log'}")


def daemonize(argv: list[str], keep_fd: int, log: Path) -> None:
    """Run ``argv`` detached, the classic way: fork, setsid(2) (a session of its own, no
    terminal), fork again and exit, so the daemon is nobody's child here (init adopts it) and
    can never become our zombie. Its stdio: /dev/null in and out, errors to ``log``."""
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                os.chdir("/")
                null = os.open(os.devnull, os.O_RDWR)
                os.dup2(null, 0)
                os.dup2(null, 1)
                os.dup2(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), 2)
                os.set_inheritable(keep_fd, True)
                close_other_fds({keep_fd})  # whatever the launcher had open stays with it
                os.execv(argv[0], argv)
        finally:
            os._exit(0)
    os.waitpid(child, 0)


class Monitor:
    """The loop that starts, watches, logs and restarts one container."""

    def __init__(self, record: records.ContainerRecord, local: "Terminal | None" = None):
        self.lock = hold_monitor_lock(record)  # one monitor per container, for its whole life
        self.record = record
        self.local = local  # the foreground terminal, or None when detached
        self.clients: dict[socket.socket, bool] = {}  # attached client -> brought stdin?
        self.readers: set[socket.socket] = set()  # clients that may still send something
        self.container: Container | None = None
        self.stdin_w: int | None = None
        self.master: int | None = None  # the pty's master end, with -t
        self.window: bytes | None = None  # the size an attached terminal asked for
        self.log = open_log(Path(record.LogPath), record.HostConfig.LogConfig)
        self.listener = self._listen(record.directory / "attach.sock")
        self.wakeup_r, wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wakeup_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select() when the shim ends

    def run(self, report=None, on_start=None) -> int:
        """Start the container, and again as its restart policy says; returns the last exit
        code. ``report(dict)`` hears "running" (or the error) after the first start; without
        it a first start's error is raised. ``on_start(container)`` hears of every start."""
        code, delay, first = 0, 0.1, True
        while True:
            began = time.monotonic()
            try:
                outputs = self.start_once()
            except MinidockerError as exc:
                if first and not report:
                    self.close()
                    raise
                if report:
                    report({"error": str(exc), "exit_code": exc.exit_code})
                self.tell_clients_it_failed(exc)
                code = exc.exit_code
                break
            if report:
                report({"running": self.container.pid})
                report = None
            if on_start:
                on_start(self.container)
            first = False
            try:
                code = self.watch(outputs)
            except BaseException:  # our stdout closed (| head), Ctrl-C, a bug: the container
                self.container.cgroup.kill_all()  # goes, its record is finished, nothing
                self.container.wait()             # is left behind
                self.close()
                raise
            if not self.should_restart(code):
                break
            delay = 0.1 if time.monotonic() - began > STEADY else min(delay * 2, MAX_BACKOFF)
            if not self.wait_to_restart(delay):
                break
        self.close()
        return code

    def start_once(self) -> dict[int, str]:
        """Start the container with fresh stdio; returns its output fds by stream name."""
        config = self.record.Config
        tty, with_stdin = config.Tty, config.OpenStdin
        ours, theirs = socket.socketpair() if tty else (None, None)
        out_r, out_w = os.pipe() if not tty else (None, 1)
        err_r, err_w = os.pipe() if not tty else (None, 2)
        if not tty and self.local and same_file(1, 2) and not os.isatty(1):
            # '2>&1' into a pipe or file: one pipe keeps the order (logged as stdout)
            os.close(err_r)
            os.close(err_w)
            err_r, err_w = None, os.dup(out_w)
        in_r, self.stdin_w = os.pipe() if with_stdin and not tty else \
            (os.open(os.devnull, os.O_RDONLY), None)
        gc.freeze()  # the shim is forked from us: keep the collector off the pages we share
        try:
            self.container = start(self.record.reload(), Stdio(in_r, out_w, err_w, console=theirs))
        finally:
            for fd in (in_r, out_w if not tty else None, err_w if not tty else None):
                if fd is not None:
                    os.close(fd)
            if theirs:
                theirs.close()
        if tty:
            master = self.master = receive_console(ours)
            if self.window:
                fcntl.ioctl(master, termios.TIOCSWINSZ, self.window)
            if self.local:
                copy_window_size(0, master)
                signal.signal(signal.SIGWINCH, lambda *_: copy_window_size(0, master))
            self.stdin_w = master if with_stdin else None
            return {master: "stdout"}
        return {out_r: "stdout", err_r: "stderr"} if err_r is not None else {out_r: "stdout"}

    def watch(self, outputs: dict[int, str]) -> int:
        """Copy output to the log and the clients, input to the container, until PID 1 has
        exited and its output is drained; then record the exit."""
        process, pid1_gone = self.container.process, False
        prober = health.prober_for(self.record)  # HEALTHCHECK: probes run from this loop
        while outputs or process.poll() is None:
            if not pid1_gone and process.exit_code is not None:
                pid1_gone = True  # the rest go with PID 1, also in a PID namespace we share
                self.container.cgroup.kill_all()
                if prober:
                    prober.stop()
                    prober = None
            probes = prober.fds() if prober else []
            readable = [*outputs, self.listener, self.wakeup_r, *self.readers, *probes]
            if self.local and self.local.stdin_open:
                readable.append(0)
            try:
                ready, _, _ = select.select(readable, [], [],
                                            min(1.0, prober.wait_time()) if prober else 1.0)
            except InterruptedError:
                continue
            if prober:
                prober.tick(ready)
            for fd in ready:
                if fd in probes:
                    continue  # the prober read it
                elif fd in outputs:
                    self.copy_output(fd, outputs)
                elif fd is self.listener:
                    self.accept()
                elif fd == self.wakeup_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wakeup_r, 512)
                elif fd == 0:
                    self.copy_input(os.read(0, 65536), local=True)
                else:
                    self.copy_input(self._recv(fd))
        self.log.flush_partial()
        if self.stdin_w is not None and not self.record.Config.Tty:
            os.close(self.stdin_w)
        self.stdin_w = None
        code = self.container.wait()
        for client in list(self.clients):  # the attached see the end and the exit code
            with contextlib.suppress(OSError):
                client.sendall(exit_frame(code))
            self.drop(client)
        return code

    def tell_clients_it_failed(self, exc: MinidockerError) -> None:
        """A start that failed (``exec: "x": executable file not found``): the attached
        clients, who came before the start (``docker run``), hear why on stderr and the exit
        code (127, 126...) — launch() may have returned at "listening" and cannot tell them."""
        for client in list(self.clients):
            with contextlib.suppress(OSError):
                client.sendall(frame("stderr", f"{exc}\n".encode()) + exit_frame(exc.exit_code))
            self.drop(client)

    def copy_output(self, fd: int, outputs: dict[int, str]) -> None:
        stream = outputs[fd]
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO from a pty: every process holding its slave end is gone
            data = b""
        if not data:
            del outputs[fd]
            os.close(fd)
            if fd == self.master:
                self.master = None
            return
        self.log.write(stream, data)
        if self.local:
            write_all(1 if stream == "stdout" else 2, data)
        for client in list(self.clients):
            try:
                client.sendall(frame(stream, data))
            except OSError:
                self.drop(client)

    def copy_input(self, data: bytes, local: bool = False) -> None:
        """Bytes typed by the terminal or a client, to the container's stdin."""
        if data and self.stdin_w is not None:
            with contextlib.suppress(OSError):
                write_all(self.stdin_w, data)
        elif not data and local:  # the terminal's stdin ended: like 'docker run -i', close
            self.local.stdin_open = False  # the container's stdin too
            if self.stdin_w is not None and not self.record.Config.Tty:
                os.close(self.stdin_w)
                self.stdin_w = None

    def accept(self) -> None:
        client, _ = self.listener.accept()
        client.settimeout(1.0)
        try:
            kind = client.recv(1)
            if kind == RESIZE:  # a terminal's size (attach.resize), then goodbye
                self.resize(client.recv(8, socket.MSG_WAITALL))
        except OSError:
            kind = RESIZE
        if kind == RESIZE:
            client.close()
            return
        wants_stdin = kind == b"i"
        client.settimeout(None)
        self.clients[client] = wants_stdin
        self.readers.add(client)

    def resize(self, window: bytes) -> None:
        """An attached terminal changed size (attach.py's resize): the pty takes its size
        (TIOCSWINSZ), and the kernel sends SIGWINCH to the container's foreground group."""
        if len(window) != 8:
            return
        self.window = window
        if self.master is not None:
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, window)

    def _recv(self, client: socket.socket) -> bytes:
        """What a client sent: input for the container, or its goodbye (then b"")."""
        try:
            data = client.recv(65536)
        except OSError:
            data = b""
        if not data:  # it closed its input (it may still watch), or it is gone
            self.readers.discard(client)
            if self.clients.get(client):
                self.stdin_ended()
        return data if self.clients.get(client) else b""

    def stdin_ended(self) -> None:
        """An attached client's stdin ended: with ``StdinOnce`` (``docker run -i``) the
        container's stdin ends with it (EOF for ``cat``), as dockerd closes it; a terminal
        (``-t``) stays open."""
        config = self.record.Config
        if config.StdinOnce and not config.Tty and self.stdin_w is not None:
            os.close(self.stdin_w)
            self.stdin_w = None

    def drop(self, client: socket.socket) -> None:
        self.clients.pop(client, None)
        self.readers.discard(client)
        client.close()

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

    def wait_to_restart(self, delay: float) -> bool:
        """The back-off: "restarting" for ``delay`` seconds, unless stopped meanwhile."""
        try:
            with self.record.locked():
                self.record.RestartCount += 1
                self.record.State.update(Status="restarting",
                                         MonitorPid=os.getpid())
        except MinidockerError:
            return False
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            time.sleep(min(0.05, delay))
            try:
                if self.record.reload().State["ManuallyStopped"]:
                    self.record.mark_exited(self.record.State["ExitCode"])
                    return False
            except MinidockerError:
                return False
        return True

    def close(self) -> None:
        self.log.close()
        self.listener.close()
        with contextlib.suppress(OSError):
            os.unlink(self.record.directory / "attach.sock")
        signal.set_wakeup_fd(-1)

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


class Terminal:
    """The foreground CLI's own stdio, as an attached client of its container's monitor."""

    def __init__(self, interactive: bool):
        self.stdin_open = interactive


def same_file(fd_a: int, fd_b: int) -> bool:
    """Do two fds lead to the same file (a pipe, a terminal)? Then a reader sees one stream."""
    a, b = os.fstat(fd_a), os.fstat(fd_b)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def main(argv: list[str]) -> None:
    """The detached monitor's life (``python -m minidocker.container.monitor ID FD``)."""
    container_id, status_fd = argv[0], int(argv[1])
    os.set_inheritable(status_fd, False)
    for signum in (signal.SIGHUP, signal.SIGINT, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_IGN)

    def report(message: dict) -> None:
        """Tell launch() how the first start went. It may have stopped listening already
        (``start -a`` returns at "listening" to attach): the attached client and the record
        hear of it instead, so a closed pipe is no error."""
        with contextlib.suppress(OSError):
            os.write(status_fd, (json.dumps(message) + "\n").encode())
        with contextlib.suppress(OSError):
            os.close(status_fd)

    try:
        monitor = Monitor(records.load(container_id))
        if "--wait-for-attach" in argv:
            os.write(status_fd, b'{"listening": true}\n')
            if not select.select([monitor.listener], [], [], 10)[0]:  # nobody came
                monitor.close()
                return
            monitor.accept()
        monitor.run(report)
    except BaseException as exc:  # anything unexpected: say so, where launch() can read it
        report({"error": f"monitor: {exc}", "exit_code": 125})
        raise


if __name__ == "__main__":
    main(sys.argv[1:])
