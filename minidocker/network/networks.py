"""User-defined networks: ``network create/ls/inspect/rm/prune/connect/disconnect``.

Docker starts with three networks: ``bridge`` (the default, on ``docker0``; here
``minidocker0``, 172.18.0.0/16 or ``$MINIDOCKER_BRIDGE_SUBNET``), ``host`` (the host's own
namespace) and ``none`` (only ``lo``). ``network create NAME`` adds a bridge network with a
bridge of its own (``md-<id12>``) and the next free subnet. On a user network the containers
find each other by name (see hosts.py), and networks are isolated from each other
(firewall.py).

Man pages: ip-link(8) (type bridge), iptables(8). Docker: ``docker network --help``, "Bridge
network driver" (user-defined bridges).
Used by: notebook 08-networking (``network create``, ``connect``, ``disconnect``).
"""


import dataclasses
import re

from minidocker import events
from minidocker.errors import Conflict, MinidockerError
from minidocker.filters import Filters
from minidocker.network import bridge, endpoints, ipam, store
from minidocker.network.endpoints import Endpoint
from minidocker.network.records import BRIDGE_NAME_OPTION, ICC_OPTION, MTU_OPTION, Network

NETWORK_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")  # as Docker's names of objects


def create(name: str, *, driver: str = "bridge", subnet: str | None = None,
           gateway: str | None = None, internal: bool = False,
           options: dict[str, str] | None = None,
           labels: dict[str, str] | None = None) -> Network:
    """Create a bridge network: a record, a subnet, a bridge and its rules."""
    if driver != "bridge":
        raise MinidockerError(f"only the bridge driver can create networks ({driver!r} "
                              "networks are predefined: use --network host or none)")
    if not NETWORK_NAME.fullmatch(name):
        raise MinidockerError(f"invalid network name {name!r}: use letters, digits and "
                              "_.- (starting with a letter or digit), e.g. shop_net")
    options = {ICC_OPTION: "true", **(options or {})}
    if not options.get(MTU_OPTION, "1500").isdigit() or \
            not 68 <= int(options.get(MTU_OPTION, "1500")) <= 65535:
        raise MinidockerError(f"invalid {MTU_OPTION} {options[MTU_OPTION]!r}: give an MTU "
                              "from 68 to 65535, e.g. 1450")
    with store.locked():
        endpoints.roll_back_creates()  # a killed create's subnet and bridge are free again
        existing = store.all_networks()
        if any(n.name == name for n in existing):
            raise Conflict(f"network with name {name} already exists: pick another name, or "
                           f"remove it with 'minidocker network rm {name}'")
        if subnet:
            ipam.check_no_overlap(subnet, existing)
        else:
            subnet = ipam.next_free_subnet(existing)
        if gateway and not ipam.parse_subnet(subnet).supernet_of(
                ipam.parse_subnet(f"{gateway}/32")):
            raise MinidockerError(f"gateway {gateway} is not in subnet {subnet}: give a "
                                  "--gateway inside --subnet (its first address, usually)")
        net = ipam.parse_subnet(subnet)
        if gateway in (str(net.network_address), str(net.broadcast_address)):
            raise MinidockerError(f"gateway {gateway} is the network's own or broadcast "
                                  f"address in {subnet}: give a host address, e.g. "
                                  f"{ipam.first_host(subnet)}")
        network_id = store.new_id()
        network = Network(network_id, name, "bridge", subnet,
                          gateway or ipam.first_host(subnet),
                          options.get(BRIDGE_NAME_OPTION) or f"md-{network_id[:12]}",
                          internal, options, labels or {})
        _check_bridge_name_free(network.bridge, existing)
        _make(network)
    events.emit("network", "create", network.id, {"name": name, "type": "bridge"})
    return network


def _make(network: Network) -> None:
    """All of the network or nothing: a pending record (what is about to be made, so that a
    killed create can be undone), the bridge and its rules, then the record's final name."""
    store.save_pending(network)
    try:
        endpoints.bring_up(network)
    except BaseException:
        endpoints.bring_down(network)
        store.discard_pending(network)
        raise
    store.commit(network)


def _check_bridge_name_free(name: str, existing: list[Network]) -> None:
    """A new network makes its own bridge: never take over (and later delete) a link that
    another network or another program made."""
    if any(n.bridge == name for n in existing) or bridge.link_exists(name):
        raise Conflict(f"a network interface named {name} already exists: choose another "
                       f"-o {BRIDGE_NAME_OPTION}=NAME")


NETWORK_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")


def ls(filters=None) -> list[Network]:
    """The networks, those ``filters`` match (``network ls --filter``): ``dangling`` (true: no
    container on it; never a predefined one), ``driver``, ``id`` (a prefix), ``label``,
    ``name`` (a regular expression), ``scope`` (local), ``type`` (builtin: bridge, host and
    none; custom: the others). The rules are minidocker/filters.py's."""
    networks = store.all_networks()
    if not filters:
        return networks
    used = in_use()
    return [n for n in networks if matches(n, filters, used)]


