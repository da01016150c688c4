"""The engine as a whole: ``events``, ``info``, ``system df``; the ``container ls`` and
``image ls`` aliases; and ``checkpoint`` and ``plugin``, which say that they are out of scope.

``events`` prints the engine's event log (minidocker/events.py) as ``docker events`` does —
one line per event, ``TIME TYPE ACTION ID (ATTRIBUTES)`` — and keeps following it until
``--until`` or Ctrl-C. ``info`` and ``system df`` print the facts of container/system.py.

Docker: ``docker events --help``, ``docker info``, ``docker system df``; docker/cli
``cli/command/system/events.go`` and ``formatter/disk_usage.go``.
"""

import sys
from datetime import datetime

import click

from minidocker.cli import CONTEXT, image, images, main
from minidocker.cli.flags import filter_option
from minidocker.cli.lifecycle import container, ps, system
from minidocker.humanize import size


@main.command(context_settings=CONTEXT)
@click.option("--since", metavar="TIME", help="Show events since a Unix timestamp, a date "
              "(2026-12-04T21:00:00) or a duration back from now (10m).")
@click.option("--until", metavar="TIME", help="Stream events until this time.")
@click.option("--format", "fmt", metavar="FORMAT", help="'json' or a Go template, e.g. "
              "'{{.Type}} {{.Action}} {{.Actor.Attributes.name}}'.")
@filter_option
def events(since, until, fmt, filters):
    """Get real time events from the engine (Ctrl-C stops)."""
    from minidocker import events as log
    from minidocker.cli.templates import parse
    from minidocker.filters import Filters

    wanted = Filters.parse(filters, log.FILTER_KEYS, "events").args
    since_ns = log.parse_time(since) if since else None
    until_ns = log.parse_time(until) if until else None
    template = parse("{{json .}}" if fmt == "json" else fmt) if fmt else None
    try:
        for event in log.follow(since_ns, until_ns):
            if log.matches(event, wanted):
                click.echo(template.execute(event) if template else event_line(event))
                sys.stdout.flush()
    except KeyboardInterrupt:
        pass


def event_line(event: dict) -> str:
    """``2026-12-04T21:00:00.123456789Z container start 3f2a... (image=busybox, name=web)``"""
    seconds, nanos = divmod(event["timeNano"], 1_000_000_000)
    when = datetime.fromtimestamp(seconds).astimezone()
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}" + _zone(when)
    attributes = event["Actor"].get("Attributes") or {}
    shown = ", ".join(f"{k}={v}" for k, v in sorted(attributes.items()))
    return (f"{stamp} {event['Type']} {event['Action']} {event['Actor']['ID']}"
            + (f" ({shown})" if shown else ""))


def _zone(when: datetime) -> str:
    offset = when.strftime("%z")
    return "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"


@main.command(context_settings=CONTEXT)
@click.option("-f", "--format", "fmt", metavar="FORMAT", help="A Go template, e.g. "
              "'{{.ServerVersion}}', or 'json'.")
def info(fmt):
    """Display system-wide information."""
    from minidocker.cli.templates import parse
    from minidocker.container.system import info as facts

    data = facts()
    if fmt:
        click.echo(parse("{{json .}}" if fmt == "json" else fmt).execute(data))
        return
    click.echo(info_text(data), nl=False)


