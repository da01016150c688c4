"""Published ports: ``-p``, ``-P``, ``--expose`` and the ``port`` command's lines.

``-p [ip:][hostPort:]containerPort[/tcp|udp]`` asks the host to forward ``hostPort`` (on
``ip``, default every address) to the container's port; ranges (``8000-8001:80-81``) pair
up one to one; a missing host port means "any free one". ``-P`` publishes every exposed port
(the image's ``ExposedPorts`` and ``--expose``) on a free ephemeral port.

A port is *in use* when a process on the host is bound to it (we try to bind(2) it ourselves)
or another container published it: then the run fails with Docker's message. A free port is
chosen the way the kernel chooses one: bind to port 0 and read what it gave.

Man pages: bind(2), ip(7) (ip_local_port_range). Docker: ``run -p/-P/--expose``, ``port``.
Used by: notebook 08-networking; lab 08-networking has the student build the same step by hand.
"""

import ipaddress
import re
import socket
from dataclasses import asdict, dataclass

from minidocker.errors import MinidockerError

SPEC = re.compile(r"^(?:(?P<ip>[0-9.]*):)?(?:(?P<host>[0-9-]*):)?(?P<container>[0-9-]+)"
                  r"(?:/(?P<proto>tcp|udp))?$")


@dataclass(frozen=True)
class PortBinding:
    """One published port: ``host_ip:host_port`` on the host -> ``container_port/proto``.
    ``host_port`` 0 means "pick a free one" until ``assign_host_ports`` does."""

    container_port: int
    proto: str = "tcp"
    host_ip: str = "0.0.0.0"
    host_port: int = 0

    def line(self) -> str:
        """As ``minidocker port`` prints it: ``80/tcp -> 0.0.0.0:8080``."""
        return f"{self.container_port}/{self.proto} -> {self.host_ip}:{self.host_port}"

    def to_json(self) -> dict:
        return asdict(self)


def _range(text: str, spec: str) -> list[int]:
    first, _, last = text.partition("-")
    try:
        low, high = int(first), int(last or first)
    except ValueError:
        raise MinidockerError(f"invalid port {text!r} in {spec!r}: give a number "
                              "between 1 and 65535, or a range like 8000-8010") from None
    if not 1 <= low <= high <= 65535:
        raise MinidockerError(f"invalid port range {text!r} in {spec!r}: ports go from 1 to "
                              "65535, low to high")
    return list(range(low, high + 1))


def parse_publish(spec: str) -> list[PortBinding]:
    """One ``-p`` value as bindings (several for a range)."""
    match = SPEC.match(spec)
    if not match:
        raise MinidockerError(f"invalid publish spec {spec!r}: use "
                              "[ip:][hostPort:]containerPort[/tcp|udp], e.g. 8080:80")
    ip, host, container = match["ip"], match["host"], match["container"]
    if host is None and ip is not None:
        ip, host = None, ip  # one colon: "8080:80" is hostPort:containerPort
    if ip:
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            raise MinidockerError(f"invalid IP address {ip!r} in -p {spec!r}: give the "
                                  "host's IPv4 address to listen on, e.g. 127.0.0.1:8080:80") \
                from None
    proto = match["proto"] or "tcp"
    container_ports = _range(container, spec)
    host_ports = _range(host, spec) if host else [0] * len(container_ports)
    if len(host_ports) != len(container_ports):
        if host and len(container_ports) == 1:  # "8000-8010:80": any free one of the range
            host_ports = host_ports[:1]
        else:
            raise MinidockerError(f"invalid ranges in {spec!r}: the host and container ranges "
                                  "must have the same length")
    return [PortBinding(c, proto, ip or "0.0.0.0", h)
            for c, h in zip(container_ports, host_ports, strict=True)]


def parse_expose(spec: str) -> list[tuple[int, str]]:
    """One ``--expose`` value (``80``, ``80/udp``, ``8000-8010``) as ``(port, proto)`` pairs."""
    port, _, proto = spec.partition("/")
    if proto not in ("", "tcp", "udp"):
        raise MinidockerError(f"invalid protocol in --expose {spec!r}: use tcp or udp")
    return [(p, proto or "tcp") for p in _range(port, spec)]


def publish_all(exposed: list[tuple[int, str]]) -> list[PortBinding]:
    """``-P``: every exposed port on a free host port."""
    return [PortBinding(port, proto) for port, proto in sorted(set(exposed))]


def bindable(host_ip: str, port: int, proto: str) -> bool:
    """Can a process bind(2) this address and port right now?"""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind((host_ip, port))
        except OSError:
            return False
    return True


def free_port(host_ip: str, proto: str) -> int:
    """A port the kernel considers free (bind to port 0: it picks from ip_local_port_range)."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((host_ip, 0))
        return probe.getsockname()[1]


def assign_host_ports(bindings: list[PortBinding],
                      taken: set[tuple[str, int, str]]) -> list[PortBinding]:
    """Fix each binding's host port: check the asked ones are free, pick free ones for 0.
    ``taken`` holds ``(host_ip, port, proto)`` already published by other containers."""
    chosen = []
    for binding in bindings:
        port = binding.host_port
        if port == 0:
            port = free_port(binding.host_ip, binding.proto)
            while _clash(binding.host_ip, port, binding.proto, taken):
                port = free_port(binding.host_ip, binding.proto)
        elif _clash(binding.host_ip, port, binding.proto, taken) or \
                not bindable(binding.host_ip, port, binding.proto):
            raise MinidockerError(f"Bind for {binding.host_ip}:{port} failed: port is already "
                                  "allocated. Publish another host port (-p OTHER:"
                                  f"{binding.container_port}) or stop what uses it.")
        taken.add((binding.host_ip, port, binding.proto))
        chosen.append(PortBinding(binding.container_port, binding.proto, binding.host_ip,
                                  port))
    return chosen


def _clash(host_ip: str, port: int, proto: str, taken: set[tuple[str, int, str]]) -> bool:
    return any(p == port and pr == proto and (ip == host_ip or "0.0.0.0" in (ip, host_ip))
               for ip, p, pr in taken)
