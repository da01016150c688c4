"""Attaching a container to its networks, and releasing everything again.

``attach`` runs in the parent while the container's first process waits, already in its fresh
(empty) network namespace. For each network it tells the story of bridge networking: the
bridge is up (bridge.py), the container gets an address (ipam.py), a veth pair joins its
namespace to the bridge (veth.py), and its published ports get their NAT rules (firewall.py).
Every object is written into the container's endpoint record *before* it is made (all of
one network's in one write: the veth, the ports, the rules; the address is leased in the
network's record just before), so ``release`` — after a normal exit, a failed start or a
``kill -9`` — removes exactly what was made, from the records alone.

What the caller does for each ``--network`` mode:

* ``bridge`` or a network name: unshare ``net`` for the container, call ``attach`` in
  ``before_start``, and ``release`` when the container is gone.
* ``none``: unshare ``net``; ``attach`` only brings ``lo`` up.
* ``host``: do *not* unshare ``net``; ``attach`` records the mode (for the files).
* ``container:<id>``: do not unshare ``net``; join the namespace of that container's PID 1
  (``namespaces.join(pid, ["net"])`` in the child's setup); ``attach`` records the mode, and
  ``write_container_files`` gives it the other container's hosts and resolv.conf.

In every mode, call ``write_container_files(container_id, directory)`` after ``attach`` and
bind-mount the files it returns over ``/etc/hosts``, ``/etc/resolv.conf``, ``/etc/hostname``.

Man pages: network_namespaces(7), veth(4), iptables(8).
Used by: notebook 08-networking; lab 08-networking has the student build the same step by hand.
"""

import contextlib
import errno
import os
from dataclasses import dataclass, field

from minidocker import events
from minidocker.errors import MinidockerError, NotFound
from minidocker.network import bridge, firewall, hosts, ipam, ports, store, veth
from minidocker.network.netlink import NetlinkError
from minidocker.network.store import Network


@dataclass
class NetworkRequest:
    """What ``run``'s flags ask of the network, as given on the command line."""

    network: str  # --network: bridge | none | host | container:<id> | <name>
    name: str = ""  # the container's name: what peers on a user network call it
    hostname: str = ""
    aliases: list[str] = field(default_factory=list)  # --network-alias
    publish: list[ports.PortBinding] = field(default_factory=list)  # -p, parsed
    publish_all: bool = False  # -P
    expose: list[tuple[int, str]] = field(default_factory=list)  # the ExposedPorts
    links: list[str] = field(default_factory=list)  # --link name[:alias]
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    add_hosts: list[str] = field(default_factory=list)  # --add-host name:ip
    ip: str = ""  # --ip: a static address on the user network (IPAMConfig.IPv4Address)
    mac: str = ""  # --mac-address ("": 02:42 + the IPv4 address)

    @property
    def mode(self) -> str:
        if self.network in ("none", "host") or self.network.startswith("container:"):
            return self.network.split(":")[0]
        return "bridge"


@dataclass
class Endpoint:
    """One network interface of a container, as ``inspect`` shows it under Networks."""

    network: str
    network_id: str
    ifname: str  # inside: eth0, eth1, ...
    veth: str  # the host end
    ip_address: str
    prefixlen: int
    gateway: str
    mac_address: str
    aliases: list[str]
    ports: list[ports.PortBinding]


# --- attach -----------------------------------------------------------------------------------

def attach(container_id: str, pid: int, request: NetworkRequest) -> list[Endpoint]:
    """Give the container ``pid`` (waiting in its new network namespace) its networking."""
    bindings = _requested_ports(request)
    with store.locked():
        record = _new_record(container_id, pid, request)
        network = _check_mode(record, request)
        try:
            if network:
                _join(record, network, bindings, request.ip, request.mac)
                hosts.refresh_peers(network)
            else:
                store.write_endpoints(record)
                if request.mode == "none":
                    veth.loopback_up(pid)
        except BaseException as exc:
            with contextlib.suppress(NetlinkError):  # the kernel refuses the undoing too
                _release(container_id)  # what was made so far, from the records
            if isinstance(exc, NetlinkError) and exc.code == errno.EPERM:
                raise MinidockerError(f"cannot give the container its network: {exc.args[-1]} (no "
                                      "CAP_NET_ADMIN over this network namespace, as in a "
                                      "user namespace: run 'minidocker doctor')") from None
            raise
    for endpoint in record["endpoints"]:
        _event("connect", container_id, endpoint)
    return [_endpoint(e) for e in record["endpoints"]]


def _event(action: str, container_id: str, endpoint: dict) -> None:
    """``docker events``: a container joined or left a network."""
    events.emit("network", action, endpoint["network_id"], {
        "container": container_id, "name": endpoint["network"], "type": "bridge"})


