"""The lifecycle commands (stage 6 and 7's flags): run, create, start, ps, logs, attach, exec,
top, wait, inspect, rename, stop, kill, restart, pause, unpause, rm, container/system prune."""

import sys

import click

from minidocker.cli import CONTEXT, EngineCommand, Group, main, require_root
from minidocker.cli.flags import (
    client_env,
    confirm_prune,
    container_request,
    echo_pruned,
    filter_option,
    later_stage_options,
    prune_filter_option,
)
from minidocker.cli.registry import ensure_image


def container_options(command):
    """The flags ``run`` and ``create`` share, as Docker's."""
    options = [
        click.option("--name", help="Assign a name to the container."),
        click.option("-h", "--hostname", help="Container host name (default: its short ID)."),
        click.option("--entrypoint", help="Overwrite the image's ENTRYPOINT (\"\" clears it)."),
        click.option("-e", "--env", multiple=True, metavar="KEY=VALUE",
                     help="Set an environment variable (repeatable)."),
        click.option("--env-file", multiple=True, metavar="FILE",
                     help="Read environment variables from a file (KEY=VALUE lines)."),
        click.option("-w", "--workdir", metavar="DIR", help="Working directory inside."),
        click.option("-u", "--user", metavar="USER[:GROUP]",
                     help="User name or UID, optionally with group (from the image's "
                          "/etc/passwd)."),
        click.option("--read-only", "readonly", is_flag=True,
                     help="Mount the container's root filesystem as read only."),
        click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open."),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY."),
        click.option("--rm", "remove", is_flag=True, help="Remove the container (and its "
                     "anonymous volumes) when it exits."),
        click.option("--init", is_flag=True, help="Run tini as PID 1: it forwards signals "
                     "and reaps orphans."),
        click.option("--restart", default="no", metavar="POLICY",
                     help="no, on-failure[:N], always or unless-stopped."),
        click.option("--stop-signal", metavar="SIGNAL", help="Signal 'stop' sends "
                     "(default: the image's StopSignal, or SIGTERM)."),
        click.option("--stop-timeout", type=int, metavar="SECONDS",
                     help="Seconds 'stop' waits before SIGKILL (default 10)."),
        click.option("--cidfile", type=click.Path(dir_okay=False),
                     help="Write the container ID to the file."),
        click.option("--log-opt", "log_opts", multiple=True, metavar="KEY=VALUE",
                     help="Log options: max-size=10m, max-file=3."),
        click.option("-v", "--volume", "volumes", multiple=True, metavar="SRC:DST[:ro]",
                     help="Bind mount a host path, or mount a named/anonymous volume."),
        click.option("--mount", "mounts", multiple=True, metavar="type=...,target=...",
                     help="Attach a bind, volume or tmpfs mount (CSV: quote a field "
                     "with commas whole, e.g. \"volume-opt=o=size=1m,uid=1000\")."),
        click.option("--tmpfs", multiple=True, metavar="PATH[:OPTIONS]",
                     help="Mount a tmpfs directory."),
        click.option("--volumes-from", multiple=True, metavar="CONTAINER[:ro|rw]",
                     help="Mount the volumes of another container."),
        click.option("--pod", metavar="POD", help="Run in a pod: join its infra container's "
                     "network, IPC and UTS namespaces and volumes ('minidocker pod')."),
        click.option("-m", "--memory", metavar="BYTES", help="Memory limit (e.g. 32m, 1g)."),
        click.option("--memory-swap", metavar="BYTES",
                     help="Memory plus swap limit; -1 = unlimited swap."),
        click.option("--cpus", metavar="N", help="Number of CPUs (e.g. 0.5)."),
        click.option("-c", "--cpu-shares", metavar="N",
                     help="CPU shares (relative weight, default 1024)."),
        click.option("--cpu-period", metavar="US", help="CFS period in microseconds."),
        click.option("--cpu-quota", metavar="US", help="CFS quota in microseconds per period."),
        click.option("--cpuset-cpus", metavar="LIST", help="CPUs it may run on (0-1, 0,2)."),
        click.option("--pids-limit", metavar="N", help="Maximum number of processes."),
        click.argument("image"),
        click.argument("command", nargs=-1, type=click.UNPROCESSED),
    ]
    for option in reversed(options):
        command = option(command)
    return later_stage_options(command)


