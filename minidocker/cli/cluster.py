"""``minidocker cluster ...`` (stage 14): the lab of hosts on one machine — up, down, ls, and
the faults a notebook cell can cause (unplug, plug, partition, heal, crash, restart)."""

import click

from minidocker.cli import CONTEXT, Group, main, require_root


@main.group(cls=Group, context_settings=CONTEXT)
def cluster():
    """A lab of hosts on this machine: network namespaces on an underlay bridge, each with its
    own minidocker daemon, and a 3-member etcd cluster."""


@cluster.command("up", context_settings=CONTEXT)
@click.option("--nodes", default=3, show_default=True, help="How many nodes.")
@click.option("--no-etcd", is_flag=True, help="Only the nodes, without the etcd cluster.")
def cluster_up(nodes, no_etcd):
    """Make the lab: its namespace and bridge, the nodes and their daemons, etcd."""
    require_root("cluster up")
    from minidocker.cluster import lab

    made = lab.up(nodes, with_etcd=not no_etcd)
    for node in made.nodes.values():
        click.echo(f"{node.name}  {node.address}  DOCKER_HOST=unix://{node.socket}")
    if made.etcd:
        click.echo("etcd  " + ",".join(made.etcd_addresses.values()))


@cluster.command("down", context_settings=CONTEXT)
def cluster_down():
    """Remove the lab and everything in it (also after a crash)."""
    require_root("cluster down")
    from minidocker.cluster import lab

    removed = lab.down()
    click.echo(f"removed {len(removed)} node(s)" if removed else "no cluster lab was up")


@cluster.command("ls", context_settings=CONTEXT)
@click.option("--format", "fmt", metavar="TEMPLATE", help="'json' or a Go template.")
def cluster_ls(fmt):
    """List the lab's nodes and etcd members."""
    require_root("cluster ls")
    from minidocker.cli.formatting import format_rows
    from minidocker.cluster import lab

    rows = lab.rows(lab.load())
    table = "table {{.NAME}}\t{{.ADDRESS}}\t{{.DAEMON}}\t{{.BRIDGE}}\t{{.SOCKET}}"
    click.echo(format_rows(rows, fmt, table, {k: k for k in rows[0]}), nl=False)


def _fault(name: str, help_text: str, action):
    @cluster.command(name, context_settings=CONTEXT, help=help_text)
    @click.argument("node")
    def command(node):
        require_root(f"cluster {name}")
        from minidocker.cluster import lab

        action(lab, lab.load(), node)
        click.echo(node)

    return command


_fault("unplug", "Pull NODE's cable: its port on the lab bridge goes down.",
       lambda lab, made, node: lab.unplug(made, node))
_fault("plug", "Put NODE's cable back.",
       lambda lab, made, node: lab.unplug(made, node, plugged=True))
_fault("partition", "Cut NODE off with iptables DROP on its eth0 (the link stays up).",
       lambda lab, made, node: lab.partition(made, node))
_fault("heal", "Remove NODE's partition.",
       lambda lab, made, node: lab.partition(made, node, healed=True))
_fault("crash", "Kill NODE's daemon (and its swarm agent) with SIGKILL.",
       lambda lab, made, node: lab.crash(made, node))


@cluster.command("restart", context_settings=CONTEXT)
@click.argument("node")
def cluster_restart(node):
    """Start again whatever of NODE's processes is not running: its daemon, and its swarm
    agent and manager."""
    require_root("cluster restart")
    from minidocker.cluster import lab, swarm

    made = lab.load()
    lab.restart(made, node)
    if made.etcd:
        lab.enter(made)
        swarm.ensure_agents(made, swarm.Store.for_lab(made))
    click.echo(node)


@cluster.command("etcd", context_settings=CONTEXT)
@click.argument("action", type=click.Choice(["stop", "start"]))
@click.argument("member")
def cluster_etcd(action, member):
    """Stop (SIGKILL) or start one etcd member, e.g. 'cluster etcd stop etcd1'."""
    require_root("cluster etcd")
    from minidocker.cluster import lab, swarm

    swarm.etcd_member(lab.load(), member, running=action == "start")
    click.echo(member)