def _new_record(container_id: str, pid: int, request: NetworkRequest) -> dict:
    """The endpoint record of a container, before anything is made for it."""
    return {"container": container_id, "name": request.name or container_id[:12],
            "pid": pid, "netns": _netns_inode(pid), "mode": request.mode,
            "network": request.network, "hostname": request.hostname or container_id[:12],
            "aliases": request.aliases, "dns": request.dns, "dns_search": request.dns_search,
            "add_hosts": [hosts.parse_add_host(h) for h in request.add_hosts],
            "links": hosts.resolve_links(request.links), "files_dir": None, "endpoints": []}


def _check_mode(record: dict, request: NetworkRequest) -> Network | None:
    """The bridge network to join (None for the other modes); refuse what cannot work."""
    if request.mode in ("bridge", "none") and record["netns"] == _netns_inode(os.getpid()):
        raise MinidockerError(f"process {record['pid']} shares this host's network namespace: "
                              f"--network {request.network} needs a new one (unshare 'net' for "
                              "the container)")
    if request.mode != "bridge":
        return None
    network = store.find(request.network)
    check_fixed_address(network, request.ip)
    if network.driver != "bridge":
        raise MinidockerError(f"network {network.name} is of driver {network.driver!r}: use "
                              f"--network {'host' if network.driver == 'host' else 'none'}")
    return network


def check_fixed_address(network: Network, ip: str) -> None:
    """A fixed address (``--ip``, ``network connect --ip``) is for user networks only, as
    Docker's: the predefined ones hand out their addresses themselves."""
    if ip and network.predefined:
        raise MinidockerError("user specified IP address is supported on user defined "
                              f"networks only, not on {network.name}: make one with "
                              "'network create'")


def _requested_ports(request: NetworkRequest) -> list[ports.PortBinding]:
    bindings = list(request.publish)
    if request.publish_all:
        published = {(b.container_port, b.proto) for b in bindings}
        bindings += [b for b in ports.publish_all(request.expose)
                     if (b.container_port, b.proto) not in published]
    if bindings and request.mode != "bridge":
        raise MinidockerError(f"published ports are discarded with --network "
                              f"{request.network}: they need a bridge network (drop -p/-P)")
    return bindings


def _join(record: dict, network: Network, bindings: list[ports.PortBinding],
          wanted_ip: str = "", mac: str = "", aliases: list[str] | None = None) -> dict:
    """Plug the container into one bridge network. Its aliases are per network, as Docker's:
    those of the first network, or those given to connect.

    Records first, then the kernel's objects: the address is leased in the network's record
    (the lease names the container, so a crash right after it leaves nothing unfound: see
    ``prune``), then the endpoint record names everything else — the veth, the published
    ports and every rule — in one write, and only then are they made."""
    bring_up(network)
    address = ipam.allocate(network, record["container"], wanted_ip)
    store.save(network)
    chosen = _host_ports(record, bindings)
    endpoint = {"network": network.name, "network_id": network.id,
                "ifname": free_ifname(record), "veth": veth.new_veth_name(),
                "ip_address": address, "prefixlen": ipam.prefixlen(network),
                "gateway": network.gateway, "mac_address": mac or ipam.mac_for(address),
                "aliases": list(record["aliases"] if aliases is None else aliases),
                "ports": [b.to_json() for b in chosen], "rules": []}
    port_rules = [rule for b in chosen for rule in firewall.port_rules(
        network.bridge, address, b.host_ip, b.host_port, b.container_port, b.proto)]
    link_rules = [] if network.icc else _link_rules(record, address, network)
    endpoint["rules"] = [r.to_json() for r in port_rules + link_rules]
    record["endpoints"].append(endpoint)
    store.write_endpoints(record)  # recorded first, then made
    first_route = not network.internal and not any(
        e["gateway"] and e is not endpoint and not _internal(e) for e in record["endpoints"])
    veth.plug(record["pid"], endpoint["veth"], network.bridge, endpoint["ifname"], address,
              endpoint["prefixlen"], endpoint["mac_address"],
              network.gateway if first_route else None, network.mtu)
    firewall.add_all(port_rules)
    firewall.add_all(link_rules, first=True)  # before the network's DROP
    return endpoint


