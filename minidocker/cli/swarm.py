"""``minidocker swarm|node|service ...`` (stage 14): Docker's swarm verbs, on the lab's nodes.

Each command joins the lab's network namespace, reads or writes the desired state in etcd
(cluster/swarm.py) and prints what ``docker`` prints; the leading manager does the rest.
``--node NAME`` (or ``$MINIDOCKER_NODE``) says which lab node "this node" is, as DOCKER_HOST
says which daemon the docker CLI talks to."""

import json
import os

import click

from minidocker.cli import CONTEXT, Group, main, require_root

NODE_OPTION = click.option("--node", "this_node", default=lambda: os.environ.get(
    "MINIDOCKER_NODE", "n1"), metavar="NAME", help="The lab node this command runs on "
    "[default: $MINIDOCKER_NODE or n1].")
CONVERGE_TIMEOUT = 60.0  # seconds without progress (swarm.wait_converged)


def connect_swarm():
    """The cluster code, the lab and its etcd store, for a command of ``swarm``, ``service``,
    ``node`` or ``stack`` (after the root check)."""
    require_root("swarm")
    from minidocker.cluster import swarm

    lab, store = swarm.connect()
    return swarm, lab, store


# --- swarm ---------------------------------------------------------------------------------------

@main.group(cls=Group, context_settings=CONTEXT)
def swarm():
    """Manage Swarm."""


@swarm.command("init", context_settings=CONTEXT)
@NODE_OPTION
@click.option("--strategy", default="spread", show_default=True,
              type=click.Choice(["spread", "binpack", "random"]),
              help="How the scheduler ranks the nodes a task may go to.")
def swarm_init(this_node, strategy):
    """Initialize a swarm, with this node as its first manager."""
    records, lab, store = connect_swarm()
    made, node = records.init(lab, store, this_node, strategy)
    click.echo(f"Swarm initialized: current node ({node['ID']}) is now a manager.\n\n"
               "To add a worker to this swarm, run the following command:\n\n"
               f"    minidocker swarm join --token {made['JoinTokens']['Worker']} "
               f"{node['Address']}:2377\n\n"
               "To add a manager to this swarm, run 'minidocker swarm join-token manager' "
               "and follow the instructions.\n")


@swarm.command("join-token", context_settings=CONTEXT)
@click.argument("role", type=click.Choice(["worker", "manager"]))
@click.option("-q", "--quiet", is_flag=True, help="Only display token.")
def swarm_join_token(role, quiet):
    """Manage join tokens."""
    records, lab, store = connect_swarm()
    token = records.swarm(store)["JoinTokens"][role.capitalize()]
    if quiet:
        click.echo(token)
        return
    click.echo(f"To add a {role} to this swarm, run the following command:\n\n"
               f"    minidocker swarm join --token {token} --node NODE\n")


@swarm.command("join", context_settings=CONTEXT)
@NODE_OPTION
@click.option("--token", required=True, help="Token for entry into the swarm.")
@click.argument("address", required=False)
def swarm_join(this_node, token, address):
    """Join a swarm as a node and/or manager."""
    records, lab, store = connect_swarm()
    node = records.join(lab, store, this_node, token)
    click.echo(f"This node joined a swarm as a {node['Role']}.")


@swarm.command("leave", context_settings=CONTEXT)
@NODE_OPTION
@click.option("-f", "--force", is_flag=True, help="Force this node to leave the swarm, "
              "ignoring warnings.")
def swarm_leave(this_node, force):
    """Leave the swarm."""
    records, lab, store = connect_swarm()
    records.leave(lab, store, this_node, force)
    click.echo("Node left the swarm.")


# --- node ----------------------------------------------------------------------------------------

@main.group(cls=Group, context_settings=CONTEXT)
def node():
    """Manage Swarm nodes."""


