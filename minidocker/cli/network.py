"""``minidocker network ...`` (stage 8): create, ls, inspect, rm, prune, connect, disconnect."""

import click

from minidocker.cli import CONTEXT, Group, main, require_root
from minidocker.cli.flags import confirm_prune, echo_pruned, filter_option, prune_filter_option


@main.group(cls=Group, context_settings=CONTEXT)
def network():
    """Manage networks."""


def _pairs(values: tuple[str, ...], flag: str) -> dict[str, str]:
    from minidocker.errors import MinidockerError

    pairs = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise MinidockerError(f"invalid {flag} {value!r}: use KEY=VALUE")
        pairs[key] = val
    return pairs


def _container_id(name_or_id: str) -> str:
    from minidocker.container.records import find

    return find(name_or_id).Id


@network.command("create", context_settings=CONTEXT)
@click.option("-d", "--driver", default="bridge", show_default=True, help="Driver to manage "
              "the network.")
@click.option("--subnet", help="Subnet in CIDR format, e.g. 10.10.0.0/24.")
@click.option("--gateway", help="IPv4 gateway of the subnet (default: its first address).")
@click.option("--internal", is_flag=True, help="Restrict external access to the network.")
@click.option("-o", "--opt", "options", multiple=True, metavar="KEY=VALUE",
              help="Driver option, e.g. com.docker.network.bridge.enable_icc=false.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Set metadata.")
@click.argument("name")
def network_create(driver, subnet, gateway, internal, options, labels, name):
    """Create a network."""
    require_root("network create")
    if driver == "overlay":  # the swarm's: a record in etcd, built on the nodes that need it
        from minidocker.cluster import overlay, swarm

        _, store = swarm.connect()
        click.echo(overlay.create(store, name, subnet)["ID"])
        return
    from minidocker.network import networks

    created = networks.create(name, driver=driver, subnet=subnet, gateway=gateway,
                              internal=internal, options=_pairs(options, "--opt"),
                              labels=_pairs(labels, "--label"))
    click.echo(created.id)


@network.command("ls", context_settings=CONTEXT)
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output.")
@click.option("--format", "fmt", metavar="FORMAT", help="'table TEMPLATE', 'json' or a Go "
              "template (fields: .ID .Name .Driver .Scope .Internal .Labels .CreatedAt).")
@filter_option
def network_ls(quiet, no_trunc, fmt, filters):
    """List networks."""
    from minidocker.cli.formatting import NETWORK_HEADERS, NETWORKS_TABLE, format_rows, network_row
    from minidocker.filters import Filters
    from minidocker.network import networks

    chosen = Filters.parse(filters, networks.NETWORK_FILTERS, "network ls")
    rows = [network_row(n, no_trunc) for n in networks.ls(chosen)]
    if not filters:
        rows += _overlay_rows(no_trunc)
    if quiet:
        click.echo("\n".join(row["ID"] for row in rows))
        return
    click.echo(format_rows(rows, fmt, NETWORKS_TABLE, NETWORK_HEADERS), nl=False)


@network.command("inspect", context_settings=CONTEXT)
@click.option("-f", "--format", "template", help="Format with a Go template, e.g. "
              "'{{.Driver}}' or '{{range .IPAM.Config}}{{.Subnet}}{{end}}'.")
@click.argument("names", nargs=-1, required=True)
def network_inspect(template, names):
    """Display detailed information on one or more networks."""
    from minidocker.cli.lifecycle import print_inspected
    from minidocker.errors import NotFound
    from minidocker.network import networks

    def look_up(name: str) -> dict:
        try:
            return networks.inspect(name)
        except NotFound:
            overlay = _overlay(name)
            if overlay is None:
                raise
            return overlay

    print_inspected(template, names, look_up)


@network.command("rm", context_settings=CONTEXT)
@click.argument("names", nargs=-1, required=True)
def network_rm(names):
    """Remove one or more networks."""
    require_root("network rm")
    from minidocker.errors import NotFound
    from minidocker.network import networks

    for name in names:
        try:
            networks.remove(name)
        except NotFound:
            if not _remove_overlay(name):
                raise
        click.echo(name)


