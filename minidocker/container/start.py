"""Stage 6 — creating and starting a container: from ``minidocker run`` to PID 1.

``create()`` turns the flags and the image's config into the container's record (Docker's
Config and HostConfig, see spec.py for the rules); nothing runs yet. ``start()`` tells the
story the kernel sees, and can tell it again for a restart:

1. make the container's cgroup, write its limits and the devices it may use (stages 3, 9);
2. fork the shim, which unshares a PID namespace (after a user namespace, with ``--userns``);
   its child unshares uts, mnt, ipc and net namespaces (or joins another container's, see
   sharing.py) and waits while we move it into the cgroup and plug its network in (stage 8,
   networking.py); then it unshares the cgroup namespace, so its cgroup looks like the root;
3. inside: make every mount private, mount the overlay of the image, a small init layer and
   the container's own upper dir (stage 4); pivot_root into it with /proc, /sys and /dev, and
   the volumes, /etc/hosts and tini on top (stages 2, 7); set the hostname; bring ``lo`` up;
   go to the working directory;
4. the very last step: capabilities, the user (``-u``) and the seccomp filter (stage 9);
5. exec the command; whoever started it (the monitor) waits for the shim, records the exit
   code (and whether the kernel's OOM killer struck), and the cgroup and network go.

Man pages: see stages 1 to 9. Used by: ``minidocker run``/``create``/``start``, the monitor,
notebooks 00 and 06.
"""

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from minidocker import cgroups, kernel, namespaces, rootfs, security, unionfs, volumes
from minidocker.container import records
from minidocker.container.names import check_name, new_id
from minidocker.container.networking import NetworkPlan, link_environment
from minidocker.container.sharing import mount_from_outside, share_ipc_memory, sharing, userns_root
from minidocker.container.spec import (
    ContainerSpec,
    environment,
    parse_log_opts,
    parse_restart,
    parse_signal,
)
from minidocker.errors import MinidockerError
from minidocker.security import userns
from minidocker.security.devices import Device, host_devices, make_node, rules_for
from minidocker.security.users import resolve_user, switch_user
from minidocker.state import state_root

TINI = "/usr/bin/tini-static"  # Debian's tini, the init Docker ships as docker-init
INIT_PATH = "/sbin/docker-init"


@dataclass
class Container:
    """A started container: its record and its running PID 1."""

    record: records.ContainerRecord
    process: namespaces.Process
    cgroup: cgroups.Cgroup
    oom_killed: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def stats(self) -> cgroups.Stats:
        """CPU, memory and pids as the kernel counts them for this container's cgroup."""
        return self.cgroup.stats()

    def pause(self) -> None:
        """Freeze every process of the container (the cgroup freezer)."""
        self.cgroup.freeze()

    def unpause(self) -> None:
        self.cgroup.thaw()

    def wait(self) -> int:
        """Wait for PID 1; record the exit code and an OOM kill, remove the cgroup (and
        everything else, with ``--rm``)."""
        code = self.process.wait()
        self.oom_killed = self.cgroup.stats().oom_kills > 0
        self.cgroup.destroy()
        NetworkPlan(self.record).release()
        if self.record.HostConfig.get("AutoRemove"):
            remove(self.record)
        else:
            try:
                self.record.mark_exited(code, oom_killed=self.oom_killed)
            except MinidockerError:
                pass  # removed meanwhile ('rm -f'): nothing left to record
        return code


