"""Stage 6 — the container as an OCI bundle: its typed configuration as runc's ``config.json``.

The OCI runtime spec says what a container *is*, for any runtime: a *bundle*, a directory
with a root filesystem and a ``config.json`` describing the process and its isolation. Docker
hands such a bundle to runc (dockerd -> containerd -> shim -> runc), podman too (via conmon).
minidocker is its own runtime, but every field of ``config.json`` is something one of its
stages already makes in ``start.py``; ``runtime_spec()`` writes them down, stage by stage:

  ``root``                           stage 4: the container's overlay mount (``--read-only``)
  ``process``                        stage 6: command, env, cwd, terminal; tunables: rlimits,
                                     oomScoreAdj; stage 9: user, capabilities, noNewPrivileges
  ``hostname``, ``domainname``       stage 1: the UTS namespace
  ``mounts``                         stage 2: /proc /sys /dev; 7: volumes; 8: /etc/hosts...
  ``linux.namespaces``               stage 1 (a path joins another container's: ``container:X``)
  ``linux.uidMappings``...           stage 9: ``--userns private``
  ``linux.resources``, ``cgroupsPath``  stage 3: the limits; stage 9: the devices allowed
  ``linux.maskedPaths``, ``readonlyPaths``  stage 2
  ``linux.seccomp``                  stage 9: the profile in the spec's JSON form
  ``linux.sysctl``                   tunables: namespaced sysctls
  ``hooks.createRuntime``            stage 8: runc calls minidocker back to plug the network
                                     in, once the namespaces exist (``container/hooks.py``)

``runtime.py`` gives the bundle to runc (``--runtime runc``); ``minidocker export-bundle``
writes one for you to read or run by hand. Spec: opencontainers/runtime-spec ``config.md``,
``config-linux.md``, ``runtime.md`` (v1.0.2, what Debian's runc 1.1.5 reads). Used by:
notebook 06b-oci-runtime.
"""

import os
import sys

from minidocker import cgroups, rootfs
from minidocker.security import capabilities, seccomp
from minidocker.security.devices import DEFAULT_RULES, PRIVILEGED_RULES, host_devices
from minidocker.security.profiles import load_profile
from minidocker.security.users import User
from minidocker.state import state_root

OCI_VERSION = "1.0.2"  # the spec Debian's runc 1.1.5 implements (`runc --version`)
NAMESPACE_TYPES = {"pid": "pid", "net": "network", "ipc": "ipc", "uts": "uts", "mnt": "mount",
                   "cgroup": "cgroup", "user": "user"}


def runtime_spec(plan, user: User, root: str, standalone: bool = False) -> dict:
    """The whole ``config.json`` for one start (``plan``: ``start.StartPlan``), with the
    process running as ``user`` in the root filesystem at ``root``. A ``standalone`` bundle
    (``export-bundle``) needs no minidocker: no network hook and no /etc files of its record
    (its network namespace has only ``lo``), and runc picks its cgroup's place."""
    spec = {
        "ociVersion": OCI_VERSION,
        "root": {"path": root, "readonly": plan.host.ReadonlyRootfs},
        "process": process_spec(plan, user),
        "mounts": mounts_spec(plan, standalone),
        "linux": linux_spec(plan, standalone),
        "annotations": {"org.opencontainers.image.ref.name": plan.config.Image,
                        "io.minidocker.container.name": plan.record.Name},
    }
    if "uts" in plan.kinds:  # runc refuses a hostname without a UTS namespace of its own
        spec.update(hostname=plan.config.Hostname, domainname=plan.config.Domainname)
    if not standalone and not plan.network.mode.is_none:
        spec["hooks"] = {"createRuntime": [network_hook(plan)]}
    return spec


# --- process: what runs, as whom, with what -----------------------------------------------

def process_spec(plan, user: User) -> dict:
    """``process``: argv, env, cwd and the terminal (stage 6), rlimits and the OOM score
    (tunables), the user and stage 9's capabilities and no_new_privs."""
    env = dict(plan.env)
    if not any(item.startswith("HOME=") for item in plan.config.Env):
        env["HOME"] = user.home  # the user's, from the image's /etc/passwd (as start.py)
    ours = set(capabilities.names(capabilities.read_status().bounding))  # runc can give no
    caps = sorted(plan.protection.capabilities & ours,                   # more than it has
                  key=lambda n: capabilities.BY_NAME[n].number)
    return {
        "terminal": plan.config.Tty,
        "user": {"uid": user.uid, "gid": user.gid,
                 **({"additionalGids": user.groups} if user.groups else {})},
        "args": plan.command,
        "env": [f"{key}={value}" for key, value in env.items()],
        "cwd": plan.config.WorkingDir or "/",
        "capabilities": {kind: caps for kind in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": f"RLIMIT_{u['Name'].upper()}", "soft": rlimit(u["Soft"]),
                     "hard": rlimit(u["Hard"])} for u in plan.host.Ulimits],
        "noNewPrivileges": plan.protection.no_new_privs,
        "oomScoreAdj": plan.host.OomScoreAdj,
    }


