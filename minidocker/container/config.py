"""Stage 6 — a container's configuration, typed, in the Docker Engine API's own words.

Docker splits what a container is into two objects. ``Config`` says *what runs*: the image,
the command, its environment, user and working directory — portable, it could run on any
host. ``HostConfig`` says *how this host runs it*: which namespaces it shares (network, IPC,
PID, UTS, user, cgroup modes), its mounts, published ports, limits and privileges.

Every front end fills these two objects, and the engine reads nothing else: the CLI from its
flags, notebooks and labs from Python, and later the daemon from the JSON of
``POST /containers/create``, the builder for each RUN step and compose from a YAML file. A flag
is parsed once, into a value that answers questions (``NetworkMode.is_host``, as moby's
``container.NetworkMode.IsHost()``), so nobody reads the raw string again. ``to_dict`` gives
the JSON that ``docker inspect`` shows; ``from_dict`` reads it back from a record on disk.

Specs: the Docker Engine API reference, "ContainerCreate" (ContainerConfig, HostConfig);
moby's ``api/types/container/hostconfig.go`` for the modes. Used by: every container verb,
notebooks 00 and 06.
"""

import re
import signal
from dataclasses import dataclass, field, fields

from minidocker.cgroups import Limits
from minidocker.errors import MinidockerError
from minidocker.namespaces import CONTAINER_NAMESPACES, IdMap

# --- namespace modes: --network, --ipc, --pid, --uts, --userns, --cgroupns -------------------


@dataclass(frozen=True)
class NamespaceMode:
    """One ``--<kind> MODE`` value: "" (the default: a private namespace), ``host`` (keep the
    host's: the kind is not unshared) or ``container:NAME`` (join that container's)."""

    value: str = ""
    flag = "--mode"
    words = ("host",)  # the words this kind accepts besides "" and private
    joins_containers = True  # container:NAME makes sense for this kind

    @classmethod
    def parse(cls, text: str | None) -> "NamespaceMode":
        """Check a mode as the user typed it; a bad one is a clear error, before create."""
        text = text or ""
        if text in ("", "private", *cls.words):
            return cls(text)
        if cls.joins_containers and text.startswith("container:") and len(text) > 10:
            return cls(text)
        choices = ", ".join(["private", *cls.words,
                             *(["container:NAME"] if cls.joins_containers else [])])
        raise MinidockerError(f"invalid {cls.flag} mode '{text}': use {choices}")

    @property
    def is_host(self) -> bool:
        return self.value == "host"

    @property
    def is_none(self) -> bool:
        return self.value == "none"

    @property
    def container(self) -> str:
        """The container named by ``container:NAME`` (its ID once created), else ""."""
        return self.value.partition(":")[2] if self.value.startswith("container:") else ""

    @property
    def is_private(self) -> bool:
        """A namespace of its own (not the host's, not another container's)."""
        return not (self.is_host or self.container)

    def __str__(self) -> str:
        return self.value


class IpcMode(NamespaceMode):
    flag, words = "--ipc", ("host", "shareable", "none")


class PidMode(NamespaceMode):
    flag = "--pid"


class UTSMode(NamespaceMode):
    """``--uts host`` only, as Docker's flag; ``container:ID`` is never parsed from a flag,
    but a pod's members hold it: they share their infra container's host name, as the
    containers of a Kubernetes pod do (cluster/pods.py)."""

    flag, joins_containers = "--uts", False


class CgroupnsMode(NamespaceMode):
    flag, joins_containers = "--cgroupns", False


class UsernsMode(NamespaceMode):
    """``--userns private`` makes a user namespace (root inside, an unprivileged uid outside);
    "" or ``host`` keeps the host's, as Docker's default."""

    flag, words, joins_containers = "--userns", ("host",), False

    @property
    def is_private(self) -> bool:
        return self.value == "private"


class NetworkMode(NamespaceMode):
    """``--network``: ``bridge`` (Docker's default bridge), ``none`` (only ``lo``), ``host``,
    ``container:NAME``, or the name of a network made with ``network create``."""

    flag = "--network"

    @classmethod
    def parse(cls, text: str | None) -> "NetworkMode":
        text = text or "none"
        if text == "default":
            return cls("bridge")
        if text.startswith("container:") and len(text) <= 10:
            raise MinidockerError("invalid --network mode 'container:': name the container, "
                                  "as in container:web")
        return cls(text)

    @property
    def is_bridge(self) -> bool:
        """A bridge network: the default one or a user network (a veth gets plugged in)."""
        return not (self.is_none or self.is_host or self.container)

    @property
    def network(self) -> str:
        """The network to join, for a bridge network."""
        return self.value if self.is_bridge else ""