def create(spec: ContainerSpec) -> records.ContainerRecord:
    """Check the spec, resolve the image and write the container's record."""
    if spec.workdir and not os.path.isabs(spec.workdir):
        raise MinidockerError(f"the working directory '{spec.workdir}' is invalid: it needs "
                              "to be an absolute path (-w /some/dir)")
    restart = parse_restart(spec.restart)
    if spec.remove and restart["Name"] != "no":
        raise MinidockerError("Conflicting options: --restart and --rm: a container removed "
                              "when it exits cannot be restarted; choose one")
    log_config = parse_log_opts(spec.log_opts)
    from minidocker.image.store import resolve_image  # here: the monitor never needs the store

    reference, image = resolve_image(spec.image)
    defaults = image.config.get("config") or {}
    entrypoint, cmd = command_of(spec, defaults)
    stop_signal = spec.stop_signal or defaults.get("StopSignal") or "SIGTERM"
    parse_signal(stop_signal)  # a bad --stop-signal fails now, not at 'stop'
    requests = mount_requests(spec)
    container_id = new_id()
    name = records.claim_name(check_name(spec.name) if spec.name else None)
    record = records.ContainerRecord(
        Id=container_id, Name=name, Image=image.id,
        Config={"Hostname": spec.hostname or container_id[:12], "Entrypoint": entrypoint,
                "Cmd": cmd, "Env": [*defaults.get("Env", []), *spec.resolved_env()],
                "WorkingDir": spec.workdir or defaults.get("WorkingDir") or "/",
                "User": spec.user if spec.user is not None else defaults.get("User", ""),
                "Tty": spec.tty, "OpenStdin": spec.interactive, "StdinOnce": False,
                "Image": str(reference), "StopSignal": stop_signal,
                "StopTimeout": spec.stop_timeout, "Volumes": defaults.get("Volumes") or {},
                "Labels": defaults.get("Labels") or {},
                "LowerDirs": list(image.layer_dirs())},
        HostConfig={"ReadonlyRootfs": spec.readonly, "AutoRemove": spec.remove,
                    "Init": spec.init, "RestartPolicy": restart,
                    "LogConfig": {"Type": "json-file", "Config": log_config},
                    "Binds": list(spec.volumes), "VolumesFrom": list(spec.volumes_from),
                    **spec.extra, **docker_limits(spec.limits)})
    record.LogPath = str(record.directory / "container-json.log")
    if not record.command:
        raise MinidockerError("No command specified: give one after the image name, "
                              "e.g. 'minidocker run busybox sh'")
    mounts = volumes.resolve(requests[0], image_volumes=record.Config["Volumes"],
                             inherited=requests[1])  # last: it makes volumes and dirs
    record.Mounts = [m.to_dict() for m in mounts]
    record.save()
    (record.directory / "upper").mkdir(exist_ok=True)  # diff/commit/export work before start
    return record


def mount_requests(spec: ContainerSpec) -> tuple[list, list]:
    """The user's mounts, parsed (``-v``, ``--mount``, ``--tmpfs``), and the mounts inherited
    with ``--volumes-from``; a bad spec fails here, before anything is made."""
    requests = ([volumes.parse_volume(s) for s in spec.volumes]
                + [volumes.parse_mount(s) for s in spec.mounts]
                + [volumes.parse_tmpfs(s) for s in spec.tmpfs])
    inherited = []
    for item in spec.volumes_from:
        name, mode = volumes.parse_volumes_from(item)
        inherited += volumes.volumes_from(records.find(name).Mounts, mode)
    return requests, inherited


def command_of(spec: ContainerSpec, image: dict) -> tuple[list[str], list[str]]:
    """Entrypoint and Cmd, by Docker's rules (see spec.py)."""
    if spec.entrypoint is not None:
        return ([spec.entrypoint] if spec.entrypoint else []), list(spec.command)
    return list(image.get("Entrypoint") or []), list(spec.command or image.get("Cmd") or [])


