"""A minidocker daemon for a test: started on a socket in a temporary directory, stopped by
its PID at the end, and the containers it made removed. Every wait here is scaled by
``MINIDOCKER_TEST_TIMEOUT_SCALE`` (an emulated VM is ~10x slower)."""

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import httpx

from minidocker.viz.engines import DOCKER  # 28 where the machine has it, else Debian's 20.10
from tests.conftest import TIMEOUT_SCALE

DOCKER_28 = "/usr/local/bin/docker"  # a few checks need its own words or flags


class Daemon:
    def __init__(self, directory: Path, *args: str):
        self.socket = directory / "md.sock"
        self.log = directory / "daemon.log"
        self.argv = [sys.executable, "-m", "minidocker.cli", "daemon", "--host",
                     f"unix://{self.socket}", "--log-level", "warning", *args]
        self.proc = None

    @property
    def env(self) -> dict:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}",
                "DOCKER_CONFIG": str(self.socket.parent / "docker-config")}

    def start(self) -> "Daemon":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20 * TIMEOUT_SCALE  # the API's imports, on a slow VM
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the daemon did not start:\n{self.log.read_text()}")
            time.sleep(0.05)
        return self

    def answers(self) -> bool:
        try:
            with self.http() as client:
                return client.get("/_ping").text == "OK"
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        terminate(self.proc, 10 * TIMEOUT_SCALE)

    def docker(self, *args: str, input: str | None = None, timeout: float = 60,
               env: dict | None = None) -> subprocess.CompletedProcess:
        """The real docker CLI, talking to this daemon (with more ``env`` if given)."""
        return subprocess.run([DOCKER, *args], input=input, capture_output=True, text=True,
                              timeout=timeout * TIMEOUT_SCALE, env={**self.env, **(env or {})})

    def http(self) -> httpx.Client:
        """Raw HTTP on the socket, for what the CLI never sends (bad input)."""
        return httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket)),
                            base_url="http://docker", timeout=30 * TIMEOUT_SCALE)

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def terminate(proc: subprocess.Popen | None, seconds: float) -> None:
    """SIGTERM a daemon by its PID; SIGKILL if it is still there after ``seconds``."""
    if proc and proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def remove_containers(prefix: str) -> None:
    """Remove, through minidocker's own CLI, every container whose name starts with
    ``prefix`` (also when the daemon is gone)."""
    cli = [sys.executable, "-m", "minidocker.cli"]
    names = subprocess.run([*cli, "ps", "-a", "--format", "{{.Names}}"], capture_output=True,
                           text=True).stdout.split()
    doomed = [n for n in names if n.startswith(prefix)]
    if doomed:
        subprocess.run([*cli, "rm", "-f", "-v", *doomed], capture_output=True)


@contextlib.contextmanager
def running_daemon(directory: Path, prefix: str, *args: str):
    daemon = Daemon(directory, *args).start()
    try:
        yield daemon
    finally:
        daemon.stop()
        remove_containers(prefix)


class Terminal:
    """The docker CLI on a real pty of ours, whose size we set as a terminal emulator does."""

    def __init__(self, daemon, argv: list[str], rows: int = 24, columns: int = 80,
                 program: str = DOCKER, env: dict | None = None):
        self.pid, self.master = pty.fork()
        if self.pid == 0:  # never back into pytest: a failed exec ends the child
            try:
                os.execve(program, [program, *argv], {**daemon.env, **(env or {})})
            finally:
                os._exit(127)
        self.resize(rows, columns)
        self.seen = b""

    def resize(self, rows: int, columns: int) -> None:
        """TIOCSWINSZ on our side: the kernel sends the CLI SIGWINCH, it POSTs ``resize``."""
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def read_until(self, marker: bytes, timeout: float = 20) -> bytes:
        deadline = time.monotonic() + timeout * TIMEOUT_SCALE
        while marker not in self.seen and time.monotonic() < deadline:
            if select.select([self.master], [], [], 0.2)[0]:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:
                    break
        return self.seen

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self, timeout: float = 5) -> int:
        """The CLI's exit code, once it has closed the terminal (read for ``timeout`` seconds,
        killed if it is still there 30 s later)."""
        self.read_until(b"\x00", timeout=timeout)
        deadline = time.monotonic() + 30 * TIMEOUT_SCALE  # a loaded machine: its last requests
        while not (done := os.waitpid(self.pid, os.WNOHANG))[0]:
            if time.monotonic() > deadline:
                os.kill(self.pid, 9)
                done = os.waitpid(self.pid, 0)
                break
            time.sleep(0.05)
        status = done[1]
        os.close(self.master)
        return os.waitstatus_to_exitcode(status)
