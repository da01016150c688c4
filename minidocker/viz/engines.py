"""Docker itself, beside minidocker: Debian's dockerd started in namespaces of its own, so that a
notebook or a benchmark can run the same docker CLI against both daemons.

``Dockerd(directory)`` starts ``dockerd`` through ``unshare -m -n``: a private mount namespace
where a tmpfs holds its ``--data-root``, ``--exec-root`` and ``--pidfile`` (so its overlay
mounts and image store exist only there and vanish with it), and a private network namespace
(so its bridge, veths and iptables rules never reach the host). Only its socket is made in
``directory``, on the host's filesystem, where the docker CLI finds it (so ``directory`` must
not be under ``/run``, which is a tmpfs of its own there: containerd 1.6 puts its shims' sockets
in ``/run/containerd/s`` and dockerd its plugins' in ``/run/docker``, whatever the flags say).
dockerd starts its own
containerd (the "managed" one, under the exec root), and each container gets a
``containerd-shim-runc-v2`` that starts ``runc``: the process tree the notebook draws.

Its containers' cgroups go under a parent of their own (``--cgroup-parent``), removed at the end
with everything else: ``stop()`` removes every container, sends SIGTERM to dockerd (which stops
its containerd), waits, and removes the cgroup directories; the namespaces go with their last
process. ``bridge=True`` keeps dockerd's default bridge (``docker0``, inside the private network
namespace only); otherwise ``--bridge=none`` and containers have only ``lo``.

Man pages: unshare(1), dockerd(8), cgroups(7). Docs: "Run multiple daemons" (dockerd's
reference: --data-root, --exec-root, --pidfile, -H).
Used by: notebook 12-client-and-daemon; bench/daemon.py.
"""

import atexit
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from minidocker.errors import MinidockerError
from minidocker.viz.cli import patience

# The docker CLI: 28.2 where this kit's machine has it, else Debian's (docker.io, 20.10),
# which the kit installs with dockerd; both negotiate the API version with the daemon.
DOCKER = "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else \
    shutil.which("docker") or "docker"
START_TIMEOUT = 30  # seconds for dockerd (and its containerd) to answer /_ping
CGROUP_ROOT = Path("/sys/fs/cgroup")


