"""Stage 6 meets stage 8: what one start of a container asks of the network.

``NetworkPlan`` is the container's side of ``minidocker/network``: the parent's attach while
PID 1 waits in its fresh network namespace (veth, address, NAT, published ports), the /etc
files bind-mounted inside, the release when it ends, and the ``NetworkSettings`` that
``inspect`` and ``ps`` show. ``link_environment`` is what ``--link`` tells the program.
pyroute2 is imported only when a container has a network: ``--network none`` never loads it.

Man pages: veth(4), ip-link(8), iptables(8), hosts(5), resolv.conf(5).
"""

from minidocker import kernel, volumes
from minidocker.container import records
from minidocker.container.config import HostConfig


def exposed_ports(exposed: dict) -> list[tuple[int, str]]:
    """Config.ExposedPorts (``{"80/tcp": {}}``) as sorted ``(port, proto)`` pairs."""
    pairs = {(int(key.partition("/")[0]), key.partition("/")[2] or "tcp") for key in exposed}
    return sorted(pairs)


def connect(record: records.ContainerRecord, network_ref: str, aliases: list[str],
            ip: str = "") -> None:
    """``network connect [--ip IP]``: a running container gets an endpoint now; every
    container keeps the network in its configuration (``HostConfig.MoreNetworks``, its fixed
    address in ``MoreIPAMConfig``), so each later start joins it again, as Docker's containers
    do (docker-compose connects each container before it starts it). A fixed address is
    checked now either way, and claimed when the endpoint is made."""
    from minidocker.network import networks

    name = networks.inspect(network_ref)["Name"]
    if record.status in ("running", "paused"):
        networks.connect(name, record.Id, aliases, ip)
    elif ip:
        networks.check_address(name, ip)
    _remember(record, name, aliases, ip)


def disconnect(record: records.ContainerRecord, network_ref: str) -> None:
    """``network disconnect``: the endpoint goes now, if it runs, and from its configuration."""
    from minidocker.network import networks

    name = networks.inspect(network_ref)["Name"]
    if record.status in ("running", "paused"):
        networks.disconnect(name, record.Id)
    _remember(record, name, None)


def _remember(record: records.ContainerRecord, name: str, aliases: list[str] | None,
              ip: str = "") -> None:
    """The network of ``--network`` itself keeps its place (only its aliases and address
    change); the others are added to or removed from ``MoreNetworks``."""
    fixed = {"IPv4Address": ip} if ip else {}
    with record.locked():
        host = record.HostConfig
        if name == host.NetworkMode.network and aliases is None:
            host.NetworkAliases, host.IPAMConfig = [], {}
        elif name == host.NetworkMode.network:
            host.NetworkAliases = list(dict.fromkeys([*host.NetworkAliases, *aliases]))
            host.IPAMConfig = fixed or host.IPAMConfig
        elif aliases is None:
            host.MoreNetworks.pop(name, None)
            host.MoreIPAMConfig.pop(name, None)
        else:
            host.MoreNetworks[name] = list(dict.fromkeys(
                [*host.MoreNetworks.get(name, []), *aliases]))
            if fixed:
                host.MoreIPAMConfig[name] = fixed


def fixed_address(host: HostConfig, network: str) -> dict:
    """The IPAMConfig asked for on ``network`` (``--ip``, ``NetworkingConfig``, ``network
    connect --ip``), ``{}`` for none."""
    if network == host.NetworkMode.network:
        return host.IPAMConfig
    return host.MoreIPAMConfig.get(network, {})