def info_text(d: dict) -> str:
    from minidocker import __version__

    lines = ["Client:", f" Version:    {__version__}", " Context:    default", "",
             "Server:", f" Containers: {d['Containers']}", f"  Running: {d['ContainersRunning']}",
             f"  Paused: {d['ContainersPaused']}", f"  Stopped: {d['ContainersStopped']}",
             f" Images: {d['Images']}", f" Server Version: {d['ServerVersion']}",
             f" Storage Driver: {d['Driver']}",
             *(f"  {k}: {v}" for k, v in d["DriverStatus"]),
             f" Logging Driver: {d['LoggingDriver']}", f" Cgroup Driver: {d['CgroupDriver']}",
             f" Cgroup Version: {d['CgroupVersion']}", " Plugins:",
             *(f"  {kind}: {' '.join(names)}" for kind, names in d["Plugins"].items()
               if names),  # dockerd's Authorization: null
             f" Swarm: {d['Swarm']['LocalNodeState']}",
             f" Runtimes: {' '.join(d['Runtimes'])}", f" Default Runtime: {d['DefaultRuntime']}",
             " Security Options:", *(f"  {o.split(',')[0].removeprefix('name=')}"
                                     for o in d["SecurityOptions"]),
             f" Kernel Version: {d['KernelVersion']}",
             f" Operating System: {d['OperatingSystem']}", f" OSType: {d['OSType']}",
             f" Architecture: {d['Architecture']}", f" CPUs: {d['NCPU']}",
             f" Total Memory: {d['MemTotal'] / 2**30:.4g}GiB", f" Name: {d['Name']}",
             f" Docker Root Dir: {d['DockerRootDir']}", f" Debug Mode: {str(d['Debug']).lower()}",
             f" Experimental: {str(d['ExperimentalBuild']).lower()}"]
    return "\n".join(lines) + "\n"


@system.command("df", context_settings=CONTEXT)
@click.option("--format", "fmt", metavar="FORMAT", help="'json' or a Go template (fields: "
              ".Type .TotalCount .Active .Size .Reclaimable).")
def system_df(fmt):
    """Show minidocker's disk usage: images, containers, volumes."""
    from minidocker.cli.formatting import format_rows
    from minidocker.container.system import disk_usage

    rows = df_rows(disk_usage())
    click.echo(format_rows(rows, fmt, DF_TABLE, DF_HEADERS), nl=False)


DF_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}


def df_rows(usage: dict) -> list[dict]:
    """The four rows of ``docker system df``, with docker/cli's arithmetic: an image in use
    keeps its own layers (not those it shares); a stopped container's writable layer and an
    unused volume's files can be reclaimed."""
    images, containers, vols = usage["Images"], usage["Containers"], usage["Volumes"]
    total = usage["LayersSize"]
    used = sum(i["Size"] - i["SharedSize"] for i in images if i["Containers"])
    rw = sum(c["SizeRw"] for c in containers)
    volume_size = sum(v["UsageData"]["Size"] for v in vols)
    return [
        _df_row("Images", len(images), sum(1 for i in images if i["Containers"]), total,
                total - used),
        _df_row("Containers", len(containers), sum(1 for c in containers if c["Running"]), rw,
                sum(c["SizeRw"] for c in containers if not c["Running"])),
        _df_row("Local Volumes", len(vols), sum(1 for v in vols if v["UsageData"]["RefCount"]),
                volume_size, sum(v["UsageData"]["Size"] for v in vols
                                 if not v["UsageData"]["RefCount"])),
        _df_row("Build Cache", 0, 0, 0, 0),
    ]


def _df_row(kind: str, count: int, active: int, total: int, reclaimable: int) -> dict:
    """Sizes as go-units' ``HumanSize`` (4 significant digits), the share in percent."""
    shown = size(reclaimable, 4)
    if total > 0:
        shown += f" ({reclaimable * 100 // total}%)"
    return {"Type": kind, "TotalCount": str(count), "Active": str(active),
            "Size": size(total, 4), "Reclaimable": shown}


# --- aliases, as Docker's management commands ------------------------------------------------

container.add_command(ps, "ls")
container.add_command(ps, "list")
image.add_command(images, "ls")
image.add_command(images, "list")


# --- out of scope ------------------------------------------------------------------------------

OUT_OF_SCOPE = {
    "checkpoint": "checkpoint/restore needs CRIU, which saves a process tree to disk and "
                  "rebuilds it; minidocker's course stops before it",
    "plugin": "Docker's managed plugins (volume, network and authorization drivers in "
              "containers) are beyond minidocker: its volume and network drivers are built in",
}


def _out_of_scope(name: str, reason: str) -> click.Command:
    @click.command(name, context_settings={**CONTEXT, "ignore_unknown_options": True},
                   help=f"Out of scope for minidocker ({reason.split(',')[0]}).")
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args):
        from minidocker.errors import MinidockerError

        raise MinidockerError(f"'{name}' is out of scope: {reason}.")

    return command


for _name, _reason in OUT_OF_SCOPE.items():
    main.add_command(_out_of_scope(_name, _reason))
