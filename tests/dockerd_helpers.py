"""Docker itself for a side-by-side test: Debian's dockerd 20.10 in namespaces of its own.

The dockerd is viz/engines.py's (the one notebook 12 draws and bench/daemon.py times): started
inside ``unshare -m -n`` with a tmpfs on ``/run`` (containerd 1.6 puts its shim sockets under
``/run/containerd/s`` and dockerd its plugin sockets under ``/run/docker`` whatever the flags
say) and its ``--data-root``, ``--exec-root`` and ``--pidfile`` on a tmpfs only it sees. For a
test it keeps its own ``docker0`` in its network namespace but writes no netfilter rule even
there (``--iptables=false --ip-masq=false``), and its containers' cgroups go under a
``--cgroup-parent`` of its own, removed at the end. Nothing touches ``/var/lib/docker``,
``/run`` or the machine's network. Stopped by its PID; then no process, mount or cgroup of it
may remain: ``stop`` names what did.
"""

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from minidocker.viz import engines

DOCKERD = "/usr/sbin/dockerd"


class Dockerd(engines.Dockerd):
    text = True  # the tests read the CLI's output as text
    FLAGS = ("--iptables=false", "--ip-masq=false", "--storage-driver=overlay2",
             "--exec-opt=native.cgroupdriver=cgroupfs")

    def __init__(self, directory: Path):
        super().__init__(directory, bridge=True, flags=self.FLAGS)

    def stop(self) -> list[str]:
        """Stop it as viz/engines.py does (its containers removed, SIGTERM to dockerd by its
        PID, its cgroups removed), then return what it left behind (processes, found by the
        directory in their command line, and cgroups), after killing it."""
        super().stop()
        left = [f"process {pid}" for pid in self.leftover_processes()]
        for pid in self.leftover_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return left + [f"cgroup {d} (not removable)" for d in self.leftover_cgroups()]

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
        root = engines.CGROUP_ROOT
        places = [root / self.cgroup_parent, *root.glob(f"*/{self.cgroup_parent}")]
        return [d for d in places if d.is_dir()]  # v2: at the top; v1: in each hierarchy


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