def link_environment(links: list[str]) -> dict[str, str]:
    """What ``--link web:site`` tells the program, as Docker's legacy links do: SITE_NAME,
    SITE_PORT_80_TCP=tcp://IP:80 (and _ADDR, _PORT, _PROTO) for each exposed port, and the
    linked container's own variables as SITE_ENV_*."""
    env = {}
    for link in links:
        name, _, alias = link.partition(":")
        other = records.find(name)
        prefix = (alias or other.Name).upper().replace("-", "_").replace(".", "_")
        address = other.NetworkSettings.get("IPAddress", "")
        env[f"{prefix}_NAME"] = f"/{other.Name}/{alias or other.Name}"
        for index, (port, proto) in enumerate(exposed_ports(other.Config.ExposedPorts)):
            number = str(port)
            url = f"{proto}://{address}:{number}"
            if index == 0:
                env[f"{prefix}_PORT"] = url
            key = f"{prefix}_PORT_{number}_{proto.upper()}"
            env.update({key: url, f"{key}_ADDR": address, f"{key}_PORT": number,
                        f"{key}_PROTO": proto})
        for item in other.Config.Env:
            var, sep, value = item.partition("=")
            if sep and var not in ("PATH", "HOME", "HOSTNAME"):
                env[f"{prefix}_ENV_{var}"] = value
    return env


class NetworkPlan:
    """Stage 8 for one start: the parent's attach (veth, address, NAT), the /etc files to
    bind-mount inside, and the settings ``inspect`` shows. With ``--network none`` it does
    nothing, and pyroute2 is never imported."""

    FILES = ("hosts", "resolv.conf", "hostname")

    def __init__(self, record: records.ContainerRecord):
        self.record = record
        self.mode = record.HostConfig.NetworkMode

    def attach(self, pid: int) -> None:
        if self.mode.is_none:
            return
        from minidocker import network

        host, config = self.record.HostConfig, self.record.Config
        request = network.NetworkRequest(
            network=str(self.mode), name=self.record.Name, hostname=config.Hostname,
            aliases=host.NetworkAliases, publish=host.PortBindings,
            publish_all=host.PublishAllPorts, expose=exposed_ports(config.ExposedPorts),
            links=host.Links, dns=host.Dns, dns_search=host.DnsSearch,
            add_hosts=host.ExtraHosts, ip=host.IPAMConfig.get("IPv4Address", ""),
            mac=config.MacAddress)
        network.attach(self.record.Id, pid, request)
        for name, aliases in host.MoreNetworks.items():  # Docker's other endpoints, in order
            network.connect(name, self.record.Id, list(aliases),
                            fixed_address(host, name).get("IPv4Address", ""))
        network.write_container_files(self.record.Id, self.record.directory)

    def mount_files(self, root: str, user_mounts: set[str]) -> None:
        """Inside, before pivot_root: bind the container's own hosts, resolv.conf and
        hostname over the image's — unless the user mounted one there. The mount point is in
        the init layer; when a volume covers /etc it is made in the volume, as runc does."""
        if self.mode.is_none:
            return
        for name in self.FILES:
            source, destination = self.record.directory / name, f"/etc/{name}"
            if source.exists() and destination not in user_mounts:
                target = volumes.mount_point(root, destination, is_dir=False)
                kernel.mount(str(source), target, None, kernel.MS_BIND)

    def release(self) -> None:
        if not self.mode.is_none:
            from minidocker import network

            network.release(self.record.Id)

    def record_settings(self) -> None:
        """NetworkSettings as Docker's inspect shows them (and ``ps`` its PORTS)."""
        if self.mode.is_none:
            return
        from minidocker import network

        endpoints = network.endpoints_of(self.record.Id)
        settings = {"Networks": {}, "Ports": {}, "IPAddress": "", "Gateway": ""}
        for e in endpoints:
            settings["Networks"][e.network] = {
                "IPAddress": e.ip_address, "IPPrefixLen": e.prefixlen, "Gateway": e.gateway,
                "MacAddress": e.mac_address, "Aliases": e.aliases, "NetworkID": e.network_id,
                "IPAMConfig": fixed_address(self.record.HostConfig, e.network) or None}
            for b in e.ports:
                settings["Ports"].setdefault(f"{b.container_port}/{b.proto}", []).append(
                    {"HostIp": b.host_ip, "HostPort": str(b.host_port)})
        if endpoints:
            settings.update(IPAddress=endpoints[0].ip_address, Gateway=endpoints[0].gateway)
        with self.record.locked():
            self.record.NetworkSettings = settings
