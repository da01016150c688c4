"""The engine's own trace: every kernel step of a container's start, told as it happens.

``minidocker run --explain`` prints, in the order the kernel sees them, the calls that make a
container: ``unshare(CLONE_NEWPID)`` in the shim, the cgroup directory and the limits written,
``mount("overlay", …)``, ``pivot_root``, the veth and the iptables rules, ``capset``,
``prctl(PR_SET_SECCOMP)``, and ``execve`` last. It is not a separate script that could drift
from what runs: the stages call ``step()`` where they do the work (each syscall wrapper of
stage 0 for its own call), and nothing is printed unless a listener asked for it.

The listener is a file descriptor (the CLI's stderr, duplicated, close-on-exec). A forked
child — the shim, the container's PID 1 until its execve — inherits it, so its steps reach the
same terminal, in order. Each line names the stage that made the call (found from the calling
module) and the man page to read.

Man pages: strace(1) (the same idea, from outside), syscalls(2).
Used by: ``minidocker run --explain``, notebooks 00 and 06.
"""

import os
import re
import sys
import time

ID = re.compile(r"\b[0-9a-f]{64}\b")  # a container's ID, shown short as ps shows it

# The stage of each module, for the tag of a line: (number, name, colour).
STAGES = [
    ("minidocker.namespaces", 1, "namespaces", 36),
    ("minidocker.rootfs", 2, "root filesystem", 32),
    ("minidocker.cgroups", 3, "cgroups", 33),
    ("minidocker.unionfs", 4, "overlay", 35),
    ("minidocker.image", 5, "image", 34),
    ("minidocker.container", 6, "container", 37),
    ("minidocker.volumes", 7, "volumes", 32),
    ("minidocker.network", 8, "network", 34),
    ("minidocker.security", 9, "security", 31),
]
MAN_PAGES = {"unshare": "unshare(2)", "runc": "runc(8)", "setns": "setns(2)", "mount": "mount(2)",
             "umount2": "umount2(2)", "pivot_root": "pivot_root(2)",
             "sethostname": "sethostname(2)", "prctl": "prctl(2)", "capset": "capset(2)",
             "open_tree": "open_tree(2)", "move_mount": "move_mount(2)",
             "mount_setattr": "mount_setattr(2)", "execve": "execve(2)", "mkdir": "cgroups(7)",
             "write": "cgroups(7)", "ip link": "ip-link(8)", "ip addr": "ip-address(8)",
             "ip route": "ip-route(8)", "iptables": "iptables(8)", "clone": "clone(2)",
             "chdir": "chdir(2)", "mknod": "mknod(2)", "setdomainname": "setdomainname(2)",
             "setrlimit": "setrlimit(2)", "sysctl": "sysctl(8)", "oom_score_adj": "proc(5)"}

_listener: dict = {}  # fd, start time, with times, with colour: empty = nobody listens


def listen(fd: int, timing: bool = False) -> None:
    """Print every step from now on to ``fd`` (``timing``: with milliseconds since now)."""
    own = os.dup(fd)
    os.set_inheritable(own, False)  # close-on-exec: it never reaches the container's command
    _listener.update(fd=own, started=time.monotonic(), timing=timing, colour=os.isatty(fd))


def listening() -> bool:
    return bool(_listener)


def listener_fd() -> int | None:
    """The listener's descriptor, which a forked child keeps until its execve."""
    return _listener.get("fd")


def step(call: str, arguments: str = "", result: str = "") -> None:
    """One kernel step: ``call(arguments) = result``, tagged with the calling stage."""
    if not _listener:
        return
    number, name, colour = _calling_stage()
    line = ID.sub(lambda m: m[0][:12] + "…", f"{call}({arguments})"
                  + (f" = {result}" if result else ""))
    tag = f"[{number} {name}]" if number else "[  ]"
    when = f"{(time.monotonic() - _listener['started']) * 1000:7.1f} ms  " \
        if _listener["timing"] else ""
    man = MAN_PAGES.get(call, "")
    if _listener["colour"]:
        tag, man = f"\033[{colour}m{tag}\033[0m", f"\033[2m{man}\033[0m"
    try:
        os.write(_listener["fd"], f"{when}{tag:<20} {line}  {man}\n".encode())
    except OSError:
        _listener.clear()  # the listener went away (the CLI's stderr closed): stop telling


def _calling_stage() -> tuple[int, str, int]:
    """The stage whose module made the call: the first frame outside stage 0 and this one."""
    frame = sys._getframe(2)
    while frame:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(("minidocker.kernel", "minidocker.explain")):
            for prefix, number, name, colour in STAGES:
                if module.startswith(prefix):
                    return number, name, colour
        frame = frame.f_back
    return 0, "", 0
