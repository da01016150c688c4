"""v2vm probe (runs in the guest after pytest): start containers with every limit through the
engine's own API, and show what the v2 files say from the host side, so the report can tell
what the kernel accepted. Read-only towards the repo; its state root is a tmpfs-free dir in /tmp."""

import os
import sys
import time

os.environ.setdefault("MINIDOCKER_ROOT", "/tmp/v2vm-probe-root")
os.environ.setdefault("MINIDOCKER_CGROUP_PARENT", "v2vm-probe")

from minidocker import cgroups  # noqa: E402
from minidocker.cgroups import build_limits  # noqa: E402
from minidocker.container import Config, HostConfig, run  # noqa: E402
from minidocker.image.busybox import create_busybox_image  # noqa: E402
from minidocker.namespaces import Stdio  # noqa: E402

FILES = ["cgroup.controllers", "cgroup.subtree_control", "memory.max", "memory.swap.max",
         "cpu.max", "cpu.weight", "cpuset.cpus", "cpuset.cpus.effective", "pids.max",
         "memory.current", "pids.current", "memory.events", "pids.events", "cpu.stat"]
CASES = [
    {"memory": "32m"},
    {"memory": "32m", "memory_swap": "64m"},
    {"memory": "32m", "memory_swap": "-1"},
    {"cpus": "0.5"},
    {"cpu_period": "50000", "cpu_quota": "25000"},
    {"cpu_shares": "512"},
    {"cpu_shares": "2"},
    {"cpu_shares": "262144"},
    {"cpuset_cpus": "1"},
    {"pids_limit": "20"},
    {"memory": "32m", "memory_swap": "64m", "cpus": "1.5", "cpu_shares": "512",
     "cpuset_cpus": "0-1", "pids_limit": "20"},
]


def show(path, names):
    for name in names:
        try:
            text = (path / name).read_text().strip().replace("\n", "; ")
        except OSError as exc:
            text = f"<{exc.__class__.__name__}: {exc}>"
        print(f"    {name}: {text}")


def main():
    if cgroups.layout() != "v2":
        print(f"probe: layout {cgroups.layout()}, not v2: nothing to show")
        return 0
    create_busybox_image()
    root = cgroups.CGROUP_ROOT
    print(f"layout {cgroups.layout()}; root subtree_control: "
          f"{(root / 'cgroup.subtree_control').read_text().strip()}")
    null = os.open(os.devnull, os.O_RDWR)
    for limits in CASES:
        print(f"--- limits {limits}")
        try:
            host = HostConfig(AutoRemove=True, Resources=build_limits(**limits))
            container = run(Config(Image="busybox", Cmd=["sh", "-c", "sleep 2"]), host,
                            stdio=Stdio(null, null, null))
        except Exception as exc:  # what a user would see
            print(f"  START FAILED: {exc.__class__.__name__}: {exc}")
            continue
        path = container.cgroup.path
        print(f"  cgroup {path}")
        print(f"  parent {path.parent}:")
        show(path.parent, ["cgroup.controllers", "cgroup.subtree_control"])
        print("  container:")
        show(path, FILES)
        time.sleep(0.2)
        print(f"  stats {container.stats()}")
        print(f"  exit {container.wait()}")
    print(f"leftover cgroups: {cgroups.leftover_cgroups()} {cgroups.parent_dirs()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