def check_cidfile(path: str | None):
    """``--cidfile``: made (empty) before the container, as Docker does, so that a path that
    cannot be written fails before anything exists. Returns the open file, or None."""
    from minidocker.errors import MinidockerError

    if not path:
        return None
    try:
        return open(path, "x")
    except FileExistsError:
        raise MinidockerError(f"Container ID file found, make sure the other container isn't "
                              f"running or delete {path}") from None
    except OSError as exc:
        raise MinidockerError(f"cannot write --cidfile {path}: {exc.strerror}") from None


def write_cidfile(file, container_id: str) -> None:
    if file:
        with file:
            file.write(container_id)


RUN_CONTEXT = {**CONTEXT, "allow_interspersed_args": False}


def sig_proxy_option(command):
    """``--sig-proxy`` (true by default; ``--sig-proxy=false`` turns it off), as Docker's."""
    return click.option("--sig-proxy", type=bool, default=True, is_flag=False, flag_value=True,
                        metavar="BOOL", help="Pass signals received on to the container's "
                        "PID 1 (default true).")(command)


def detach_keys_option(command):
    return click.option("--detach-keys", metavar="KEYS", help="Keys that detach, e.g. "
                        "ctrl-x,x (default ctrl-p,ctrl-q).")(command)


@main.command(cls=EngineCommand, context_settings=RUN_CONTEXT)
@click.option("-d", "--detach", is_flag=True, help="Run in the background; print its ID.")
@click.option("--explain", is_flag=True, help="Print each kernel step of the start as it "
              "happens: the syscalls, cgroup files, veth and iptables rules, in stage order.")
@click.option("--explain-time", is_flag=True, help="--explain, with milliseconds since the "
              "command began.")
@sig_proxy_option
@detach_keys_option
@container_options
def run(detach, explain, explain_time, sig_proxy, detach_keys, **options):
    """Run a command in a new container.

    \b
    Examples:
      minidocker run --rm busybox echo hello
      minidocker run --rm -it --hostname box busybox sh
      minidocker run -d --name web busybox httpd -f -p 80
      minidocker run --rm -v data:/data busybox sh -c 'date >> /data/log'
    """
    require_root("run")
    config, host, name = container_request(options)
    if not detach:
        check_tty(config.OpenStdin, config.Tty)
    keys = detach_keys_for(detach_keys)
    cidfile = check_cidfile(options["cidfile"])
    if explain or explain_time:
        explain_steps(detach, explain_time)
    from minidocker.container.create import create

    ensure_image(config.Image, options["pull"])
    config, host = in_pod(options["pod"], config, host, start=True)
    record = create(config, host, name)
    write_cidfile(cidfile, record.Id)
    if detach:
        from minidocker.container.lifecycle import start

        start(record)
        click.echo(record.Id)
        return
    if config.Tty and config.OpenStdin and not (explain or explain_time):
        sys.exit(_start_attached(record, True, keys, sig_proxy))  # -it: Ctrl-P Ctrl-Q detaches
    from minidocker.container.lifecycle import run_in_foreground

    sys.exit(run_in_foreground(record, sig_proxy))


def check_tty(with_stdin: bool, tty: bool, hint: str = "drop -t") -> None:
    """Docker's CLI refuses to relay stdin that is not a terminal into a container's terminal
    (``-it`` from a pipe or a script): the keys would arrive raw, and nothing would ever end."""
    import os

    from minidocker.errors import MinidockerError

    if with_stdin and tty and not os.isatty(0):
        raise MinidockerError(f"the input device is not a TTY: {hint} when stdin is a pipe "
                              "or a file, or run it from a terminal", exit_code=1)