# --- the two objects ---------------------------------------------------------------------------

@dataclass
class RestartPolicy:
    """``--restart no|on-failure[:N]|always|unless-stopped``."""

    Name: str = "no"
    MaximumRetryCount: int = 0

    POLICIES = ("no", "on-failure", "always", "unless-stopped")

    @classmethod
    def parse(cls, text: str) -> "RestartPolicy":
        name, _, count = text.partition(":")
        if name not in cls.POLICIES:
            raise MinidockerError(f"invalid restart policy '{text}': choose no, "
                                  "on-failure[:N], always or unless-stopped")
        if count and (name != "on-failure" or not count.isdigit()):
            raise MinidockerError(f"invalid restart policy '{text}': only on-failure takes a "
                                  "maximum retry count, a number (on-failure:3)")
        return cls(name, int(count or 0))


@dataclass
class Config:
    """What runs. Empty values mean "the image's": ``Cmd``/``Entrypoint`` None, ``WorkingDir``,
    ``User``, ``StopSignal`` "". ``create`` fills them in from the image (see create.py)."""

    Image: str = ""
    Cmd: list[str] | None = None
    Entrypoint: list[str] | None = None  # [] or [""] clears the image's (--entrypoint "")
    Env: list[str] = field(default_factory=list)  # KEY=VALUE
    WorkingDir: str = ""
    User: str = ""
    Hostname: str = ""  # "": the first 12 hex digits of the container ID
    Domainname: str = ""  # --domainname: the NIS domain name of its UTS namespace
    Tty: bool = False
    OpenStdin: bool = False
    StdinOnce: bool = False
    StopSignal: str = ""
    StopTimeout: int | None = None  # seconds before SIGKILL (None: 10)
    ExposedPorts: dict = field(default_factory=dict)  # {"80/tcp": {}}
    Volumes: dict = field(default_factory=dict)  # {"/data": {}}: anonymous volumes
    Labels: dict = field(default_factory=dict)  # --label, --label-file
    MacAddress: str = ""  # --mac-address (the endpoint's; "": 02:42 + its IPv4 address)
    Healthcheck: dict | None = None  # {"Test": [...], "Interval": ns, ...}: see health.py
    LowerDirs: list[str] = field(default_factory=list)  # the image's unpacked layers

    @property
    def command(self) -> list[str]:
        """What runs as the container's process: Entrypoint followed by Cmd (Docker's rule)."""
        return [*(self.Entrypoint or []), *(self.Cmd or [])]

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class HostConfig:
    """How this host runs it. The Python API's default network is ``none`` (no pyroute2, no
    bridge: a notebook's container starts fast); the CLI asks for ``bridge``, as Docker."""

    NetworkMode: NetworkMode = field(default_factory=lambda: NetworkMode("none"))
    IpcMode: IpcMode = field(default_factory=IpcMode)
    PidMode: PidMode = field(default_factory=PidMode)
    UTSMode: UTSMode = field(default_factory=UTSMode)
    UsernsMode: UsernsMode = field(default_factory=UsernsMode)
    CgroupnsMode: CgroupnsMode = field(default_factory=CgroupnsMode)
    UsernsMap: IdMap | None = None  # with --userns private: --uidmap
    UsernsFiles: str = ""  # how the layers follow the map: "chown"
    PortBindings: list = field(default_factory=list)  # network.PortBinding, parsed from -p
    PublishAllPorts: bool = False
    NetworkAliases: list[str] = field(default_factory=list)
    # More networks, joined at each start after NetworkMode's (Docker's NetworkingConfig
    # beyond the first, and `network connect` of a container): {network: [aliases]}
    MoreNetworks: dict = field(default_factory=dict)
    IPAMConfig: dict = field(default_factory=dict)  # --ip: {"IPv4Address": "172.19.0.9"}
    MoreIPAMConfig: dict = field(default_factory=dict)  # theirs: {network: {"IPv4Address"}}
    Links: list[str] = field(default_factory=list)
    Dns: list[str] = field(default_factory=list)
    DnsSearch: list[str] = field(default_factory=list)
    ExtraHosts: list[str] = field(default_factory=list)
    Binds: list[str] = field(default_factory=list)  # -v
    Mounts: list[str] = field(default_factory=list)  # --mount
    Tmpfs: list[str] = field(default_factory=list)  # --tmpfs
    VolumesFrom: list[str] = field(default_factory=list)
    Resources: Limits = field(default_factory=Limits)
    CgroupParent: str = ""  # --cgroup-parent: "" is minidocker/
    Ulimits: list[dict] = field(default_factory=list)  # [{"Name": "nofile", "Soft", "Hard"}]
    Sysctls: dict = field(default_factory=dict)  # {"net.ipv4.ip_forward": "1"}
    ShmSize: int = 64 * 2**20  # bytes of the /dev/shm tmpfs (--shm-size)
    OomScoreAdj: int = 0  # -1000..1000: /proc/<pid>/oom_score_adj of PID 1
    RestartPolicy: RestartPolicy = field(default_factory=RestartPolicy)
    AutoRemove: bool = False  # --rm
    ReadonlyRootfs: bool = False
    Init: bool = False
    LogConfig: dict = field(default_factory=lambda: {"Type": "json-file", "Config": {}})
    CapAdd: list[str] = field(default_factory=list)
    CapDrop: list[str] = field(default_factory=list)
    Privileged: bool = False
    SecurityOpt: list[str] = field(default_factory=list)
    GroupAdd: list[str] = field(default_factory=list)
    Devices: list = field(default_factory=list)  # security.devices.Device
    # stage 9's options: a security.SecurityOptions from a front end, or, in a record read from
    # disk, its JSON form, compiled only when a process starts (security_options); None:
    # Docker's defaults
    Security: object = None
    Runtime: str = "minidocker"  # --runtime: who spawns PID 1, minidocker or runc

    def namespaces(self) -> list[str]:
        """The kinds of namespace to create: a host or ``container:`` mode creates none."""
        modes = {"net": self.NetworkMode, "ipc": self.IpcMode, "pid": self.PidMode,
                 "uts": self.UTSMode, "cgroup": self.CgroupnsMode}
        kinds = [kind for kind in CONTAINER_NAMESPACES
                 if kind not in modes or modes[kind].is_private]
        return [*(["user"] if self.UsernsMode.is_private else []), *kinds]

    def security_options(self):
        """Stage 9's options: what the flags asked for, or Docker's defaults."""
        from minidocker import security  # seccomp and BPF: only when a process starts

        if isinstance(self.Security, dict):  # as the record keeps it
            return security.SecurityOptions.from_dict(self.Security)
        return self.Security or security.parse_security_opts()

    def shared(self) -> dict[str, str]:
        """``{kind: container}`` for each namespace joined from another container."""
        modes = {"net": self.NetworkMode, "ipc": self.IpcMode, "pid": self.PidMode,
                 "uts": self.UTSMode}
        return {kind: mode.container for kind, mode in modes.items() if mode.container}

    def to_dict(self) -> dict:
        """As ``docker inspect`` shows HostConfig: modes as strings, PortBindings keyed by
        ``PORT/PROTO``, the resource limits flat."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in data.items():
            if isinstance(value, NamespaceMode):
                data[name] = str(value)
        data.update(UsernsMap=vars(self.UsernsMap) if self.UsernsMap else None,
                    PortBindings=port_bindings_dict(self.PortBindings),
                    RestartPolicy=vars(self.RestartPolicy),
                    Devices=[d.to_dict() for d in self.Devices],
                    Security=security_dict(self.Security))
        del data["Resources"]
        data.update(docker_limits(self.Resources))
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "HostConfig":
        known = {f.name for f in fields(cls)}
        host = cls(**{k: v for k, v in data.items() if k in known and v is not None
                      and k not in MODES and k not in CONVERTED})
        for name, kind in MODES.items():
            setattr(host, name, kind(data.get(name) or ("none" if kind is NetworkMode else "")))
        host.UsernsMap = IdMap(**data["UsernsMap"]) if data.get("UsernsMap") else None
        host.PortBindings = parse_port_bindings_dict(data.get("PortBindings") or {})
        host.RestartPolicy = RestartPolicy(**data.get("RestartPolicy", {}))
        host.Devices = devices(data.get("Devices") or [])
        host.Security = data.get("Security") or None  # data: ps and inspect compile nothing
        host.Resources = limits_of(data)
        return host


def security_dict(options) -> dict | None:
    """Stage 9's options as the record keeps them (already so if read from one)."""
    return options if isinstance(options, dict) or options is None else options.to_dict()