def _link_rules(record: dict, address: str, network: Network) -> list[firewall.Rule]:
    """On a network with enable_icc=false, a ``--link`` still opens the way between the two
    containers (both directions), as Docker does: ACCEPT rules put before the network's DROP,
    recorded with this endpoint and removed with it."""
    rules = []
    for linked_id, _alias in record["links"]:
        other = store.read_endpoints(linked_id) or {"endpoints": []}
        for theirs in (e for e in other["endpoints"] if e["network_id"] == network.id):
            for source, target in ((address, theirs["ip_address"]),
                                   (theirs["ip_address"], address)):
                rules.append(firewall.Rule("filter", "MINIDOCKER-FORWARD", (
                    "-i", network.bridge, "-o", network.bridge, "-s", source, "-d", target,
                    "-j", "ACCEPT")))
    return rules


def free_ifname(record: dict) -> str:
    """The lowest ethN the container does not use (after a disconnect, eth0 may be free)."""
    used = {e["ifname"] for e in record["endpoints"]}
    return next(f"eth{n}" for n in range(len(used) + 1) if f"eth{n}" not in used)


def _internal(endpoint: dict) -> bool:
    try:
        return store.find(endpoint["network_id"]).internal
    except NotFound:
        return True


def _host_ports(record: dict, bindings: list[ports.PortBinding]) -> list[ports.PortBinding]:
    """The host port of each ``-p``: the one asked for if no other container published it,
    or a free one."""
    if not bindings:
        return []
    taken = {(p["host_ip"], p["host_port"], p["proto"]) for other in store.all_endpoint_records()
             if other["container"] != record["container"]
             for e in other["endpoints"] for p in e["ports"]}
    return ports.assign_host_ports(bindings, taken)


def bring_up(network: Network) -> None:
    """Make sure the network's bridge and its iptables rules exist (idempotent).

    The rules belong to the network, not to its containers: they are made once, and the bridge
    is made *last*, so that a bridge that exists means its rules do. A container's attach then
    asks one netlink question instead of checking each rule (two dozen iptables runs); a
    network half made by a killed command has no bridge yet, and is completed here."""
    if bridge.link_exists(network.bridge):
        return
    if not network.icc:
        firewall.ensure_bridge_netfilter()
    firewall.ensure_chains()
    for rule in firewall.network_rules(network.bridge, network.subnet, network.internal,
                                       network.icc):
        firewall.add(rule)
    bridge.ensure_bridge(network.bridge, network.gateway, ipam.prefixlen(network),
                         store.bridge_owner(), network.mtu)


def bring_down(network: Network) -> None:
    """Remove the network's bridge, then its rules (the reverse of ``bring_up``: a network
    whose bridge is gone is made again whole by the next ``bring_up``)."""
    bridge.remove_bridge(network.bridge)
    for rule in reversed(firewall.network_rules(network.bridge, network.subnet,
                                                network.internal, network.icc)):
        firewall.delete(rule)


def _endpoint(e: dict) -> Endpoint:
    return Endpoint(e["network"], e["network_id"], e["ifname"], e["veth"], e["ip_address"],
                    e["prefixlen"], e["gateway"], e["mac_address"], e["aliases"],
                    [ports.PortBinding(**p) for p in e["ports"]])


def endpoints_of(container_id: str) -> list[Endpoint]:
    """The container's endpoints (what ``inspect`` and ``port`` show)."""
    record = store.read_endpoints(container_id)
    return [_endpoint(e) for e in record["endpoints"]] if record else []


def port_lines(container_id: str, private: str | None = None) -> list[str]:
    """``minidocker port CONTAINER [PORT[/PROTO]]``: lines like ``80/tcp -> 0.0.0.0:8080``."""
    bindings = [b for e in endpoints_of(container_id) for b in e.ports]
    if private:
        port, _, proto = private.partition("/")
        bindings = [b for b in bindings
                    if str(b.container_port) == port and b.proto == (proto or "tcp")]
        if not bindings:
            raise NotFound(f"No public port '{port}/{proto or 'tcp'}' published for "
                           f"{container_id[:12]}")
    return [b.line() for b in bindings]


# --- release ----------------------------------------------------------------------------------

def release(container_id: str) -> None:
    """Remove every rule, veth and address made for the container. Idempotent: safe after a
    crash, a failed start, or a second call."""
    with store.locked():
        _release(container_id)


def _release(container_id: str) -> None:
    record = store.read_endpoints(container_id) or {"endpoints": []}
    for endpoint in reversed(record["endpoints"]):
        _unplug(endpoint)
        _event("disconnect", container_id, endpoint)
    for network in store.all_networks():  # also an address allocated just before a crash
        if container_id in network.allocations:
            ipam.release(network, container_id)
            store.save(network)
    store.endpoint_path(container_id).unlink(missing_ok=True)
    for network_id in {e["network_id"] for e in record["endpoints"]}:
        try:
            hosts.refresh_peers(store.find(network_id))
        except NotFound:
            pass


