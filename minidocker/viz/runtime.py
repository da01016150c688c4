"""The OCI runtime spec, read beside minidocker's stages: ``config.json`` annotated field by
field with the stage that made it, and the process trees of the runtimes side by side.

``spec_table(config)`` walks a ``config.json`` (container/bundle.py writes it) and names, for each
field, the stage of minidocker that makes the same thing in its own start (start.py) and the
module to read. ``CHAINS`` says who starts whom under Docker, podman and minidocker's two
runtimes; the notebook shows podman's and minidocker's from the live processes
(lifecycle.py's ``process_tree``), and ``podman_script`` is the shell story that starts podman
with a store of its own in a private mount namespace.

Spec: opencontainers/runtime-spec ``config.md``, ``config-linux.md``. Man pages: proc(5).
Used by: notebook 06b-oci-runtime.
"""

import re
from pathlib import Path

from minidocker.viz.engines import Podman
from minidocker.viz.table import Table

# (field of config.json, stage, what minidocker's own start does for it, where to read)
SPEC_STAGES = [
    ("ociVersion", "-", "the spec version runc 1.1.5 implements", "container/bundle.py"),
    ("root.path", "4", "the overlay of the image's layers + the upper dir", "unionfs.py"),
    ("root.readonly", "2", "--read-only: / remounted read-only", "rootfs.py"),
    ("process.args", "6", "Entrypoint + Cmd, tini first with --init", "container/create.py"),
    ("process.env", "6", "PATH, HOSTNAME, HOME, the image's Env and -e", "container/start.py"),
    ("process.cwd", "6", "WORKDIR or -w, made if missing", "container/start.py"),
    ("process.terminal", "6", "-t: a pty from the container's own devpts", "namespaces/pid1.py"),
    ("process.user", "9", "-u, looked up in the image's /etc/passwd", "security/users.py"),
    ("process.capabilities", "9", "Docker's 14, --cap-add/--cap-drop", "security/capabilities.py"),
    ("process.noNewPrivileges", "9", "--security-opt no-new-privileges", "security/__init__.py"),
    ("process.rlimits", "6", "--ulimit: setrlimit(2) before exec", "container/tunables.py"),
    ("process.oomScoreAdj", "6", "--oom-score-adj: /proc/<pid>/oom_score_adj",
     "container/tunables.py"),
    ("hostname", "1", "sethostname(2) in the UTS namespace", "container/start.py"),
    ("mounts", "2 7 8", "/proc /sys /dev; volumes; /etc/hosts resolv.conf hostname",
     "rootfs.py volumes.py network/"),
    ("linux.namespaces", "1", "unshare(2), or setns(2) into container:X", "namespaces/shim.py"),
    ("linux.cgroupsPath", "3", "minidocker/<id> (or --cgroup-parent)", "cgroups/"),
    ("linux.resources", "3 9", "-m --cpus --pids-limit ...; the devices allowed",
     "cgroups/ security/devices.py"),
    ("linux.devices", "9", "--device: mknod(2) in the container's /dev", "security/devices.py"),
    ("linux.maskedPaths", "2", "a /dev/null or empty tmpfs over each", "rootfs.py"),
    ("linux.readonlyPaths", "2", "bind-mounted read-only over itself", "rootfs.py"),
    ("linux.sysctl", "6", "--sysctl, written before /proc/sys is read-only",
     "container/tunables.py"),
    ("linux.uidMappings", "9", "--userns private: /proc/<pid>/uid_map", "security/userns.py"),
    ("linux.seccomp", "9", "the profile, compiled to BPF by minidocker, by libseccomp in runc",
     "security/seccomp.py"),
    ("hooks.createRuntime", "8", "the veth, address and NAT, plugged in by the parent",
     "container/hooks.py network/"),
]

# Who starts whom, and whose child each process is once the container runs (a detached run):
# Docker's and podman's as their projects document them, minidocker's as its code does it.
CHAINS = {
    "docker": [("dockerd", "systemd", "init"),
               ("containerd", "systemd (or dockerd)", "init"),
               ("containerd-shim-runc-v2", "containerd, then it double-forks", "init"),
               ("runc create", "the shim", "(exits once PID 1 waits)"),
               ("PID 1", "runc (runc init)", "the shim: a child subreaper")],
    "podman": [("podman run -d", "you", "(exits)"),
               ("conmon", "podman, then it double-forks", "init"),
               ("runc create", "conmon", "(exits once PID 1 waits)"),
               ("PID 1", "runc (runc init)", "conmon: a child subreaper")],
    "minidocker": [("minidocker run -d", "you", "(exits)"),
                   ("monitor", "the CLI, then it double-forks", "init"),
                   ("shim", "the monitor (fork)", "(exits once PID 1 is born)"),
                   ("PID 1", "the shim (fork)", "the monitor: a child subreaper")],
    "minidocker --runtime runc": [("minidocker run -d", "you", "(exits)"),
                                  ("monitor", "the CLI, then it double-forks", "init"),
                                  ("runc create", "the monitor (fork, unshare, exec)",
                                   "(exits once PID 1 waits)"),
                                  ("PID 1", "runc (runc init)", "the monitor: a child subreaper")],
}


