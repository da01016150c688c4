"""``minidocker stack ...`` (stage 14): a Compose file deployed as swarm services, with
``docker stack``'s names and output (cluster/stack.py)."""

import functools

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
    for line in stacks.deploy(store, made, prune):
        click.echo(line)
    if detach:
        return
    for service in stacks.services_of(store, name):
        running, wanted, _ = records.wait_converged(store, service, CONVERGE_TIMEOUT)
        click.echo(f"{service['Spec']['Name']}: {running}/{wanted} tasks running")
        if running != wanted:
            raise records.SwarmError(f"service {service['Spec']['Name']} did not converge "
                                     f"(no progress in {CONVERGE_TIMEOUT:.0f}s): see "
                                     f"'minidocker stack ps "
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


def stack_listing(verb: str, quiet_help: str, missing_ok: bool):
    """Make ``show(records, store, services, quiet, fmt)`` the command ``stack VERB [-q]
    [--format TEMPLATE] STACK`` over the stack's services (found by their namespace label).
    None found is an error, or with ``missing_ok`` a note on stderr: docker/cli's ``stack ps``
    and ``stack services`` differ so."""
    def register(show):
        @click.option("-q", "--quiet", is_flag=True, help=quiet_help)
        @click.option("--format", "fmt", metavar="TEMPLATE", help="'json' or a Go template.")
        @click.argument("name")
        @functools.wraps(show)
        def command(quiet, fmt, name):
            from minidocker.cluster import stack as stacks

            records, lab, store = connect_swarm()
            records.swarm(store)
            found = stacks.services_of(store, name)
            if found:
                show(records, store, found, quiet, fmt)
            elif missing_ok:
                click.echo(f"Nothing found in stack: {name}", err=True)
            else:
                raise records.SwarmError(f"nothing found in stack: {name}")

        return stack.command(verb, context_settings=CONTEXT)(command)
    return register


@stack_listing("ps", "Only display task IDs.", missing_ok=False)
def stack_ps(records, store, services, quiet, fmt):
    """List the tasks in the stack."""
    print_tasks(records, store, services, quiet, False, fmt)


@stack_listing("services", "Only display IDs.", missing_ok=True)
def stack_services(records, store, services, quiet, fmt):
    """List the services in the stack."""
    print_services(records, store, services, quiet, fmt)


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
