"""Stage 6 — starting a container: from ``minidocker run`` to the user's command as PID 1.

The story, in the order the kernel sees it:

1. find the image's root directory (stage 5) and give the container an ID, a name and a record;
2. fork the shim, which unshares a PID namespace; its child unshares uts, mnt, ipc, net and
   cgroup namespaces (stage 1);
3. inside: make every mount private, mount the overlay of the image and the container's own
   upper dir (stage 4), pivot_root into it with /proc, /sys and /dev (stage 2), set the
   hostname, go to the working directory;
4. exec the command; the shim waits for it, and the record gets its exit code.

Man pages: see stages 1, 2 and 4. Used by: ``minidocker run``, notebook 00-tour.
"""

import os
from dataclasses import dataclass

from minidocker import kernel, namespaces, rootfs, unionfs
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

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self) -> int:
        """Wait for PID 1; record the exit code (or remove everything, with ``--rm``)."""
        code = self.process.wait()
        if self.spec.remove:
            self.record.remove()
        else:
            self.record.mark_exited(code)
        return code


def create(spec: ContainerSpec) -> records.ContainerRecord:
    """Check the spec, resolve the image and write the container's record."""
    if not spec.command:
        raise MinidockerError("No command specified: give one after the image name, "
                              "e.g. 'minidocker run busybox sh'")
    if not os.path.isabs(spec.workdir):
        raise MinidockerError(f"the working directory '{spec.workdir}' is invalid: it needs "
                              "to be an absolute path (-w /some/dir)")
    reference, image_root = resolve_image(spec.image)
    container_id = new_id()
    name = records.claim_name(check_name(spec.name) if spec.name else None)
    record = records.ContainerRecord(
        Id=container_id, Name=name, Image=str(reference),
        Config={"Hostname": spec.hostname or container_id[:12], "Cmd": spec.command,
                "Env": spec.env, "WorkingDir": spec.workdir, "Tty": spec.tty,
                "OpenStdin": spec.interactive, "Image": str(reference),
                "ImageRoot": str(image_root)},
        HostConfig={"ReadonlyRootfs": spec.readonly, "AutoRemove": spec.remove,
                    "Init": spec.init})
    record.save()
    return record


def start(record: records.ContainerRecord, spec: ContainerSpec,
          stdio: namespaces.Stdio | None = None) -> Container:
    """Start a created container; returns once its command has been exec'd."""
    hostname = record.Config["Hostname"]
    dirs = unionfs.OverlayDirs.under(record.directory, (record.Config["ImageRoot"],))
    env = spec.environment(hostname)

    def inside_the_namespaces() -> None:  # runs as the container's PID 1, before exec
        rootfs.make_mounts_private()
        unionfs.mount_overlay(dirs)
        rootfs.enter_rootfs(rootfs.RootfsSpec(dirs.merged, readonly=spec.readonly))
        kernel.sethostname(hostname)
        enter_workdir(spec.workdir)

    try:
        process = namespaces.spawn(spec.command, namespaces.CONTAINER_NAMESPACES, env=env,
                                   stdio=stdio, setup=inside_the_namespaces, init=spec.init)
    except MinidockerError as exc:
        if spec.remove:
            record.remove()
        else:
            record.mark_exited(exc.exit_code)
        raise
    record.mark_running(process.pid)
    return Container(record, process, spec)


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