def node_object(record: dict, alive: dict, leader: str | None) -> dict:
    """A node as the Engine API's ``GET /nodes/{id}`` shows it."""
    status = alive.get(record["ID"])
    shown = {"ID": record["ID"], "CreatedAt": record["CreatedAt"],
             "Spec": {"Labels": record["Labels"], "Role": record["Role"],
                      "Availability": record["Availability"]},
             "Description": {"Hostname": record["Hostname"],
                             "Resources": (status or {}).get("Resources", {}),
                             "Engine": {"EngineVersion": (status or {}).get("EngineVersion",
                                                                            "")}},
             "Status": {"State": "ready" if status and not record.get("Left") else "down",
                        "Addr": record["Address"]}}
    if record["Role"] == "manager":
        shown["ManagerStatus"] = {"Leader": record["ID"] == leader,
                                  "Reachability": "reachable" if status else "unreachable",
                                  "Addr": f"{record['Address']}:2377"}
    return shown


def _nodes(records, store) -> tuple[dict, dict, str | None]:
    return (records.read_all(store, records.NODES), records.read_all(store, records.ALIVE),
            store.get(records.LEADER))


@node.command("ls", context_settings=CONTEXT)
@NODE_OPTION
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
@click.option("--format", "fmt", metavar="TEMPLATE", help="'json' or a Go template.")
def node_ls(this_node, quiet, fmt):
    """List nodes in the swarm."""
    from minidocker.cli.formatting import format_rows

    records, lab, store = connect_swarm()
    records.swarm(store)
    nodes, alive, leader = _nodes(records, store)
    rows = []
    for record in sorted(nodes.values(), key=lambda n: n["Hostname"]):
        shown = node_object(record, alive, leader)
        manager = shown.get("ManagerStatus", {})
        rows.append({"ID": record["ID"] + (" *" if record["Hostname"] == this_node else ""),
                     "Hostname": record["Hostname"],
                     "Status": shown["Status"]["State"].capitalize(),
                     "Availability": record["Availability"].capitalize(),
                     "ManagerStatus": "Leader" if manager.get("Leader") else
                     manager.get("Reachability", "").capitalize(),
                     "EngineVersion": shown["Description"]["Engine"]["EngineVersion"]})
    if quiet:
        click.echo("".join(r["ID"].split()[0] + "\n" for r in rows), nl=False)
        return
    table = ("table {{.ID}}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t"
             "{{.ManagerStatus}}\t{{.EngineVersion}}")
    headers = {"ID": "ID", "Hostname": "HOSTNAME", "Status": "STATUS",
               "Availability": "AVAILABILITY", "ManagerStatus": "MANAGER STATUS",
               "EngineVersion": "ENGINE VERSION"}
    click.echo(format_rows(rows, fmt, table, headers), nl=False)


@node.command("inspect", context_settings=CONTEXT)
@click.argument("refs", nargs=-1, required=True)
def node_inspect(refs):
    """Display detailed information on one or more nodes."""
    records, lab, store = connect_swarm()
    nodes, alive, leader = _nodes(records, store)
    shown = [node_object(records.find_node(store, ref), alive, leader) for ref in refs]
    click.echo(json.dumps(shown, indent=4))


def _labels(values: tuple[str, ...]) -> dict:
    return {k: v for k, _, v in (value.partition("=") for value in values)}


@node.command("update", context_settings=CONTEXT)
@click.option("--availability", type=click.Choice(["active", "pause", "drain"]),
              help="Availability of the node.")
@click.option("--label-add", multiple=True, metavar="KEY=VALUE", help="Add or update a node "
              "label.")
@click.option("--label-rm", multiple=True, metavar="KEY", help="Remove a node label.")
@click.option("--role", type=click.Choice(["worker", "manager"]), help="Role of the node.")
@click.argument("ref")
def node_update(availability, label_add, label_rm, role, ref):
    """Update a node."""
    records, lab, store = connect_swarm()
    if role:
        records.promote(lab, store, ref, role)
    records.update_node(store, ref, availability, _labels(label_add), label_rm)
    click.echo(ref)


def _role_command(name: str, role: str, said: str, help_text: str) -> None:
    """``node promote`` and ``node demote``: the same change of role, in two directions."""
    @node.command(name, context_settings=CONTEXT, help=help_text)
    @click.argument("refs", nargs=-1, required=True)
    def command(refs):
        records, lab, store = connect_swarm()
        for ref in refs:
            records.promote(lab, store, ref, role)
            click.echo(said.format(ref=ref))


_role_command("promote", "manager", "Node {ref} promoted to a manager in the swarm.",
              "Promote one or more nodes to manager in the swarm.")