def in_pod(pod: str | None, config, host, start: bool = False):
    """``--pod P``: the request made a member of pod P (cluster/pods.py)."""
    if not pod:
        return config, host
    from minidocker.cluster import pods

    return pods.join(pod, config, host, start=start)


def explain_steps(detach: bool, timing: bool) -> None:
    """``--explain``: the engine's own trace (minidocker/explain.py) on our stderr. A detached
    container is started by its monitor, another process: only a foreground run is told."""
    from minidocker import explain
    from minidocker.errors import MinidockerError

    if detach:
        raise MinidockerError("--explain tells the steps of a foreground run: drop -d (the "
                              "monitor of a detached container starts it out of sight)")
    explain.listen(2, timing=timing)


@main.command("export-bundle", context_settings=CONTEXT)
@click.argument("container")
@click.argument("directory", type=click.Path(file_okay=False))
def export_bundle(container, directory):
    """Write a container as an OCI bundle: DIRECTORY/rootfs and config.json (runc run)."""
    require_root("export-bundle")
    from pathlib import Path

    from minidocker.container import lifecycle, runc
    from minidocker.container.start import plan_start

    runc.export_bundle(plan_start(lifecycle.find(container)), Path(directory))
    click.echo(directory)


@main.command(cls=EngineCommand, context_settings=RUN_CONTEXT)
@container_options
def create(**options):
    """Create a new container without starting it; prints its ID."""
    require_root("create")
    from minidocker.container.create import create as make

    config, host, name = container_request(options)
    cidfile = check_cidfile(options["cidfile"])
    ensure_image(config.Image, options["pull"])
    config, host = in_pod(options["pod"], config, host)
    record = make(config, host, name)
    write_cidfile(cidfile, record.Id)
    click.echo(record.Id)


@main.command(context_settings=CONTEXT)
@click.option("-a", "--attach", is_flag=True, help="Attach its output (and exit with its code).")
@click.option("-i", "--interactive", is_flag=True, help="Attach its stdin.")
@detach_keys_option
@click.argument("containers", nargs=-1, required=True)
def start(attach, interactive, detach_keys, containers):
    """Start one or more created or stopped containers."""
    require_root("start")
    from minidocker.container import lifecycle

    keys = detach_keys_for(detach_keys)
    for name in containers:
        record = lifecycle.find(name)
        if interactive:
            check_tty(True, record.Config.Tty, "drop -i")
        if attach or interactive:
            sys.exit(_start_attached(record, interactive, keys))
        lifecycle.start(record)
        click.echo(name)


def detach_keys_for(text: str | None) -> bytes:
    """``--detach-keys`` as bytes (Docker's default, Ctrl-P Ctrl-Q, without it)."""
    from minidocker.container.attach import DETACH_KEYS, parse_detach_keys

    return parse_detach_keys(text) if text else DETACH_KEYS


def _start_attached(record, interactive: bool, detach_keys: bytes,
                    sig_proxy: bool = True) -> int:
    """``start -a`` and ``run -it``: the container under its own (detached) monitor, and
    we its attached client, so that the detach keys leave it running as Docker's CLI does."""
    from minidocker.container import attach, lifecycle

    lifecycle.start(record, attach=True)
    client = attach.connect(record.directory / "attach.sock", interactive)
    detached, code = _relay_with_signals(record, client, interactive, detach_keys, sig_proxy)
    if detached:
        return 0  # it runs on
    if code is None:  # no last frame: it could not start, the monitor wrote why
        code = lifecycle.wait(record)
        if record.State["Error"]:
            click.echo(f"minidocker: {record.State['Error']}", err=True)
    return code