def _unplug(endpoint: dict) -> None:
    firewall.delete_all([firewall.Rule.from_json(rule) for rule in reversed(endpoint["rules"])])
    veth.unplug(endpoint["veth"])


def disconnect_endpoint(container_id: str, network: Network) -> None:
    """Take one network away from a running container (``network disconnect``)."""
    record = store.read_endpoints(container_id)
    mine = [e for e in (record or {"endpoints": []})["endpoints"]
            if e["network_id"] == network.id]
    if not mine:
        raise MinidockerError(f"container {container_id[:12]} is not connected to network "
                              f"{network.name}")
    _unplug(mine[0])
    _event("disconnect", container_id, mine[0])
    record["endpoints"].remove(mine[0])
    ipam.release(network, container_id)
    store.save(network)
    store.write_endpoints(record)
    hosts.refresh_peers(network)


def connect_endpoint(container_id: str, network: Network, aliases: list[str],
                     ip: str = "") -> Endpoint:
    """Give a running container one more network (``network connect``), at ``ip`` if given
    (``--ip``: checked as ``run --ip`` is, by IPAM)."""
    record = store.read_endpoints(container_id)
    if not record or record["mode"] != "bridge" or not _alive(record):
        raise MinidockerError(f"container {container_id[:12]} is not running on a bridge "
                              "network: start it first (host, none and container: networking "
                              "cannot be connected)")
    if any(e["network_id"] == network.id for e in record["endpoints"]):
        raise MinidockerError(f"endpoint with name {record['name']} already exists in network "
                              f"{network.name}")
    check_fixed_address(network, ip)
    endpoint = _join(record, network, [], wanted_ip=ip, aliases=aliases)
    hosts.refresh_peers(network)
    _event("connect", container_id, endpoint)
    return _endpoint(endpoint)


# --- crash recovery ---------------------------------------------------------------------------

def _netns_inode(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def _alive(record: dict) -> bool:
    """Is the container's process still there (and not a new process with a reused PID)?"""
    try:
        return _netns_inode(record["pid"]) == record["netns"]
    except (FileNotFoundError, ProcessLookupError):
        return False


def roll_back_creates() -> list[str]:
    """Undo each ``network create`` that was killed half-way: its pending record names the
    bridge and rules it may have made (see store.py). Call it under the networks lock."""
    removed = []
    for network in store.pending_networks():
        bring_down(network)
        store.discard_pending(network)
        removed.append(f"half-made network {network.name}")
    return removed


def prune() -> list[str]:
    """Remove what dead containers and killed commands left: their endpoints, address leases
    without an endpoint record, half-made networks, this state root's bridges without a
    network, and — when nothing is attached, no
    user network exists and no other state root has a bridge here — the default bridge and
    the chains."""
    removed = []
    with store.locked():
        for record in store.all_endpoint_records():
            if not _alive(record):
                _release(record["container"])
                removed.append(f"endpoints of container {record['container'][:12]}")
        removed += _release_unrecorded_leases()
        removed += roll_back_creates()
        networks = [n for n in store.all_networks() if n.driver == "bridge"]
        known = {n.bridge for n in networks}
        for name in bridge.bridges_of(store.bridge_owner()):
            if name not in known:
                bridge.remove_bridge(name)
                removed.append(f"bridge {name}")
        if (not store.all_endpoint_records() and all(n.predefined for n in networks)
                and not _bridges_of_other_roots()):
            for network in networks:
                if bridge.link_exists(network.bridge):
                    bring_down(network)
                    removed.append(f"bridge {network.bridge}")
            if firewall.chain_exists("filter", "MINIDOCKER-FORWARD"):
                firewall.remove_chains()
                removed.append("iptables chains MINIDOCKER*")
    return removed


def _release_unrecorded_leases() -> list[str]:
    """Addresses leased to a container that has no endpoint record: an attach killed between
    leasing and writing the record (it holds the lock throughout, so under the lock no live
    attach is in that gap)."""
    recorded = {record["container"] for record in store.all_endpoint_records()}
    removed = []
    for network in store.all_networks():
        unrecorded = sorted(set(network.allocations) - recorded)
        for container_id in unrecorded:
            ipam.release(network, container_id)
            removed.append(f"address lease of container {container_id[:12]} on {network.name}")
        if unrecorded:
            store.save(network)
    return removed


def _bridges_of_other_roots() -> list[str]:
    """Bridges in this namespace that this state root did not make (they need the chains)."""
    ours = set(bridge.bridges_of(store.bridge_owner()))
    return [n for n in bridge.links_named(("md-", store.DEFAULT_BRIDGE)) if n not in ours]