def matches(n: Network, f, used: set[str]) -> bool:
    kind = "builtin" if n.predefined else "custom"
    return (f.match_bool("dangling", not n.predefined and not {n.id, n.name} & used)
            and f.match("driver", n.driver.__eq__) and f.match("id", n.id.startswith)
            and f.match_labels(n.labels) and f.match_name(n.name)
            and f.match("scope", "local".__eq__) and f.match("type", kind.__eq__))


def in_use() -> set[str]:
    """The networks some container is on: IDs of bridge networks, names of host and none."""
    records = store.all_endpoint_records()
    return ({e["network_id"] for r in records for e in r["endpoints"]}
            | {r["network"] for r in records if r["mode"] in ("host", "none")})


def inspect(name_or_id: str) -> dict:
    """A network as ``docker network inspect`` shows it."""
    network = store.find(name_or_id)
    attached = {}
    for record in store.all_endpoint_records():
        for e in record["endpoints"]:
            if e["network_id"] == network.id:
                attached[record["container"]] = {
                    "Name": record["name"], "EndpointID": e["veth"],
                    "MacAddress": e["mac_address"],
                    "IPv4Address": f"{e['ip_address']}/{e['prefixlen']}", "IPv6Address": ""}
    config = [{"Subnet": network.subnet, "Gateway": network.gateway}] if network.subnet else []
    options = dict(network.options)
    if network.bridge:
        options[BRIDGE_NAME_OPTION] = network.bridge
    return {"Name": network.name, "Id": network.id, "Created": network.created,
            "Scope": "local", "Driver": network.driver, "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": {}, "Config": config},
            "Internal": network.internal, "Attachable": False, "Ingress": False,
            "Containers": attached, "Options": options, "Labels": network.labels}


def _in_use(network: Network) -> list[str]:
    return [r["name"] for r in store.all_endpoint_records()
            if any(e["network_id"] == network.id for e in r["endpoints"])]


def remove(name_or_id: str) -> Network:
    """Remove a user network; refuse while a container is attached to it."""
    with store.locked():
        network = store.find(name_or_id)
        if network.predefined:
            raise MinidockerError(f"{network.name} is a pre-defined network and cannot be "
                                  "removed")
        users = _in_use(network)
        if users:
            raise Conflict(f"error while removing network: network {network.name} id "
                           f"{network.id} has active endpoints ({', '.join(users)}): stop or "
                           "disconnect them first")
        endpoints.bring_down(network)
        store.delete(network)
    events.emit("network", "destroy", network.id, {"name": network.name, "type": "bridge"})
    return network


def readdress_default_bridge(keep_subnet: bool = False) -> None:
    """The daemon's ``bip`` (and ``icc``): the default bridge as the settings say, made again
    if its record says otherwise and no container is on it (dockerd reconfigures docker0 at
    start the same way). The settings reach the record through the environment (store.py);
    the new record is written now, by the daemon, not by whichever process looks next.
    ``keep_subnet``: no ``bip`` was given, the bridge keeps the subnet it has."""
    with store.locked():
        current = store.find("bridge")
        wanted = store.predefined("bridge")
        if keep_subnet:
            wanted = dataclasses.replace(wanted, subnet=current.subnet, gateway=current.gateway)
        if (current.subnet, current.icc) == (wanted.subnet, wanted.icc):
            return
        users = _in_use(current)
        if users:
            raise Conflict(f"the default bridge has subnet {current.subnet} and containers on "
                           f"it ({', '.join(users)}): stop them before changing bip to "
                           f"{wanted.subnet} (or icc), or keep the old settings")
        endpoints.bring_down(current)
        store.delete(current)
        store.save(wanted)


def prune(chosen: Filters | None = None) -> list[str]:
    """Remove every user network that no container uses (``network prune``; ``chosen``:
    ``until=``, ``label=`` narrow them)."""
    chosen = chosen or Filters()
    unused = [n for n in store.all_networks() if not n.predefined and not _in_use(n)
              and chosen.match_prune(n.labels, n.created)]
    return [remove(n.id).name for n in unused]


def connect(name_or_id: str, container_id: str, aliases: list[str] | None = None,
            ip: str = "") -> Endpoint:
    with store.locked():
        return endpoints.connect_endpoint(container_id, store.find(name_or_id), aliases or [],
                                          ip)


def check_address(name_or_id: str, ip: str) -> None:
    """``network connect --ip`` of a container that does not run: the address is checked now
    (a user network's, inside its subnet, not taken) and claimed at the container's start."""
    with store.locked():
        network = store.find(name_or_id)
    endpoints.check_fixed_address(network, ip)
    ipam.check_wanted(network, ip, ipam.taken_addresses(network))


def disconnect(name_or_id: str, container_id: str) -> None:
    with store.locked():
        endpoints.disconnect_endpoint(container_id, store.find(name_or_id))
