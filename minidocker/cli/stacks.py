"""``minidocker stack ...`` (stage 14): a Compose file deployed as swarm services, with
``docker stack``'s names and output (cluster/stack.py)."""

import click

from minidocker.cli import CONTEXT, Group, main
from minidocker.cli.swarm import CONVERGE_TIMEOUT, connect_swarm, print_services, print_tasks


@main.group(cls=Group, context_settings=CONTEXT)
def stack():
    """Manage Swarm stacks."""


@stack.command("deploy", context_settings=CONTEXT)
@click.option("-c", "--compose-file", "files", multiple=True, required=True, metavar="FILE",
              help="Path to a Compose file (repeatable: later files override earlier ones).")
@click.option("--prune", is_flag=True, help="Prune services that are no longer referenced.")
@click.option("--detach", type=click.BOOL, default=True, is_flag=False, flag_value=True,
              metavar="[=BOOL]", show_default=True, help="Exit immediately instead of waiting "
              "for the stack services to converge; --detach=false waits.")
@click.option("-d", "short_detach", is_flag=True, help="--detach=true (the default).")
@click.argument("name")
def stack_deploy(files, prune, detach, short_detach, name):
    """Deploy a new stack or update an existing stack."""
    from minidocker.cluster import stack as stacks

    made = stacks.plan(list(files), name)
    records, lab, store = connect_swarm()
    if made.ignored:
        click.echo(f"Ignoring unsupported options: {', '.join(made.ignored)}\n", err=True)
    if made.deprecated:
        click.echo("Ignoring deprecated options:\n\n" + "\n".join(made.deprecated) + "\n",
                   err=True)
    for note in made.notes:
        click.echo(f"WARNING: {note}", err=True)
    for line in stacks.deploy(store, made, prune):
        click.echo(line)
    if detach:
        return
    for service in stacks.services_of(store, name):
        running, wanted, _ = records.wait_converged(store, service, CONVERGE_TIMEOUT)
        click.echo(f"{service['Spec']['Name']}: {running}/{wanted} tasks running")
        if running != wanted:
            raise records.SwarmError(f"service {service['Spec']['Name']} did not converge "
                                     f"in {CONVERGE_TIMEOUT:.0f}s: see 'minidocker stack ps "
                                     f"{name}'")


@stack.command("ls", context_settings=CONTEXT)
@click.option("--format", "fmt", metavar="TEMPLATE", help="'json' or a Go template.")
def stack_ls(fmt):
    """List stacks."""
    from minidocker.cli.formatting import format_rows
    from minidocker.cluster import stack as stacks

    records, lab, store = connect_swarm()
    records.swarm(store)
    rows = [{"Name": name, "Services": str(count)}
            for name, count in stacks.stacks(store).items()]
    click.echo(format_rows(rows, fmt, "table {{.Name}}\t{{.Services}}",
                           {"Name": "NAME", "Services": "SERVICES"}), nl=False)


def _services(name: str, missing_ok: bool):
    from minidocker.cluster import stack as stacks

    records, lab, store = connect_swarm()
    records.swarm(store)
    found = stacks.services_of(store, name)
    if not found and not missing_ok:
        raise records.SwarmError(f"nothing found in stack: {name}")
    return records, store, found


@stack.command("ps", context_settings=CONTEXT)
@click.option("-q", "--quiet", is_flag=True, help="Only display task IDs.")
@click.option("--format", "fmt", metavar="TEMPLATE", help="'json' or a Go template.")
@click.argument("name")
def stack_ps(quiet, fmt, name):
    """List the tasks in the stack."""
    records, store, found = _services(name, missing_ok=False)
    print_tasks(records, store, found, quiet, False, fmt)


@stack.command("services", context_settings=CONTEXT)
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
@click.option("--format", "fmt", metavar="TEMPLATE", help="'json' or a Go template.")
@click.argument("name")
def stack_services(quiet, fmt, name):
    """List the services in the stack."""
    records, store, found = _services(name, missing_ok=True)
    if not found:
        click.echo(f"Nothing found in stack: {name}", err=True)
        return
    print_services(records, store, found, quiet, fmt)


@stack.command("rm", context_settings=CONTEXT)
@click.argument("names", nargs=-1, required=True)
def stack_rm(names):
    """Remove one or more stacks."""
    from minidocker.cluster import stack as stacks

    records, lab, store = connect_swarm()
    records.swarm(store)
    for name in names:
        said = False
        for line in stacks.remove(store, name):
            click.echo(line)
            said = True
        if not said:
            click.echo(f"Nothing found in stack: {name}", err=True)