def lookup(config: dict, path: str):
    """``config["linux"]["resources"]`` for ``"linux.resources"``; None when absent."""
    value = config
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def summary(value, width: int = 48) -> str:
    """A field's value in one short cell: a list by its length and first items, a dict by
    its keys, a scalar as JSON would show it."""
    if value is None:
        return "(absent)"
    if isinstance(value, list):
        items = [summary(v, 24) if isinstance(v, dict | list) else str(v) for v in value[:3]]
        text = f"[{len(value)}] " + ", ".join(items) + (", …" if len(value) > 3 else "")
    elif isinstance(value, dict):
        text = "{" + ", ".join(value) + "}"
    elif isinstance(value, bool):
        text = str(value).lower()
    else:
        text = str(value)
    text = re.sub(r"\b([0-9a-f]{12})[0-9a-f]{52}\b", r"\1", text)  # IDs, short as ps shows
    return text if len(text) <= width else text[:width - 1] + "…"


def spec_table(config: dict) -> Table:
    """Each field of ``config.json`` that a minidocker stage makes: its value, the stage and
    what that stage does in minidocker's own start."""
    rows = [(path, summary(lookup(config, path)), stage, what, where)
            for path, stage, what, where in SPEC_STAGES]
    return Table(("field", "value", "stage", "minidocker's own start", "read"), rows)


def mounts_table(config: dict) -> Table:
    """``mounts``: destination, type and options (a bind's source by its last two parts)."""
    rows = []
    for m in config.get("mounts", []):
        source = m.get("source", "")
        if m.get("type") == "bind":
            source = "…/" + "/".join(source.rstrip("/").split("/")[-2:])
        rows.append((m["destination"], m.get("type", ""), source, ",".join(m.get("options", []))))
    return Table(("destination", "type", "source", "options"), rows)


def seccomp_table(config: dict) -> Table:
    """``linux.seccomp``: the default action, then each rule's calls and action."""
    profile = lookup(config, "linux.seccomp") or {}
    rows = [("(every other call)", profile.get("defaultAction", "-"), "")]
    for rule in profile.get("syscalls", []):
        action = rule["action"] + (f"({rule['errnoRet']})" if "errnoRet" in rule else "")
        args = " and ".join(f"arg{a['index']} {a['op'].removeprefix('SCMP_CMP_')} "
                            f"{a['value']:#x}" for a in rule.get("args", []))
        rows.append((" ".join(rule["names"]), action, args))
    return Table(("system calls", "action", "only when"), rows)


def chain_table(runtime: str) -> Table:
    """Who starts whom under ``runtime`` (a key of ``CHAINS``)."""
    return Table(("process", "started by", "its parent while the container runs"),
                 CHAINS[runtime], title=runtime)


def podman_script(podman_home: str, image_tar: str, cgroup_parent: str) -> str:
    """The shell story that runs ``podman run -d`` without touching the host: a private mount
    namespace (``unshare -m``) whose /run and /var/lib are fresh tmpfs (podman and runc keep
    state there whatever ``--root`` says), podman's store in ``podman_home``, runc as the
    runtime, and ``Podman.RUN_FLAGS``: no network, the log in a file. It prints conmon's PID; the namespace lives on with conmon, so the
    container is removed later through it (``nsenter -t PID -m``)."""
    podman = podman_command(podman_home)
    return (f"mount --make-rprivate / && mount -t tmpfs tmpfs /run && "
            f"mount -t tmpfs tmpfs /var/lib && "
            f"{podman} import {image_tar} localhost/busybox >/dev/null && "
            f"{podman} run -d --name box {' '.join(Podman.RUN_FLAGS)} "
            f"--cgroup-parent /{cgroup_parent} localhost/busybox sleep 3600 "
            f">/dev/null && {podman} inspect --format '{{{{.State.ConmonPid}}}}' box")


def podman_command(podman_home: str) -> str:
    """podman with its store under ``podman_home``; its run root in the private namespace's
    fresh /run (podman refuses a run root longer than 50 characters)."""
    return (f"podman --root {podman_home}/root --runroot /run/podman "
            f"--tmpdir {podman_home}/tmp --runtime runc --cgroup-manager cgroupfs "
            "--events-backend file")


def remove_cgroups(parent: str) -> None:
    """Remove the cgroup parent given to podman, and the cgroups below it, in every
    hierarchy (rmdir(2) removes only empty cgroups: a live process keeps its own)."""
    root = Path("/sys/fs/cgroup")
    for top in (hierarchy / parent for hierarchy in (root, *root.iterdir())):
        if top.is_dir():
            below = [p for p in top.rglob("*") if p.is_dir()]
            for directory in sorted(below, key=lambda p: len(p.parts), reverse=True):
                directory.rmdir()
            top.rmdir()