_role_command("demote", "worker", "Manager {ref} demoted in the swarm.",
              "Demote one or more nodes from manager in the swarm.")


@node.command("rm", context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True, help="Force remove a node from the swarm.")
@click.argument("refs", nargs=-1, required=True)
def node_rm(force, refs):
    """Remove one or more nodes from the swarm."""
    records, lab, store = connect_swarm()
    for ref in refs:
        records.remove_node(store, ref, force)
        click.echo(ref)


# --- service -------------------------------------------------------------------------------------

@main.group(cls=Group, context_settings=CONTEXT)
def service():
    """Manage Swarm services."""


def _ports(values: tuple[str, ...]) -> list[dict]:
    """``--publish 8080:80`` (the routing mesh: every node) or the long form
    ``--publish mode=host,published=8080,target=80[,protocol=udp]`` (the task's node only)."""
    from minidocker.network.ports import parse_publish

    ports = []
    for value in values:
        if "=" in value:
            ports.append(_long_port(value))
            continue
        for binding in parse_publish(value):
            ports.append({"Protocol": binding.proto, "TargetPort": binding.container_port,
                          "PublishedPort": binding.host_port, "PublishMode": "ingress"})
    return ports


def _long_port(value: str) -> dict:
    from minidocker.cluster.swarm import SwarmError

    fields = dict(part.partition("=")[::2] for part in value.split(","))
    unknown = set(fields) - {"mode", "published", "target", "protocol"}
    mode, proto = fields.get("mode", "ingress"), fields.get("protocol", "tcp")
    if unknown or mode not in ("ingress", "host") or proto not in ("tcp", "udp") or \
            not fields.get("target", "").isdigit() or \
            not fields.get("published", "0").isdigit():
        raise SwarmError(f"invalid --publish {value!r}: use PUBLISHED:TARGET or "
                         "mode=host|ingress,published=N,target=N[,protocol=tcp|udp]")
    return {"Protocol": proto, "TargetPort": int(fields["target"]),
            "PublishedPort": int(fields.get("published", "0")), "PublishMode": mode}


def _wait(records, store, service: dict, detach: bool) -> None:
    if detach:
        return
    running, wanted, status = records.wait_converged(store, service, CONVERGE_TIMEOUT)
    ours = status.get("StartedAt", "") >= service.get("UpdatedAt", "")  # not an older update's
    if ours and status.get("State") in ("paused", "rollback_completed") and \
            "failure" in status.get("Message", ""):
        raise records.SwarmError(f"{service['Spec']['Name']}: {status['Message']}")
    click.echo(f"overall progress: {running} out of {wanted} tasks")
    if running == wanted:
        click.echo("verify: Service converged")
    else:
        raise click.ClickException(f"service {service['Spec']['Name']} did not converge (no "
                                   f"progress in {CONVERGE_TIMEOUT:.0f}s): see 'minidocker "
                                   f"service ps --explain {service['Spec']['Name']}'")


@service.command("create", context_settings={**CONTEXT, "allow_interspersed_args": False})
@click.option("--name", default="", help="Service name.")
@click.option("--replicas", type=click.IntRange(0), help="Number of tasks.")
@click.option("--mode", default="replicated", show_default=True,
              help="Service mode (replicated or global).")
@click.option("--constraint", multiple=True, help="Placement constraints, e.g. "
              "node.labels.zone==east.")
@click.option("--placement-pref", multiple=True, help="Add a placement preference, e.g. "
              "spread=node.labels.zone.")
@click.option("-p", "--publish", multiple=True, metavar="PUBLISHED:TARGET",
              help="Publish a port on every node (the routing mesh), or with "
              "mode=host,published=P,target=T on the task's node only.")
@click.option("--network", "networks", multiple=True, help="Network attachments (an overlay "
              "network's name, or name=NAME,alias=ALIAS).")
@click.option("-e", "--env", multiple=True, help="Set environment variables.")
@click.option("--limit-memory", default="", help="Limit Memory.")
@click.option("--reserve-memory", default="", help="Reserve Memory.")
@click.option("--reserve-cpu", default="", help="Reserve CPUs.")
@click.option("--strategy", type=click.Choice(["spread", "binpack", "random"]),
              help="This service's scheduling strategy [default: the swarm's].")