def _relay_with_signals(record, client, with_stdin: bool, detach_keys: bytes,
                        sig_proxy: bool = True):
    """attach.relay, with signals to us passed on to the container's PID 1 (--sig-proxy)."""
    import contextlib
    import os

    from minidocker.container import attach
    from minidocker.container.lifecycle import SignalProxy
    from minidocker.errors import MinidockerError

    class Pid1:
        def signal(self, signum):
            with contextlib.suppress(MinidockerError, ProcessLookupError):
                if record.reload().State["Pid"] > 0:
                    os.kill(record.State["Pid"], signum)

    SignalProxy(raw_terminal=record.Config.Tty and with_stdin, forward=sig_proxy).deliver_to(
        Pid1())
    if record.Config.Tty and with_stdin:
        attach.follow_window_size(record.directory / "attach.sock")
    return attach.relay(client, with_stdin, record.Config.Tty, detach_keys)


@main.command(context_settings=CONTEXT)
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default "
              "shows just running).")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output.")
@click.option("--format", "fmt", metavar="FORMAT", help="'table TEMPLATE', 'json' or a Go "
              "template, e.g. 'table {{.ID}}\\t{{.Names}}' (fields: .ID .Image .Command "
              ".CreatedAt .RunningFor .Ports .Status .State .Names .Labels .Mounts .Networks).")
@filter_option
def ps(show_all, quiet, no_trunc, fmt, filters):
    """List containers."""
    from minidocker.cli.formatting import CONTAINER_HEADERS, PS_TABLE, container_row, format_rows
    from minidocker.container import filters as by
    from minidocker.container.lifecycle import ACTIVE, current_records

    chosen = by.parse(filters)
    shown = [r for r in current_records() if show_all or by.shows_all(chosen) or r.status in ACTIVE]
    rows = [container_row(r, no_trunc) for r in by.select(shown, chosen)]
    if quiet:
        click.echo("".join(f"{row['ID']}\n" for row in rows), nl=False)
        return
    click.echo(format_rows(rows, fmt, PS_TABLE, CONTAINER_HEADERS), nl=False)


@main.command(context_settings=CONTEXT)
@click.option("-f", "--follow", is_flag=True, help="Follow log output.")
@click.option("-n", "--tail", default="all", metavar="N", help="Lines from the end (default all).")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.argument("container")
def logs(follow, tail, timestamps, container):
    """Show what a container printed (stdout and stderr)."""
    from minidocker.container import lifecycle

    for entry in lifecycle.logs(lifecycle.find(container), follow, tail):
        out = sys.stdout if entry.stream == "stdout" else sys.stderr
        out.write(f"{entry.time} {entry.text}" if timestamps else entry.text)
        out.flush()


@main.command(context_settings=CONTEXT)
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN.")
@detach_keys_option
@sig_proxy_option
@click.argument("container")
def attach(no_stdin, detach_keys, sig_proxy, container):
    """Attach to a running container's stdio (detach: Ctrl-P Ctrl-Q)."""
    require_root("attach")
    from minidocker.container import attach as attaching
    from minidocker.container import lifecycle
    from minidocker.errors import Conflict

    keys = detach_keys_for(detach_keys)
    record = lifecycle.find(container)
    if record.status != "running":
        raise Conflict(f"You cannot attach to a {record.status} container, start it first")
    with_stdin = record.Config.OpenStdin and not no_stdin
    check_tty(with_stdin, record.Config.Tty, "use --no-stdin")
    client = attaching.connect(record.directory / "attach.sock", with_stdin)
    record.event("attach")
    detached, code = _relay_with_signals(record, client, with_stdin, keys, sig_proxy)
    if detached:
        click.echo("\r\nread escape sequence", err=True)
        return
    sys.exit(code if code is not None else lifecycle.wait(record))


@main.command("exec", context_settings=RUN_CONTEXT)
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY.")
@click.option("-e", "--env", multiple=True, metavar="KEY=VALUE", help="Set a variable.",
              callback=lambda ctx, param, items: checked_env(items))
@click.option("-w", "--workdir", metavar="DIR", help="Working directory inside.")
@click.option("-u", "--user", metavar="USER[:GROUP]", help="User name or UID.")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(interactive, tty, env, workdir, user, container, command):
    """Run a command in a running container (joins its namespaces and cgroup)."""
    require_root("exec")
    from minidocker.container import lifecycle
    from minidocker.container.exec import ExecSpec, exec_in

    spec = ExecSpec(list(command), interactive, tty, env, workdir, user)
    record = lifecycle.find(container)
    check_tty(interactive, tty)
    record.event(f"exec_create: {' '.join(command)}")
    sys.exit(exec_in(record, spec))


