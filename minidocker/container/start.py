"""Stage 6 — starting a container: from its record to PID 1's execve(2).

``start()`` tells the story the kernel sees, and can tell it again for a restart. Each step is
one call, in the order it runs; the parent's side and the child's side are each one function
(runc's ``standard_init_linux.go`` and containers-from-scratch's ``run``/``child`` are the
models):

1. ``plan_start``: everything the record asks for, read once (overlay dirs, command,
   environment, namespaces to create or join, mounts, devices, security options);
2. ``volumes.mounted``: a volume the local driver mounts (a tmpfs) is mounted on its ``_data``
   unless a running container has it mounted already (stage 7);
3. ``make_cgroup``: the container's cgroup, with its limits and allowed devices (stages 3, 9),
   and whether it guards them (cgroup v1); if not, step 5 mounts /dev read-only;
4. ``namespaces.spawn`` forks the shim, which unshares a PID namespace (after a user namespace,
   with ``--userns``); its child unshares uts, mnt, ipc and net (or joins another container's)
   and waits while ``parent_side`` moves it into the cgroup, sets its OOM score and plugs its
   network in (stage 8);
   then it unshares the cgroup namespace, so its cgroup looks like the root;
5. ``child_side``, as the container's PID 1: make every mount private, mount the overlay of the
   image, a small init layer and the container's upper dir (stage 4); write its sysctls while
   /proc/sys is still writable; pivot_root into it with /proc, /sys and /dev, and the devices,
   volumes, /etc/hosts and tini on top (stages 2, 7); set the host and domain names; bring
   ``lo`` up; go to the working directory; set the rlimits; and as the very last step
   capabilities, the user (``-u``) and the seccomp filter (stage 9);
6. exec the command; whoever started it (the monitor) waits for the shim, and ``teardown.finish``
   records the exit code and gives back the cgroup, the network and the volumes' mounts.

Man pages: see stages 1 to 9: unshare(2), setns(2), mount(2), overlay (filesystems/overlayfs
in the kernel docs), pivot_root(2), sethostname(2), cgroups(7), capabilities(7), seccomp(2),
setrlimit(2), sysctl(8), execve(2). Used by: ``minidocker run``/``start``, the monitor,
notebooks 00 and 06.
"""

import contextlib
import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path

from minidocker import cgroups, explain, kernel, namespaces, rootfs, security, unionfs, volumes
from minidocker.container import records, runc, teardown, tunables
from minidocker.container.config import Config, HostConfig
from minidocker.container.create import create
from minidocker.container.networking import NetworkPlan, link_environment
from minidocker.container.sharing import (
    mount_from_outside,
    share_ipc_memory,
    shared_pids,
    userns_root,
)
from minidocker.errors import MinidockerError
from minidocker.image import DEFAULT_PATH
from minidocker.security import userns
from minidocker.security.devices import host_devices, make_node, rules_for
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
        """Wait for PID 1; record the exit code and an OOM kill, and give back what it held
        (everything, with ``--rm``)."""
        code = self.process.wait()
        self.oom_killed = self.cgroup.stats().oom_kills > 0
        teardown.finish(self.record, code, oom_killed=self.oom_killed)
        return code


@dataclass
class StartPlan:
    """What one start of a container needs, read from its record once."""

    record: records.ContainerRecord
    dirs: unionfs.OverlayDirs  # the overlay: image layers (+ init layer), upper, work, merged
    command: list[str]  # what PID 1 execs (tini first, with --init)
    env: dict[str, str]
    kinds: list[str]  # the namespaces to create
    join: dict[str, int]  # the namespaces to join: {kind: PID of that container's PID 1}
    idmap: namespaces.IdMap | None  # --userns private
    protection: security.SecurityOptions
    mounts: list[volumes.Mount]
    network: NetworkPlan

    @property
    def host(self) -> HostConfig:
        return self.record.HostConfig

    @property
    def config(self) -> Config:
        return self.record.Config


def run(config: Config, host: HostConfig | None = None, name: str | None = None,
        stdio: namespaces.Stdio | None = None) -> Container:
    """``docker run`` without the terminal: create and start; call ``.wait()`` for the end."""
    return start(create(config, host, name), stdio)


