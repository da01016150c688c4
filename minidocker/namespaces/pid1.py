"""Stage 1 — the last steps before the command runs, and a tiny init to run it under.

A process about to become a container's command still holds what its parent gave it: open file
descriptors, ignored signals, the parent's terminal. Before execve(2) it takes the three fds it
was given as stdin, stdout and stderr (or a terminal from its own devpts, whose master end goes
back to the parent over a unix socket), puts every signal back to its default and closes
every other fd: an open directory fd is a way out of its root (CVE-2024-21626). Then it execs,
searching ``$PATH`` like Docker, with Docker's exit codes when it cannot (127, 126).

PID 1 of a PID namespace is special: the kernel ignores every signal it has no handler for,
and every orphan of the namespace becomes its child. ``mini_init`` (``--init``) is what tini
does about it: it forks the command, passes signals on and reaps the orphans.

Man pages: execve(2), signal(7), pid_namespaces(7), pty(7), pts(4), unix(7) (SCM_RIGHTS),
close(2). Used by: the shim (shim.py), ``enter`` (entering.py), the monitor, notebook
01-namespaces.
"""

import fcntl
import os
import signal
import socket
import struct
import termios
from dataclasses import dataclass

from minidocker import explain, kernel
from minidocker.namespaces.sync import Report, exit_code_of

SIGNALS_TO_FORWARD = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                      signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)


@dataclass
class Stdio:
    """The three file descriptors the container's PID 1 gets. With ``-t`` there is a
    ``console`` socket instead: the container makes its terminal in its own ``/dev/pts`` and
    sends the master end back through it (runc's "console socket")."""

    stdin: int = 0
    stdout: int = 1
    stderr: int = 2
    console: socket.socket | None = None


def connect_stdio(stdio: Stdio) -> None:
    """dup2(2) the given fds to 0, 1 and 2."""
    for target, fd in enumerate((stdio.stdin, stdio.stdout, stdio.stderr)):
        if fd != target:
            os.dup2(fd, target)


def reset_signal_dispositions() -> None:
    """An ignored signal stays ignored across execve(2): undo what Python (SIGPIPE, SIGXFSZ),
    the shim (SIGINT, SIGQUIT, SIGTSTP) and a detached monitor (SIGHUP) ignore, so the
    command starts with defaults."""
    for signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGQUIT,
                   signal.SIGTSTP, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


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
            os._exit(exit_code_of(status))  # the kernel then kills the rest of the namespace