def rlimit(value: int) -> int:
    return 2**64 - 1 if value == -1 else value  # RLIM_INFINITY, as the spec's uint64


# --- mounts: stage 2's kernel filesystems, then volumes and the host's files ---------------

def mounts_spec(plan, standalone: bool = False) -> list[dict]:
    """``mounts``, in order: the kernel's filesystems (stage 2), then the volumes (stage 7),
    the network's /etc files (stage 8) and tini (``--init``), as ``start.py`` mounts them."""
    privileged = plan.protection.privileged
    nosuid = ["nosuid", "noexec", "nodev"]
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": nosuid},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        shm_mount(plan, standalone),
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": nosuid},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",  # no cgroupfs below
         "options": [*nosuid, "rw" if privileged else "ro"]},           # it, as rootfs.py
    ]
    for mount in sorted(plan.mounts, key=lambda m: m.Destination.count("/")):
        mounts.append(volume_mount(mount, privileged))
    user_paths = {m.Destination for m in plan.mounts}
    if not standalone and not plan.network.mode.is_none:
        for name in plan.network.FILES:
            if f"/etc/{name}" not in user_paths:
                mounts.append(bind(str(plan.record.directory / name), f"/etc/{name}",
                                   ["rbind", "rprivate"]))
    if plan.host.Init:
        from minidocker.container.start import INIT_PATH, TINI

        mounts.append(bind(TINI, INIT_PATH, ["bind", "ro", "rprivate"]))
    return mounts


def shm_mount(plan, standalone: bool) -> dict:
    """``/dev/shm``: a tmpfs of its own (``--shm-size``); with ``--ipc host`` or ``--ipc
    container:X`` that one's, since POSIX shared memory lives there and not in the IPC
    namespace (sharing.py). X's is mounted only in X's mount namespace: runc.py clones it
    into ``bundle/shm`` for runc to bind."""
    options = ["rbind", "rprivate", "nosuid", "nodev", "noexec"]
    if plan.host.IpcMode.is_host:
        return bind("/dev/shm", "/dev/shm", options)
    if "ipc" in plan.join and not standalone:
        return bind(str(plan.record.directory / "bundle" / "shm"), "/dev/shm", options)
    return {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={plan.host.ShmSize}"]}


def volume_mount(mount, privileged: bool) -> dict:
    """One ``-v``/``--mount``/``--tmpfs`` (stage 7) as an OCI mount."""
    mode = ["rw" if mount.RW else "ro"]
    if mount.Type == "tmpfs":
        data = [o for o in (mount.Options or "").split(",") if o]
        return {"destination": mount.Destination, "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", *mode, *data]}
    return bind(mount.Source, mount.Destination,
                ["rbind", "rprivate", *mode, *([] if privileged else ["nosuid", "nodev"])])


def bind(source: str, destination: str, options: list[str]) -> dict:
    return {"destination": destination, "type": "bind", "source": source, "options": options}


# --- linux: namespaces, cgroup, devices, paths, seccomp, sysctls ---------------------------

def linux_spec(plan, standalone: bool = False) -> dict:
    privileged = plan.protection.privileged
    linux = {
        "namespaces": namespaces_spec(plan),
        **({} if standalone else {"cgroupsPath": "/" + plan.record.cgroup().name}),
        "resources": resources_spec(plan),
        "devices": [device_spec(d) for d in (host_devices() if privileged
                                             else plan.host.Devices)],
        "maskedPaths": [] if privileged else list(rootfs.MASKED_PATHS),
        "readonlyPaths": [] if privileged else list(rootfs.READONLY_PATHS),
        "sysctl": dict(plan.host.Sysctls),
    }
    if plan.idmap:
        mapping = [{"containerID": plan.idmap.inside, "hostID": plan.idmap.outside,
                    "size": plan.idmap.count}]
        linux.update(uidMappings=mapping, gidMappings=mapping)
    profile = seccomp_spec(plan.protection)
    if profile:
        linux["seccomp"] = profile
    return linux


