"""Stage 6 — a running container's stdio, relayed: its output to the log and to attached
clients, what the clients type to its stdin; and the select(2) loop that waits for all of it.

This is the part of a monitor that runs for a container's whole life, so it is kept small and
imports only the standard library's small modules (no dataclasses, no pathlib, no engine): a
detached container's monitor starts the container with the whole engine, then execve(2)s
itself into the watcher (watch.py), which is little more than this module — the same process,
the same PID (still PID 1's parent), the same open pipes and sockets, a fraction of the
memory. monitor.py uses the same ``Loop`` and ``Relay`` for foreground runs and for the
daemon's monitor host.

The relay's state passes from one program to the other as plain numbers: every fd it holds
(``handoff_state``), made inheritable across the exec, and rebuilt on the other side
(``Relay.from_state``).

Man pages: select(2), pipe(7), unix(7), signal(7) (the self-pipe: signal.set_wakeup_fd),
tty_ioctl(4) (TIOCSWINSZ), execve(2) (what a process keeps across it).
"""

import contextlib
import fcntl
import os
import select
import signal
import socket
import termios

from minidocker.container.attach import RESIZE, frame
from minidocker.container.jsonfile import LogWriter, NoLog
from minidocker.container.tty import write_all


class Loop:
    """One select(2) loop for any number of containers (and, in the host, its own socket).

    Each turn: ask every monitor for the fds it waits on and how long it may sleep, wait for
    all of them at once, then give each monitor its ready fds. SIGCHLD (a PID 1 or a probe
    ended) wakes select() through the signal wake-up pipe; nobody ever sleeps."""

    def __init__(self, keep_going: bool = False):
        self.keep_going = keep_going  # the host: one container's failure is not the others'
        self.monitors: list = []  # anything with fds(), timeout(), step(ready) and state
        self.handlers: dict = {}  # more fds to watch (the host's socket) -> what to call
        self.wakeup_r, wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wakeup_w = wakeup_w
        signal.set_wakeup_fd(wakeup_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select() when a child ends

    def add(self, monitor) -> None:
        self.monitors.append(monitor)

    def run_until(self, done) -> None:
        while not done():
            self.turn()

    def turn(self) -> None:
        waits, timeout = {}, 1.0
        for monitor in self.monitors:
            for fd in monitor.fds():
                waits[fd] = monitor
            timeout = min(timeout, monitor.timeout())
        try:
            ready, _, _ = select.select([*waits, *self.handlers, self.wakeup_r], [], [],
                                        max(timeout, 0))
        except InterruptedError:
            ready = []
        if self.wakeup_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(self.wakeup_r, 512)
        for monitor in list(self.monitors):
            self.step(monitor, [fd for fd in ready if waits.get(fd) is monitor])
        for fd in ready:
            if fd in self.handlers:
                self.handlers[fd]()
        self.monitors = [monitor for monitor in self.monitors if monitor.state != "done"]

    def step(self, monitor, ready: list) -> None:
        if not self.keep_going:
            monitor.step(ready)
            return
        try:
            monitor.step(ready)
        except Exception:  # a bug, for this container only: it goes, the others stay
            import traceback

            traceback.print_exc()
            monitor.abort()

    def close(self) -> None:
        signal.set_wakeup_fd(-1)
        os.close(self.wakeup_r)
        os.close(self.wakeup_w)


class Terminal:
    """The foreground CLI's own stdio, as an attached client of its container's monitor."""

    def __init__(self, interactive: bool):
        self.stdin_open = interactive


class Relay:
    """A container's stdio while it runs: output pipes (or the pty's master) to the log and
    to every attached client, clients' input (and the terminal's, in the foreground) to the
    container's stdin; the attach socket's listener, and terminal resizes."""

    def __init__(self, listener: socket.socket, log: "LogWriter | NoLog", tty: bool,
                 stdin_once: bool, local: Terminal | None = None):
        self.listener = listener
        self.log = log
        self.tty, self.stdin_once = tty, stdin_once  # Config.Tty, Config.StdinOnce
        self.local = local  # the foreground terminal, or None when detached
        self.clients: dict[socket.socket, bool] = {}  # attached client -> brought stdin?
        self.readers: set[socket.socket] = set()  # clients that may still send something
        self.outputs: dict[int, str] = {}  # the container's output fds -> stream name
        self.stdin_w: int | None = None
        self.master: int | None = None  # the pty's master end, with -t
        self.window: bytes | None = None  # the size an attached terminal asked for

    def fds(self) -> list:
        fds = [*self.outputs, self.listener, *self.readers]
        if self.local and self.local.stdin_open:
            fds.append(0)
        return fds

    def relay(self, ready: list) -> None:
        """Copy what is ready: output to the log and the clients, input to the container. A
        client that came in the same turn is taken in first: it sees this output too."""
        if self.listener in ready:
            self.accept()
        for fd in ready:
            if fd in self.outputs:
                self.copy_output(fd)
            elif fd == 0:
                self.copy_input(os.read(0, 65536), local=True)
            elif fd in self.readers:
                self.copy_input(self._recv(fd))

    def copy_output(self, fd: int) -> None:
        stream = self.outputs[fd]
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO from a pty: every process holding its slave end is gone
            data = b""
        if not data:
            del self.outputs[fd]
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
            if not self.tty:
                self.close_stdin()

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
        client.settimeout(None)
        self.clients[client] = kind == b"i"
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
            if self.clients.get(client) and self.stdin_once and not self.tty:
                # with StdinOnce (``docker run -i``) the container's stdin ends with the
                # client's (EOF for ``cat``), as dockerd closes it; a terminal stays open
                self.close_stdin()
        return data if self.clients.get(client) else b""

    def close_stdin(self) -> None:
        if self.stdin_w is not None:
            os.close(self.stdin_w)
            self.stdin_w = None

    def drop(self, client: socket.socket) -> None:
        self.clients.pop(client, None)
        self.readers.discard(client)
        client.close()

    def drained(self) -> None:
        """PID 1 has exited and its output is drained: the last half line into the log, and
        the container's stdin closed."""
        self.log.flush_partial()
        if not self.tty:
            self.close_stdin()
        self.stdin_w = None

    def tell_clients(self, last_words: bytes) -> None:
        """Send ``last_words`` to every attached client, then let them go."""
        for client in list(self.clients):
            with contextlib.suppress(OSError):
                client.sendall(last_words)
            self.drop(client)

    def close(self) -> None:
        self.log.close()
        self.listener.close()

    # across execve(2)

    def handoff_state(self) -> dict:
        """Every fd of the relay as a number, made inheritable so it survives the exec."""
        fds = [*self.outputs, self.listener.fileno(), *(c.fileno() for c in self.clients)]
        fds += [fd for fd in (self.stdin_w, self.master) if fd is not None]
        for fd in fds:
            os.set_inheritable(fd, True)
        log = self.log
        return {"listener": self.listener.fileno(), "outputs": self.outputs,
                "stdin_w": self.stdin_w, "master": self.master,
                "window": self.window.hex() if self.window else None,
                "clients": {c.fileno(): stdin for c, stdin in self.clients.items()},
                "readers": [c.fileno() for c in self.readers],
                "tty": self.tty, "stdin_once": self.stdin_once,
                "log": [log.path, log.max_size, log.max_file] if isinstance(log, LogWriter)
                else None}

    @classmethod
    def from_state(cls, state: dict) -> "Relay":
        """The relay ``handoff_state`` described, in the program after the exec."""
        def adopt(fd: int) -> int:
            os.set_inheritable(fd, False)  # ours only: no further exec inherits it
            return fd

        log = LogWriter(*state["log"]) if state["log"] else NoLog()
        relay = cls(socket.socket(fileno=adopt(state["listener"])), log, state["tty"],
                    state["stdin_once"])
        relay.outputs = {adopt(int(fd)): stream for fd, stream in state["outputs"].items()}
        relay.stdin_w = None if state["stdin_w"] is None else adopt(state["stdin_w"])
        relay.master = None if state["master"] is None else adopt(state["master"])
        relay.window = bytes.fromhex(state["window"]) if state["window"] else None
        clients = {int(fd): socket.socket(fileno=adopt(int(fd))) for fd in state["clients"]}
        relay.clients = {clients[int(fd)]: stdin for fd, stdin in state["clients"].items()}
        relay.readers = {clients[fd] for fd in state["readers"]}
        return relay
