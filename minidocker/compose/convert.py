"""Stage 13 — one container of a service as the engine's ``Config`` and ``HostConfig``.

This is the lesson of Compose: nothing here runs a container. Each key of a service becomes
the field a ``docker run`` flag would have filled — ``ports`` are ``-p``, ``volumes`` are ``-v``
(a named volume under its project name, ``shop_data``), ``networks`` are ``--network`` once
per network, in ``priority`` order, with ``--network-alias`` and ``--ip`` (the service's name
is an alias on every network, so ``ping db`` works), ``depends_on`` is only an order — plus
the labels by which Compose finds its containers again:

=====================================  ==============================================
``com.docker.compose.project``         the project's name
``com.docker.compose.service``         the service
``com.docker.compose.container-number`` 1, 2, ... (one per replica)
``com.docker.compose.oneoff``          ``True`` for ``compose run``, else ``False``
``com.docker.compose.config-hash``     sha256 of the service's configuration (model.py)
``com.docker.compose.version``         the Compose version this follows
=====================================  ==============================================

Containers are named ``<project>-<service>-<n>``, as Compose v2 names them (docker-compose 1.29
wrote ``<project>_<service>_<n>``; both find their containers by the labels, never the name).

Docker: ``docker compose`` reference; compose-go ``api.ProjectLabel`` and friends.
"""

import re

from minidocker.cgroups import build_limits
from minidocker.compose.model import Project, Service
from minidocker.container.config import Config, HostConfig, NetworkMode, RestartPolicy
from minidocker.errors import MinidockerError

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
NUMBER = "com.docker.compose.container-number"
ONEOFF = "com.docker.compose.oneoff"
CONFIG_HASH = "com.docker.compose.config-hash"
VERSION = "com.docker.compose.version"
WORKING_DIR = "com.docker.compose.project.working_dir"
CONFIG_FILES = "com.docker.compose.project.config_files"
NETWORK = "com.docker.compose.network"
VOLUME = "com.docker.compose.volume"
COMPOSE_VERSION = "2.0.0"  # the Compose Specification's behaviour this follows
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def container_name(project: Project, service: Service, number: int, oneoff: str = "") -> str:
    if service.container_name and not oneoff:
        return service.container_name
    if oneoff:
        return f"{project.name}-{service.name}-run-{oneoff}"
    return f"{project.name}-{service.name}-{number}"


def labels(project: Project, service: Service, number: int, oneoff: bool = False) -> dict:
    return {**service.labels, PROJECT: project.name, SERVICE: service.name,
            NUMBER: str(number), ONEOFF: "True" if oneoff else "False",
            CONFIG_HASH: service.config_hash(), VERSION: COMPOSE_VERSION,
            WORKING_DIR: str(project.directory), CONFIG_FILES: ",".join(project.files)}


def container_request(project: Project, service: Service, number: int,
                      oneoff: bool = False) -> tuple[Config, HostConfig]:
    """What ``docker run`` would be given for replica ``number`` of ``service``."""
    config = Config(
        Image=service.image, Cmd=service.command, Entrypoint=service.entrypoint,
        Env=[f"{k}={v}" for k, v in service.environment.items() if v is not None],
        WorkingDir=service.working_dir, User=service.user, Hostname=service.hostname,
        Domainname=service.domainname, Tty=service.tty, OpenStdin=service.stdin_open,
        StopSignal=service.stop_signal,
        StopTimeout=round(seconds(service.stop_grace_period)) if service.stop_grace_period
        else None,
        ExposedPorts={**{f"{p.partition('/')[0]}/{p.partition('/')[2] or 'tcp'}": {}
                         for p in service.expose},
                      **{f"{p.target}/{p.protocol}": {} for p in service.ports}},
        Labels=labels(project, service, number, oneoff))
    add_healthcheck(config, service)
    host = HostConfig(
        Binds=binds(project, service), Tmpfs=[*service.tmpfs, *(
            m.target for m in service.mounts if m.type == "tmpfs")],
        VolumesFrom=[volumes_from(project, item) for item in service.volumes_from],
        RestartPolicy=RestartPolicy.parse(service.restart), ReadonlyRootfs=service.read_only,
        Init=service.init, Privileged=service.privileged, CapAdd=list(service.cap_add),
        CapDrop=list(service.cap_drop), Resources=build_limits(
            memory=service.mem_limit or None, cpus=service.cpus or None,
            pids_limit=None if service.pids_limit is None else str(service.pids_limit)),
        Security=security(service), Dns=list(service.dns),
        ExtraHosts=[h.replace("=", ":", 1) for h in service.extra_hosts],
        **network_fields(project, service))
    return config, host