def start(record: records.ContainerRecord,
          stdio: namespaces.Stdio | None = None) -> Container:
    """Start a created (or exited) container; returns once its command has been exec'd."""
    config, host = record.Config, record.HostConfig
    hostname, workdir = config["Hostname"], config["WorkingDir"]
    idmap = namespaces.IdMap(**host["UsernsMap"]) if host.get("UsernsMap") else None
    lower = config["LowerDirs"]
    if idmap:  # the files must follow the uid map (see security/userns.py)
        lower = userns.shift_layers(lower, idmap)
    placeholders = [*([f"/etc/{name}" for name in NetworkPlan.FILES]
                      if (host.get("NetworkMode") or "none") != "none" else []),
                    *([INIT_PATH] if host.get("Init") else [])]
    if placeholders:  # Docker's "init layer": mount points that diff and commit never see
        lower = [init_layer(record.directory / "init", placeholders, lower), *lower]
    dirs = unionfs.OverlayDirs.under(record.directory, tuple(lower))
    if idmap:
        volume_dirs = [m["Source"] for m in record.Mounts if m["Type"] == "volume"]
        userns.own_writable_dirs([dirs.upper, dirs.work], idmap)
        userns.own_empty_dirs(volume_dirs, idmap)
    env = {**link_environment(host.get("Links", [])),
           **environment(hostname, config["Env"], tty=config["Tty"])}
    command = [INIT_PATH, "--", *record.command] if host.get("Init") else record.command
    mounts = [volumes.Mount.from_dict(m) for m in record.Mounts]
    protection = security_of(host)
    net = NetworkPlan(record)
    kinds, join = sharing(host)
    if idmap:
        kinds.append("user")
    devices = [Device(**d) for d in host.get("Devices", [])]
    cgroup, device_rules_applied = make_cgroup(record, limits_of(host),
                                               rules_for(devices, protection.privileged))

    def more_mounts(root: str) -> None:  # after /proc, /sys, /dev: a volume may go there
        dev = os.path.join(root, "dev")
        for device in host_devices() if protection.privileged else devices:
            make_node(dev, device)
        if not device_rules_applied and not protection.privileged:
            # no devices cgroup (v2): a node the container makes in /dev must not open
            kernel.mount(None, dev, None, kernel.MS_REMOUNT | kernel.MS_BIND | kernel.MS_RDONLY
                         | kernel.MS_NOSUID)
        share_ipc_memory(root, host.get("IpcMode") or "", join.get("ipc"))
        if not idmap:
            data_mounts(root)

    def data_mounts(root: str) -> None:  # what comes from the host's files
        volumes.mount_all(mounts, root, devices_allowed=protection.privileged)
        net.mount_files(root)
        if host.get("Init"):
            mount_init(root)

    def before_start(pid: int) -> None:  # the parent's part, while the child waits
        cgroup.add_process(pid)
        net.attach(pid)
        if idmap:  # root inside cannot reach into the state root (0700): we mount for it
            mount_from_outside(pid, dirs, data_mounts, nodev=not protection.privileged)

    def inside_the_namespaces() -> None:  # runs as the container's PID 1, before exec
        rootfs.make_mounts_private()
        if not idmap:
            unionfs.mount_overlay(dirs, nodev=not protection.privileged)
        rootfs.enter_rootfs(rootfs.RootfsSpec(userns_root(str(state_root())) if idmap
                                              else dirs.merged,
                                              readonly=host["ReadonlyRootfs"],
                                              more_mounts=more_mounts,
                                              privileged=protection.privileged))
        if "uts" in kinds:  # never the host's (--uts host)
            kernel.sethostname(hostname)
        if "net" in kinds and net.mode == "none":
            kernel.interface_up("lo")  # a new network namespace has only lo, and it is down
        user = resolve_user(config.get("User"), host.get("GroupAdd"))
        if not any(item.startswith("HOME=") for item in config["Env"]):
            env["HOME"] = user.home  # env is this process's copy: spawn execs with it
        enter_workdir(workdir)
        security.apply(protection, switch_user=lambda: switch_user(user))  # the last step

    try:
        process = namespaces.spawn(command, kinds, env=env, stdio=stdio, join=join,
                                   user_map=idmap, setup=inside_the_namespaces,
                                   before_start=before_start)
    except BaseException as exc:  # an error, or Ctrl-C: leave no cgroup and a true record
        cgroup.destroy()
        net.release()
        if host.get("AutoRemove"):
            remove(record)
        else:
            record.mark_exited(getattr(exc, "exit_code", 125), error=str(exc))
        raise
    if host.get("Init"):
        wait_for_signal_handling(process.pid)
    record.mark_running(process.pid)
    net.record_settings()
    return Container(record, process, cgroup)


