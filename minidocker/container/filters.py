"""Stage 6 — ``ps --filter``: which containers a listing shows, by Docker's keys.

``id`` (a prefix), ``name`` (a regular expression), ``label``, ``status`` (created, running,
paused, restarting, exited...), ``exited`` (an exit code), ``ancestor`` (the image: a name,
``name:tag`` or an ID), ``before`` / ``since`` (another container), ``network``, ``volume``
(a volume name, a bind's source or a mount's destination), ``expose`` and ``publish`` (a
port, ``PORT/PROTO`` or a range ``8000-8080/tcp``), ``health`` (starting, healthy, unhealthy,
none: see health.py). The rules shared by every listing are in
minidocker/filters.py.

Docker: ``docker ps --help``, "Filtering". Used by: ``minidocker ps``, (later) the Engine
API's ``GET /containers/json``.
"""

import functools

from minidocker.container import health, records
from minidocker.errors import MinidockerError
from minidocker.filters import Filters

CONTAINER_FILTERS = ("ancestor", "before", "expose", "exited", "health", "id", "label", "name",
                     "network", "publish", "since", "status", "volume")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
HEALTH = ("starting", "healthy", "unhealthy", "none")


def parse(items) -> Filters:
    filters = Filters.parse(items, CONTAINER_FILTERS, "ps")
    for status in filters.args.get("status", []):
        if status not in STATUSES:
            raise MinidockerError(f"invalid filter 'status={status}': use one of "
                                  f"{', '.join(STATUSES)}")
    for status in filters.args.get("health", []):
        if status not in HEALTH:
            raise MinidockerError(f"invalid filter 'health={status}': use one of "
                                  f"{', '.join(HEALTH)}")
    for code in filters.args.get("exited", []):
        if not code.lstrip("-").isdigit():
            raise MinidockerError(f"invalid filter 'exited={code}': give an exit code, "
                                  "e.g. exited=0")
    for key in ("expose", "publish"):  # before any container is looked at (moby's foldFilter)
        for spec in filters.args.get(key, []):
            port_range(key, spec)
    return filters


def shows_all(filters: Filters) -> bool:
    """``status=`` or ``exited=`` list stopped containers without ``-a``, as Docker does."""
    return "status" in filters or "exited" in filters


def select(containers: list[records.ContainerRecord],
           filters: Filters) -> list[records.ContainerRecord]:
    """The containers every filter matches."""
    created = functools.cache(lambda name: records.find(name).Created)
    ancestors = functools.cache(image_ids)
    return [c for c in containers if matches(c, filters, created, ancestors)]


def matches(c: records.ContainerRecord, f: Filters, created, ancestors) -> bool:
    return (f.match("id", c.Id.startswith) and f.match_name(c.Name)
            and f.match_labels(c.Config.Labels)
            and f.match("status", lambda status: c.status == status)
            and f.match("health", lambda status: health.status_of(c) == status)
            and f.match("exited", lambda code: c.status == "exited"
                        and c.State.get("ExitCode") == int(code))
            and f.match("ancestor", lambda image: c.Image in ancestors(image)
                        or c.Config.Image == image)
            and f.match("network", lambda net: any(net == name or net and nid.startswith(net)
                                                   for name, nid in networks_of(c)))
            and f.match("volume", lambda v: any(v in (m.get("Name"), m.get("Source"),
                                                      m.get("Destination")) for m in c.Mounts))
            and f.match("expose", lambda spec: port_in("expose", spec, c.Config.ExposedPorts))
            and f.match("publish", lambda spec: port_in("publish", spec, published_ports(c)))
            and f.match_created(c.Created, created))


def image_ids(reference: str) -> set[str]:
    """The image a reference names (a name, name:tag or an ID prefix), or none."""
    from minidocker.image.store import ImageStore  # only when ancestor= is asked for

    try:
        return {ImageStore().get(reference).id}
    except MinidockerError:
        return set()


def networks_of(c: records.ContainerRecord) -> list[tuple[str, str]]:
    """``(name, id)`` of each network the container is on (its mode, when not attached)."""
    attached = c.NetworkSettings.get("Networks") or {}
    return [(name, e.get("NetworkID", "")) for name, e in attached.items()] or \
        [(str(c.HostConfig.NetworkMode), "")]


def published_ports(c: records.ContainerRecord) -> set[str]:
    """``PORT/PROTO`` of each published container port (-p, and -P once started)."""
    return ({f"{b.container_port}/{b.proto}" for b in c.HostConfig.PortBindings}
            | set(c.NetworkSettings.get("Ports") or {}))


def port_in(key: str, spec: str, ports) -> bool:
    """``80``, ``53/udp`` or ``8000-8080/tcp`` among ``ports`` (``"80/tcp"`` keys)."""
    wanted, proto = port_range(key, spec)
    return any(int(port.partition("/")[0]) in wanted
               and (port.partition("/")[2] or "tcp") == proto for port in ports)


def port_range(key: str, spec: str) -> tuple[range, str]:
    """The ports and protocol (tcp when none is given) of an ``expose``/``publish`` value."""
    numbers, _, proto = spec.partition("/")
    first, _, last = numbers.partition("-")
    if not first.isdigit() or not (last or first).isdigit():
        raise MinidockerError(f"invalid filter '{key}={spec}': use {key}=PORT[/PROTO] or "
                              f"{key}=START-END[/PROTO], e.g. {key}=80/tcp")
    return range(int(first), int(last or first) + 1), proto or "tcp"
