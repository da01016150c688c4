"""Overlay networks: one Ethernet segment across the nodes, its addresses kept in etcd.

``network create -d overlay NAME`` writes only a record: a name, a subnet and a VXLAN Network
Identifier (VNI, 24 bits: which segment a frame belongs to). Everything else follows from the
store, as in Swarm, where the managers hold the network's IPAM and the nodes build it:

* the **manager** (reconcile.py) gives each task on the network an address, and each node
  that needs the network one address of its own (the node's end of the segment: its bridge's
  address, the containers' gateway and name server there); one allocator for the whole
  network, in etcd, so two nodes never hand out the same address;
* each **node's agent** (vxlan.py) builds its end: a bridge per overlay (through its own
  daemon, a stage 8 network with the overlay's subnet and MTU), a VXLAN device on that
  bridge, and one forwarding (FDB) and one neighbour (ARP) entry per remote endpoint.

A node needs a network when one of its tasks joins it, or when a service on it publishes a
port through the routing mesh (then every node does: any node may receive the connection).
The built-in ``ingress`` network (Docker's 10.255.0.0/16, here a /24) carries the services
that publish ports and name no network of their own.

MTU: a VXLAN packet is the container's Ethernet frame (14 bytes of header) inside UDP (8)
inside IPv4 (20), after the VXLAN header (8): 50 bytes more than the frame's payload. On an
underlay of MTU 1500 the overlay's MTU is 1450, or a full-size packet would not fit.

Docs: RFC 7348 (VXLAN), docs.docker.com "Overlay network driver", "Manage swarm service
networks" (ingress, routing mesh); libnetwork docs/overlay.md.
Used by: cli/network.py, cli/swarm.py, reconcile.py, vxlan.py, notebook 14b-overlay-networks.
"""

import ipaddress
import json
import re

from minidocker.cluster import swarm as records
from minidocker.cluster.lab import UNDERLAY
from minidocker.errors import MinidockerError
from minidocker.state import now

NETWORKS = records.PREFIX + "networks/"
INGRESS = "ingress"
INGRESS_SUBNET = "10.255.0.0/24"
POOL = ipaddress.ip_network("10.0.0.0/8")  # Docker's default pool for overlays, in /24s
FIRST_VNI = 4097  # Docker's overlays start at 4096 + 1
VXLAN_PORT = 4789  # IANA's port for VXLAN
VXLAN_OVERHEAD = 14 + 8 + 8 + 20  # inner Ethernet + VXLAN + UDP + IPv4 headers
UNDERLAY_MTU = 1500
NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


class OverlayError(MinidockerError):
    """An overlay network that cannot be made, found or removed."""


def mtu(underlay_mtu: int = UNDERLAY_MTU) -> int:
    """What fits in a VXLAN packet on an underlay of ``underlay_mtu``: 1500 - 50 = 1450."""
    return underlay_mtu - VXLAN_OVERHEAD


def bridge_name(network: dict) -> str:
    return f"ov{network['VNI']}"  # the bridge on each node (Docker's br0 in the overlay's ns)


def vxlan_name(network: dict) -> str:
    return f"vx{network['VNI']}"  # Docker's vxlan0


# --- the records: network create / ls / rm ---------------------------------------------------------

def networks(store) -> dict[str, dict]:
    return records.read_all(store, NETWORKS)


def read_state(store) -> dict[str, dict[str, dict]]:
    """What a node needs to know, in one read: networks, tasks, nodes and services by ID."""
    values, _ = store.get_prefix(records.PREFIX)
    return {kind: {k.removeprefix(prefix): json.loads(v) for k, v in values.items()
                   if k.startswith(prefix) and v}
            for kind, prefix in (("networks", NETWORKS), ("tasks", records.TASKS),
                                 ("nodes", records.NODES), ("services", records.SERVICES))}


def find(store, ref: str, missing_ok: bool = False) -> dict | None:
    found = [n for n in networks(store).values() if ref in (n["ID"], n["Name"])] or \
        [n for n in networks(store).values() if n["ID"].startswith(ref)]
    if len(found) == 1:
        return found[0]
    if missing_ok:
        return None
    raise OverlayError(f"network {ref} not found: see 'minidocker network ls'")


def create(store, name: str, subnet: str | None = None, ingress: bool = False) -> dict:
    """The network's record: its name, subnet and VNI (the next free one). Nothing is made on
    any node until a task or a published port needs it there."""
    records.swarm(store)
    if not NAME.fullmatch(name):
        raise OverlayError(f"invalid network name {name!r}: use letters, digits and _.- "
                           "(starting with a letter or digit), e.g. appnet")
    existing = networks(store).values()
    if any(n["Name"] == name for n in existing):
        raise OverlayError(f"network with name {name} already exists: pick another name, or "
                           f"remove it with 'minidocker network rm {name}'")
    chosen = checked_subnet(subnet, existing) if subnet else next_subnet(existing)
    record = {"ID": records.new_id(), "Name": name, "Driver": "overlay", "Scope": "swarm",
              "CreatedAt": now(), "Ingress": ingress, "Subnet": str(chosen),
              "VNI": max([n["VNI"] for n in existing], default=FIRST_VNI - 1) + 1,
              "NodeAddresses": {}}
    if not store.create(NETWORKS + record["ID"], json.dumps(record, sort_keys=True)):
        raise OverlayError(f"network {name} could not be written: try again")
    return record


