"""``minidocker compose ...`` (stage 13): a project of services from a Compose file, run
through the same engine calls as ``run``, ``network create`` and ``volume create``."""

import functools
import sys

import click

from minidocker.cli import CONTEXT, Group, main, require_root


@main.group(cls=Group, context_settings=CONTEXT)
@click.option("-f", "--file", "files", multiple=True, metavar="FILE",
              help="Compose file (repeatable: later files override earlier ones).")
@click.option("-p", "--project-name", default="", help="Project name (default: the "
              "directory's name).")
@click.option("--project-directory", default="", metavar="DIR",
              help="Where relative paths start (default: the first file's directory).")
@click.option("--env-file", default="", metavar="FILE", help="The variables of the file "
              "(default: .env in the project directory).")
@click.option("--profile", "profiles", multiple=True, help="Activate a profile (repeatable).")
@click.pass_context
def compose(ctx, files, project_name, project_directory, env_file, profiles):
    """Define and run multi-container applications (a Compose file)."""
    from minidocker.compose.loader import Options

    ctx.obj = Options(list(files), project_name, project_directory, env_file, list(profiles))


def load(ctx, services=()):
    """The project, its warnings said once on stderr."""
    from minidocker.compose.loader import load as load_project

    project = load_project(ctx.obj, list(services))
    for warning in project.warnings:
        click.echo(f"WARNING: {warning}", err=True)
    return project


@compose.command("config", context_settings=CONTEXT)
@click.option("-q", "--quiet", is_flag=True, help="Only check the file; print nothing.")
@click.option("--services", "list_services", is_flag=True, help="Print the service names.")
@click.option("--volumes", "list_volumes", is_flag=True, help="Print the volume names.")
@click.pass_context
def config(ctx, quiet, list_services, list_volumes):
    """Check the Compose file and print the resolved model as YAML."""
    import yaml

    project = load(ctx)
    if quiet:
        return
    if list_services or list_volumes:
        names = [*(project.services if list_services else []),
                 *(project.volumes if list_volumes else [])]
        click.echo("".join(f"{name}\n" for name in names), nl=False)
        return
    click.echo(yaml.safe_dump(project.model, sort_keys=True, default_flow_style=False),
               nl=False)



# --- the project's lifecycle ------------------------------------------------------------------

def say(line: str) -> None:
    click.echo(line, err=True)


def scale_option(_ctx, _param, values) -> dict[str, int]:
    """``--scale web=3`` (repeatable) as ``{"web": 3}``; a bad value is a bad flag (125)."""
    scale = {}
    for item in values:
        service, sep, count = item.partition("=")
        if not sep or not count.isdigit():
            raise click.BadParameter(f"{item!r}: use SERVICE=NUMBER, e.g. web=3")
        scale[service] = int(count)
    return scale


@compose.command("up", context_settings=CONTEXT)
@click.option("-d", "--detach", is_flag=True, help="Run the containers in the background.")
@click.option("--build", "build_", is_flag=True, help="Build images before starting.")
@click.option("--scale", multiple=True, metavar="SERVICE=NUM", callback=scale_option,
              help="Scale SERVICE to NUM containers (overrides scale/deploy.replicas).")
@click.option("--no-deps", is_flag=True, help="Do not start the services it depends on.")
@click.option("--force-recreate", is_flag=True, help="Recreate containers even if their "
              "configuration has not changed.")
@click.option("--remove-orphans", is_flag=True, help="Remove containers of services no "
              "longer in the file.")
@click.argument("services", nargs=-1)
@click.pass_context
def up(ctx, detach, build_, scale, no_deps, force_recreate, remove_orphans, services):
    """Create and start the project's containers (networks and volumes first)."""
    require_root("compose up")
    from minidocker.compose.project import UpOptions
    from minidocker.compose.project import up as bring_up

    project = load(ctx, services)
    options = UpOptions(list(services), build_, no_deps, force_recreate, remove_orphans,
                        scale)
    started = bring_up(project, options, say)
    if not detach:
        follow_until_interrupted(started)


def follow_until_interrupted(started) -> None:
    """``up`` without ``-d``: the logs of every container, until they stop or Ctrl-C (which
    stops them, as Compose does)."""
    from minidocker.container import lifecycle

    try:
        print_logs(started, follow=True, tail="all")
    except KeyboardInterrupt:
        say("Gracefully stopping... (press Ctrl+C again to force)")
        for record in reversed(started):
            lifecycle.stop(record.reload())


