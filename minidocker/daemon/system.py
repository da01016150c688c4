"""The system endpoints: how a client finds out who it is talking to.

Every docker CLI command begins with ``HEAD /_ping``: the answer's ``Api-Version`` header
tells the client which API version to speak (it takes the lower of its own and ours) and
``Ostype`` which platform. ``/version`` and ``/info`` are ``docker version`` and ``docker
info``: minidocker names itself, with the kernel, cgroup layout and state root it runs on.

    GET/HEAD /_ping      system_ping
    GET      /version    system_version
    GET      /info       system_info

Spec: Docker Engine API v1.50, section "System" (SystemPing, SystemVersion, SystemInfo) and
"Versioning".
"""

import os
import platform
import socket
from datetime import UTC, datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

import minidocker
from minidocker import cgroups
from minidocker.image.store import architecture
from minidocker.state import state_root

API_VERSION = "1.50"  # what the docker CLI 28.2 speaks
MIN_API_VERSION = "1.24"


def headers() -> dict:
    return {"Api-Version": API_VERSION, "Ostype": "linux", "Docker-Experimental": "false",
            "Server": f"minidocker/{minidocker.__version__} (linux)"}


def system_ping(request: Request) -> Response:
    body = "" if request.method == "HEAD" else "OK"
    return PlainTextResponse(body, headers={**headers(), "Cache-Control": "no-cache"})


def build_time() -> str:
    """dockerd's BuildTime is when its binary was built; minidocker's, when its code was
    installed (the package's mtime)."""
    mtime = Path(minidocker.__file__).stat().st_mtime
    return datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds")


def system_version(request: Request) -> Response:
    kernel, arch = platform.release(), architecture()
    engine = {"Version": minidocker.__version__, "ApiVersion": API_VERSION,
              "MinAPIVersion": MIN_API_VERSION, "GitCommit": "", "GoVersion":
              f"python{platform.python_version()}", "Os": "linux", "Arch": arch,
              "KernelVersion": kernel, "BuildTime": build_time()}
    return JSONResponse({
        "Platform": {"Name": "minidocker"},
        "Components": [{"Name": "Engine", "Version": minidocker.__version__,
                        "Details": {**{k: v for k, v in engine.items() if k != "Version"},
                                    "Experimental": "false"}}],
        **engine})


def system_info(request: Request) -> Response:
    from minidocker.container import lifecycle
    from minidocker.image.store import ImageStore

    records = lifecycle.current_records()
    count = {status: sum(r.status == status for r in records)
             for status in ("running", "paused", "exited", "created")}
    layout = cgroups.layout()
    return JSONResponse({
        **host_facts(), "ID": "", "Name": socket.gethostname(), "ServerVersion": minidocker.__version__,
        "Containers": len(records), "ContainersRunning": count["running"],
        "ContainersPaused": count["paused"],
        "ContainersStopped": count["exited"] + count["created"],
        "Images": len(ImageStore().images()), "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "minidocker's OCI layout + overlayfs"]],
        "DockerRootDir": str(state_root()), "OSType": "linux", "Architecture":
        platform.machine(), "OperatingSystem": os_name(), "KernelVersion": platform.release(),
        "NCPU": os.cpu_count() or 1, "MemTotal": mem_total(),
        "CgroupDriver": "cgroupfs", "CgroupVersion": "2" if layout == "v2" else "1",
        "LoggingDriver": "json-file", "DefaultRuntime": "minidocker",
        "Runtimes": {"minidocker": {"path": "minidocker"}, "runc": {"path": "runc"}},
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"],
                    "Authorization": None, "Log": ["json-file"]},
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "Warnings": [], "ExperimentalBuild": False, "Debug": False,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": [], "Mirrors": [],
                           "AllowNondistributableArtifactsCIDRs": [],
                           "AllowNondistributableArtifactsHostnames": []},
    })


def host_facts() -> dict:
    """The rest of dockerd's ``/info``: what the kernel offers (the cgroup controllers the
    limits need, forwarding and bridge netfilter), the process's own counts, the proxy
    settings, and the zero values of what minidocker does not have (swarm, plugins)."""
    import threading
    from datetime import UTC

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
