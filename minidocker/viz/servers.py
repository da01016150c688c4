"""Registry servers as processes of their own, beside the test or benchmark that talks to them:
minidocker's (``minidocker registry serve``) and Debian's ``docker-registry`` (distribution 2.8,
with a config of our own), each on a free port of the loopback (of the caller's network
namespace: tests and benchmarks run in private ones), its output in a log file, stopped by its
PID.

A server is ready when its port accepts a connection (connect(2) in a short loop); one that
exits first, or does not listen in time, is stopped and reported with the end of its log.

Docs: distribution's configuration reference (``storage.filesystem.rootdirectory``,
``http.addr``, ``storage.delete``). Used by: tests/registry_helpers.py, bench/registry.py.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from minidocker.errors import MinidockerError
from minidocker.viz.cli import patience

START_TIMEOUT = 60.0  # seconds for a live server to listen: a bound for a hang (a slow VM: more)


class ServerFailed(MinidockerError):
    """A server exited, or did not listen in time; the message ends with its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (the kernel's pick for port 0)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Server:
    """``argv`` listening on ``host:port`` (``host``, as an image name writes a registry's;
    ``url`` with ``http://``), its output in ``log``; ``stop()`` sends SIGTERM to its PID
    (SIGKILL after 10 s)."""

    def __init__(self, argv: list[str], port: int, log: Path, host: str = "127.0.0.1",
                 env: dict[str, str] | None = None):
        self.port, self.log = port, log
        self.host = f"{host}:{port}"
        self.url = f"http://{self.host}"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            self.wait_until_listening(host)
        except ServerFailed as failure:
            self.stop()
            raise ServerFailed(f"{failure}: {log.read_text()[-500:]}") from None
        except BaseException:  # interrupted (Ctrl-C, a test's timeout): leave no server
            self.stop()
            raise

    def wait_until_listening(self, address: str) -> None:
        deadline = time.monotonic() + patience(START_TIMEOUT)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerFailed(f"{self.proc.args[0]} exited with {self.proc.returncode}")
            try:
                socket.create_connection((address, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise ServerFailed(f"nothing listens on {self.host} after "
                           f"{patience(START_TIMEOUT):.0f} s")

    def memory(self, field: str = "VmRSS") -> int:
        """``VmRSS`` (now) or ``VmHWM`` (the peak so far) of the server, in bytes (proc(5))."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(next(line.split()[1] for line in f if line.startswith(field))) * 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def minidocker_registry(root: Path, log: Path, *options: str, host: str = "127.0.0.1",
                        env: dict[str, str] | None = None) -> Server:
    """``minidocker registry serve`` on a free port of ``host``, storing in ``root``, with more
    ``options`` (``--auth``, ``--tls``...); ``server.root`` is its storage."""
    port = free_port(host)
    server = Server([sys.executable, "-m", "minidocker.cli", "registry", "serve", "--addr",
                     f"{host}:{port}", "--root", str(root), *options], port, log, host, env)
    server.root = root
    return server


def distribution_registry(root: Path, workdir: Path, log: Path | None = None) -> Server:
    """Debian's ``docker-registry`` (distribution 2.8) serving ``root`` on the loopback, with
    its config in ``workdir``."""
    port = free_port()
    config = distribution_config(root, workdir, port)
    return Server(["docker-registry", "serve", str(config)], port,
                  log or workdir / "registry.log")


def distribution_config(root: Path, workdir: Path, port: int = 5000) -> Path:
    """A config of our own: filesystem storage in ``root``, deletes enabled, loopback only."""
    config = workdir / "config.yml"
    config.write_text(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
""")
    return config
