"""Stage 13 — the project model: a Compose file as small typed values.

After loading (loader.py) a project is a name, a directory and three kinds of thing: services
(each one or more containers of one configuration), networks and volumes — with the names they
get on this host (``<project>_<name>``), the number of replicas of each service, and the
canonical form each came from (what ``compose config`` prints and what the config hash of
a service is computed from). project.py turns a ``Service`` into the engine's ``Config`` and
``HostConfig``.

Spec: the Compose Specification, "The Compose application model" (02-model.md).
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Build:
    context: str
    dockerfile: str = "Dockerfile"
    args: dict[str, str | None] = field(default_factory=dict)
    target: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Port:
    target: int
    published: str = ""  # "" : a free port; "8000-8010": any free one of a range
    host_ip: str = ""
    protocol: str = "tcp"

    def publish_spec(self) -> str:
        """As ``run -p`` writes it: ``[IP:][HOST:]CONTAINER/PROTO``."""
        host = f"{self.host_ip}:{self.published}:" if self.host_ip else \
            f"{self.published}:" if self.published else ""
        return f"{host}{self.target}/{self.protocol}"


@dataclass
class Mount:
    type: str  # bind | volume | tmpfs
    target: str
    source: str = ""  # a host path (bind), a volume's key in the file (volume), "" anonymous
    read_only: bool = False


@dataclass
class ServiceNetwork:
    aliases: list[str] = field(default_factory=list)
    ipv4_address: str = ""
    priority: int = 0  # the order of joining: the highest first (eth0, the default route)


@dataclass
class Healthcheck:
    test: list[str] = field(default_factory=list)
    interval: str = ""
    timeout: str = ""
    retries: int = 0
    start_period: str = ""
    disable: bool = False


@dataclass
class Service:
    """One service: what each of its containers is made of."""

    name: str
    definition: dict  # the canonical form (schema.py) this was made from
    image: str = ""
    build: Build | None = None
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str | None] = field(default_factory=dict)
    ports: list[Port] = field(default_factory=list)
    expose: list[str] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    volumes_from: list[str] = field(default_factory=list)
    networks: dict[str, ServiceNetwork] = field(default_factory=dict)
    network_mode: str = ""
    links: list[str] = field(default_factory=list)
    external_links: list[str] = field(default_factory=list)
    depends_on: dict[str, str] = field(default_factory=dict)  # service -> condition
    healthcheck: Healthcheck | None = None
    restart: str = "no"
    replicas: int = 1
    user: str = ""
    working_dir: str = ""
    hostname: str = ""
    domainname: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    read_only: bool = False
    tmpfs: list[str] = field(default_factory=list)
    init: bool = False
    stop_signal: str = ""
    stop_grace_period: str = ""
    mem_limit: str = ""
    cpus: str = ""
    pids_limit: int | None = None
    profiles: list[str] = field(default_factory=list)
    container_name: str = ""
    dns: list[str] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)
    stdin_open: bool = False
    tty: bool = False

    def networks_by_priority(self) -> list[str]:
        """The service's networks in the order its containers join them: the highest
        ``priority`` first, then by name (compose-go's ``NetworksByPriority``); the first is
        eth0, which carries the default route."""
        return sorted(self.networks, key=lambda key: (-self.networks[key].priority, key))

    def config_hash(self) -> str:
        """Compose's ``com.docker.compose.config-hash``: the sha256 of the service's canonical
        configuration (the replica count left out: scaling is not a change of config)."""
        definition = {k: v for k, v in self.definition.items() if k not in ("scale", "deploy")}
        definition["deploy"] = {k: v for k, v in self.definition.get("deploy", {}).items()
                                if k != "replicas"}
        text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class TopLevelSpec:
    """A network or volume of the file's top level: ``up`` makes it, labelled with the
    project, unless it is ``external`` (then it must exist)."""

    key: str  # its name in the file
    name: str  # its name on this host
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class VolumeSpec(TopLevelSpec):
    """A named volume, with the local driver's options (``driver_opts``: type, device, o)."""

    driver_opts: dict[str, str] = field(default_factory=dict)


@dataclass
class NetworkSpec(TopLevelSpec):
    """A network, with what ``network create`` takes of it."""

    driver: str = "bridge"
    subnet: str = ""
    gateway: str = ""
    internal: bool = False


@dataclass
class Project:
    name: str
    directory: Path
    files: list[str]
    services: dict[str, Service]
    networks: dict[str, NetworkSpec]
    volumes: dict[str, VolumeSpec]
    model: dict  # the canonical form of the whole project: ``compose config``
    warnings: list[str] = field(default_factory=list)


# --- from the canonical form ------------------------------------------------------------------

def service_of(name: str, d: dict, project: str) -> Service:
    """A ``Service`` from its canonical form (already checked by schema.py)."""
    simple = {k: v for k, v in d.items() if k in SIMPLE}
    deploy = d.get("deploy", {})
    limits = deploy.get("resources", {}).get("limits", {})
    build = d.get("build")
    health = d.get("healthcheck")
    return Service(
        name=name, definition=d, **simple,
        image=d.get("image") or (f"{project}-{name}" if build else ""),
        build=Build(**build) if build else None,
        ports=[Port(p["target"], str(p["published"]), p["host_ip"], p["protocol"])
               for p in d.get("ports", [])],
        mounts=[Mount(v["type"], v["target"], v.get("source", ""), v.get("read_only", False))
                for v in d.get("volumes", [])],
        networks={n: ServiceNetwork(**(options or {})) for n, options in
                  d.get("networks", {}).items()},
        depends_on={s: options["condition"] for s, options in d.get("depends_on", {}).items()},
        healthcheck=Healthcheck(**health) if health else None,
        replicas=deploy.get("replicas", d.get("scale", 1)),
        mem_limit=str(limits.get("memory", d.get("mem_limit", ""))),
        cpus=str(limits.get("cpus", d.get("cpus", ""))),
        pids_limit=limits.get("pids", d.get("pids_limit")))


SIMPLE = {"command", "entrypoint", "environment", "expose", "volumes_from", "network_mode",
          "links", "external_links", "restart", "user", "working_dir", "hostname",
          "domainname", "labels", "cap_add", "cap_drop", "privileged", "read_only", "tmpfs",
          "init", "stop_signal", "stop_grace_period", "profiles", "container_name", "dns",
          "extra_hosts", "stdin_open", "tty"}


def network_of(key: str, d: dict) -> NetworkSpec:
    config = (d.get("ipam", {}).get("config") or [{}])[0]
    return NetworkSpec(key, d["name"], d.get("external", False), d.get("labels", {}),
                       d.get("driver", "bridge"), config.get("subnet", ""),
                       config.get("gateway", ""), d.get("internal", False))


def volume_of(key: str, d: dict) -> VolumeSpec:
    return VolumeSpec(key, d["name"], d.get("external", False), d.get("labels", {}),
                      {k: str(v) for k, v in d.get("driver_opts", {}).items()})