@click.option("-d", "--detach", is_flag=True, help="Exit immediately instead of waiting for "
              "the service to converge.")
@click.argument("image")
@click.argument("command", nargs=-1)
def service_create(name, replicas, mode, constraint, placement_pref, publish, networks, env,
                   limit_memory, reserve_memory, reserve_cpu, strategy, detach, image,
                   command):
    """Create a new service."""
    from minidocker.cgroups.limits import parse_bytes

    records, lab, store = connect_swarm()
    cpus = 0
    if reserve_cpu:
        try:
            cpus = int(float(reserve_cpu) * 1_000_000_000)
        except ValueError:
            raise records.SwarmError(f"invalid argument {reserve_cpu!r} for --reserve-cpu: "
                                     "use a number of CPUs, e.g. 0.5") from None
    spec = records.service_spec(
        name, image, list(command), replicas, mode, list(constraint), list(placement_pref),
        _ports(publish), list(env),
        parse_bytes("--limit-memory", limit_memory) if limit_memory else 0,
        parse_bytes("--reserve-memory", reserve_memory) if reserve_memory else 0, cpus,
        strategy=strategy or "")
    spec["TaskTemplate"]["Networks"] = _networks(store, list(networks), spec)
    made = records.create_service(store, spec)
    click.echo(made["ID"])
    _wait(records, store, made, detach)


def _networks(store, values: list[str], spec: dict) -> list[dict]:
    """``--network``: overlay networks by name (their IDs in the spec, as Docker keeps them),
    each with its aliases; a service that publishes through the mesh and names none joins
    ``ingress``."""
    from minidocker.cluster import overlay

    wanted = [_network_attachment(value) for value in values]
    joined = [{"Target": overlay.find(store, name)["ID"], "Aliases": aliases}
              for name, aliases in wanted]
    if not joined and overlay.mesh_ports({"Spec": spec}):
        joined = [{"Target": overlay.ingress(store)["ID"]}]
    return [{key: value for key, value in attachment.items() if value} for attachment in joined]


def _network_attachment(value: str) -> tuple[str, list[str]]:
    """``NAME`` or Docker's long form ``name=NAME,alias=A[,alias=B]``: (name, aliases)."""
    from minidocker.cluster.swarm import SwarmError

    if "=" not in value:
        return value, []
    pairs = [part.partition("=") for part in value.split(",")]
    names = [v for k, _, v in pairs if k == "name" and v]
    aliases = [v for k, _, v in pairs if k == "alias" and v]
    if len(names) != 1 or len(names) + len(aliases) != len(pairs):
        raise SwarmError(f"invalid --network {value!r}: use NAME or name=NAME[,alias=ALIAS...]")
    return names[0], aliases


def _published(service: dict) -> str:
    return ", ".join(f"*:{p['PublishedPort']}->{p['TargetPort']}/{p['Protocol']}"
                     for p in service["Spec"]["EndpointSpec"].get("Ports", []))


@service.command("ls", context_settings=CONTEXT)
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
@click.option("--format", "fmt", metavar="TEMPLATE", help="'json' or a Go template.")
def service_ls(quiet, fmt):
    """List services."""
    records, lab, store = connect_swarm()
    records.swarm(store)
    print_services(records, store, records.read_all(store, records.SERVICES).values(), quiet,
                   fmt)


def print_services(records, store, services, quiet: bool, fmt: str | None) -> None:
    """The table of ``service ls`` (and ``stack services``)."""
    from minidocker.cli.formatting import format_rows

    rows = []
    for made in sorted(services, key=lambda s: s["Spec"]["Name"]):
        running, wanted = records.replicas_of(store, made)
        mode = "replicated" if "Replicated" in made["Spec"]["Mode"] else "global"
        rows.append({"ID": made["ID"][:12], "Name": made["Spec"]["Name"], "Mode": mode,
                     "Replicas": f"{running}/{wanted}",
                     "Image": made["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"],
                     "Ports": _published(made)})
    if quiet:
        click.echo("".join(r["ID"] + "\n" for r in rows), nl=False)
        return
    table = "table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}"
    click.echo(format_rows(rows, fmt, table, {k: k.upper() for k in
                                              ("ID", "Name", "Mode", "Replicas", "Image",
                                               "Ports")}), nl=False)