def start(record: records.ContainerRecord,
          stdio: namespaces.Stdio | None = None, adopt: bool = False) -> Container:
    """Start a created (or exited) container; returns once its command has been exec'd.
    With ``adopt`` the caller, a child subreaper, is PID 1's parent: no shim stays."""
    with contextlib.ExitStack() as volumes_held:
        try:
            plan = plan_start(record)
            # the local driver's filesystems (a tmpfs volume) on their _data before the
            # child copies our mounts; their locks held until the record says "running"
            volumes_held.enter_context(volumes.mounted(plan.mounts,
                                                            records.running_volumes))
            process, cgroup = spawn(plan, stdio, adopt)
        except BaseException as exc:  # an error, or Ctrl-C: leave no cgroup and a true record
            volumes_held.close()  # finish counts the volumes' users under those locks
            try:
                teardown.finish(record, getattr(exc, "exit_code", 125), error=str(exc))
            except Exception as undoing:  # refused too (EPERM in a user namespace): the
                exc.add_note(f"cleaning up failed too: {undoing}")  # first error is the news
            raise
        if plan.host.Init:
            wait_for_signal_handling(process.pid)
        record.mark_running(process.pid)
    plan.network.record_settings()
    return Container(record, process, cgroup)


def spawn(plan: StartPlan, stdio: namespaces.Stdio | None,
          adopt: bool) -> tuple[namespaces.Process, cgroups.Cgroup]:
    """The container's processes: our own shim and PID 1, or runc's (runc.py)."""
    if plan.host.Runtime == "runc":  # the spawn step handed to runc
        return runc.spawn(plan, stdio or namespaces.Stdio()), plan.record.cgroup()
    cgroup, devices_guarded = make_cgroup(plan)
    process = namespaces.spawn(plan.command, plan.kinds, env=plan.env, stdio=stdio,
                               join=plan.join, user_map=plan.idmap,
                               before_start=functools.partial(parent_side, plan, cgroup),
                               setup=functools.partial(child_side, plan, devices_guarded),
                               adopt=adopt)
    return process, cgroup


def plan_start(record: records.ContainerRecord) -> StartPlan:
    """Everything the record asks for, worked out before anything is made."""
    config, host = record.Config, record.HostConfig
    idmap = host.UsernsMap if host.UsernsMode.is_private else None
    network = NetworkPlan(record)
    lower = config.LowerDirs
    if idmap:  # the files must follow the uid map (see security/userns.py)
        lower = userns.shift_layers(lower, idmap)
    placeholders = [*([f"/etc/{name}" for name in NetworkPlan.FILES]
                      if not network.mode.is_none else []),
                    *([INIT_PATH] if host.Init else [])]
    if placeholders:  # Docker's "init layer": mount points that diff and commit never see
        lower = [init_layer(record.directory / "init", placeholders, lower), *lower]
    dirs = unionfs.OverlayDirs.under(record.directory, tuple(lower))
    mounts = [volumes.Mount.from_dict(m) for m in record.Mounts]
    if idmap:
        userns.own_writable_dirs([dirs.upper, dirs.work], idmap)
        # a filesystem the local driver mounts (a tmpfs) keeps the owner its o= gives (uid=,
        # gid=), as Docker's does: shared with other containers, it is not one map's to take
        filesystems = {volume.Mountpoint for volume in volumes.driver_mounted(mounts)}
        userns.own_empty_dirs([m.Source for m in mounts
                               if m.Type == "volume" and m.Source not in filesystems], idmap)
    env = {**link_environment(host.Links),
           **environment(config.Hostname, config.Env, tty=config.Tty)}
    command = [INIT_PATH, "--", *config.command] if host.Init else config.command
    return StartPlan(record, dirs, command, env, host.namespaces(), shared_pids(host), idmap,
                     host.security_options(), mounts, network)


def parent_side(plan: StartPlan, cgroup: cgroups.Cgroup, pid: int) -> None:
    """The parent's part, while the child waits in its new namespaces for "go"."""
    cgroup.add_process(pid)  # cgroup.procs: the limits hold from its first instruction
    tunables.set_oom_score_adj(pid, plan.host.OomScoreAdj)  # /proc/<pid>/oom_score_adj
    plan.network.attach(pid)  # a veth into its network namespace, an address, NAT
    if plan.idmap:  # root inside cannot reach into the state root (0700): we mount for it
        mount_from_outside(pid, plan.dirs, functools.partial(mount_host_files, plan),
                           nodev=not plan.protection.privileged)


