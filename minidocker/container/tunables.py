"""Stage 6 — what a container may tune for itself: rlimits, its OOM score, namespaced sysctls.

Three knobs the kernel keeps per process or per namespace, set while the container is made:

* ``--ulimit nofile=1024:2048``: resource limits (setrlimit(2)), a soft one the process may
  raise up to the hard one. Set by PID 1 before exec; its children inherit them.
* ``--oom-score-adj 500``: how gladly the OOM killer picks this process (-1000 never, 1000
  first), written by the parent to ``/proc/<pid>/oom_score_adj``; children inherit it.
* ``--sysctl net.ipv4.ip_forward=1``: a kernel tunable under ``/proc/sys``. Most of them are
  global — writing one would change the *host* — so only those the kernel keeps per
  namespace are allowed, as Docker allows them: ``net.*`` in a network namespace of its own,
  the System V IPC and POSIX message queue limits in an IPC namespace of its own. They are
  written before ``/proc/sys`` is made read-only (rootfs.py).

Man pages: setrlimit(2), proc(5) (oom_score_adj), sysctl(8), namespaces(7), ipc_namespaces(7),
network_namespaces(7). Docker: ``docker run --ulimit``, "Configure namespaced kernel
parameters (sysctls) at runtime". Used by: notebook 06-lifecycle.
"""

import re
import resource

from minidocker import explain
from minidocker.errors import MinidockerError

# Docker's --ulimit names -> getrlimit(2)'s resources (RLIMIT_CPU ... in asm-generic/resource.h;
# Python's resource module lacks a few of them, the numbers are the same on every Linux CPU)
RLIMITS = {"cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6,
           "nofile": 7, "memlock": 8, "as": 9, "locks": 10, "sigpending": 11,
           "msgqueue": 12, "nice": 13, "rtprio": 14, "rttime": 15}

# sysctls the kernel keeps per IPC namespace (ipc_namespaces(7)); net.* is per network one
IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
               "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
SYSCTL_NAME = re.compile(r"[a-z0-9_]+(\.[A-Za-z0-9_-]+)+")


# --- ulimits ------------------------------------------------------------------------------

def parse_ulimit(spec: str) -> dict:
    """``nofile=1024:2048`` (soft:hard) or ``nofile=1024`` (both) as Docker's HostConfig
    Ulimits entry ``{"Name": "nofile", "Soft": 1024, "Hard": 2048}``; -1 is unlimited."""
    name, sep, values = spec.partition("=")
    if name not in RLIMITS:
        raise MinidockerError(f"invalid --ulimit '{spec}': unknown ulimit type '{name}' "
                              f"(use one of {', '.join(sorted(RLIMITS))})")
    soft, _, hard = values.partition(":")
    try:
        soft_value = int(soft)
        hard_value = int(hard) if hard else soft_value
    except ValueError:
        raise MinidockerError(f"invalid --ulimit '{spec}': use NAME=SOFT[:HARD] with whole "
                              "numbers, e.g. nofile=1024:2048") from None
    if not sep or min(soft_value, hard_value) < -1:
        raise MinidockerError(f"invalid --ulimit '{spec}': use NAME=SOFT[:HARD], numbers "
                              "from 0 up, or -1 for unlimited (nofile=1024:2048)")
    if hard_value != -1 and (soft_value == -1 or soft_value > hard_value):
        raise MinidockerError(f"invalid --ulimit '{spec}': ulimit soft limit must be less "
                              f"than or equal to hard limit: {soft} > {hard}")
    return {"Name": name, "Soft": soft_value, "Hard": hard_value}


def set_rlimits(ulimits: list[dict]) -> None:
    """setrlimit(2) for each ``--ulimit``, in PID 1 before it drops its capabilities (raising
    a hard limit needs CAP_SYS_RESOURCE); execve(2) keeps them."""
    for limit in ulimits:
        soft, hard = (resource.RLIM_INFINITY if v == -1 else v
                      for v in (limit["Soft"], limit["Hard"]))
        explain.step("setrlimit", f"RLIMIT_{limit['Name'].upper()}, {{{soft}, {hard}}}")
        try:
            resource.setrlimit(RLIMITS[limit["Name"]], (soft, hard))
        except (OSError, ValueError) as exc:
            raise MinidockerError(f"cannot set --ulimit {limit['Name']}={limit['Soft']}:"
                                  f"{limit['Hard']}: {exc}") from exc


# --- the OOM score ------------------------------------------------------------------------

def check_oom_score_adj(value: int) -> int:
    if not -1000 <= value <= 1000:
        raise MinidockerError(f"Invalid value {value}, range for oom score adj is "
                              "[-1000, 1000] (--oom-score-adj)")
    return value


def set_oom_score_adj(pid: int, value: int) -> None:
    """proc(5): the OOM killer adds ``value`` (per mille of memory) to the process's badness;
    its children inherit it. 0 is what every process starts with."""
    if value:
        explain.step("oom_score_adj", f"/proc/{pid}/oom_score_adj, {value!r}")
        try:
            with open(f"/proc/{pid}/oom_score_adj", "w") as f:
                f.write(str(value))
        except PermissionError as exc:  # below the process's minimum: CAP_SYS_RESOURCE
            raise MinidockerError(f"cannot set --oom-score-adj {value}: lowering the score "
                                  "needs CAP_SYS_RESOURCE, which this process lacks (run "
                                  "as real root, or give a value of 0 or more)") from exc


# --- sysctls ------------------------------------------------------------------------------

def parse_sysctl(spec: str) -> tuple[str, str]:
    """``net.ipv4.ip_forward=1`` as ``(name, value)``."""
    name, sep, value = spec.partition("=")
    if not sep or not SYSCTL_NAME.fullmatch(name):
        raise MinidockerError(f"invalid --sysctl '{spec}': use NAME=VALUE with a dotted "
                              "name, e.g. net.ipv4.ip_forward=1")
    return name, value


def namespace_of(name: str) -> str:
    """The namespace the kernel keeps ``name`` in ("net", "ipc"), or "" for a global one."""
    if name.startswith("net."):
        return "net"
    if name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
        return "ipc"
    return ""


def check_sysctls(sysctls: dict, private: set[str]) -> None:
    """Refuse a sysctl that would change the host: a global one, or one whose namespace the
    container shares (``private``: the kinds of namespace it has of its own)."""
    for name in sysctls:
        kind = namespace_of(name)
        if not kind:
            raise MinidockerError(f"sysctl '{name}' is not allowed: it is not namespaced, "
                                  "so it would change the host (only net.*, kernel.shm*, "
                                  "kernel.msg*, kernel.sem and fs.mqueue.* are)")
        if kind not in private:
            flag = {"net": "--network", "ipc": "--ipc"}[kind]
            raise MinidockerError(f"sysctl '{name}' is not allowed with a shared {kind} "
                                  f"namespace ({flag} host or container:): it would change "
                                  "the other's; give the container its own")


def write_sysctls(sysctls: dict) -> None:
    """Write each one under /proc/sys, in the container's own namespaces (the kernel picks
    the namespace of the writing process), before /proc/sys is made read-only."""
    for name, value in sysctls.items():
        explain.step("sysctl", f"/proc/sys/{name.replace('.', '/')}, {value!r}")
        try:
            with open(f"/proc/sys/{name.replace('.', '/')}", "w") as f:
                f.write(value)
        except OSError as exc:
            raise MinidockerError(f"cannot set sysctl {name}={value}: {exc.strerror}") from exc
