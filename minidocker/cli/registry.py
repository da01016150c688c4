"""``minidocker registry ...`` (stage 11): serve a registry, collect its garbage."""

import click

from minidocker.cli import CONTEXT, Group, main


def _default_root() -> str:
    from minidocker.state import state_root

    return str(state_root() / "registry")


@main.group(cls=Group, context_settings=CONTEXT)
def registry():
    """Run an OCI registry (distribution's API and on-disk layout)."""


@registry.command("serve", context_settings=CONTEXT)
@click.option("--addr", default="127.0.0.1:5000", show_default=True, metavar="HOST:PORT",
              help="Address to listen on.")
@click.option("--root", type=click.Path(file_okay=False), metavar="DIR",
              help="Storage directory (distribution's rootdirectory) "
                   "[default: <state root>/registry].")
def registry_serve(addr, root):
    """Serve the registry in the foreground until interrupted (Ctrl-C)."""
    from minidocker.registry.app import serve

    serve(addr, root or _default_root())


@registry.command("garbage-collect", context_settings=CONTEXT)
@click.option("--dry-run", "-d", is_flag=True, help="Only say what would be deleted.")
@click.option("--root", type=click.Path(file_okay=False), metavar="DIR",
              help="Storage directory [default: <state root>/registry].")
def registry_garbage_collect(dry_run, root):
    """Delete blobs no manifest references (stop the server first, as with distribution)."""
    from minidocker.registry.gc import garbage_collect

    for line in garbage_collect(root or _default_root(), dry_run=dry_run):
        click.echo(line)
