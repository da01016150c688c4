"""Stage 6 — the watcher: what a detached container's monitor becomes once the container runs.

Starting a container needs the whole engine (overlay, cgroups, namespaces, security, the
network); watching it needs very little: wait in select(2), copy output to the log and to
attached clients, take input, notice PID 1's exit. A Python process keeps every module it has
imported, about 13 MiB for the engine, against conmon's 0.4 MiB, for each running container.

So the detached monitor, once its container runs, calls execve(2) on this small program
(``exec_watcher``). An exec replaces the program, not the process: the PID stays (PID 1 is
still our child, and the record's ``MonitorPid`` and start time still name us), and so do the
fds that are not close-on-exec — the output pipes, the attach socket and its clients, the
monitor's lock — which the monitor made inheritable and lists, as numbers, in the argument.
The new interpreter starts isolated and without ``site`` (``python -I -S``), so it imports the
standard library's small modules and relay.py (the same relay the monitor uses) and nothing
more.

When PID 1 exits, the watcher imports the engine again (monitor.py's ``resume``): the
exit code goes into the record, the container's cgroup and network are given back, and its
restart policy may start it again — after which it hands off to a new watcher. ``rm -f``
does not wait for that: it ends a watcher itself (lifecycle.py's ``end_watcher``).

Man pages: execve(2) (what survives it), fcntl(2) (FD_CLOEXEC), waitid(2) (WNOWAIT).
"""

import json
import os
import sys

from minidocker.container.relay import Loop, Relay

# the package's parent directory: found first, however minidocker was installed
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOOT = ("import json, sys; sys.path[:] = json.loads(sys.argv.pop(1)); "
        "from minidocker.container.watch import main; main(sys.argv[1:])")


def exec_watcher(state: dict) -> None:
    """execve(2) this program, with the relay's and the container's ``state``; returns only
    if the exec failed (OSError). Without ``site`` the new interpreter does not know where
    the packages are (the engine needs them again at the end): it gets our ``sys.path``."""
    flags = ["-I", "-S", *(["-B"] if sys.flags.dont_write_bytecode else [])]
    path = [PACKAGE_ROOT, *(entry for entry in sys.path if entry)]  # no '' (the cwd, now /)
    os.execv(sys.executable, [sys.executable, *flags, "-c", BOOT, json.dumps(path),
                              json.dumps(state)])


class Watch:
    """The container while it runs: its relay, and PID 1 watched for its exit."""

    def __init__(self, relay: Relay, pid: int):
        self.relay, self.pid = relay, pid
        self.state = "running"

    def fds(self) -> list:
        return self.relay.fds()

    def timeout(self) -> float:
        return 1.0

    def step(self, ready: list) -> None:
        self.relay.relay(ready)
        # WNOWAIT: see that PID 1 has exited, but leave it to the monitor to reap
        if os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
            self.state = "exited"


def main(argv: list[str]) -> None:
    """Relay the container's stdio until PID 1 exits; then the engine takes it back."""
    state = json.loads(argv[0])
    relay = Relay.from_state(state)
    loop = Loop()
    watch = Watch(relay, state["pid"])
    loop.add(watch)
    loop.run_until(lambda: watch.state != "running")
    loop.monitors.clear()
    from minidocker.container.monitor import resume  # the engine, only now

    resume(loop, state, relay)