@compose.command("down", context_settings=CONTEXT)
@click.option("-v", "--volumes", "volumes_too", is_flag=True, help="Also remove the named "
              "volumes of the file and the anonymous volumes of its containers.")
@click.option("--rmi", type=click.Choice(["local", "all"]), help="Remove images: 'local' "
              "those built for services without an image name, 'all' every service's.")
@click.option("--remove-orphans", is_flag=True, help="Also remove containers of services "
              "not in the file.")
@click.pass_context
def down(ctx, volumes_too, rmi, remove_orphans):
    """Stop and remove the project's containers and networks (with -v: its volumes)."""
    require_root("compose down")
    from minidocker.compose.project import down as take_down

    project = load_or_name(ctx)
    services = None
    if project.services is not None:
        from minidocker.compose.project import selected

        services = selected(project, [])
    removed_images = []
    if rmi and project.services:
        removed_images = [s.image for s in project.services.values()
                          if rmi == "all" or (s.build and not s.definition.get("image"))]
    take_down(project.name, services, say, volumes_too, remove_orphans,
              list(dict.fromkeys(removed_images)))


def load_or_name(ctx):
    """The project; with ``-p`` and no Compose file, only its name (``down -p NAME`` works from
    anywhere: the labels say what belongs to it)."""
    from types import SimpleNamespace

    from minidocker.compose.schema import ComposeFileError

    try:
        return load(ctx)
    except ComposeFileError:
        if not ctx.obj.project_name or ctx.obj.files:
            raise
        return SimpleNamespace(name=ctx.obj.project_name, services=None)