def seconds(text: str) -> float:
    """A Go duration (``1m30s``) in seconds."""
    return sum(float(value) * SECONDS[unit] for value, unit in DURATION_PART.findall(text))


def add_healthcheck(config: Config, service: Service) -> None:
    """``healthcheck`` as Docker's ``Config.Healthcheck`` (durations in nanoseconds); the
    container's monitor runs it (container/health.py)."""
    if service.healthcheck is None:
        return
    check = service.healthcheck
    nanos = {name: int(seconds(value) * 1e9) for name, value in (
        ("Interval", check.interval), ("Timeout", check.timeout),
        ("StartPeriod", check.start_period)) if value}
    config.Healthcheck = {"Test": ["NONE"] if check.disable else check.test, **nanos,
                          **({"Retries": check.retries} if check.retries else {})}


def security(service: Service):
    from minidocker import security as stage9

    return stage9.parse_security_opts([], cap_add=list(service.cap_add),
                                      cap_drop=list(service.cap_drop),
                                      privileged=service.privileged)


def binds(project: Project, service: Service) -> list[str]:
    """``volumes`` as ``-v`` values: a host path, a named volume under its name on this host
    (``<project>_<name>``), or only a target (an anonymous volume)."""
    result = []
    for mount in service.mounts:
        if mount.type == "tmpfs":
            continue
        mode = ":ro" if mount.read_only else ""
        if mount.type == "bind":
            result.append(f"{mount.source}:{mount.target}{mode}")
        elif mount.source:
            result.append(f"{project.volumes[mount.source].name}:{mount.target}{mode}")
        else:
            result.append(mount.target)
    return result


def volumes_from(project: Project, item: str) -> str:
    """``volumes_from: [db]`` names a service (its first container); ``container:NAME`` a
    container."""
    if item.startswith("container:"):
        return item.removeprefix("container:")
    name, _, mode = item.partition(":")
    target = f"{project.name}-{name}-1"
    return f"{target}:{mode}" if mode else target


def network_fields(project: Project, service: Service) -> dict:
    """Every network of the service, joined before its process starts (as ``docker compose``
    v2 creates the container on all of them, API 1.44+): the first by priority is the
    container's ``--network`` (eth0, the default route, where ports are published), the others
    its ``MoreNetworks`` (eth1, ...), each with its aliases and ``ipv4_address``. Links name
    the first container of a service."""
    links = [link_to(project, link) for link in service.links] + list(service.external_links)
    if service.network_mode:
        mode = service.network_mode
        if mode.startswith("service:"):
            mode = f"container:{project.name}-{mode.removeprefix('service:')}-1"
        return {"NetworkMode": NetworkMode.parse(mode), "Links": links}
    first, *others = service.networks_by_priority()
    from minidocker.network import ports

    bindings = [b for port in service.ports for b in ports.parse_publish(port.publish_spec())]
    return {"NetworkMode": NetworkMode.parse(project.networks[first].name),
            "NetworkAliases": aliases(service, first), "PortBindings": bindings,
            "IPAMConfig": fixed_address(service, first), "Links": links,
            "MoreNetworks": {project.networks[key].name: aliases(service, key)
                             for key in others},
            "MoreIPAMConfig": {project.networks[key].name: fixed_address(service, key)
                               for key in others if fixed_address(service, key)}}


def fixed_address(service: Service, network: str) -> dict:
    """``ipv4_address`` as the endpoint's IPAMConfig, ``{}`` for an address from IPAM."""
    address = service.networks[network].ipv4_address
    return {"IPv4Address": address} if address else {}


def aliases(service: Service, network: str) -> list[str]:
    """The names a service's container answers to on ``network``: the service's, then the
    aliases it lists there."""
    return list(dict.fromkeys([service.name, *service.networks[network].aliases]))


def link_to(project: Project, link: str) -> str:
    name, _, alias = link.partition(":")
    if name not in project.services:
        raise MinidockerError(f"service {name!r} in links is not in the project")
    return f"{project.name}-{name}-1:{alias or name}"
