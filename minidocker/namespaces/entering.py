"""Stage 1 — joining the namespaces of a running process, and running a command there.

setns(2) moves the calling thread into an existing namespace, given a file descriptor of one of
its ``/proc/<pid>/ns`` links; that is all nsenter(1), ``docker exec`` and ``--network
container:X`` do. Two kinds are odd: joining the user namespace must come first (it grants
the rights for the rest), and joining a PID namespace changes only where the *children* of the
caller are born — so ``enter`` forks once more after it, and the process left behind passes
signals on and waits, as nsenter's does.

Man pages: setns(2), nsenter(1), pid_namespaces(7), user_namespaces(7). Used by: notebook
01-namespaces (``enter``, ``join``), ``exec`` and sharing (stage 6), lab 01-namespaces.
"""

import os
import signal
import subprocess
import tempfile
from collections.abc import Iterable

from minidocker import kernel
from minidocker.namespaces.kinds import CONTAINER_NAMESPACES, NAMESPACES, namespaces_of
from minidocker.namespaces.pid1 import close_other_fds, execute
from minidocker.namespaces.sync import Report, exit_code_of, fork_child


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
        out = read_all(out_r)  # until the command, or the child that failed, is gone
        with child.reports:
            child.wait_exec()
        status = os.waitpid(child.pid, 0)[1]
        errors.seek(0)
        err = errors.read()
    return subprocess.CompletedProcess(argv, exit_code_of(status), out.decode(), err.decode())


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
            return exit_code_of(os.waitpid(child, 0)[1])
        except InterruptedError:
            continue


def read_all(fd: int) -> bytes:
    """Everything until EOF from ``fd``, which is then closed."""
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)
