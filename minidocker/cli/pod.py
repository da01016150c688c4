"""``minidocker pod ...`` (stage 14): create, ls, inspect, start, stop, rm — podman's verbs.

A pod is an infra container and the containers that joined its namespaces with ``run --pod``
(minidocker/cluster/pods.py).
"""

import functools

import click

from minidocker.cli import CONTEXT, Group, main, require_root

# podman's columns for ``pod ls``
POD_HEADERS = {"ID": "POD ID", "Name": "NAME", "Status": "STATUS", "Created": "CREATED",
               "InfraID": "INFRA ID", "NumberOfContainers": "# OF CONTAINERS",
               "ContainerNames": "NAMES", "Labels": "LABELS"}
POD_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.Status}}\t{{.Created}}\t{{.InfraID}}\t"
             "{{.NumberOfContainers}}")


@main.group(cls=Group, context_settings=CONTEXT)
def pod():
    """Manage pods: containers sharing a network, IPC and UTS namespace and a volume."""


@pod.command("create", context_settings=CONTEXT)
@click.option("--name", help="The pod's name (default: a random one).")
@click.option("-p", "--publish", multiple=True, metavar="[IP:]HOST:CTR[/PROTO]",
              help="Publish a port of the pod (its containers' ports are its own).")
@click.option("-h", "--hostname", help="The host name its containers share (default: its name).")
@click.option("--network", "--net", "network", default="bridge", metavar="NETWORK",
              help="The network the pod joins (default bridge).")
@click.option("-l", "--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="Set metadata on the pod (repeatable).")
@click.option("-v", "--volume", "volumes", multiple=True, metavar="SRC:DST[:ro]",
              help="A volume mounted in every container of the pod (repeatable).")
@click.argument("pod_name", required=False, metavar="[NAME]")
def pod_create(name, publish, hostname, network, labels, volumes, pod_name):
    """Create a pod (its infra container, not started yet) and print its ID. Name it with
    NAME or --name, as podman does."""
    require_root("pod create")
    from minidocker.cli.flags import check_hostname
    from minidocker.cli.flags import labels as parse_labels
    from minidocker.cli.registry import ensure_image
    from minidocker.cluster import pods
    from minidocker.errors import MinidockerError
    from minidocker.network import ports

    if name and pod_name:  # podman's words
        raise MinidockerError("cannot specify --name and NAME at the same time: give the "
                              "pod's name once")
    spec = pods.PodSpec(name=name or pod_name or "", hostname=check_hostname(hostname or ""),
                        network=network, labels=parse_labels(labels, ()),
                        publish=[b for item in publish for b in ports.parse_publish(item)],
                        volumes=list(volumes))
    ensure_image(pods.INFRA_IMAGE, "missing")
    click.echo(pods.create_pod(spec).id)


@pod.command("ls", context_settings=CONTEXT)
@click.option("-q", "--quiet", is_flag=True, help="Only display pod IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the IDs.")
@click.option("--ctr-names", is_flag=True, help="Show the names of each pod's containers.")
@click.option("--format", "fmt", metavar="FORMAT", help="'table TEMPLATE', 'json' or a Go "
              "template (fields: .ID .Name .Status .Created .InfraID .NumberOfContainers "
              ".ContainerNames .Labels).")
def pod_ls(quiet, no_trunc, ctr_names, fmt):
    """List pods (podman's 'pod ps' too)."""
    from minidocker.cli.formatting import format_rows
    from minidocker.cluster import pods

    rows = [pod_row(p, no_trunc) for p in pods.list_pods()]
    if quiet:
        click.echo("".join(f"{row['ID']}\n" for row in rows), nl=False)
        return
    default = POD_TABLE + ("\t{{.ContainerNames}}" if ctr_names else "")
    click.echo(format_rows(rows, fmt, default, POD_HEADERS), nl=False)


pod.add_command(pod_ls, "ps")


def pod_row(p, no_trunc: bool = False) -> dict:
    from minidocker.humanize import ago

    cut = (lambda text: text) if no_trunc else (lambda text: text[:12])
    return {"ID": cut(p.id), "Name": p.name, "Status": p.status,
            "Created": f"{ago(p.infra.Created)} ago", "InfraID": cut(p.infra.Id), "NumberOfContainers": str(1 + len(p.members)),
            "ContainerNames": ",".join(r.Name for r in [p.infra, *p.members]),
            "Labels": ",".join(f"{k}={v}" for k, v in p.inspect()["Labels"].items())}


@pod.command("inspect", context_settings=CONTEXT)
@click.argument("names", nargs=-1, required=True)
def pod_inspect(names):
    """Show details of one or more pods, as JSON."""
    import json

    from minidocker.cluster import pods

    click.echo(json.dumps([pods.find_pod(name).inspect() for name in names], indent=4))


def each_pod(verb: str, *options):
    """Make ``act(pod, **flags)`` the command ``pod VERB [OPTIONS] POD...`` (as compose.py's
    ``each_container``): each pod in turn, its ID printed when done, as podman does; an error
    is reported and the others still go (exit 1 at the end)."""
    def register(act):
        @click.argument("names", nargs=-1, required=True)
        @functools.wraps(act)
        def command(names, **flags):
            require_root(f"pod {verb}")
            _each(names, act, flags)

        for option in options:
            command = option(command)
        return pod.command(verb, context_settings=CONTEXT)(command)
    return register


STOP_TIMEOUT = click.option("-t", "--time", "timeout", type=int, metavar="SECONDS",
                            help="Seconds to wait before killing each container (default 10).")


@each_pod("start")
def pod_start(found):
    """Start pods: the infra container, then the pod's containers."""
    from minidocker.cluster import pods

    pods.start_pod(found)


@each_pod("stop", STOP_TIMEOUT)
def pod_stop(found, timeout):
    """Stop pods: the pod's containers, then the infra container."""
    from minidocker.cluster import pods

    pods.stop_pod(found, timeout=timeout)


@each_pod("restart", STOP_TIMEOUT)
def pod_restart(found, timeout):
    """Restart pods: stop them, then start the infra container and the pod's containers."""
    from minidocker.cluster import pods

    pods.restart_pod(found, timeout=timeout)


@each_pod("rm", click.option("-f", "--force", is_flag=True,
                             help="Kill running containers, then remove."))
def pod_rm(found, force):
    """Remove pods: their containers, the infra container and the shared volume."""
    from minidocker.cluster import pods

    pods.remove_pod(found, force=force)


def _each(names, act, flags: dict) -> None:
    """``act(pod, **flags)`` on each pod named, in turn (see ``each_pod``)."""
    import sys

    from minidocker.cluster import pods
    from minidocker.errors import MinidockerError

    failed = False
    for name in names:
        try:
            found = pods.find_pod(name)
            act(found, **flags)
            click.echo(found.id)
        except MinidockerError as exc:
            click.echo(f"minidocker: {exc}", err=True)
            failed = True
    if failed:
        sys.exit(1)