def wait_for_signal_handling(pid: int, timeout: float = 2.0) -> None:
    """tini takes its signals by blocking them (then sigtimedwait(2)). Until it has, a signal
    to PID 1 meets the default action, which the kernel ignores for a namespace's init: it
    would be lost. tini blocks them *before* it forks the command, so ``start`` returns once
    PID 1 has a child (/proc/<pid>/task/<pid>/children)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                if f.read().strip():
                    return
        except FileNotFoundError:
            return
        time.sleep(0.002)


def security_of(host_config: dict) -> security.SecurityOptions:
    """Stage 9's options from the record (Docker's defaults when the flags gave none)."""
    if "Security" in host_config:
        return security.SecurityOptions.from_dict(host_config["Security"])
    return security.parse_security_opts()


def init_layer(directory: Path, files: list[str], layers: list[str]) -> str:
    """A small layer on top of the image's, holding only empty files where minidocker will
    bind-mount something (/etc/hosts, /sbin/docker-init, ...): the mount points exist without
    being changes of the container, so ``diff`` and ``commit`` never show them (Docker's
    ``-init`` layer). Each directory takes the owner and mode the image gives it."""
    for path in files:
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            relative = os.path.join(*parts[:depth])
            folder = directory / relative
            if not folder.is_dir():
                folder.mkdir(parents=True)
                like = next((os.lstat(os.path.join(layer, relative)) for layer in layers
                             if os.path.isdir(os.path.join(layer, relative))), None)
                if like:
                    os.chmod(folder, like.st_mode & 0o7777)
                    os.lchown(folder, like.st_uid, like.st_gid)
        (directory / path.lstrip("/")).touch()
    return str(directory)


def mount_init(merged: str) -> None:
    """Bind tini (static, so it needs nothing from the image) at /sbin/docker-init."""
    if not os.path.exists(TINI):
        raise MinidockerError(f"--init needs tini: {TINI} is missing (apt-get install tini)")
    target = os.path.join(merged, INIT_PATH.lstrip("/"))
    kernel.mount(TINI, target, None, kernel.MS_BIND)
    kernel.mount(None, target, None, kernel.MS_REMOUNT | kernel.MS_BIND | kernel.MS_RDONLY)


def make_cgroup(record: records.ContainerRecord, limits: cgroups.Limits,
                device_rules: list[str]) -> tuple[cgroups.Cgroup, bool]:
    """The container's cgroup, made and limited before its process exists; and whether this
    machine's cgroups could restrict its devices (v1 can, see security/devices.py)."""
    cgroup = cgroups.for_container(record.Id)
    try:
        for attempt in range(3):  # the shared parent may vanish under us (its last
            try:                  # container going at the same moment): just try again
                cgroup.create()
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
        cgroup.set_limits(limits)
        devices_restricted = cgroup.allow_devices(device_rules)
    except OSError as exc:
        cgroup.destroy()
        raise MinidockerError(f"cannot set up the container's cgroup: {exc} (run "
                              "'minidocker doctor' to see the cgroup layout)") from exc
    return cgroup, devices_restricted


def release(record: records.ContainerRecord) -> None:
    """Give back what a container held in the kernel: its processes and its cgroup (killed
    through the cgroup: every process of the container, nobody else's), its network."""
    cgroups.for_container(record.Id).destroy()
    NetworkPlan(record).release()


def remove(record: records.ContainerRecord) -> None:
    """Forget a container: release it, then delete its directory (upper dir, log, record)."""
    release(record)
    record.remove()
    shutil.rmtree(record.directory, ignore_errors=True)


DOCKER_LIMITS = {"memory": "Memory", "memory_swap": "MemorySwap", "cpu_quota": "CpuQuota",
                 "cpu_period": "CpuPeriod", "cpu_shares": "CpuShares",
                 "cpuset_cpus": "CpusetCpus", "pids_limit": "PidsLimit"}


def docker_limits(limits: cgroups.Limits) -> dict:
    """The limits under Docker's HostConfig names (0 or "" = unlimited), for ``inspect``."""
    return {docker: getattr(limits, ours) or ("" if ours == "cpuset_cpus" else 0)
            for ours, docker in DOCKER_LIMITS.items()}


def limits_of(host_config: dict) -> cgroups.Limits:
    """The limits back from a record's HostConfig."""
    return cgroups.Limits(**{ours: host_config.get(docker) or None
                             for ours, docker in DOCKER_LIMITS.items()})


def run(spec: ContainerSpec, stdio: namespaces.Stdio | None = None) -> Container:
    """``docker run`` without the terminal: create and start; call ``.wait()`` for the end."""
    return start(create(spec), stdio)


def enter_workdir(workdir: str) -> None:
    """chdir to the working directory, creating it first as Docker does."""
    try:
        os.makedirs(workdir, exist_ok=True)
        os.chdir(workdir)
    except OSError as exc:
        raise MinidockerError(f"cannot use working directory {workdir}: {exc.strerror}",
                              exit_code=126) from exc
