"""``minidocker volume ...`` (stage 7): create, ls, inspect, rm, prune."""

import sys

import click

from minidocker.cli import CONTEXT, Group, main, require_root
from minidocker.cli.flags import confirm_prune, echo_pruned, filter_option, prune_filter_option


@main.group(cls=Group, context_settings=CONTEXT)
def volume():
    """Manage volumes: data that outlives containers."""


@volume.command("create", context_settings=CONTEXT)
@click.option("-d", "--driver", default="local", help="Volume driver (only 'local').")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="Set metadata on the volume (repeatable).")
@click.option("-o", "--opt", "opts", multiple=True, metavar="KEY=VALUE",
              help="The local driver's options: type, device, o (repeatable).")
@click.argument("name", required=False)
def volume_create(driver, labels, opts, name):
    """Create a volume (a random name if NAME is not given) and print its name."""
    require_root("volume create")
    from minidocker.errors import MinidockerError
    from minidocker.volumes import create_volume

    if driver != "local":
        raise MinidockerError(f"unknown volume driver '{driver}': minidocker has only "
                              "'local' (a directory on this host)")
    click.echo(create_volume(name, labels=dict(_label(item) for item in labels),
                             options=dict(_label(item, "--opt") for item in opts) or None).Name)


@volume.command("ls", context_settings=CONTEXT)
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names.")
@click.option("--format", "fmt", metavar="FORMAT", help="'table TEMPLATE', 'json' or a Go "
              "template (fields: .Name .Driver .Mountpoint .Scope .Labels).")
@filter_option
def volume_ls(quiet, fmt, filters):
    """List volumes."""
    from minidocker.cli.formatting import VOLUME_HEADERS, VOLUMES_TABLE, format_rows, volume_row
    from minidocker.filters import Filters
    from minidocker.volumes import VOLUME_FILTERS, list_volumes, select_volumes

    chosen = Filters.parse(filters, VOLUME_FILTERS, "volume ls")
    in_use = set(volumes_in_use()) if "dangling" in chosen else set()
    rows = [volume_row(v) for v in select_volumes(list_volumes(), chosen, in_use)]
    if quiet:
        click.echo("".join(f"{row['Name']}\n" for row in rows), nl=False)
        return
    click.echo(format_rows(rows, fmt, VOLUMES_TABLE, VOLUME_HEADERS), nl=False)


@volume.command("inspect", context_settings=CONTEXT)
@click.option("-f", "--format", "template", help="Format with a Go template, e.g. "
              "'{{.Mountpoint}}' or '{{json .Labels}}'.")
@click.argument("names", nargs=-1, required=True)
def volume_inspect(template, names):
    """Show details of one or more volumes, as JSON."""
    from minidocker.cli.lifecycle import print_inspected
    from minidocker.volumes import get_volume

    print_inspected(template, names, lambda name: get_volume(name).inspect())


@volume.command("rm", context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True, help="No error for a volume that does not exist.")
@click.argument("names", nargs=-1, required=True)
def volume_rm(force, names):
    """Remove one or more volumes (not while a container uses them)."""
    require_root("volume rm")
    from minidocker.container.records import volume_users_held
    from minidocker.errors import MinidockerError
    from minidocker.volumes import remove_volume

    failed = False
    with volume_users_held() as users:
        for name in names:
            try:
                remove_volume(name, users, force)
                click.echo(name)
            except MinidockerError as exc:  # like Docker: report it, go on with the others
                click.echo(f"minidocker: {exc}", err=True)
                failed = True
    if failed:
        sys.exit(1)


@volume.command("prune", context_settings=CONTEXT)
@click.option("-a", "--all", "everything", is_flag=True,
              help="Remove all unused volumes, not just anonymous ones.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@prune_filter_option
def volume_prune(everything, force, filters):
    """Remove unused volumes: anonymous ones, or every unused one with -a."""
    require_root("volume prune")
    from minidocker.container.records import volume_users_held
    from minidocker.filters import Filters
    from minidocker.volumes import VOLUME_PRUNE_FILTERS, prune_volumes

    chosen = Filters.parse(filters, ("all", *VOLUME_PRUNE_FILTERS), "volume prune")
    everything = everything or not chosen.match_bool("all", False)  # the API's all=true: -a

    kind = "all local volumes" if everything else "anonymous local volumes"
    confirm_prune(force, f"WARNING! This will remove {kind} not used by at least one "
                  "container.\nAre you sure you want to continue?")
    with volume_users_held() as users:
        removed, reclaimed = prune_volumes(users, everything, chosen)
    echo_pruned({"Volumes": removed}, reclaimed)


def volumes_in_use() -> dict[str, list[str]]:
    from minidocker.container import records  # here: 'volume --help' needs no records

    return records.volumes_in_use()


def _label(item: str, flag: str = "--label") -> tuple[str, str]:
    key, _, value = item.partition("=")
    if not key:
        from minidocker.errors import MinidockerError

        raise MinidockerError(f"invalid {flag} '{item}': use {flag} KEY=VALUE")
    return key, value