def checked_env(items: tuple[str, ...]) -> list[str]:
    """``exec -e``: a bad variable is a bad flag (125), as Docker's ValidateEnv; ``-e KEY``
    copies KEY from this environment, as ``run``'s."""
    from minidocker.errors import MinidockerError

    try:
        return client_env(list(items))
    except MinidockerError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command(context_settings=RUN_CONTEXT)
@click.argument("container")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED)
def top(container, ps_args):
    """Show the processes of a container (as the host's ps sees them)."""
    from minidocker.container import lifecycle

    click.echo(lifecycle.top(lifecycle.find(container), list(ps_args) or None), nl=False)


@main.command(context_settings=CONTEXT)
@click.argument("containers", nargs=-1, required=True)
def wait(containers):
    """Block until containers stop, then print their exit codes."""
    from minidocker.container import lifecycle

    for name in containers:
        click.echo(lifecycle.wait(lifecycle.find(name)))


INSPECT_TYPES = ("container", "image", "network", "volume")


@main.command(context_settings=CONTEXT)
@click.option("-f", "--format", "template", help="Format with a Go template, "
              "e.g. '{{.State.Status}}' or '{{json .Mounts}}'.")
@click.option("--type", "kind", help="Only inspect objects of the given type: "
              + ", ".join(INSPECT_TYPES) + ".")
@click.argument("names", nargs=-1, required=True)
def inspect(template, kind, names):
    """Show low-level information on containers, images, networks or volumes, as JSON."""
    from minidocker.errors import MinidockerError

    if kind is not None and kind not in INSPECT_TYPES:  # before any look-up, as Docker
        raise MinidockerError(f'unknown type: "{kind}": must be one of '
                              + ", ".join(f'"{t}"' for t in INSPECT_TYPES))
    look_up = _INSPECTORS[kind] if kind else _inspect_object
    print_inspected(template, names, look_up)


def print_inspected(template, names, look_up) -> None:
    """``inspect``'s output: each object ``look_up`` finds, as JSON or through ``template``."""
    import json

    from minidocker.cli.templates import TemplateError, parse

    try:  # before anything is looked up, as Docker: a broken template exits 64 (EX_USAGE)
        parsed = parse(template) if template is not None else None
    except TemplateError as exc:
        click.echo(f"minidocker: template parsing error: {exc}", err=True)
        sys.exit(64)
    found = [look_up(name) for name in names]
    if parsed is None:
        click.echo(json.dumps(found, indent=4))
    else:
        click.echo("\n".join(parsed.execute(obj) for obj in found))


def _inspect_object(name: str) -> dict:
    """Docker's search without ``--type``: a container by name or ID, else an image, else a
    network, else a volume; none of them is "No such object"."""
    from minidocker.errors import MinidockerError, NotFound
    from minidocker.image.reference import InvalidReference

    try:
        return _inspect_container(name)
    except MinidockerError:
        pass
    for look_up in (_inspect_image, _inspect_network, _inspect_volume):
        try:
            return look_up(name)
        except (NotFound, InvalidReference):  # no image's name (a volume MyData): docker/cli's
            pass  # isErrSkippable goes on too
    raise NotFound(f"No such object: {name} (neither a container, an image, a network nor a "
                   "volume: see 'minidocker ps -a', 'images', 'network ls', 'volume ls')")


def _inspect_container(name: str) -> dict:
    from minidocker.container import lifecycle

    record = lifecycle.find(name)
    return {**record.to_dict(), "Name": f"/{record.Name}", "Path": record.command[0],
            "Args": record.command[1:]}


def _inspect_image(name: str) -> dict:
    from minidocker.image.verbs import inspect_image

    return inspect_image(name)


