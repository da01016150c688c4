"""A minidocker daemon for a test: started on a socket in a temporary directory, stopped by
its PID at the end, and the containers it made removed."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

DOCKER = "/usr/local/bin/docker"


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
        deadline = time.monotonic() + 20
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
        terminate(self.proc, 10)

    def docker(self, *args: str, input: str | None = None, timeout: float = 60,
               env: dict | None = None) -> subprocess.CompletedProcess:
        """The real docker CLI, talking to this daemon (with more ``env`` if given)."""
        return subprocess.run([DOCKER, *args], input=input, capture_output=True, text=True,
                              timeout=timeout, env={**self.env, **(env or {})})

    def http(self) -> httpx.Client:
        """Raw HTTP on the socket, for what the CLI never sends (bad input)."""
        return httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket)),
                            base_url="http://docker", timeout=30)

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