class Dockerd:
    """dockerd in private mount and network namespaces; its socket is ``directory/docker.sock``.
    A context manager."""

    text = False  # the docker CLI's output as bytes (True: as text, unless input is bytes)

    def __init__(self, directory: str | Path, bridge: bool = False, flags: tuple = ()):
        self.directory = Path(directory)
        self.socket = self.directory / "docker.sock"
        self.private = self.directory / "private"  # a tmpfs, seen only by dockerd
        self.cgroup_parent = f"minidocker-dockerd-{os.getpid()}-{id(self) % 10000}"
        self.bridge = bridge
        self.flags = list(flags)  # more of dockerd's flags
        self.proc: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        """The environment for the docker CLI to talk to this dockerd."""
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}",
                "DOCKER_CONFIG": str(self.directory / "docker-config")}

    def argv(self) -> list[str]:
        p = self.private
        flags = [f"--data-root={p}/data", f"--exec-root={p}/exec", f"--pidfile={p}/dockerd.pid",
                 f"-H=unix://{self.socket}", f"--cgroup-parent=/{self.cgroup_parent}",
                 "--log-level=error", "--containerd-namespace=minidocker-side",
                 "--containerd-plugins-namespace=minidocker-side-plugins"]
        flags += [] if self.bridge else ["--bridge=none", "--iptables=false",
                                         "--ip-masq=false"]
        flags += self.flags
        script = (f"mount --make-rprivate / && ip link set lo up && mkdir -p {p} && "
                  f"mount -t tmpfs tmpfs {p} && mount -t tmpfs tmpfs /run && "
                  f"exec dockerd {' '.join(flags)}")
        return ["unshare", "-m", "-n", "sh", "-c", script]

    def start(self) -> "Dockerd":
        if not shutil.which("dockerd"):
            raise MinidockerError("dockerd is not installed (apt-get install docker.io)")
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "dockerd.log", "ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        atexit.register(self.stop)  # a notebook whose cell failed still stops it on exit
        deadline = time.monotonic() + patience(START_TIMEOUT)
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise MinidockerError("dockerd did not start: "
                                      f"{(self.directory / 'dockerd.log').read_text()[-500:]}")
            time.sleep(0.1)
        return self

    def answers(self) -> bool:
        return self.socket.exists() and self.docker("version").returncode == 0

    @property
    def pid(self) -> int:
        """dockerd's PID (``unshare`` and ``sh`` exec'd into it)."""
        return self.proc.pid

    def docker(self, *args: str, input: bytes | str | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([DOCKER, *args], input=input, capture_output=True,
                              text=self.text and not isinstance(input, bytes),
                              timeout=patience(timeout), env=self.env)

    def shims(self) -> list[int]:
        """The PIDs of this dockerd's ``containerd-shim-runc-v2`` processes. A shim leaves its
        parent's tree at birth (it forks and its parent exits), so it is found by the address
        of its containerd, which lives in this dockerd's private directory."""
        found = []
        for entry in Path("/proc").iterdir():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and b"containerd-shim" in argv[0] and \
                    any(str(self.private).encode() in arg for arg in argv):
                found.append(int(entry.name))
        return sorted(found)

    def load(self, archive: bytes) -> None:
        """``docker load`` of an image archive (``minidocker save`` output)."""
        loaded = self.docker("load", input=archive)
        if loaded.returncode != 0:
            raise MinidockerError(f"docker load failed: {loaded.stderr.decode().strip()}")

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self.proc is None:
            return
        if self.proc.poll() is None:
            ids = self.docker("ps", "-aq", timeout=30).stdout.split()
            if ids:
                self.docker("rm", "-f", "-v", *[i if isinstance(i, str) else i.decode()
                                                 for i in ids], timeout=60)
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        deadline = time.monotonic() + 15
        while self.shims() and time.monotonic() < deadline:  # each exits after its container
            time.sleep(0.1)
        self.socket.unlink(missing_ok=True)
        remove_cgroup_dirs(self.cgroup_parent)

    def __enter__(self) -> "Dockerd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def remove_cgroup_dirs(name: str) -> None:
    """``rmdir`` the cgroup ``name`` (and what is below it, deepest first) in every hierarchy:
    the one of a cgroup-v2-only machine, or each of v1's (and the hybrid's ``unified``)."""
    v2_only = (CGROUP_ROOT / "cgroup.controllers").exists()
    for hierarchy in [CGROUP_ROOT] if v2_only else CGROUP_ROOT.iterdir():
        top = hierarchy / name
        if not top.is_dir():
            continue
        below = sorted((d for d in top.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts))
        for directory in [*below, top]:
            for _ in range(50):  # a cgroup whose last process just exited may still be busy
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


class Podman:
    """podman, daemonless, in a mount and network namespace of its own: a holder process
    (``sleep``) keeps the namespaces, where tmpfs mounts cover ``/run`` and
    ``/var/lib/containers`` (the paths podman writes whatever its flags say), and every podman
    command joins them (``nsenter``). Its store is in ``directory``, its run root and temp dir
    on that ``/run``;
    ``--runtime runc``, ``--cgroup-manager cgroupfs`` and a cgroup parent of its own, removed
    at the end. A context manager."""

    # the rlimits this sandbox requires (INTEROP.md); the log in a file (k8s-file), not
    # journald, which podman picks where systemd runs (its socket is not on our /run)
    RUN_FLAGS = ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit",
                 "nproc=1000:1000", "--log-driver", "k8s-file"]

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.cgroup_parent = f"minidocker-podman-{os.getpid()}-{id(self) % 10000}"
        self.holder: subprocess.Popen | None = None

    def start(self) -> "Podman":
        if not shutil.which("podman"):
            raise MinidockerError("podman is not installed (apt-get install podman)")
        self.directory.mkdir(parents=True, exist_ok=True)
        lib = "/var/lib/containers" if os.path.isdir("/var/lib/containers") else "/var/lib"
        script = (f"mount --make-rprivate / && ip link set lo up && mount -t tmpfs tmpfs /run "
                  f"&& mount -t tmpfs tmpfs {lib} && echo ready && exec sleep infinity")
        self.holder = subprocess.Popen(["unshare", "-m", "-n", "sh", "-c", script],
                                       stdout=subprocess.PIPE, start_new_session=True)
        atexit.register(self.stop)  # a notebook whose cell failed still stops it on exit
        if self.holder.stdout.readline() != b"ready\n":
            self.stop()
            raise MinidockerError("podman's namespaces could not be made")
        return self

    def podman(self, *args: str, input: bytes | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
        base = ["nsenter", "-t", str(self.holder.pid), "-m", "-n", "podman",
                "--root", f"{self.directory}/root", "--runroot", "/run/podman",  # its tmpfs:
                "--tmpdir", "/run/podman-tmp", "--runtime", "runc",  # a short path (podman
                "--cgroup-manager", "cgroupfs", "--events-backend", "file"]  # wants ≤ 50)
        return subprocess.run([*base, *args], input=input, capture_output=True,
                              timeout=patience(timeout),
                              env={**os.environ, "TMPDIR": "/run/podman-tmp"})

    def run_detached(self, image: str, *command: str) -> str:
        """``podman run -d``; the container's ID."""
        ran = self.podman("run", "-d", *self.RUN_FLAGS, "--cgroup-parent",
                          f"/{self.cgroup_parent}", image, *command)
        if ran.returncode != 0:
            raise MinidockerError(f"podman run failed: {ran.stderr.decode().strip()}")
        return ran.stdout.decode().strip()

    def conmon(self, container: str) -> int:
        """The PID of the container's conmon."""
        return int(self.podman("inspect", "--format", "{{.State.ConmonPid}}", container)
                   .stdout)

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self.holder is None:
            return
        if self.holder.poll() is None:
            self.podman("rm", "-af", "-t", "0")
            self.holder.kill()
        self.holder.wait()
        self.holder.stdout.close()
        remove_cgroup_dirs(self.cgroup_parent)

    def __enter__(self) -> "Podman":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