def _task_rows(records, store, made: dict, nodes: dict) -> list[tuple[dict, dict]]:
    """Docker's order: by slot (or node), the task that should run first, then its history."""
    from minidocker.humanize import ago

    tasks = records.tasks_of(store, made["ID"])
    tasks.sort(key=lambda t: (str(t.get("Slot") or t.get("Pinned")),
                              t["DesiredState"] != "running", t["CreatedAt"][::-1]))
    rows, seen = [], set()
    for task in tasks:
        slot = task.get("Slot") or task.get("Pinned")
        prefix = " \\_ " if slot in seen else ""
        seen.add(slot)
        node_record = nodes.get(task.get("NodeID", ""), {})
        status = task["Status"]
        rows.append(({"ID": task["ID"][:12], "Name": f"{prefix}{made['Spec']['Name']}.{slot}",
                      "Image": made["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"],
                      "Node": node_record.get("Hostname", ""),
                      "DesiredState": task["DesiredState"].capitalize(),
                      "CurrentState": f"{status['State'].capitalize()} "
                                      f"{ago(status['Timestamp']).lower()} ago",
                      "Error": status.get("Err", ""),
                      "Ports": _published(made)}, task))
    return rows


@service.command("ps", context_settings=CONTEXT)
@click.option("-q", "--quiet", is_flag=True, help="Only display task IDs.")
@click.option("--explain", is_flag=True, help="Show the scheduler's decision for each task: "
              "which nodes each filter removed, how the candidates scored.")
@click.option("--format", "fmt", metavar="TEMPLATE", help="'json' or a Go template.")
@click.argument("refs", nargs=-1, required=True)
def service_ps(quiet, explain, fmt, refs):
    """List the tasks of one or more services."""
    records, lab, store = connect_swarm()
    print_tasks(records, store, [records.find_service(store, ref) for ref in refs], quiet,
                explain, fmt)


def print_tasks(records, store, services: list[dict], quiet: bool, explain: bool,
                fmt: str | None) -> None:
    """The table of ``service ps`` (and ``stack ps``), with the decisions if asked."""
    from minidocker.cli.formatting import format_rows

    nodes = records.read_all(store, records.NODES)
    rows = [row for made in services for row in _task_rows(records, store, made, nodes)]
    if quiet:
        click.echo("".join(row["ID"] + "\n" for row, _ in rows), nl=False)
        return
    table = ("table {{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t"
             "{{.CurrentState}}\t{{.Error}}\t{{.Ports}}")
    headers = {"ID": "ID", "Name": "NAME", "Image": "IMAGE", "Node": "NODE",
               "DesiredState": "DESIRED STATE", "CurrentState": "CURRENT STATE",
               "Error": "ERROR", "Ports": "PORTS"}
    click.echo(format_rows([row for row, _ in rows], fmt, table, headers), nl=False)
    if explain:
        for row, task in rows:
            if task.get("Explain") and not row["Name"].startswith(" "):
                click.echo(f"\n{row['Name']}: {task['Explain']}")


@service.command("inspect", context_settings=CONTEXT)
@click.argument("refs", nargs=-1, required=True)
def service_inspect(refs):
    """Display detailed information on one or more services."""
    records, lab, store = connect_swarm()
    click.echo(json.dumps([records.find_service(store, ref) for ref in refs], indent=4))


@service.command("logs", context_settings=CONTEXT)
@click.argument("ref")
def service_logs(ref):
    """Fetch the logs of a service's tasks, from each node's daemon."""
    from minidocker.cluster.engine import TASK_LABEL, Engine, EngineError

    records, lab, store = connect_swarm()
    made = records.find_service(store, ref)
    nodes = records.read_all(store, records.NODES)
    for task in sorted(records.tasks_of(store, made["ID"]), key=lambda t: t["CreatedAt"]):
        node_record = nodes.get(task.get("NodeID", ""))
        if not node_record or not task.get("ContainerID"):
            continue
        engine = Engine(node_record["Socket"])
        try:
            if not engine.containers(all=True, label=f"{TASK_LABEL}={task['ID']}"):
                continue
            raw = engine.logs(task["ContainerID"])
        except EngineError:
            continue
        prefix = (f"{made['Spec']['Name']}.{task.get('Slot') or task.get('Pinned')}."
                  f"{task['ID'][:12]}@{node_record['Hostname']}")
        for line in demultiplex(raw).splitlines():
            click.echo(f"{prefix}    | {line}")


