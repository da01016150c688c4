"""Commands on one container's files and resources: ``cp``, ``stats``, ``update``.

``cp`` is container/archive.py (both ways, the same safe archive code as the Engine API's
``/containers/{id}/archive``); ``stats`` reads each container's cgroup through the driver's
``stats()`` (stage 3) and draws a live table with rich, as ``docker stats`` does; ``update``
writes new limits into a running container's cgroup and its record.

Docker: ``docker cp --help``, ``docker stats --help``, ``docker update --help``.
"""

import click

from minidocker.cli import CONTEXT, main, require_root
from minidocker.humanize import size


@main.command(context_settings=CONTEXT)
@click.option("-a", "--archive", "keep_owners", is_flag=True, help="Archive mode (copy all "
              "uid/gid information).")
@click.option("-L", "--follow-link", is_flag=True, help="Always follow a symbol link in "
              "SRC_PATH.")
@click.argument("source")
@click.argument("destination")
def cp(keep_owners, follow_link, source, destination):
    """Copy files between a container and the host.

    \b
      minidocker cp CONTAINER:SRC_PATH DEST_PATH|-
      minidocker cp SRC_PATH CONTAINER:DEST_PATH
    SRC_PATH/. copies a directory's contents; a DEST_PATH ending in / must be a directory.
    """
    require_root("cp")
    from minidocker.container import archive, lifecycle
    from minidocker.errors import MinidockerError

    inside_src, inside_dst = _split_container(source), _split_container(destination)
    if bool(inside_src) == bool(inside_dst):
        raise MinidockerError("copying between containers or between host paths is not "
                              "supported: one of SRC and DEST must be CONTAINER:PATH")
    if inside_src:
        name, path = inside_src
        archive.copy_from(lifecycle.find(name), path, destination, keep_owners, follow_link)
    else:
        name, path = inside_dst
        archive.copy_to(lifecycle.find(name), source, path, keep_owners, follow_link)


def _split_container(arg: str) -> tuple[str, str] | None:
    """``CONTAINER:PATH`` -> (container, path); a local path (with ``/`` or ``.`` before any
    ``:``) -> None, as docker/cli's ``splitCpArg``."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None
    name, _, path = arg.partition(":")
    return (name, path) if name and "/" not in name else None


# --- stats ------------------------------------------------------------------------------------

STATS_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
               "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")
STATS_HEADERS = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME",
                 "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
                 "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}


@main.command(context_settings=CONTEXT)
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default "
              "shows just running).")
@click.option("--no-stream", is_flag=True, help="Print one result and exit.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the IDs.")
@click.option("--format", "fmt", metavar="FORMAT", help="'table TEMPLATE', 'json' or a Go "
              "template (fields: .ID .Name .CPUPerc .MemUsage .MemPerc .NetIO .BlockIO .PIDs).")
@click.argument("containers", nargs=-1)
def stats(show_all, no_stream, no_trunc, fmt, containers):
    """Display a live stream of containers' resource usage (Ctrl-C stops)."""
    import time

    from minidocker.cli.formatting import format_rows
    from minidocker.container import lifecycle, resources

    def chosen():
        if containers:
            return [lifecycle.find(name) for name in containers]
        return [r for r in lifecycle.current_records()
                if show_all or r.status in lifecycle.ACTIVE]

    previous: dict[str, dict] = {}

    def table() -> str:
        rows = []
        for record in chosen():
            sample = resources.stats(record, previous.get(record.Id))
            previous[record.Id] = sample
            rows.append(stats_row(sample, record.Id if no_trunc else record.Id[:12]))
        return format_rows(rows, fmt, STATS_TABLE, STATS_HEADERS)

    if no_stream:
        table()  # the first sample: a CPU percentage needs the time between two
        time.sleep(1)
        click.echo(table(), nl=False)
        return
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    try:
        with Live(Text(table()), console=Console(highlight=False), auto_refresh=False) as live:
            while True:
                time.sleep(1)
                live.update(Text(table()), refresh=True)
    except KeyboardInterrupt:
        pass


