"""Stage 6 — runc as the runtime (``--runtime runc``): the same start, another spawn step.

``start.py`` plans a start, then *spawns* PID 1. minidocker's own spawn forks the shim
(``namespaces.spawn``); with ``--runtime runc`` that one step is handed to runc, the OCI
runtime under Docker (dockerd -> containerd -> shim -> runc) and podman (podman -> conmon ->
runc). Everything else — the record, the monitor, logs, attach, teardown — stays the same:

1. a child of ours unshares a mount namespace, mounts the overlay (stage 4) there and writes
   ``config.json`` (bundle.py) into ``<container>/bundle``, then execs ``runc create``: the
   root is mounted where runc looks for it, and on no host mount table;
2. ``runc create`` makes the namespaces and the cgroup (from ``linux.resources``), calls the
   ``createRuntime`` hook (``hooks.py``: minidocker plugs the network in), mounts,
   pivot_roots, and leaves PID 1 (``runc init``) waiting; its stdio is ours to give
   (runc's "pass-through" mode), or a pty whose master runc sends to ``--console-socket``;
3. we are a *child subreaper* (prctl PR_SET_CHILD_SUBREAPER) while it runs: when ``runc
   create`` exits, the orphaned PID 1 becomes our child, so waitpid(2) gives its exit status as it does for
   minidocker's shim (containerd's shim does the same);
4. ``runc start`` lets PID 1 exec the command;
5. ``runc kill`` signals it, ``runc exec`` runs a process beside it, ``runc state`` tells
   what runc knows, ``runc delete`` forgets it (``teardown.release``).

runc keeps its own state under ``--root <state root>/runc``, never the host's /run/runc.
Man pages: runc(8), runc-create(8), runc-start(8), runc-exec(8), runc-kill(8), runc-delete(8),
prctl(2) (PR_SET_CHILD_SUBREAPER). Used by: notebook 06b-oci-runtime, bench/runtime.py.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from minidocker import cgroups, explain, kernel, namespaces, rootfs, unionfs
from minidocker.container import bundle, records
from minidocker.container.sharing import mount_from_namespace
from minidocker.errors import MinidockerError
from minidocker.security.users import resolve_user
from minidocker.state import state_root, write_json

RUNC = "runc"


def runc_root() -> Path:
    return state_root() / "runc"


def runc(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """``runc --root <state root>/runc ARGS`` (told to ``run --explain`` as one step)."""
    explain.step("runc", " ".join(args[:1] + args[-1:]))
    return subprocess.run([RUNC, "--root", str(runc_root()), *args], **kwargs)


def spawn(plan, stdio: namespaces.Stdio) -> namespaces.Process:
    """Steps 1-4: PID 1 of ``plan`` (``start.StartPlan``) running under runc."""
    if shutil.which(RUNC) is None:
        raise MinidockerError("--runtime runc needs runc: it is not installed (apt-get "
                              "install runc), or use --runtime minidocker")
    if plan.idmap:
        raise MinidockerError("--userns private does not work with --runtime runc yet: runc's "
                              "init, root of the user namespace, cannot reach the overlay in "
                              "the state root (0700); use --runtime minidocker")
    record, directory = plan.record, plan.record.directory / "bundle"
    delete(record.Id)  # what a killed run may have left in runc's state
    directory.mkdir(exist_ok=True)
    for name in plan.network.FILES if not plan.network.mode.is_none else ():
        (record.directory / name).touch()  # bind sources; the hook writes them in place
    with namespaces.child_subreaper(), console_socket(stdio.console) as (console, listener):
        create = namespaces.fork_child(f"create container {record.Name} with runc",
                                       _mount_root_and_create, plan, directory, stdio, console)
        with create.reports:
            create.wait_exec()
        _, status = os.waitpid(create.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise start_error(runc_error(directory))
        if listener:
            pass_console(listener, stdio.console)
    pid = int((directory / "pid").read_text())
    started = runc("start", record.Id, capture_output=True, text=True)
    if started.returncode != 0:
        raise MinidockerError(f"runc start: {started.stderr.strip()}")
    return namespaces.Process(pid, pid)


def _mount_root_and_create(report: namespaces.Report, plan, directory: Path,
                           stdio: namespaces.Stdio, console: str | None) -> None:
    """The child of step 1: the root in a mount namespace of its own, config.json, exec."""
    report.step("unshare a mount namespace")
    kernel.unshare(kernel.CLONE_NEWNS)
    rootfs.make_mounts_private()  # mount_namespaces(7): the overlay never reaches the host
    report.step("mount the overlay")
    unionfs.mount_overlay(plan.dirs, nodev=not plan.protection.privileged)
    if "ipc" in plan.join:  # --ipc container:X: X's /dev/shm, cloned from its namespace
        report.step("share the other container's /dev/shm")
        os.makedirs(directory / "shm", exist_ok=True)
        mount_from_namespace(plan.join["ipc"], "/dev/shm", str(directory / "shm"))
    report.step("write config.json")
    user = resolve_user(plan.config.User, plan.host.GroupAdd, root=plan.dirs.merged)
    write_json(directory / "config.json", bundle.runtime_spec(plan, user, plan.dirs.merged))
    null = os.open(os.devnull, os.O_RDWR)
    for target, fd in enumerate((stdio.stdin, stdio.stdout, stdio.stderr) if not console
                                else (null, null, null)):
        os.dup2(fd, target)  # runc passes its stdio on to PID 1
    namespaces.close_other_fds({report.fd})
    namespaces.reset_signal_dispositions()
    report.step("exec runc create")
    explain.step("execve", f"'runc', 'create', '--bundle', {str(directory)!r}")
    argv = [RUNC, "--root", str(runc_root()), "--log", str(directory / "runc.log"),
            "--log-format", "json", "create", "--bundle", str(directory),
            "--pid-file", str(directory / "pid"),
            *(["--console-socket", console] if console else []), plan.record.Id]
    os.execvp(RUNC, argv)


@contextlib.contextmanager
def console_socket(wanted):
    """With ``-t``: a unix socket runc sends the pty's master to (``--console-socket``), in
    a short directory of its own (a socket's path may be at most 107 bytes)."""
    if wanted is None:
        yield None, None
        return
    folder = tempfile.mkdtemp(prefix="md-console-")
    path = os.path.join(folder, "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
        listener.listen(1)
        yield path, listener
    finally:
        listener.close()
        shutil.rmtree(folder, ignore_errors=True)


def pass_console(listener: socket.socket, to: socket.socket) -> None:
    """The pty master runc sent (SCM_RIGHTS), on to the monitor, as minidocker's own shim
    sends it (``namespaces.open_console``)."""
    listener.settimeout(10)
    connection, _ = listener.accept()
    with connection:
        _message, fds, _flags, _address = socket.recv_fds(connection, 4096, 1)
    socket.send_fds(to, [b"pty"], fds)
    os.close(fds[0])


def start_error(error: str) -> MinidockerError:
    """runc's error as minidocker's own start says it, with Docker's exit code: 127 for a
    command that is not there, 126 for one that cannot run (dockerd reads runc's words too)."""
    reason = error[error.find("exec: "):] if "exec: " in error else error
    if "exec: " in error and ("not found" in error or "no such file" in error):
        return MinidockerError(reason, 127)
    if "exec: " in error and "permission denied" in error:
        return MinidockerError(reason, 126)
    return MinidockerError(f"runc: {error}")


def runc_error(directory: Path) -> str:
    """The last error runc logged (``--log-format json``)."""
    with contextlib.suppress(OSError):
        for line in reversed((directory / "runc.log").read_text().splitlines()):
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("level") in ("error", "fatal"):
                    return entry.get("msg", line)
    return "see its log"


def export_bundle(plan, directory: Path) -> None:
    """``minidocker export-bundle``: the container as a bundle anyone's runc can run —
    ``DIR/rootfs`` (its files, as ``export`` writes them) and ``DIR/config.json`` (standalone:
    ``root.path`` is ``rootfs``, nothing calls minidocker back)."""
    from minidocker.container.commit import export

    if directory.exists() and any(directory.iterdir()):
        raise MinidockerError(f"{directory} is not empty: give a new or empty directory")
    root = directory / "rootfs"
    root.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(["tar", "-x", "-C", str(root), "-f", "-"],
                          stdin=subprocess.PIPE) as untar:
        export(plan.record.Id, untar.stdin)
        untar.stdin.close()
    if untar.returncode != 0:
        raise MinidockerError(f"cannot unpack the container's files into {root}")
    user = resolve_user(plan.config.User, plan.host.GroupAdd, root=str(root))
    write_json(directory / "config.json",
               bundle.runtime_spec(plan, user, "rootfs", standalone=True))


# --- the rest of a container's life --------------------------------------------------------

def kill(container_id: str, signum: int) -> None:
    """``runc kill ID SIG``: a signal to PID 1 (quietly nothing when it has gone)."""
    runc("kill", container_id, str(signum), capture_output=True)


def state(container_id: str) -> dict | None:
    """``runc state ID``: the spec's state (``ociVersion``, ``id``, ``status``, ``pid``,
    ``bundle``), or None when runc does not know the container."""
    result = runc("state", container_id, capture_output=True, text=True)
    return json.loads(result.stdout) if result.returncode == 0 else None


def delete(container_id: str, cgroup: cgroups.Cgroup | None = None) -> None:
    """``runc delete --force ID``: kill what is left, remove runc's cgroup and state. Done
    only when runc knows the container (its state directory), so it is cheap otherwise.
    runc made the cgroup's parent in every hierarchy (name=systemd too) and leaves it: the
    shared parent goes with its last container, as ``Cgroup.destroy`` does for its own."""
    if (runc_root() / container_id).exists():
        runc("delete", "--force", container_id, capture_output=True)
    if cgroup is not None and cgroup.owns_parent:
        root = cgroups.CGROUP_ROOT
        hierarchies = [root] if cgroups.layout() == "v2" else [
            d for d in root.iterdir() if d.is_dir()]
        for hierarchy in hierarchies:
            with contextlib.suppress(OSError):  # not empty: another container still uses it
                (hierarchy / Path(cgroup.name).parent).rmdir()


def exec_in(record: records.ContainerRecord, spec, env: dict[str, str]) -> int:
    """``runc exec``: ``spec.command`` beside PID 1, with our stdio (runc makes the pty with
    ``-t`` and relays it itself); its exit code."""
    user = resolve_user(spec.user if spec.user is not None else record.Config.User,
                        record.HostConfig.GroupAdd, root=f"/proc/{record.State['Pid']}/root")
    if not any(item.startswith("HOME=") for item in [*record.Config.Env, *spec.env]):
        env = {**env, "HOME": user.home}
    argv = ["exec", "--user", f"{user.uid}:{user.gid}",
            "--cwd", spec.workdir or record.Config.WorkingDir or "/",
            *[f"--additional-gids={g}" for g in user.groups],
            *[f"--env={k}={v}" for k, v in env.items()],
            *(["--tty"] if spec.tty else []), record.Id, *spec.command]
    stdin = None if spec.interactive else subprocess.DEVNULL
    with namespaces_ignoring_signals():
        return runc(*argv, stdin=stdin).returncode


@contextlib.contextmanager
def namespaces_ignoring_signals():
    """runc exec forwards the signals it gets to the process; while it runs we ignore the
    terminal's, as a shell does for its foreground job."""
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGQUIT)}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
