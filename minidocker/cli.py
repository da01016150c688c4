"""``minidocker`` — docker-style commands over the engine's stages.

This module only parses the command line and prints; the engine lives in the stage modules,
imported inside each command so that ``minidocker --help`` starts fast. A ``MinidockerError``
becomes one line on stderr and Docker's exit code, never a traceback.
"""

import os
import sys

import click

CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}


class Group(click.Group):
    """Commands listed in the order they are defined, errors printed as one line."""

    def list_commands(self, ctx):
        return list(self.commands)

    def invoke(self, ctx):
        from minidocker.errors import MinidockerError

        try:
            return super().invoke(ctx)
        except MinidockerError as exc:
            click.echo(f"minidocker: {exc}", err=True)
            ctx.exit(exc.exit_code)


def require_root(command: str) -> None:
    if os.geteuid() != 0:
        from minidocker.errors import MinidockerError

        raise MinidockerError(f"'{command}' needs root: namespaces, mounts and cgroups are "
                              f"root's tools. Run it with sudo: sudo minidocker {command} ...")


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(package_name="minidocker", message="minidocker %(version)s")
def main():
    """minidocker — a container engine you can read, built on the real Linux kernel.

    Start with:  minidocker run --rm -it busybox sh

    Every command works like Docker's. Run 'minidocker doctor' if something does not work.
    """


@main.command(context_settings={**CONTEXT, "allow_interspersed_args": False})
@click.option("--rm", "remove", is_flag=True, help="Remove the container when it exits.")
@click.option("--name", help="Assign a name to the container.")
@click.option("-h", "--hostname", help="Container host name (default: its short ID).")
@click.option("--read-only", "readonly", is_flag=True,
              help="Mount the container's root filesystem as read only.")
@click.option("-e", "--env", multiple=True, metavar="KEY=VALUE",
              help="Set an environment variable (repeatable).")
@click.option("-w", "--workdir", default="/", metavar="DIR",
              help="Working directory inside the container.")
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY.")
@click.option("--init", is_flag=True, help="Run an init as PID 1 that forwards signals and "
              "reaps orphans.")
@click.option("-m", "--memory", metavar="BYTES", help="Memory limit (e.g. 32m, 1g).")
@click.option("--memory-swap", metavar="BYTES", help="Memory plus swap limit; -1 = unlimited "
              "swap.")
@click.option("--cpus", metavar="N", help="Number of CPUs (e.g. 0.5).")
@click.option("-c", "--cpu-shares", metavar="N", help="CPU shares (relative weight, "
              "default 1024).")
@click.option("--cpu-period", metavar="US", help="CFS period in microseconds.")
@click.option("--cpu-quota", metavar="US", help="CFS quota in microseconds per period.")
@click.option("--cpuset-cpus", metavar="LIST", help="CPUs the container may run on (0-1, 0,2).")
@click.option("--pids-limit", metavar="N", help="Maximum number of processes (-1 = unlimited).")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(remove, name, hostname, readonly, env, workdir, interactive, tty, init, memory,
        memory_swap, cpus, cpu_shares, cpu_period, cpu_quota, cpuset_cpus, pids_limit, image,
        command):
    """Run a command in a new container, in the foreground.

    \b
    Examples:
      minidocker run --rm busybox echo hello
      minidocker run --rm -it --hostname box busybox sh
      minidocker run --rm --read-only busybox touch /x     # fails: read-only root
    """
    require_root("run")
    from minidocker.cgroups import build_limits
    from minidocker.container import ContainerSpec
    from minidocker.foreground import run_in_foreground

    limits = build_limits(memory, memory_swap, cpus, cpu_shares, cpu_period, cpu_quota,
                          cpuset_cpus, pids_limit)
    spec = ContainerSpec(image=image, command=list(command) or ["sh"], name=name,
                         hostname=hostname, env=list(env), workdir=workdir, readonly=readonly,
                         interactive=interactive, tty=tty, remove=remove, init=init,
                         limits=limits)
    sys.exit(run_in_foreground(spec))


@main.command(context_settings=CONTEXT)
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default "
              "shows just running).")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs.")
def ps(show_all, quiet):
    """List containers."""
    from minidocker.foreground import list_containers

    click.echo(list_containers(show_all, quiet), nl=False)


@main.command(context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True, help="Kill a running container, then remove it.")
@click.argument("containers", nargs=-1, required=True)
def rm(force, containers):
    """Remove one or more containers."""
    from minidocker.foreground import remove_container

    for name in containers:
        click.echo(remove_container(name, force))


@main.command(context_settings=CONTEXT)
def images():
    """List images."""
    from minidocker.foreground import list_images

    click.echo(list_images(), nl=False)


@main.command(context_settings=CONTEXT)
def doctor():
    """Check that this machine can run containers, and say how to fix what is missing."""
    from minidocker.doctor import report

    sys.exit(report())


@main.command(context_settings=CONTEXT)
def setup():
    """Create the state root and the offline busybox base image (no network needed)."""
    require_root("setup")
    from minidocker.image.busybox import create_busybox_image

    click.echo(f"busybox:latest is ready in {create_busybox_image()}")


@main.group(cls=Group, context_settings=CONTEXT)
def lab():
    """The course's labs: check your solution against the real kernel."""


@lab.command("check", context_settings=CONTEXT)
@click.argument("number")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
def lab_check(number, path):
    """Check lab NUMBER (e.g. 01); PATH is your file (default: the lab's starter.py)."""
    require_root("lab check")
    from minidocker.labs import check

    sys.exit(check(number, path))


@lab.command("list", context_settings=CONTEXT)
def lab_list():
    """List the labs."""
    from minidocker.labs import list_labs

    click.echo(list_labs(), nl=False)


if __name__ == "__main__":
    main(prog_name="minidocker")