def _inspect_network(name: str) -> dict:
    from minidocker.network import networks

    return networks.inspect(name)


def _inspect_volume(name: str) -> dict:
    from minidocker.volumes import get_volume

    return get_volume(name).inspect()


def _inspect_typed_image(name: str) -> dict:
    """``--type image``: the image, or "No such image" (not the untyped search's words)."""
    from minidocker.errors import NotFound

    try:
        return _inspect_image(name)
    except NotFound:
        raise NotFound(f"No such image: {name} (see 'minidocker images')") from None


_INSPECTORS = {"container": _inspect_container, "image": _inspect_typed_image,
               "network": _inspect_network, "volume": _inspect_volume}


@main.command(context_settings=CONTEXT)
@click.argument("container")
@click.argument("new_name")
def rename(container, new_name):
    """Rename a container."""
    require_root("rename")
    from minidocker.container import lifecycle

    lifecycle.rename(lifecycle.find(container), new_name)


def _each(action, names, **kwargs):
    """Apply ``action`` to each container, printing its name; go on after an error and exit 1
    at the end, as Docker does."""
    from minidocker.container import lifecycle
    from minidocker.errors import MinidockerError

    failed = False
    for name in names:
        try:
            action(lifecycle.find(name), **kwargs)
            click.echo(name)
        except MinidockerError as exc:
            click.echo(f"minidocker: {exc}", err=True)
            failed = True
    if failed:
        sys.exit(1)


@main.command(context_settings=CONTEXT)
@click.option("-t", "--time", "timeout", type=int, metavar="SECONDS",
              help="Seconds to wait before SIGKILL (default: its --stop-timeout, or 10).")
@click.argument("containers", nargs=-1, required=True)
def stop(timeout, containers):
    """Stop containers: StopSignal (SIGTERM), then SIGKILL after the timeout."""
    require_root("stop")
    from minidocker.container import lifecycle

    _each(lifecycle.stop, containers, timeout=timeout)


@main.command(context_settings=CONTEXT)
@click.option("-s", "--signal", "signame", default="KILL", help="Signal to send (default KILL).")
@click.argument("containers", nargs=-1, required=True)
def kill(signame, containers):
    """Send a signal to containers' PID 1."""
    require_root("kill")
    from minidocker.container import lifecycle

    _each(lifecycle.kill, containers, signame=signame)


@main.command(context_settings=CONTEXT)
@click.option("-t", "--time", "timeout", type=int, metavar="SECONDS",
              help="Seconds to wait before SIGKILL.")
@click.argument("containers", nargs=-1, required=True)
def restart(timeout, containers):
    """Restart containers (stop, then start)."""
    require_root("restart")
    from minidocker.container import lifecycle

    _each(lifecycle.restart, containers, timeout=timeout)


@main.command(context_settings=CONTEXT)
@click.argument("containers", nargs=-1, required=True)
def pause(containers):
    """Freeze every process of containers (the cgroup freezer)."""
    require_root("pause")
    from minidocker.container import lifecycle

    _each(lifecycle.pause, containers)


@main.command(context_settings=CONTEXT)
@click.argument("containers", nargs=-1, required=True)
def unpause(containers):
    """Thaw paused containers."""
    require_root("unpause")
    from minidocker.container import lifecycle

    _each(lifecycle.unpause, containers)


@main.command(context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True, help="Kill a running container, then remove it.")
@click.option("-v", "--volumes", is_flag=True, help="Also remove its anonymous volumes.")
@click.argument("containers", nargs=-1, required=True)
def rm(force, volumes, containers):
    """Remove one or more containers."""
    require_root("rm")
    from minidocker.container.lifecycle import rm as remove

    _each(remove, joiners_first(containers), force=force, volumes_too=volumes)


def joiners_first(names) -> list[str]:
    """Those that joined another container's namespaces (``container:X``, a pod's members)
    first: the engine removes no container while running ones share its namespaces."""
    from minidocker.container import lifecycle
    from minidocker.errors import MinidockerError

    def joins(name: str) -> bool:
        try:
            return bool(lifecycle.find(name).HostConfig.shared())
        except MinidockerError:  # reported in its turn
            return False
    return sorted(names, key=lambda name: not joins(name))


