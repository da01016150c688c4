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

With ``--runtime runc`` the same is asked of ``runc exec`` (runc.py), which does these steps.

Compare with ``attach``, which starts nothing: it connects you to PID 1's own stdio.

Man pages: setns(2), nsenter(1), cgroups(7), credentials(7).
"""

import os
import socket
from dataclasses import dataclass, field

from minidocker import namespaces, security
from minidocker.container import records, runc, tunables
from minidocker.container import tty as terminal
from minidocker.container.start import environment
from minidocker.errors import Conflict, MinidockerError
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
    """Run ``spec.command`` in the container with our stdio (or a new pty); its exit code.
    A step that fails before the command runs raises ``StepFailed`` naming it (``ExecFailed``,
    126/127, when the command itself cannot be executed)."""
    check_running(record, record.Name)
    check_workdir(spec.workdir)
    if record.HostConfig.Runtime == "runc":  # runc joins the namespaces for us
        env = environment(record.Config.Hostname, [*record.Config.Env, *spec.env],
                          tty=spec.tty)
        return runc.exec_in(record, spec, env)
    ours, theirs = socket.socketpair() if spec.tty else (None, None)
    record.event(f"exec_start: {' '.join(spec.command)}")
    child = namespaces.fork_child(f"exec in container {record.Name}", _join_and_exec,
                                  record, spec, theirs, failure_code=126)
    if theirs is not None:
        theirs.close()
    with child.reports:
        try:
            child.wait_exec()  # a step that failed raises here, naming the step
        except namespaces.StepFailed:
            check_running(record, record.Name)  # it failed as PID 1 ended: say that instead
            raise
    if ours is not None:
        master = namespaces.receive_console(ours)
        terminal.copy_window_size(0, master)
        terminal.relay(master, spec.interactive)
        os.close(master)
    code = namespaces.wait_forwarding_signals(child.pid)
    record.event("exec_die", exitCode=code)
    return code


def check_running(record: records.ContainerRecord, shown: str) -> None:
    """An exec joins a running container: not a paused one (its processes are frozen) nor a
    stopped one. ``shown``: the container as the caller names it (dockerd: its ID)."""
    if record.status == "paused":
        raise Conflict(f"Container {shown} is paused, unpause the container before exec")
    if record.status != "running" or not record.pid1_alive():  # or ending, not yet recorded
        raise Conflict(f"Container {shown} is not running: start it first "
                       f"('minidocker start {record.Name}')")


def check_workdir(workdir: str | None) -> None:
    """``-w`` must be absolute: relative to what, in another process's root?"""
    if workdir and not os.path.isabs(workdir):
        raise MinidockerError(f"the working directory '{workdir}' is invalid: it needs to be "
                              "an absolute path (-w /some/dir)")


def _join_and_exec(report: namespaces.Report, record: records.ContainerRecord, spec: ExecSpec,
                   console: socket.socket | None) -> None:
    """The forked child: into the cgroup and namespaces, fork, then become the command."""
    if not spec.interactive:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
    pid1 = record.State["Pid"]
    report.step("join the cgroup")
    record.cgroup().add_process(os.getpid())
    report.step("join the namespaces")
    kinds = [k for k in namespaces.NAMESPACES  # with the user namespace, if it has one
             if namespaces.namespaces_of(pid1)[k] != namespaces.namespaces_of()[k]]
    namespaces.join(pid1, kinds)
    report.step("fork into the PID namespace")
    namespaces.fork_into_pid_namespace(report)
    namespaces.reset_signal_dispositions()
    config = record.Config
    report.step("find the user")
    try:  # runc's "unable to find user": the command cannot be run, 126
        user = resolve_user(spec.user if spec.user is not None else config.User,
                            record.HostConfig.GroupAdd)
    except MinidockerError as exc:
        raise MinidockerError(str(exc), exit_code=126) from None
    env = environment(config.Hostname, [*config.Env, *spec.env], tty=spec.tty,
                      home=user.home)
    report.step("change to the working directory")
    enter_directory(spec.workdir or config.WorkingDir)
    report.step("set the rlimits")  # --ulimit holds for exec'd processes too, as in runc
    tunables.set_rlimits(record.HostConfig.Ulimits)
    tunables.set_oom_score_adj(os.getpid(), record.HostConfig.OomScoreAdj)
    if console:
        report.step("open the terminal")
        namespaces.open_console(console)
    # the container's capabilities, seccomp filter and user: exec gets no more than PID 1
    report.step("apply the security profile")
    security.apply(record.HostConfig.security_options(), switch_user=lambda: switch_user(user))
    namespaces.close_other_fds({report.fd})  # only stdio (and the close-on-exec report pipe)
    namespaces.execute(spec.command, env, report)


def start_in(record: records.ContainerRecord, spec: ExecSpec, output: int) -> int:
    """Start ``spec.command`` in the container without waiting for it: its stdout and stderr
    go to ``output``; returns the child's PID, which is also the PID of a process group of its
    own, so ``killpg`` reaches the command inside too. The healthcheck's way (health.py)."""
    child = namespaces.fork_child(f"run a command in container {record.Name}",
                                  _in_own_group, record, spec, output, failure_code=126)
    with child.reports:
        child.wait_exec()
    return child.pid


def _in_own_group(report: namespaces.Report, record: records.ContainerRecord, spec: ExecSpec,
                  output: int) -> None:
    os.setpgid(0, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    _join_and_exec(report, record, spec, None)


def enter_directory(workdir: str) -> None:
    """chdir(2) to ``-w`` (or the image's WorkingDir): unlike ``run``, exec creates nothing."""
    try:
        os.chdir(workdir)
    except OSError as exc:
        raise MinidockerError(f"{workdir}: {exc.strerror} (give -w a directory that exists in "
                              "the container)", exit_code=126) from None