def _overlay_rows(no_trunc: bool) -> list[dict]:
    """The swarm's overlays, as a manager's ``docker network ls`` shows them (scope swarm)."""
    from minidocker.cluster import lab, overlay, swarm
    from minidocker.cluster.etcd import EtcdError
    from minidocker.humanize import created_at

    if not (lab.lab_directory() / "lab.json").exists():
        return []
    try:
        found = overlay.networks(swarm.connect()[1]).values()
    except (EtcdError, swarm.SwarmError):
        return []  # no etcd here (a lab without one), or not reachable: the local ones only
    return [{"CreatedAt": created_at(n["CreatedAt"]), "Driver": "overlay",
             "ID": n["ID"] if no_trunc else n["ID"][:12], "Internal": "false",
             "Labels": ",".join(f"{k}={v}" for k, v in sorted(n.get("Labels", {}).items())),
             "Name": n["Name"], "Scope": "swarm"}
            for n in sorted(found, key=lambda n: n["Name"])]


def _overlay(name: str) -> dict | None:
    """A swarm's overlay network by name (when a lab is up and its etcd knows the name)."""
    from minidocker.cluster import lab, overlay, swarm

    if not (lab.lab_directory() / "lab.json").exists():
        return None
    _, store = swarm.connect()
    return overlay.find(store, name, missing_ok=True)


def _remove_overlay(name: str) -> bool:
    """``network rm`` of a swarm's overlay."""
    from minidocker.cluster import overlay, swarm

    if _overlay(name) is None:
        return False
    overlay.remove(swarm.connect()[1], name)
    return True


@network.command("prune", context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@prune_filter_option
def network_prune(force, filters):
    """Remove all unused networks."""
    require_root("network prune")
    from minidocker.filters import PRUNE_FILTERS, Filters

    chosen = Filters.parse(filters, PRUNE_FILTERS, "network prune")
    confirm_prune(force, "WARNING! This will remove all custom networks not used by at least "
                  "one container.\nAre you sure you want to continue?")
    echo_pruned({"Networks": prune_networks(chosen)}, reclaimed=None)  # Docker prints no total


def prune_networks(chosen=None) -> list[str]:
    """``network prune`` (and the network part of ``system prune``): first what crashes left —
    endpoints of dead containers, half-made networks, bridges of this state root without a
    network, an idle default bridge — then every user network that no container uses."""
    from minidocker.network import networks
    from minidocker.network import prune as prune_leftovers

    prune_leftovers()
    return networks.prune(chosen)


@main.command("port", context_settings=CONTEXT)
@click.argument("container")
@click.argument("private_port", required=False, metavar="[PRIVATE_PORT[/PROTO]]")
def port(container, private_port):
    """List a container's published ports (or where one private port is published)."""
    from minidocker.container import lifecycle
    from minidocker.network import endpoints_of, port_lines

    record = lifecycle.find(container)
    if private_port:  # Docker then prints only the host side: 0.0.0.0:8080
        for line in port_lines(record.Id, private_port):
            click.echo(line.split(" -> ", 1)[1])
    elif endpoints_of(record.Id):
        click.echo("\n".join(port_lines(record.Id)))


@network.command("connect", context_settings=CONTEXT)
@click.option("--alias", "aliases", multiple=True, help="Add a network-scoped alias.")
@click.option("--ip", metavar="IPv4", default="", help="The container's address on it.")
@click.argument("network_name", metavar="NETWORK")
@click.argument("container")
def network_connect(aliases, ip, network_name, container):
    """Connect a container to a network (now if it runs, and at each start)."""
    require_root("network connect")
    from minidocker.container import lifecycle, networking

    networking.connect(lifecycle.find(_container_id(container)), network_name, list(aliases),
                       ip)


@network.command("disconnect", context_settings=CONTEXT)
@click.argument("network_name", metavar="NETWORK")
@click.argument("container")
def network_disconnect(network_name, container):
    """Disconnect a container from a network."""
    require_root("network disconnect")
    from minidocker.container import lifecycle, networking

    networking.disconnect(lifecycle.find(_container_id(container)), network_name)
