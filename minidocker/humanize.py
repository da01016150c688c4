"""Docker's words for a container's state and for time: "Up 3 seconds", "Exited (0) 2 minutes
ago", ``2026-12-04 18:18:51 +0000 UTC``, the PORTS column.

Both front ends speak them: the CLI's tables (cli/formatting.py) and the daemon's container
list (daemon/containers.py), whose ``Status`` field the docker CLI prints as it is. A record
is read only through its ``State`` and ``NetworkSettings`` dicts, so this module imports no
stage and every stage may use it.

Model: docker/cli ``cli/command/formatter/container.go``; moby's ``container/state.go``
(``State.String()``) and go-units' ``HumanDuration``.
"""

from datetime import UTC, datetime


def ports_of(record) -> str:
    """The PORTS column: what stage 8 published, as Docker prints it."""
    ports = record.NetworkSettings.get("Ports") or {}
    return ", ".join(f"{b['HostIp']}:{b['HostPort']}->{port}" for port, bindings in ports.items()
                     for b in bindings or [])


def status(record) -> str:
    """The STATUS column, in Docker's words."""
    state = record.State
    if state["Status"] == "running" and state.get("Health"):
        health = state["Health"]["Status"]
        health = "health: starting" if health == "starting" else health
        return f"Up {ago(state['StartedAt'])} ({health})"
    if state["Status"] == "running":
        return f"Up {ago(state['StartedAt'])}"
    if state["Status"] == "paused":
        return f"Up {ago(state['StartedAt'])} (Paused)"
    if state["Status"] == "restarting":
        return f"Restarting ({state['ExitCode']}) {ago(state['FinishedAt'])} ago"
    if state["Status"] == "exited":
        return f"Exited ({state['ExitCode']}) {ago(state['FinishedAt'])} ago"
    return state["Status"].capitalize()


def ago(timestamp: str) -> str:
    """How long ago, as Docker says it: "3 minutes", "Less than a second"."""
    if not timestamp:
        return "?"
    return duration((datetime.now(UTC) - datetime.fromisoformat(timestamp)).total_seconds())


def duration(seconds: float) -> str:
    """A duration in Docker's words (go-units' HumanDuration): whole seconds up to a minute,
    then "About a minute", whole minutes, "About an hour", rounded hours up to two days, then
    days, weeks, months (30 days) and years."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 60:
        return "1 second" if int(seconds) == 1 else f"{int(seconds)} seconds"
    minutes = int(seconds // 60)
    if minutes < 60:
        return "About a minute" if minutes == 1 else f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    for unit, size, below in (("hours", 1, 48), ("days", 24, 24 * 14), ("weeks", 24 * 7, 24 * 60),
                              ("months", 24 * 30, 24 * 365 * 2)):
        if hours < below:
            return f"{hours // size} {unit}"
    return f"{int(seconds // 3600) // (24 * 365)} years"


def created_at(timestamp: str) -> str:
    """The .CreatedAt field: Go's time format, ``2026-12-04 18:18:51 +0000 UTC``."""
    if not timestamp:
        return ""
    return datetime.fromisoformat(timestamp).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def size(value: float, digits: int = 3, binary: bool = False) -> str:
    """Bytes as Docker's go-units prints them: ``HumanSizeWithPrecision`` (powers of 1000,
    ``1.04MB``: 3 significant digits in ``docker images``, 4 in ``system df``) or, ``binary``,
    ``BytesSize`` (powers of 1024, ``1.5MiB``: the memory column of ``docker stats``)."""
    base, units = ((1024, ("B", "KiB", "MiB", "GiB", "TiB", "PiB")) if binary
                   else (1000, ("B", "kB", "MB", "GB", "TB", "PB")))
    for unit in units[:-1]:
        if value < base:
            return f"{value:.{digits}g}{unit}"
        value /= base
    return f"{value:.{digits}g}{units[-1]}"