def demultiplex(raw: bytes) -> str:
    """The Engine API's log stream: 8-byte frame headers (stream, size) before each chunk."""
    out, offset = [], 0
    while offset + 8 <= len(raw) and raw[offset] in (0, 1, 2) and raw[offset + 1:offset + 4] \
            == b"\0\0\0":
        size = int.from_bytes(raw[offset + 4:offset + 8], "big")
        out.append(raw[offset + 8:offset + 8 + size])
        offset += 8 + size
    return (b"".join(out) if out else raw).decode(errors="replace")


@service.command("scale", context_settings=CONTEXT)
@click.option("-d", "--detach", is_flag=True, help="Exit immediately instead of waiting for "
              "the service to converge.")
@click.argument("pairs", nargs=-1, required=True, metavar="SERVICE=REPLICAS...")
def service_scale(detach, pairs):
    """Scale one or multiple replicated services."""
    records, lab, store = connect_swarm()
    for pair in pairs:
        name, sep, count = pair.partition("=")
        if not sep or not count.isdigit():
            raise records.SwarmError(f"invalid scale specifier '{pair}': use SERVICE=REPLICAS")
        made = records.scale(store, name, int(count))
        click.echo(f"{name} scaled to {count}")
        _wait(records, store, made, detach)


@service.command("update", context_settings=CONTEXT)
@click.option("--image", help="Service image tag.")
@click.option("--args", help="Service command args (one string, split as a shell would).")
@click.option("--env-add", multiple=True, help="Add or update an environment variable.")
@click.option("--replicas", type=click.IntRange(0), help="Number of tasks.")
@click.option("--update-parallelism", type=click.IntRange(0), help="Maximum number of tasks "
              "updated simultaneously (0 to update all at once).")
@click.option("--update-delay", help="Delay between updates (ns|us|ms|s|m|h).")
@click.option("--update-monitor", help="Duration after each task update to monitor for "
              "failure (ns|us|ms|s|m|h) [default: 5s].")
@click.option("--update-failure-action", type=click.Choice(["pause", "continue", "rollback"]),
              help="Action on update failure.")
@click.option("--rollback", is_flag=True, help="Rollback to previous specification.")
@click.option("-d", "--detach", is_flag=True, help="Exit immediately instead of waiting for "
              "the service to converge.")
@click.argument("ref")
def service_update(image, args, env_add, replicas, update_parallelism, update_delay,
                   update_monitor, update_failure_action, rollback, detach, ref):
    """Update a service: a new task template rolls out a few tasks at a time."""
    import shlex

    from minidocker.cluster.update import parse_duration

    records, lab, store = connect_swarm()
    if rollback:
        made = records.rollback_service(store, ref)
    else:
        config = {key: value for key, value in (
            ("Parallelism", update_parallelism),
            ("Delay", parse_duration("--update-delay", update_delay) if update_delay else None),
            ("Monitor", parse_duration("--update-monitor", update_monitor)
             if update_monitor else None),
            ("FailureAction", update_failure_action)) if value is not None}
        made = records.update_service(store, ref, image,
                                      shlex.split(args) if args is not None else None,
                                      list(env_add), replicas, config)
    click.echo(ref)
    _wait(records, store, made, detach)


@service.command("rollback", context_settings=CONTEXT)
@click.option("-d", "--detach", is_flag=True, help="Exit immediately instead of waiting for "
              "the service to converge.")
@click.argument("ref")
def service_rollback(detach, ref):
    """Revert changes to a service's configuration."""
    records, lab, store = connect_swarm()
    made = records.rollback_service(store, ref)
    click.echo(ref)
    click.echo("rollback: manually requested rollback")
    _wait(records, store, made, detach)


@service.command("rm", context_settings=CONTEXT)
@click.argument("refs", nargs=-1, required=True)
def service_rm(refs):
    """Remove one or more services."""
    records, lab, store = connect_swarm()
    for ref in refs:
        records.remove_service(store, ref)
        click.echo(ref)
