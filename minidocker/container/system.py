"""What the engine knows of itself: ``docker info`` and ``docker system df``.

``info`` counts containers by state and images, and names the machine it runs on: the kernel,
the cgroup version and driver, the storage driver and state root, CPUs and memory. ``disk_usage``
is what ``system df`` adds up: each image's layers (a layer shared by two images counted once
in the total, and as ``SharedSize`` in each), each container's writable layer (its overlay upper
dir: ``SizeRw``), each volume's files and how many containers mount it.

The CLI prints both; the daemon answers ``GET /info`` and ``GET /system/df`` with the same
dicts, in the Engine API's field names.

Spec: Docker Engine API v1.50, "SystemInfo", "SystemDataUsage". Man pages: uname(2),
proc(5) (/proc/meminfo), os-release(5).
"""

import os
import platform
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

import minidocker
from minidocker import cgroups, volumes
from minidocker.container import records
from minidocker.container.lifecycle import ACTIVE, current_records, rw_size
from minidocker.image.store import ImageStore
from minidocker.state import state_root


def info() -> dict:
    """``docker info``'s facts, as ``GET /info`` names them (the keys dockerd answers with,
    tests/test_daemon_vs_dockerd.py: what minidocker does not have is a zero value)."""
    containers = current_records()
    count = {status: sum(r.status == status for r in containers)
             for status in ("running", "paused", "exited", "created")}
    layout = cgroups.layout()
    return {
        **host_facts(), "ID": "", "Name": socket.gethostname(),
        "ServerVersion": minidocker.__version__,
        "Containers": len(containers), "ContainersRunning": count["running"],
        "ContainersPaused": count["paused"],
        "ContainersStopped": count["exited"] + count["created"],
        "Images": len(ImageStore().images()), "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "minidocker's OCI layout + overlayfs"]],
        "DockerRootDir": str(state_root()), "OSType": "linux",
        "Architecture": platform.machine(), "OperatingSystem": os_name(),
        "KernelVersion": platform.release(), "NCPU": os.cpu_count() or 1,
        "MemTotal": mem_total(), "CgroupDriver": "cgroupfs",
        "CgroupVersion": "2" if layout == "v2" else "1",
        "LoggingDriver": "json-file", "DefaultRuntime": "minidocker",
        "Runtimes": {"minidocker": {"path": "minidocker"}, "runc": {"path": "runc"}},
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"],
                    "Authorization": None, "Log": ["json-file", "local", "none"]},
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "Warnings": [], "ExperimentalBuild": False, "Debug": False,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": [], "Mirrors": [],
                           "AllowNondistributableArtifactsCIDRs": [],
                           "AllowNondistributableArtifactsHostnames": []},
    }


def host_facts() -> dict:
    """The rest of dockerd's ``/info``: what the kernel offers (the cgroup controllers the
    limits need, forwarding and bridge netfilter), the process's own counts, the proxy
    settings, and the zero values of what minidocker does not have (swarm, plugins)."""
    def controller(name: str) -> bool:
        unified = Path("/sys/fs/cgroup/cgroup.controllers")
        if unified.exists():
            return name in unified.read_text().split()
        return Path("/sys/fs/cgroup", name).is_dir()

    def sysctl(path: str) -> bool:
        try:
            return Path("/proc/sys", path).read_text().strip() == "1"
        except OSError:
            return False

    memory, cpu = controller("memory"), controller("cpu")
    commit = {"ID": "", "Expected": ""}
    return {
        "MemoryLimit": memory, "SwapLimit": memory, "KernelMemory": False,
        "KernelMemoryTCP": False, "CpuCfsPeriod": cpu, "CpuCfsQuota": cpu, "CPUShares": cpu,
        "CPUSet": controller("cpuset"), "PidsLimit": controller("pids"),
        "OomKillDisable": False, "IPv4Forwarding": sysctl("net/ipv4/ip_forward"),
        "BridgeNfIptables": sysctl("net/bridge/bridge-nf-call-iptables"),
        "BridgeNfIp6tables": sysctl("net/bridge/bridge-nf-call-ip6tables"),
        "NFd": len(os.listdir("/proc/self/fd")), "NGoroutines": threading.active_count(),
        "SystemTime": datetime.now(UTC).isoformat(), "NEventsListener": 0,
        "OSVersion": os_release("VERSION_ID"), "GenericResources": None, "Labels": [],
        "HttpProxy": os.environ.get("HTTP_PROXY", ""),
        "HttpsProxy": os.environ.get("HTTPS_PROXY", ""),
        "NoProxy": os.environ.get("NO_PROXY", ""), "LiveRestoreEnabled": True,
        "Isolation": "", "InitBinary": "tini", "ContainerdCommit": commit,
        "RuncCommit": commit, "InitCommit": commit,
    }


def os_name() -> str:
    return os_release("PRETTY_NAME") or "Linux"


def os_release(key: str) -> str:
    """One field of os-release(5)."""
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith(f"{key}="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return ""


def mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0


# --- system df -------------------------------------------------------------------------------

def disk_usage() -> dict:
    """``GET /system/df``: images, containers and volumes with their sizes (bytes)."""
    containers = current_records()
    images = ImageStore().images()
    users = {}
    for record in containers:
        users.setdefault(record.Image, []).append(record)
    layer_users: dict[str, int] = {}
    layer_size: dict[str, int] = {}
    for image in images:
        for layer in image.manifest["layers"]:
            layer_users[layer["digest"]] = layer_users.get(layer["digest"], 0) + 1
            layer_size[layer["digest"]] = layer["size"]
    image_rows = [{
        "Id": image.id, "RepoTags": image.tags, "Size": image.size,
        "SharedSize": sum(layer["size"] for layer in image.manifest["layers"]
                          if layer_users[layer["digest"]] > 1),
        "Containers": len(users.get(image.id, [])), "Created": 0, "Labels": {},
        "ParentId": "", "RepoDigests": [], "VirtualSize": image.size}
        for image in images]
    in_use = records.volumes_in_use()
    volume_rows = [{**v.inspect(), "UsageData": {
        "Size": volumes.disk_usage(v.directory / "_data"),
        "RefCount": len(in_use.get(v.Name, []))}} for v in volumes.list_volumes()]
    return {
        "LayersSize": sum(layer_size.values()),
        "Images": image_rows,
        "Containers": [container_usage(r) for r in containers],
        "Volumes": volume_rows,
        "BuildCache": [],
    }


def container_usage(record: records.ContainerRecord) -> dict:
    return {"Id": record.Id, "Names": [f"/{record.Name}"], "Image": record.Config.Image,
            "ImageID": record.Image, "Command": " ".join(record.command),
            "State": record.status, "Status": record.status,
            "SizeRw": rw_size(record),
            "SizeRootFs": 0, "Created": 0, "Labels": record.Config.Labels,
            "Mounts": record.Mounts, "Running": record.status in ACTIVE}
