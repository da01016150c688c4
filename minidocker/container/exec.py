"""Stage 6 — ``exec``: a new process inside a running container, beside its PID 1.

What the kernel needs for "inside" is everything the container's PID 1 has:

1. its cgroup — we write our PID into ``cgroup.procs`` first, so the new process counts
   against the container's limits and dies with it (runc exec does the same);
2. its namespaces — setns(2) into each of ``/proc/<pid1>/ns/*`` (the mount namespace also
   gives us the container's root directory);
3. one more fork: joining a PID namespace only places our *children* in it;
4. its environment, working directory and user (``-e``, ``-w``, ``-u``), a terminal of its own
   from the container's devpts with ``-t``, and its capabilities and seccomp filter (stage 9:
   an exec'd process may do no more than PID 1); then execve(2).

Compare with ``attach``, which starts nothing: it connects you to PID 1's own stdio.

Man pages: setns(2), nsenter(1), cgroups(7), credentials(7).
"""

import os
import signal
import socket
from dataclasses import dataclass, field

from minidocker import cgroups, namespaces, security
from minidocker.container import records
from minidocker.container import tty as terminal
from minidocker.container.start import environment
from minidocker.errors import Conflict
from minidocker.security.users import resolve_user, switch_user


@dataclass
class ExecSpec:
    command: list[str]
    interactive: bool = False
    tty: bool = False
    env: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None


def exec_in(record: records.ContainerRecord, spec: ExecSpec) -> int:
    """Run ``spec.command`` in the container with our stdio (or a new pty); its exit code."""
    if record.status == "paused":
        raise Conflict(f"Container {record.Name} is paused, unpause the container before exec")
    if record.status != "running":
        raise Conflict(f"Container {record.Name} is not running: start it first "
                       f"('minidocker start {record.Name}')")
    ours, theirs = socket.socketpair() if spec.tty else (None, None)
    child = os.fork()
    if child == 0:
        _join_and_exec(record, spec, theirs)
    if ours is None:
        return _wait_forwarding_signals(child)
    theirs.close()
    try:
        master = namespaces.receive_console(ours)
    except (OSError, IndexError):  # the command could not start: its child said why
        return _wait_forwarding_signals(child)
    terminal.copy_window_size(0, master)
    terminal.relay(master, spec.interactive)
    os.close(master)
    return _wait_forwarding_signals(child)


def _join_and_exec(record: records.ContainerRecord, spec: ExecSpec,
                   console: socket.socket | None) -> None:
    """The forked child: into the cgroup and namespaces, fork, then become the command."""
    try:
        if not spec.interactive:
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
        pid1 = record.State["Pid"]
        cgroups.for_container(record.Id).add_process(os.getpid())
        kinds = [k for k in namespaces.NAMESPACES  # with the user namespace, if it has one
                 if namespaces.namespaces_of(pid1)[k] != namespaces.namespaces_of()[k]]
        namespaces.join(pid1, kinds)
        child = os.fork()  # now in the container's PID namespace
        if child:
            os._exit(_wait_forwarding_signals(child))
        namespaces.reset_signal_dispositions()
        config = record.Config
        user = resolve_user(spec.user if spec.user is not None else config.User,
                            record.HostConfig.GroupAdd)
        env = environment(config.Hostname, [*config.Env, *spec.env], tty=spec.tty,
                          home=user.home)
        os.chdir(spec.workdir or config.WorkingDir)
        if console:
            namespaces.open_console(console)
        # the container's capabilities, seccomp filter and user: exec gets no more than PID 1
        security.apply(record.HostConfig.security_options(), switch_user=lambda: switch_user(user))
        namespaces.close_other_fds(set())  # only stdio goes into the container
        namespaces.execute(spec.command, env)
    except BaseException as exc:
        os.write(2, f"minidocker: exec failed: {exc}\n".encode())
        os._exit(126)


def _wait_forwarding_signals(child: int) -> int:
    """Wait for ``child``; SIGTERM, SIGINT, SIGHUP meanwhile go on to it."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: os.kill(child, s))
    while True:
        try:
            code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
            return code if code >= 0 else 128 - code  # killed by signal N: 128+N
        except InterruptedError:
            continue