def stats_row(sample: dict, shown_id: str) -> dict:
    """One row of ``docker stats``, computed as docker/cli computes it from the API's
    ``ContainerStats``: CPU % from the two samples' deltas, memory without the page cache
    the kernel can take back, network and disk bytes summed."""
    cpu, pre = sample["cpu_stats"], sample["precpu_stats"]
    cpu_delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    percent = (cpu_delta / system_delta * cpu.get("online_cpus", 1) * 100
               if system_delta > 0 and cpu_delta > 0 and pre["cpu_usage"]["total_usage"]
               else 0.0)
    memory = sample["memory_stats"]
    usage, limit = memory.get("usage", 0), memory.get("limit", 0)
    cache = memory.get("stats", {}).get("total_inactive_file",
                                        memory.get("stats", {}).get("inactive_file", 0))
    usage = usage - cache if cache < usage else usage
    networks = (sample.get("networks") or {}).values()
    blkio = sample["blkio_stats"].get("io_service_bytes_recursive") or []
    running = sample["read"] != "0001-01-01T00:00:00Z"
    return {
        "ID": shown_id, "Container": shown_id, "Name": sample["name"].lstrip("/"),
        "CPUPerc": f"{percent:.2f}%" if running else "--",
        "MemUsage": (f"{size(usage, 4, binary=True)} / {size(limit, 4, binary=True)}"
                     if running else "-- / --"),
        "MemPerc": f"{usage / limit * 100:.2f}%" if running and limit else "--",
        "NetIO": (f"{size(sum(n['rx_bytes'] for n in networks))} / "
                  f"{size(sum(n['tx_bytes'] for n in networks))}") if running else "--",
        "BlockIO": (f"{size(sum(b['value'] for b in blkio if b['op'] == 'read'))} / "
                    f"{size(sum(b['value'] for b in blkio if b['op'] == 'write'))}")
        if running else "--",
        "PIDs": str(sample["pids_stats"].get("current", 0)) if running else "--",
    }


# --- update -----------------------------------------------------------------------------------

def parsed_as(kind: str):
    """A value Docker's CLI parses itself (a size, a number): one that does not parse is a
    bad flag, 125, before any container is asked; the engine then checks the range."""
    def check(ctx, param, value):
        from minidocker.cgroups.limits import parse_bytes
        from minidocker.errors import MinidockerError

        try:
            if value is not None and not (kind == "bytes" and value == "-1"):  # swap: unlimited
                {"bytes": lambda text: parse_bytes(param.opts[-1], text), "integer": int,
                 "number": float}[kind](value)
        except MinidockerError as exc:
            raise click.BadParameter(str(exc)) from None
        except ValueError:
            raise click.BadParameter(f"'{value}' is not a "
                                     f"{'whole number' if kind == 'integer' else kind}") from None
        return value
    return check


@main.command(context_settings=CONTEXT)
@click.option("-m", "--memory", metavar="BYTES", callback=parsed_as("bytes"),
              help="Memory limit (e.g. 64m).")
@click.option("--memory-swap", metavar="BYTES", callback=parsed_as("bytes"),
              help="Memory plus swap; -1 = unlimited swap.")
@click.option("--memory-reservation", metavar="BYTES", callback=parsed_as("bytes"),
              help="Memory soft limit.")
@click.option("--cpus", metavar="N", callback=parsed_as("number"),
              help="Number of CPUs (e.g. 0.5).")
@click.option("-c", "--cpu-shares", metavar="N", callback=parsed_as("integer"),
              help="CPU shares (relative weight).")
@click.option("--cpu-period", metavar="US", callback=parsed_as("integer"),
              help="CFS period in microseconds.")
@click.option("--cpu-quota", metavar="US", callback=parsed_as("integer"),
              help="CFS quota in microseconds per period.")
@click.option("--cpuset-cpus", metavar="LIST", help="CPUs it may run on (0-1, 0,2).")
@click.option("--cpuset-mems", metavar="LIST", help="Memory nodes it may use.")
@click.option("--pids-limit", metavar="N", callback=parsed_as("integer"),
              help="Maximum number of processes (-1: unlimited).")
@click.option("--blkio-weight", metavar="N", callback=parsed_as("integer"),
              help="Block IO weight (10-1000).")
@click.option("--restart", metavar="POLICY", help="no, on-failure[:N], always or "
              "unless-stopped.")
@click.argument("containers", nargs=-1, required=True)
def update(memory, memory_swap, memory_reservation, cpus, cpu_shares, cpu_period, cpu_quota,
           cpuset_cpus, cpuset_mems, pids_limit, blkio_weight, restart, containers):
    """Update the resource limits (and restart policy) of one or more containers."""
    require_root("update")
    import dataclasses

    from minidocker.cgroups import build_limits
    from minidocker.cli.lifecycle import _each
    from minidocker.container import resources
    from minidocker.container.config import RestartPolicy
    from minidocker.errors import MinidockerError

    changes = build_limits(memory=memory, memory_swap=memory_swap,
                           memory_reservation=memory_reservation, cpus=cpus,
                           cpu_shares=cpu_shares, cpu_period=cpu_period, cpu_quota=cpu_quota,
                           cpuset_cpus=cpuset_cpus, cpuset_mems=cpuset_mems,
                           pids_limit=pids_limit, blkio_weight=blkio_weight)
    if pids_limit is not None and changes.pids_limit is None:  # 0 or -1: unlimited again
        changes = dataclasses.replace(changes, pids_limit=-1)
    policy = RestartPolicy.parse(restart) if restart else None
    if not changes.any() and policy is None:
        raise MinidockerError("you must provide one or more flags when using this command "
                              "(e.g. --memory 64m, --cpus 0.5, --restart always)")

    def one(record):
        for warning in resources.update(record, changes, policy):
            click.echo(f"WARNING: {warning}", err=True)

    _each(one, containers)
