"""Stage 6 — creating a container: a configuration becomes a record on disk; nothing runs yet.

``create(config, host_config, name)`` is ``docker create``: it checks what was asked, finds the
image, combines the two the way Docker does, claims the name, realises the mounts and writes
the record (records.py). ``start`` (start.py) reads only that record, so a container starts
the same way the first time and after a restart. Docker's rules for combining:

* the command is ``Entrypoint + Cmd``; a ``Cmd`` given replaces the image's Cmd; an
  ``Entrypoint`` given replaces the image's *and* drops the image's Cmd (``[""]`` clears it);
* the environment is the image's Env, then the request's (a later KEY wins);
* ``WorkingDir``, ``User`` and ``StopSignal`` fall back to the image's (then ``/``, root,
  SIGTERM); ``ExposedPorts`` and ``Labels`` are the image's plus the request's;
* the image's ``Healthcheck`` holds unless the request gives its own (health.py);
* each path in the image's Volumes becomes an anonymous volume unless a mount covers it;
* ``container:NAME`` modes are resolved to the container's ID, once.

Spec: Docker Engine API "ContainerCreate"; the Dockerfile reference (ENTRYPOINT and CMD).
Used by: ``minidocker run``/``create``, notebooks 00 and 06.
"""

import dataclasses
import os

from minidocker import cgroups, volumes
from minidocker.container import health, records, tunables
from minidocker.container.config import Config, HostConfig, check_cgroup_parent, parse_signal
from minidocker.container.logs import check_log_config
from minidocker.container.names import check_name, new_id
from minidocker.errors import MinidockerError


def create(config: Config, host: HostConfig | None = None,
           name: str | None = None) -> records.ContainerRecord:
    """Check the request, resolve the image and write the container's record."""
    host = host or HostConfig()
    check_request(config, host)
    host = with_log_config(host)
    with records.all_locked():  # the name stays free, the image stays until the record is saved
        return make_record(config, host, name)


def make_record(config: Config, host: HostConfig, name: str | None) -> records.ContainerRecord:
    """The image, Docker's defaults from it, the name, the mounts, then the record."""
    from minidocker.image.store import resolve_image  # here: the monitor never needs the store

    reference, image = resolve_image(config.Image)
    config = with_image_defaults(config, image.config.get("config") or {}, str(reference))
    config.LowerDirs = list(image.layer_dirs())
    host = resolve_shared_containers(host)
    requests, inherited = mount_requests(host)
    record = records.ContainerRecord(Id=new_id(), Name="", Image=image.id, Config=config,
                                     HostConfig=host, CgroupParent=cgroup_parent(host))
    config.Hostname = config.Hostname or record.Id[:12]
    record.LogPath = str(record.directory / "container-json.log")
    record.Name = records.claim_name(check_name(name) if name else None)
    mounts = volumes.resolve(requests, image_volumes=config.Volumes,
                             inherited=inherited)  # last: it makes volumes and dirs
    record.Mounts = [m.to_dict() for m in mounts]
    record.save()
    record.event("create")
    record.upper.mkdir(exist_ok=True)  # diff/commit/export work before start
    return record


def cgroup_parent(host: HostConfig) -> str:
    """Where the container's cgroup will be, chosen now and kept in its record: its
    ``--cgroup-parent``, else the engine's parent (``$MINIDOCKER_CGROUP_PARENT``)."""
    return host.CgroupParent.strip("/") or cgroups.parent()