def child_side(plan: StartPlan, devices_guarded: bool) -> None:
    """The container's side, as its PID 1 in the new namespaces, just before execve(2).
    ``devices_guarded``: a devices cgroup (v1) already keeps it from opening other devices."""
    rootfs.make_mounts_private()  # mount_namespaces(7): nothing we mount reaches the host
    if not plan.idmap:  # overlay: the image's layers, the init layer, the upper dir
        unionfs.mount_overlay(plan.dirs, nodev=not plan.protection.privileged)
    root = userns_root(str(state_root())) if plan.idmap else plan.dirs.merged
    tunables.write_sysctls(plan.host.Sysctls)  # --sysctl, while /proc/sys is writable
    rootfs.enter_rootfs(rootfs.RootfsSpec(  # /proc, /sys, /dev, then pivot_root(2)
        root, readonly=plan.host.ReadonlyRootfs, privileged=plan.protection.privileged,
        shm_size=plan.host.ShmSize,
        more_mounts=functools.partial(mount_extras, plan, devices_guarded)))
    if "uts" in plan.kinds:  # never the host's (--uts host)
        kernel.sethostname(plan.config.Hostname)  # sethostname(2)
        kernel.setdomainname(plan.config.Domainname)  # setdomainname(2)
    if plan.network.mode.is_none:
        kernel.interface_up("lo")  # a new network namespace has only lo, and it is down
    user = resolve_user(plan.config.User, plan.host.GroupAdd)  # the image's /etc/passwd
    if not any(item.startswith("HOME=") for item in plan.config.Env):
        plan.env["HOME"] = user.home  # env is this process's copy: spawn execs with it
    enter_workdir(plan.config.WorkingDir)
    tunables.set_rlimits(plan.host.Ulimits)  # setrlimit(2), while it may still raise them
    security.apply(plan.protection, switch_user=lambda: switch_user(user))  # the last step


def mount_extras(plan: StartPlan, devices_guarded: bool, root: str) -> None:
    """Inside, after /proc, /sys and /dev, before pivot_root: devices, /dev/shm, and what
    comes from the host's files (a volume may go under /dev)."""
    dev = os.path.join(root, "dev")
    for device in host_devices() if plan.protection.privileged else plan.host.Devices:
        make_node(dev, device)  # mknod(2)
    if not devices_guarded and not plan.protection.privileged:
        # no devices cgroup (v2): a node the container makes in /dev must not open
        kernel.mount(None, dev, None, kernel.MS_REMOUNT | kernel.MS_BIND | kernel.MS_RDONLY
                     | kernel.MS_NOSUID)
    share_ipc_memory(root, plan.host.IpcMode, plan.join.get("ipc"))
    if not plan.idmap:
        mount_host_files(plan, root)


def mount_host_files(plan: StartPlan, root: str) -> None:
    """Bind mounts from the host's files: volumes, /etc/hosts and friends, tini."""
    volumes.mount_all(plan.mounts, root, devices_allowed=plan.protection.privileged)
    plan.network.mount_files(root, {m.Destination for m in plan.mounts})
    if plan.host.Init:
        mount_init(root)


def environment(hostname: str, items: list[str], tty: bool = False,
                home: str = "/root") -> dict[str, str]:
    """The process environment, built as Docker builds it: defaults, then ``items`` (the
    image's Env followed by the user's); an item without ``=`` is ignored."""
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname, "HOME": home}
    if tty:
        env["TERM"] = "xterm"
    for item in items:
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    return env


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
    target = volumes.mount_point(merged, INIT_PATH, is_dir=False)  # a volume may cover /sbin
    kernel.mount(TINI, target, None, kernel.MS_BIND)
    kernel.mount(None, target, None, kernel.MS_REMOUNT | kernel.MS_BIND | kernel.MS_RDONLY)


def make_cgroup(plan: StartPlan) -> tuple[cgroups.Cgroup, bool]:
    """The container's cgroup, made and limited before its process exists, and whether this
    machine's cgroups guard its devices (v1 can, see security/devices.py)."""
    cgroup = plan.record.cgroup()
    rules = rules_for(plan.host.Devices, plan.protection.privileged)
    try:
        for attempt in range(3):  # the shared parent may vanish under us (its last
            try:                  # container going at the same moment): just try again
                cgroup.create()
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
        cgroup.set_limits(plan.host.Resources)
        devices_guarded = cgroup.allow_devices(rules)
    except OSError as exc:
        cgroup.destroy()
        raise MinidockerError(f"cannot set up the container's cgroup: {exc} (run "
                              "'minidocker doctor' to see the cgroup layout)") from exc
    return cgroup, devices_guarded


def enter_workdir(workdir: str) -> None:
    """chdir to the working directory, creating it first as Docker does."""
    try:
        os.makedirs(workdir, exist_ok=True)
        explain.step("chdir", repr(workdir))
        os.chdir(workdir)
    except (FileExistsError, NotADirectoryError):  # a file there, or on the way
        raise MinidockerError(f"cannot use working directory {workdir}: not a directory in "
                              "the container (choose a directory with -w)", exit_code=126) from None
    except OSError as exc:
        raise MinidockerError(f"cannot use working directory {workdir}: {exc.strerror}",
                              exit_code=126) from exc