def namespaces_spec(plan) -> list[dict]:
    """Stage 1's namespaces: a new one for each kind the container has, a path for the ones
    it joins (``--network container:X`` and friends: that container's PID 1's)."""
    spaces = [{"type": NAMESPACE_TYPES[kind]} for kind in plan.kinds]
    spaces += [{"type": NAMESPACE_TYPES[kind], "path": f"/proc/{pid}/ns/{kind}"}
               for kind, pid in plan.join.items()]
    return spaces


def resources_spec(plan) -> dict:
    """Stage 3's limits under ``linux.resources`` (runc writes them into the cgroup), and the
    devices the container may open (stage 9's cgroup rules)."""
    limits = plan.host.Resources
    resources: dict = {"devices": [{"allow": False, "access": "rwm"},
                                   *map(device_rule, rules_of(plan))]}
    memory = {"limit": limits.memory, "reservation": limits.memory_reservation,
              "swappiness": limits.memory_swappiness, "disableOOMKiller": limits.oom_kill_disable}
    if limits.memory is not None and swap_accounted():  # Docker: as much swap as memory
        memory["swap"] = limits.memory_swap if limits.memory_swap is not None \
            else 2 * limits.memory
    cpu = {"shares": limits.cpu_shares, "quota": limits.cpu_quota,
           "period": limits.cpu_period, "cpus": limits.cpuset_cpus, "mems": limits.cpuset_mems}
    block_io = {"weight": limits.blkio_weight,
                "throttleReadBpsDevice": throttles(limits.blkio_device_read_bps),
                "throttleWriteBpsDevice": throttles(limits.blkio_device_write_bps)}
    for name, values in (("memory", memory), ("cpu", cpu), ("blockIO", block_io)):
        values = {key: value for key, value in values.items() if value not in (None, [])}
        if values:
            resources[name] = values
    if limits.pids_limit is not None:
        resources["pids"] = {"limit": limits.pids_limit}
    return resources


def swap_accounted() -> bool:
    """v2 always counts swap; v1 only with swap accounting (memory.memsw.*)."""
    return cgroups.layout() == "v2" or os.path.exists(
        cgroups.CGROUP_ROOT / "memory" / "memory.memsw.limit_in_bytes")


def throttles(rates) -> list[dict]:
    return [{**major_minor(device), "rate": rate} for device, rate in rates or ()]


def major_minor(device: str) -> dict:
    number = os.stat(device).st_rdev
    return {"major": os.major(number), "minor": os.minor(number)}


def rules_of(plan) -> list[str]:
    if plan.protection.privileged:
        return PRIVILEGED_RULES
    return [*DEFAULT_RULES, *(d.rule() for d in plan.host.Devices)]


def device_rule(rule: str) -> dict:
    """A devices-cgroup rule (``c 1:3 rwm``, ``a *:* rwm``) in the spec's form."""
    kind, numbers, access = rule.split()
    major, minor = numbers.split(":")
    entry = {"allow": True, "type": kind, "access": access}
    entry.update({k: int(v) for k, v in (("major", major), ("minor", minor)) if v != "*"})
    return entry


def device_spec(device) -> dict:
    """One ``--device`` node to create inside (``linux.devices``)."""
    return {"path": device.container_path, "type": device.kind, "major": device.major,
            "minor": device.minor, "fileMode": device.mode & 0o7777, "uid": 0, "gid": 0}


def seccomp_spec(protection) -> dict | None:
    """Stage 9's profile in the spec's JSON form (``linux.seccomp``), for the container's
    capabilities; None when unconfined."""
    if protection.seccomp is None:
        return None
    profile = (seccomp.default_profile() if protection.seccomp_profile == "default"
               else load_profile(protection.seccomp_profile))
    return seccomp.oci_form(profile, protection.capabilities)


# --- hooks: runc calls minidocker back ---------------------------------------------------

def network_hook(plan) -> dict:
    """``hooks.createRuntime``: once runc has made the namespaces (and before pivot_root),
    it runs this with the container's state on stdin; minidocker then plugs the veth in, as
    dockerd's ``libnetwork-setkey`` prestart hook does."""
    keep = ("PYTHONPATH", "MINIDOCKER_CGROUP_PARENT", "MINIDOCKER_BRIDGE_SUBNET",
            "MINIDOCKER_ICC", "PATH")
    env = [f"{name}={os.environ[name]}" for name in keep if name in os.environ]
    return {"path": sys.executable,
            "args": [sys.executable, "-m", "minidocker.container.hooks", "network"],
            "env": [f"MINIDOCKER_ROOT={state_root()}", *env], "timeout": 60}