def checked_subnet(subnet: str, existing) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.IPv4Network(subnet, strict=True)
    except ValueError as exc:
        raise OverlayError(f"invalid subnet {subnet!r} ({exc}): give a network in CIDR "
                           "form, e.g. 10.0.9.0/24") from None
    if network.prefixlen > 29:
        raise OverlayError(f"subnet {subnet} is too small: give a /29 or larger")
    taken = [ipaddress.ip_network(n["Subnet"]) for n in existing] + [
        UNDERLAY, ipaddress.ip_network("172.31.0.0/16")]  # the lab's and the nodes' bridges
    for other in taken:
        if network.overlaps(other):
            raise OverlayError(f"subnet {subnet} overlaps {other}, used in the lab: choose "
                               "another, e.g. 10.0.9.0/24")
    return network


def next_subnet(existing) -> ipaddress.IPv4Network:
    taken = {n["Subnet"] for n in existing}
    for candidate in POOL.subnets(new_prefix=24):
        if candidate.network_address.packed[1:3] != b"\0\0" and str(candidate) not in taken \
                and not candidate.overlaps(ipaddress.ip_network(INGRESS_SUBNET)):
            return candidate
    raise OverlayError("no free subnet left in 10.0.0.0/8: remove an overlay network")


def ingress(store) -> dict:
    """The routing mesh's network, made the first time a service publishes a port."""
    return find(store, INGRESS, missing_ok=True) or create(store, INGRESS, INGRESS_SUBNET,
                                                            ingress=True)


def remove(store, ref: str) -> dict:
    """Refused while a service uses it (Docker's rule); the agents take their ends down."""
    network = find(store, ref)
    users = [s["Spec"]["Name"] for s in records.read_all(store, records.SERVICES).values()
             if network["ID"] in service_networks(s)]
    if users:
        raise OverlayError(f"rpc error: code = FailedPrecondition desc = network "
                           f"{network['Name']} is in use by service {', '.join(users)}: "
                           "remove the service first")
    store.delete(NETWORKS + network["ID"])
    return network


def service_networks(service: dict) -> list[str]:
    """The IDs of the networks a service's tasks join (``TaskTemplate.Networks``)."""
    return [n["Target"] for n in service["Spec"]["TaskTemplate"].get("Networks", [])]


def mesh_ports(service: dict) -> list[dict]:
    """The ports published through the routing mesh (``mode=ingress``, Docker's default)."""
    return [p for p in service["Spec"].get("EndpointSpec", {}).get("Ports", [])
            if p.get("PublishedPort") and p.get("PublishMode", "ingress") == "ingress"]


# --- the manager's part: who needs which network, and every address --------------------------------

def needed(networks_: dict[str, dict], services: dict[str, dict], tasks: dict[str, dict],
           ready: list[str]) -> dict[str, set[str]]:
    """Network ID -> the nodes that need it: those running one of its tasks, and every Ready
    node for a network with a mesh-published port."""
    wanted = {network_id: set() for network_id in networks_}
    for task in tasks.values():
        if task["DesiredState"] == records.RUNNING and task.get("NodeID"):
            for attachment in task.get("NetworksAttachments", []):
                wanted.get(attachment["NetworkID"], set()).add(task["NodeID"])
    for service in services.values():
        if mesh_ports(service):
            for network_id in service_networks(service):
                wanted.get(network_id, set()).update(ready)
    return wanted


def taken_addresses(network: dict, tasks: dict[str, dict]) -> set[str]:
    taken = set(network["NodeAddresses"].values())
    for task in tasks.values():
        if task["DesiredState"] == records.RUNNING or task["Status"]["State"] == "running":
            taken.update(a["Address"] for a in task.get("NetworksAttachments", [])
                         if a["NetworkID"] == network["ID"])
    return taken


def next_address(network: dict, taken: set[str]) -> str:
    """The lowest free host address of the network (the allocator is the manager's pass,
    alone: one leader writes, on condition that it still leads)."""
    for address in ipaddress.ip_network(network["Subnet"]).hosts():
        if str(address) not in taken:
            taken.add(str(address))
            return str(address)
    raise OverlayError(f"no available IPv4 addresses on network {network['Name']} "
                       f"({network['Subnet']})")


def attach_task(task: dict, service: dict, networks_: dict[str, dict],
                tasks: dict[str, dict]) -> None:
    """Give a new task an address on each of its service's networks (Swarm's
    ``NetworksAttachments``)."""
    attachments = []
    for network_id in service_networks(service):
        network = networks_.get(network_id)
        if network:
            address = next_address(network, taken_addresses(network, tasks))
            attachments.append({"NetworkID": network_id, "Address": address})
    task["NetworksAttachments"] = attachments


def place_nodes(networks_: dict[str, dict], wanted: dict[str, set[str]],
                tasks: dict[str, dict]) -> set[str]:
    """Give each node that needs a network an address on it, and take it back from a node
    that no longer does; the IDs of the networks changed."""
    changed = set()
    for network_id, nodes in wanted.items():
        network = networks_[network_id]
        held = network["NodeAddresses"]
        for node_id in set(held) - nodes:
            del held[node_id]
            changed.add(network_id)
        for node_id in sorted(nodes - set(held)):
            held[node_id] = next_address(network, taken_addresses(network, tasks))
            changed.add(network_id)
    return changed
