"""Stage 6 — starting a container: from ``minidocker run`` to the user's command as PID 1.

The story, in the order the kernel sees it:

1. find the image's root directory (stage 5) and give the container an ID, a name and a record;
2. make its cgroup and write its limits (stage 3);
3. fork the shim, which unshares a PID namespace; its child unshares uts, mnt, ipc and net
   namespaces and waits while we move it into the cgroup; then it unshares the cgroup
   namespace, so that its cgroup looks like the root (stage 1);
4. inside: make every mount private, mount the overlay of the image and the container's own
   upper dir (stage 4), pivot_root into it with /proc, /sys and /dev (stage 2), set the
   hostname, go to the working directory;
5. exec the command; the shim waits for it, the record gets its exit code (and whether the
   kernel's OOM killer struck), and the cgroup is removed.

Man pages: see stages 1 to 4. Used by: ``minidocker run``, notebook 00-tour.
"""

import os
from dataclasses import dataclass

from minidocker import cgroups, kernel, namespaces, rootfs, unionfs
from minidocker.container import records
from minidocker.container.names import check_name, new_id
from minidocker.container.spec import ContainerSpec
from minidocker.errors import MinidockerError
from minidocker.image.store import resolve_image


@dataclass
class Container:
    """A started container: its record and its running PID 1."""

    record: records.ContainerRecord
    process: namespaces.Process
    spec: ContainerSpec
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
        if self.spec.remove:
            self.record.remove()
        else:
            self.record.mark_exited(code, oom_killed=self.oom_killed)
        return code


def create(spec: ContainerSpec) -> records.ContainerRecord:
    """Check the spec, resolve the image and write the container's record."""
    if spec.workdir is not None and not os.path.isabs(spec.workdir):
        raise MinidockerError(f"the working directory '{spec.workdir}' is invalid: it needs "
                              "to be an absolute path (-w /some/dir)")
    reference, image = resolve_image(spec.image)
    defaults = image.config.get("config") or {}
    command = (defaults.get("Entrypoint") or []) + (spec.command or defaults.get("Cmd") or [])
    if not command:
        raise MinidockerError("No command specified: give one after the image name, "
                              "e.g. 'minidocker run busybox sh'")
    container_id = new_id()
    name = records.claim_name(check_name(spec.name) if spec.name else None)
    record = records.ContainerRecord(
        Id=container_id, Name=name, Image=image.id,
        Config={"Hostname": spec.hostname or container_id[:12], "Cmd": command,
                "Env": [*defaults.get("Env", []), *spec.resolved_env()],
                "WorkingDir": spec.workdir or defaults.get("WorkingDir") or "/",
                "Tty": spec.tty, "OpenStdin": spec.interactive, "Image": str(reference),
                "LowerDirs": list(image.layer_dirs())},
        HostConfig={"ReadonlyRootfs": spec.readonly, "AutoRemove": spec.remove,
                    "Init": spec.init, **docker_limits(spec.limits)})
    record.save()
    return record


def start(record: records.ContainerRecord, spec: ContainerSpec,
          stdio: namespaces.Stdio | None = None) -> Container:
    """Start a created container; returns once its command has been exec'd."""
    hostname, command = record.Config["Hostname"], record.Config["Cmd"]
    workdir = record.Config["WorkingDir"]
    dirs = unionfs.OverlayDirs.under(record.directory, tuple(record.Config["LowerDirs"]))
    env = spec.environment(hostname, record.Config["Env"])
    cgroup = make_cgroup(record, spec.limits)

    def inside_the_namespaces() -> None:  # runs as the container's PID 1, before exec
        rootfs.make_mounts_private()
        unionfs.mount_overlay(dirs)
        rootfs.enter_rootfs(rootfs.RootfsSpec(dirs.merged, readonly=spec.readonly))
        kernel.sethostname(hostname)
        enter_workdir(workdir)

    try:
        process = namespaces.spawn(command, namespaces.CONTAINER_NAMESPACES, env=env,
                                   stdio=stdio, setup=inside_the_namespaces, init=spec.init,
                                   before_start=cgroup.add_process)
    except BaseException as exc:  # an error, or Ctrl-C: leave no cgroup and a true record
        cgroup.destroy()
        if spec.remove:
            record.remove()
        else:
            record.mark_exited(getattr(exc, "exit_code", 125))
        raise
    record.mark_running(process.pid)
    return Container(record, process, spec, cgroup)


def make_cgroup(record: records.ContainerRecord, limits: cgroups.Limits) -> cgroups.Cgroup:
    """The container's cgroup, made and limited before its process exists."""
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
    except OSError as exc:
        cgroup.destroy()
        record.remove()
        raise MinidockerError(f"cannot set up the container's cgroup: {exc} (run "
                              "'minidocker doctor' to see the cgroup layout)") from exc
    return cgroup


def release(record: records.ContainerRecord) -> None:
    """Give back what a container held in the kernel after its process is gone — for a
    container whose minidocker died before it could clean up (``ps``, ``rm``)."""
    cgroups.for_container(record.Id).destroy()


def docker_limits(limits: cgroups.Limits) -> dict:
    """The limits under Docker's HostConfig names (0 = unlimited), for ``inspect``."""
    return {"Memory": limits.memory or 0, "MemorySwap": limits.memory_swap or 0,
            "CpuQuota": limits.cpu_quota or 0, "CpuPeriod": limits.cpu_period or 0,
            "CpuShares": limits.cpu_shares or 0, "CpusetCpus": limits.cpuset_cpus or "",
            "PidsLimit": limits.pids_limit or 0}


def run(spec: ContainerSpec, stdio: namespaces.Stdio | None = None) -> Container:
    """``docker run`` without the terminal: create and start; call ``.wait()`` for the end."""
    return start(create(spec), spec, stdio)


def enter_workdir(workdir: str) -> None:
    """chdir to the working directory, creating it first as Docker does."""
    try:
        os.makedirs(workdir, exist_ok=True)
        os.chdir(workdir)
    except OSError as exc:
        raise MinidockerError(f"cannot use working directory {workdir}: {exc.strerror}",
                              exit_code=126) from exc