def devices(items: list[dict]) -> list:
    """``--device`` entries as stage 9's ``Device``s (its package loaded only if any)."""
    if not items:
        return []
    from minidocker.security.devices import Device

    return [Device(**item) for item in items]


RUNTIMES = {"minidocker": "minidocker's own: namespaces.spawn, the shim (stages 1-9)",
            "runc": "the OCI runtime: an OCI bundle (container/bundle.py) run by runc"}


def check_runtime(name: str) -> str:
    """``--runtime``: one of ``RUNTIMES``, as dockerd refuses a runtime it was not told of."""
    if name not in RUNTIMES:
        raise MinidockerError(f"unknown or invalid runtime name: {name} (use "
                              f"{' or '.join(RUNTIMES)})")
    return name


CGROUP_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def check_cgroup_parent(path: str) -> str:
    """``--cgroup-parent`` (``HostConfig.CgroupParent``): a path below the cgroup root, made
    of plain names, so the container's cgroup cannot be put outside the hierarchy."""
    parts = path.strip("/").split("/")
    if path and not all(p and p not in (".", "..") and CGROUP_NAME.fullmatch(p)
                        for p in parts):
        raise MinidockerError(f"invalid --cgroup-parent {path!r}: give a path of names "
                              "below the cgroup root (letters, digits, . _ -), e.g. "
                              "/classroom or minidocker/web")
    return path