@compose.command("ps", context_settings=CONTEXT)
@click.option("-a", "--all", "show_all", is_flag=True, help="Also the stopped containers.")
@click.option("-q", "--quiet", is_flag=True, help="Only the IDs.")
@click.argument("services", nargs=-1)
@click.pass_context
def ps(ctx, show_all, quiet, services):
    """List the project's containers."""
    from minidocker.cli.formatting import container_row, format_table

    project = load_or_name(ctx)
    records = project_containers(project, services, stopped=show_all)
    if quiet:
        click.echo("".join(f"{r.Id}\n" for r in records), nl=False)
        return
    rows = [["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]]
    for record in records:
        row = container_row(record)
        rows.append([row["Names"], row["Image"], row["Command"],
                     record.Config.Labels.get("com.docker.compose.service", ""),
                     row["RunningFor"], row["Status"], row["Ports"]])
    click.echo(format_table(rows), nl=False)


def project_containers(project, services=(), stopped=True, oneoff=False):
    from minidocker.compose.project import check_service, containers

    for name in services:
        if project.services is not None:
            check_service(project, name)
    return containers(project.name, list(services) or None, oneoff=oneoff, stopped=stopped)


COLOURS = ("cyan", "yellow", "green", "magenta", "blue", "bright_cyan", "bright_yellow",
           "bright_green", "bright_magenta", "bright_blue")


@compose.command("logs", context_settings=CONTEXT)
@click.option("-f", "--follow", is_flag=True, help="Follow log output.")
@click.option("-n", "--tail", default="all", metavar="N", help="Lines from the end of each "
              "container's log (default all).")
@click.option("--no-color", is_flag=True, help="Do not colour the prefixes.")
@click.argument("services", nargs=-1)
@click.pass_context
def logs(ctx, follow, tail, no_color, services):
    """Show what the services' containers printed, each line prefixed with its container."""
    project = load_or_name(ctx)
    print_logs(project_containers(project, services), follow, tail, not no_color)


def print_logs(records, follow: bool, tail: str, colour: bool = True) -> None:
    """Every container's lines as ``name  | text``, in a colour per container; with
    ``follow`` one reader thread per container, until all of them have stopped."""
    import queue
    import threading

    from minidocker.container import lifecycle

    width = max((len(r.Name) for r in records), default=0)
    prefixes = {r.Id: click.style(f"{r.Name:<{width}} | ", fg=COLOURS[i % len(COLOURS)])
                if colour else f"{r.Name:<{width}} | " for i, r in enumerate(records)}
    lines: queue.Queue = queue.Queue()

    def read(record):
        try:
            for entry in lifecycle.logs(record, follow, tail):
                lines.put(prefixes[record.Id] + entry.text.rstrip("\n"))
        finally:
            lines.put(None)

    for record in records:
        threading.Thread(target=read, args=(record,), daemon=True).start()
    for _ in records:
        while (line := lines.get()) is not None:
            click.echo(line)


@compose.command("exec", context_settings={**CONTEXT, "allow_interspersed_args": False})
@click.option("-T", "--no-TTY", "no_tty", is_flag=True, help="Do not allocate a TTY (the "
              "default is one when stdin is a terminal).")
@click.option("-e", "--env", multiple=True, metavar="KEY=VALUE", help="Set a variable.")
@click.option("-w", "--workdir", metavar="DIR", help="Working directory inside.")
@click.option("-u", "--user", metavar="USER", help="User name or UID.")
@click.option("--index", default=1, show_default=True, help="Which replica.")
@click.argument("service")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec_(ctx, no_tty, env, workdir, user, index, service, command):
    """Run a command in a running container of SERVICE."""
    require_root("compose exec")
    from minidocker.container.exec import ExecSpec, exec_in

    record = replica(load(ctx), service, index)
    terminal = sys.stdin.isatty() and not no_tty
    sys.exit(exec_in(record, ExecSpec(list(command), terminal, terminal, list(env),
                                      workdir, user)))


def replica(project, service: str, index: int):
    from minidocker.compose.project import number
    from minidocker.errors import Conflict

    for record in project_containers(project, [service]):
        if number(record) == index:
            if record.status != "running":
                raise Conflict(f"container {record.Name} of service {service!r} is not "
                               f"running ({record.status}): start it with 'compose up -d'")
            return record
    raise Conflict(f"service {service!r} has no container number {index}: bring it up with "
                   "'compose up -d'")


@compose.command("run", context_settings={**CONTEXT, "allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run in the background; print its name.")
@click.option("--rm", "remove", is_flag=True, help="Remove the container when it exits.")
@click.option("-e", "--env", multiple=True, metavar="KEY=VALUE", help="Set a variable.")
@click.argument("service")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run(ctx, detach, remove, env, service, command):
    """Run a one-off command in a new container of SERVICE (its dependencies started)."""
    require_root("compose run")
    from minidocker.compose.project import check_service, run_oneoff
    from minidocker.container import lifecycle

    project = load(ctx, [service])
    check_service(project, service)
    record = run_oneoff(project, project.services[service], list(command) or None, list(env),
                        remove, say)
    if detach:
        from minidocker.compose.project import one_monitor_for_all

        one_monitor_for_all()
        lifecycle.start(record)
        click.echo(record.Name)
        return
    sys.exit(lifecycle.run_in_foreground(record))


@compose.command("build", context_settings=CONTEXT)
@click.argument("services", nargs=-1)
@click.pass_context
def build(ctx, services):
    """Build the images of the services that have a build section."""
    require_root("compose build")
    from minidocker.compose import images

    project = load(ctx, services)
    for name in services or project.services:
        if project.services[name].build:
            images.build(project.services[name], say)


@compose.command("pull", context_settings=CONTEXT)
@click.option("--ignore-pull-failures", is_flag=True, help="Go on when an image fails.")
@click.argument("services", nargs=-1)
@click.pass_context
def pull(ctx, ignore_pull_failures, services):
    """Pull the images of the services that name one."""
    require_root("compose pull")
    from minidocker.compose import images

    project = load(ctx, services)
    for name in services or project.services:
        if project.services[name].definition.get("image"):
            images.pull(project.services[name].image, say, ignore_pull_failures)


@compose.command("push", context_settings=CONTEXT)
@click.argument("services", nargs=-1)
@click.pass_context
def push(ctx, services):
    """Push the images of the services that have a build section."""
    from minidocker.compose import images

    project = load(ctx, services)
    for name in services or project.services:
        if project.services[name].build:
            images.push(project.services[name].image, say)


def each_container(name: str, done: str, *options, stopped: bool = True):
    """Make ``act(record, **flags)`` the command ``compose NAME [OPTIONS] [SERVICE...]``: it
    acts on each container of the services (all if none; only the running ones unless
    ``stopped``), and says so as Compose does (`` Container web-1  Stopped``)."""
    def register(act):
        @click.argument("services", nargs=-1)
        @click.pass_context
        @functools.wraps(act)
        def command(ctx, services, **flags):
            require_root(f"compose {name}")
            for record in project_containers(load_or_name(ctx), services, stopped):
                act(record, **flags)
                say(f" Container {record.Name}  {done}")

        for option in options:
            command = option(command)
        return compose.command(name, context_settings=CONTEXT)(command)
    return register


TIMEOUT = click.option("-t", "--timeout", type=int, help="Seconds to wait before SIGKILL.")


@compose.command("start", context_settings=CONTEXT)
@click.argument("services", nargs=-1)
@click.pass_context
def start(ctx, services):
    """Start the services' existing containers."""
    require_root("compose start")
    from minidocker.compose.project import one_monitor_for_all
    from minidocker.container import lifecycle

    found = project_containers(load(ctx), services)
    if any(record.status not in lifecycle.ACTIVE for record in found):
        one_monitor_for_all()  # a host only when there is something to start
    for record in found:
        lifecycle.start(record)  # on every network of its service: they are in its HostConfig
        say(f" Container {record.Name}  Started")


@each_container("stop", "Stopped", TIMEOUT)
def stop(record, timeout):
    """Stop the services' containers."""
    from minidocker.container import lifecycle

    lifecycle.stop(record, timeout)


@each_container("restart", "Restarted", TIMEOUT)
def restart(record, timeout):
    """Restart the services' containers."""
    from minidocker.compose.project import one_monitor_for_all
    from minidocker.container import lifecycle

    one_monitor_for_all()
    lifecycle.restart(record, timeout)


@each_container("kill", "Killed", click.option("-s", "--signal", "signame", default="KILL",
                                               help="Signal (default KILL)."), stopped=False)
def kill(record, signame):
    """Send a signal to the services' running containers."""
    from minidocker.container import lifecycle

    lifecycle.kill(record, signame)


@compose.command("rm", context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True, help="Do not ask (minidocker never asks).")
@click.option("-s", "--stop", "stop_first", is_flag=True, help="Stop the containers first.")
@click.option("-v", "--volumes", "volumes_too", is_flag=True, help="Also their anonymous "
              "volumes.")
@click.argument("services", nargs=-1)
@click.pass_context
def rm(ctx, force, stop_first, volumes_too, services):
    """Remove the services' stopped containers."""
    require_root("compose rm")
    from minidocker.container import lifecycle

    for record in project_containers(load_or_name(ctx), services):
        if record.status in lifecycle.ACTIVE and not stop_first:
            continue
        lifecycle.stop(record)
        lifecycle.rm(record.reload(), volumes_too=volumes_too)
        say(f" Container {record.Name}  Removed")


@compose.command("top", context_settings=CONTEXT)
@click.argument("services", nargs=-1)
@click.pass_context
def top(ctx, services):
    """Show the processes of the services' running containers."""
    from minidocker.container import lifecycle

    for record in project_containers(load_or_name(ctx), services, stopped=False):
        click.echo(f"{record.Name}\n{lifecycle.top(record)}")


@compose.command("images", context_settings=CONTEXT)
@click.argument("services", nargs=-1)
@click.pass_context
def images_(ctx, services):
    """List the images the project's containers use."""
    from minidocker.cli.formatting import format_table
    from minidocker.image.store import ImageStore, human_size

    store = ImageStore()
    rows = [["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"]]
    for record in project_containers(load_or_name(ctx), services):
        image = store.get(record.Image)
        repository, _, tag = record.Config.Image.rpartition(":")
        rows.append([record.Name, repository, tag, image.short_id, human_size(image.size)])
    click.echo(format_table(rows), nl=False)


@compose.command("port", context_settings=CONTEXT)
@click.option("--protocol", default="tcp", type=click.Choice(["tcp", "udp", "sctp"]))
@click.option("--index", default=1, show_default=True, help="Which replica.")
@click.argument("service")
@click.argument("private_port", type=int)
@click.pass_context
def port(ctx, protocol, index, service, private_port):
    """Print the host address a service's port is published on."""
    from minidocker.errors import NotFound

    record = replica(load(ctx), service, index)
    bindings = (record.NetworkSettings.get("Ports") or {}).get(f"{private_port}/{protocol}")
    if not bindings:
        raise NotFound(f"no port {private_port}/{protocol} published for service {service!r}")
    click.echo(f"{bindings[0]['HostIp']}:{bindings[0]['HostPort']}")