@main.group(cls=Group, context_settings=CONTEXT)
def container():
    """Manage containers."""


@container.command("prune", context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@prune_filter_option
def container_prune(force, filters):
    """Remove all stopped containers."""
    require_root("container prune")
    from minidocker.container.lifecycle import prune as prune_containers
    from minidocker.filters import PRUNE_FILTERS, Filters

    chosen = Filters.parse(filters, PRUNE_FILTERS, "container prune")
    confirm_prune(force, "WARNING! This will remove all stopped containers.\nAre you sure "
                  "you want to continue?")
    removed, reclaimed = prune_containers(chosen)
    echo_pruned({"Containers": removed}, reclaimed)


@main.group(cls=Group, context_settings=CONTEXT)
def system():
    """Manage minidocker as a whole."""


@system.command("prune", context_settings=CONTEXT)
@click.option("-a", "--all", "everything", is_flag=True, help="Remove all unused images, not "
              "just dangling ones.")
@click.option("--volumes", is_flag=True, help="Prune anonymous volumes too.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@prune_filter_option
def system_prune(everything, volumes, force, filters):
    """Remove stopped containers, unused networks and images (and with --volumes, unused
    volumes), and what crashes left: half-made networks, unused user namespace layer copies."""
    require_root("system prune")
    from minidocker.cli import image_users
    from minidocker.cli.network import prune_networks
    from minidocker.container.lifecycle import collect_layer_copies
    from minidocker.container.lifecycle import prune as prune_containers
    from minidocker.container.records import volume_users_held
    from minidocker.errors import MinidockerError
    from minidocker.filters import PRUNE_FILTERS, Filters
    from minidocker.image.verbs import prune_images
    from minidocker.volumes import prune_volumes

    chosen = Filters.parse(filters, PRUNE_FILTERS, "system prune")
    if volumes and "until" in chosen:  # Docker's check: a volume has no creation to compare
        raise MinidockerError('The "until" filter is not supported with "--volumes": prune '
                              "the volumes apart with 'minidocker volume prune'")
    confirm_prune(force, system_prune_warning(everything, volumes, chosen))
    deleted, reclaimed = {}, 0
    deleted["Containers"], reclaimed = prune_containers(chosen)
    deleted["Networks"] = prune_networks(chosen)
    if volumes:
        with volume_users_held() as users:
            deleted["Volumes"], freed = prune_volumes(users, chosen=chosen)
        reclaimed += freed
    with image_users() as users:  # no create takes an image while they go
        removed, freed = prune_images(everything, users, chosen)
    deleted["Images"] = image_lines(removed)
    reclaimed += freed
    if not chosen:  # they carry no label nor date: a filtered prune takes only what it names
        deleted["user namespace layer copies"] = collect_layer_copies()
    echo_pruned(deleted, reclaimed)


def system_prune_warning(everything: bool, volumes: bool, chosen) -> str:
    """docker/cli's question for ``system prune``: what goes, and the filters that narrow it."""
    goes = ["all stopped containers", "all networks not used by at least one container",
            *(["all anonymous volumes not used by at least one container"] if volumes else []),
            "all images without at least one container associated to them" if everything
            else "all dangling images"]
    narrowed = sorted(f"{key}={value}" for key, values in chosen.args.items()
                      for value in values)
    return ("WARNING! This will remove:\n" + "".join(f"  - {item}\n" for item in goes)
            + ("\n  Items to be pruned will be filtered with:\n"
               + "".join(f"  - {item}\n" for item in narrowed) if narrowed else "")
            + "\nAre you sure you want to continue?")


def image_lines(removed: list[str]) -> list[str]:
    """``Deleted: sha256:...`` and ``Untagged: x`` of the engine as docker/cli prints a prune's
    (``deleted: sha256:...``)."""
    return [line[0].lower() + line[1:] for line in removed]