MODES = {"NetworkMode": NetworkMode, "IpcMode": IpcMode, "PidMode": PidMode,
         "UTSMode": UTSMode, "UsernsMode": UsernsMode, "CgroupnsMode": CgroupnsMode}
CONVERTED = ("UsernsMap", "PortBindings", "RestartPolicy", "Devices", "Security", "Resources")


# --- ports and limits under Docker's names ----------------------------------------------------

def port_bindings_dict(bindings: list) -> dict:
    """``-p 8080:80`` as Docker's HostConfig.PortBindings: ``{"80/tcp": [{"HostIp": "",
    "HostPort": "8080"}]}`` (an empty HostPort: any free port)."""
    result: dict[str, list] = {}
    for b in bindings:
        result.setdefault(f"{b.container_port}/{b.proto}", []).append(
            {"HostIp": "" if b.host_ip == "0.0.0.0" else b.host_ip,
             "HostPort": str(b.host_port) if b.host_port else ""})
    return result


def parse_port_bindings_dict(data: dict) -> list:
    """The reverse of ``port_bindings_dict``."""
    from minidocker.network.ports import PortBinding

    return [PortBinding(int(port.partition("/")[0]), port.partition("/")[2] or "tcp",
                        b.get("HostIp") or "0.0.0.0", int(b.get("HostPort") or 0))
            for port, bindings in data.items() for b in bindings or []]


# our Limits field -> (Docker's HostConfig name, what inspect shows for "not set")
DOCKER_LIMITS = {"memory": ("Memory", 0), "memory_swap": ("MemorySwap", 0),
                 "cpu_quota": ("CpuQuota", 0), "cpu_period": ("CpuPeriod", 0),
                 "nano_cpus": ("NanoCpus", 0),
                 "cpu_shares": ("CpuShares", 0), "cpuset_cpus": ("CpusetCpus", ""),
                 "pids_limit": ("PidsLimit", 0), "memory_reservation": ("MemoryReservation", 0),
                 "memory_swappiness": ("MemorySwappiness", None),
                 "oom_kill_disable": ("OomKillDisable", False),
                 "cpuset_mems": ("CpusetMems", ""), "blkio_weight": ("BlkioWeight", 0),
                 "blkio_device_read_bps": ("BlkioDeviceReadBps", []),
                 "blkio_device_write_bps": ("BlkioDeviceWriteBps", [])}
DEVICE_RATES = ("blkio_device_read_bps", "blkio_device_write_bps")


def docker_limits(limits: Limits) -> dict:
    """The limits under Docker's HostConfig names, for ``inspect``; device throttles as
    ``[{"Path": "/dev/vda", "Rate": 1048576}]``."""
    result = {}
    for ours, (docker, unset) in DOCKER_LIMITS.items():
        value = getattr(limits, ours)
        if ours in DEVICE_RATES:
            value = [{"Path": path, "Rate": rate} for path, rate in value or ()]
        result[docker] = unset if value is None else value
    return result


def limits_of(host_config: dict) -> Limits:
    """The limits back from a HostConfig as ``inspect`` shows it."""
    values = {ours: host_config.get(docker) for ours, (docker, _) in DOCKER_LIMITS.items()}
    for ours in DEVICE_RATES:
        values[ours] = tuple((d["Path"], d["Rate"]) for d in values[ours] or ()) or None
    return Limits(**{ours: None if value in (None, 0, "", False) and ours != "memory_swappiness"
                     else value for ours, value in values.items()})


# --- small values of the flags ----------------------------------------------------------------

def parse_signal(name: str | int) -> int:
    """A signal given as ``SIGTERM``, ``TERM``, ``term`` or ``15``."""
    text = str(name).upper()
    if text.isdigit() and 0 < int(text) < signal.NSIG:
        return int(text)
    try:
        return int(signal.Signals[text if text.startswith("SIG") else f"SIG{text}"])
    except KeyError:
        raise MinidockerError(f"invalid signal: {name} (use a name like SIGTERM or KILL, or a "
                              "number; 'kill -l' lists them)") from None