def check_request(config: Config, host: HostConfig) -> None:
    """What can be refused before the image is even looked at."""
    if config.WorkingDir and not os.path.isabs(config.WorkingDir):
        raise MinidockerError(f"the working directory '{config.WorkingDir}' is invalid: it "
                              "needs to be an absolute path (-w /some/dir)")
    if host.AutoRemove and host.RestartPolicy.Name != "no":
        raise MinidockerError("Conflicting options: --restart and --rm: a container removed "
                              "when it exits cannot be restarted; choose one")
    if config.StopSignal:
        parse_signal(config.StopSignal)  # a bad --stop-signal fails now, not at 'stop'
    tunables.check_sysctls(host.Sysctls, set(host.namespaces()))
    tunables.check_oom_score_adj(host.OomScoreAdj)
    check_cgroup_parent(host.CgroupParent)
    if config.Domainname and not host.UTSMode.is_private:
        raise MinidockerError("Conflicting options: --domainname and --uts host: the host's "
                              "domain name is not the container's to set")


def with_log_config(host: HostConfig) -> HostConfig:
    """The request with its ``--log-driver`` and ``--log-opt``s checked and completed by the
    driver's defaults (``max-size``, ``max-file``): the LogConfig ``inspect`` shows."""
    log_config = check_log_config(host.LogConfig.get("Type") or "json-file",
                                  host.LogConfig.get("Config") or {})
    return dataclasses.replace(host, LogConfig=log_config)


def with_image_defaults(config: Config, image: dict, reference: str) -> Config:
    """The request completed by the image's config, by Docker's rules (see above)."""
    if config.Entrypoint is not None:
        entrypoint = [] if config.Entrypoint in ([], [""]) else list(config.Entrypoint)
        cmd = list(config.Cmd or [])
    else:
        entrypoint = list(image.get("Entrypoint") or [])
        cmd = list(config.Cmd if config.Cmd is not None else image.get("Cmd") or [])
    if not entrypoint + cmd:
        raise MinidockerError("No command specified: give one after the image name, "
                              "e.g. 'minidocker run busybox sh'")
    return dataclasses.replace(
        config, Image=reference, Entrypoint=entrypoint, Cmd=cmd,
        Env=merge_env(image.get("Env") or [], config.Env),
        WorkingDir=config.WorkingDir or image.get("WorkingDir") or "/",
        User=config.User or image.get("User") or "",
        StopSignal=config.StopSignal or image.get("StopSignal") or "SIGTERM",
        ExposedPorts={**(image.get("ExposedPorts") or {}), **config.ExposedPorts},
        Volumes=image.get("Volumes") or {},
        Labels={**(image.get("Labels") or {}), **config.Labels},
        Healthcheck=health.merge(image.get("Healthcheck"), config.Healthcheck))


def merge_env(image_env: list[str], env: list[str]) -> list[str]:
    """The request's Env, then each of the image's whose key the request does not set: the
    order dockerd keeps (moby ``runconfig.Merge``), which ``inspect`` shows."""
    keys = {item.partition("=")[0] for item in env}
    return [*env, *(item for item in image_env if item.partition("=")[0] not in keys)]


def resolve_shared_containers(host: HostConfig) -> HostConfig:
    """``--network/--ipc/--pid container:NAME`` (and a pod member's UTS mode) name a container
    that must exist; the record keeps its ID (as Docker's), so a rename or a prefix cannot
    change what is joined."""
    changes = {}
    for field_name in ("NetworkMode", "IpcMode", "PidMode", "UTSMode"):
        mode = getattr(host, field_name)
        if mode.container:
            changes[field_name] = type(mode)(f"container:{records.find(mode.container).Id}")
    return dataclasses.replace(host, **changes)


def mount_requests(host: HostConfig) -> tuple[list, list]:
    """The mounts asked for (``-v``, ``--mount``, ``--tmpfs``), parsed, and the mounts
    inherited with ``--volumes-from``; a bad one fails here, before anything is made."""
    requests = ([volumes.parse_volume(s) for s in host.Binds]
                + [volumes.parse_mount(s) for s in host.Mounts]
                + [volumes.parse_tmpfs(s) for s in host.Tmpfs])
    inherited = []
    for item in host.VolumesFrom:
        name, mode = volumes.parse_volumes_from(item)
        inherited += volumes.volumes_from(records.find(name).Mounts, mode)
    return requests, inherited
