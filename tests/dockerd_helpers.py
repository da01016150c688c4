"""Docker itself for a side-by-side test: Debian's dockerd 20.10 in namespaces of its own.

dockerd starts inside ``unshare --mount --net``: a network namespace where only its own
``docker0`` lives (``--iptables=false --ip-masq=false``, so no netfilter rule is written even
there), and a mount namespace with a tmpfs on ``/run`` (containerd 1.6 puts its shim sockets
under ``/run/containerd/s`` and dockerd its plugin sockets under ``/run/docker`` whatever the
flags say). Everything else is under one temporary directory on a tmpfs: ``--data-root``,
``--exec-root`` (containerd, which dockerd starts itself, keeps its root and state in them),
``--pidfile`` and the API socket. The containers' cgroups go under a ``--cgroup-parent`` named
after this test session, removed at the end. Nothing touches ``/var/lib/docker``, ``/run`` or
the machine's network. Stopped by its PID; then no process, mount or cgroup of it may remain.
"""

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.daemon_helpers import DOCKER, terminate

DOCKERD = "/usr/sbin/dockerd"
CGROUP_ROOT = Path("/sys/fs/cgroup")


class Dockerd:
    def __init__(self, directory: Path):
        self.directory = directory
        self.socket = directory / "dockerd.sock"
        self.log = directory / "dockerd.log"
        self.cgroup_parent = f"minidocker-vs-dockerd-{os.getpid()}"
        self.proc = None

    @property
    def env(self) -> dict:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}",
                "DOCKER_CONFIG": str(self.directory / "docker-config")}

    def command(self) -> list[str]:
        d = self.directory
        dockerd = [DOCKERD, "--data-root", f"{d}/data", "--exec-root", f"{d}/exec",
                   "--pidfile", f"{d}/dockerd.pid", "-H", f"unix://{self.socket}",
                   "--iptables=false", "--ip-masq=false", "--storage-driver", "overlay2",
                   "--cgroup-parent", f"/{self.cgroup_parent}",
                   "--exec-opt", "native.cgroupdriver=cgroupfs"]
        setup = "ip link set lo up && mount -t tmpfs tmpfs /run && exec \"$@\""
        return ["unshare", "--mount", "--net", "--propagation", "private",
                "sh", "-c", setup, "dockerd", *dockerd]

    def start(self) -> "Dockerd":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while self.docker("version", "--format", "{{.Server.Version}}").returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"dockerd did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        return self

    def docker(self, *args: str, input: str | bytes | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([DOCKER, *args], input=input, capture_output=True,
                              text=not isinstance(input, bytes), timeout=timeout, env=self.env)

    def stop(self) -> list[str]:
        """Remove its containers, SIGTERM dockerd by its PID (it stops containerd and the
        shims); return what it left behind (processes, found by the directory in their
        command line, and cgroups), after killing and removing it."""
        if self.proc and self.proc.poll() is None:
            ids = self.docker("ps", "-aq").stdout.split()
            if ids:
                self.docker("rm", "-f", "-v", *ids)
        terminate(self.proc, 20)
        deadline = time.monotonic() + 5
        while self.leftover_processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [f"process {pid}" for pid in self.leftover_processes()]
        for pid in self.leftover_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        left += [f"cgroup {d}" for d in self.leftover_cgroups() if any(
            p.is_dir() for p in d.iterdir())]  # the parent itself is expected: dockerd keeps it
        self.remove_cgroups()
        left += [f"cgroup {d} (not removable)" for d in self.leftover_cgroups()]
        return left

    def leftover_processes(self) -> list[int]:
        mine = str(self.directory).encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
                with open(f"/proc/{entry}/stat", "rb") as f:
                    zombie = f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
            except (FileNotFoundError, ProcessLookupError):
                continue
            if mine in cmdline and not zombie:
                found.append(int(entry))
        return found

    def leftover_cgroups(self) -> list[Path]:
        places = [CGROUP_ROOT / self.cgroup_parent, *CGROUP_ROOT.glob(f"*/{self.cgroup_parent}")]
        return [d for d in places if d.is_dir()]  # v2: at the top; v1: in each hierarchy

    def remove_cgroups(self) -> None:
        for top in self.leftover_cgroups():
            for sub in sorted((p for p in top.rglob("*") if p.is_dir()),
                              key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    sub.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()


HOST_PATHS = (Path("/var/lib/docker"), Path("/var/lib/containerd"), Path("/run/docker"),
              Path("/run/containerd"), Path("/run/docker.sock"))


@contextlib.contextmanager
def running_dockerd(directory: Path):
    """dockerd on a tmpfs at ``directory`` (unmounted at the end); at its end, an
    AssertionError names anything it left on the machine."""
    before = {p for p in HOST_PATHS if p.exists()}
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(directory)], check=True)
    daemon = Dockerd(directory)
    try:
        yield daemon.start()
    finally:
        left = daemon.stop()
        subprocess.run(["umount", "-R", str(directory)], check=False)
    left += [f"host path {p}" for p in HOST_PATHS if p.exists() and p not in before]
    with open("/proc/self/mountinfo") as mounts:  # its own mounts died with its namespace
        left += [f"mount {line.split()[4]}" for line in mounts if str(directory) in line]
    assert not left, f"dockerd left: {left}"
