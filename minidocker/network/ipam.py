"""IPAM — IP address management: which subnet a network gets, which address a container gets.

Like Docker's default IPAM driver: a user network without ``--subnet`` gets the next free /16
of a pool (172.19.0.0/16, 172.20.0.0/16, ...); the gateway is the first host address (the
bridge's own); containers get the following ones in order, or the one they ask for (``run
--ip``, on a user network), and an address is free again when its container is released. Subnets of two networks must not overlap: the kernel would not know
which bridge to route an address to.

The allocations live in the network's record, changed only under the networks lock
(``store.locked()``), so two containers started at once never get the same address. IPAM
itself is arithmetic on a ``Network`` record (records.py) and never reads or writes the disk:
the caller loads and saves the record, so store.py may use IPAM and not the other way round.

Man pages: ip-address(8). Docker: ``network create --subnet --gateway``, "Bridge network
driver" (the default address pools).
Used by: notebook 08-networking, lab 08-networking.
"""

import ipaddress
import os

from minidocker.errors import MinidockerError
from minidocker.network.records import Network

POOL_FIRST = 19  # user networks: 172.19.0.0/16, 172.20.0.0/16, ... (Docker's end at 172.31)


class PoolOverlaps(MinidockerError):
    """Docker's wording: the requested subnet overlaps a network that exists."""


def parse_subnet(subnet: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(subnet, strict=True)
    except ValueError as exc:
        raise MinidockerError(f"invalid subnet {subnet!r}: {exc}; give a network address "
                              "and a prefix length, e.g. 10.10.0.0/24") from exc


def first_host(subnet: str) -> str:
    """The gateway of a subnet: its first host address (the bridge's address). A /32 has
    no room for a gateway and a container."""
    network = parse_subnet(subnet)
    if network.prefixlen > 31:
        raise MinidockerError(f"invalid subnet {subnet!r}: a /32 is one address, and a network "
                              "needs one for its gateway and more for its containers; give a "
                              "larger one, e.g. 10.10.0.0/24")
    return str(next(iter(network.hosts())))


def check_no_overlap(subnet: str, networks: list[Network]) -> None:
    wanted = parse_subnet(subnet)
    for network in networks:
        if network.subnet and wanted.overlaps(ipaddress.ip_network(network.subnet)):
            raise PoolOverlaps(f"Pool overlaps with other one on this address space: {subnet} "
                               f"overlaps {network.subnet} of network {network.name!r}; "
                               "choose another --subnet")


def next_free_subnet(networks: list[Network]) -> str:
    """The first subnet of the address pools that no network overlaps."""
    taken = [ipaddress.ip_network(n.subnet) for n in networks if n.subnet]
    for base, size in address_pools():
        for candidate in base.subnets(new_prefix=size):
            if not any(candidate.overlaps(subnet) for subnet in taken):
                return str(candidate)
    raise MinidockerError("all predefined address pools have been fully subnetted: remove a "
                          "network, or create one with an explicit --subnet")


def address_pools() -> list[tuple[ipaddress.IPv4Network, int]]:
    """Where new networks take their subnets: ``(base, prefix length)`` pairs — Docker's
    local pools 172.19-172.31, one /16 each, or the daemon's ``default-address-pools``
    (``$MINIDOCKER_ADDRESS_POOLS``, ``BASE/LEN:SIZE,...``; see daemon/settings.py)."""
    given = os.environ.get("MINIDOCKER_ADDRESS_POOLS", "")
    if not given:
        return [(ipaddress.ip_network(f"172.{n}.0.0/16"), 16) for n in range(POOL_FIRST, 32)]
    pools = []
    for item in given.split(","):
        base, _, size = item.rpartition(":")
        try:
            pools.append((ipaddress.IPv4Network(base), int(size)))
        except ValueError:
            raise MinidockerError(f"invalid address pool {item!r} in MINIDOCKER_ADDRESS_POOLS: "
                                  "use BASE/LEN:SIZE, e.g. 10.70.0.0/16:24") from None
    return pools


def allocate(network: Network, container_id: str, wanted: str = "") -> str:
    """Give ``container_id`` the lowest free host address of the network, or ``wanted`` if it
    is one (the caller holds the lock and saves the record)."""
    if container_id in network.allocations:
        return network.allocations[container_id]
    taken = taken_addresses(network)
    if wanted:
        return claim(network, container_id, wanted, taken)
    for address in parse_subnet(network.subnet).hosts():
        if str(address) not in taken:
            network.allocations[container_id] = str(address)
            return str(address)
    raise MinidockerError(f"no available IPv4 addresses on network {network.name} "
                          f"({network.subnet}): remove a container from it, or use a network "
                          "with a larger subnet")


def taken_addresses(network: Network) -> set[str]:
    """The gateway's address and every container's on the network."""
    return set(network.allocations.values()) | {network.gateway}


def claim(network: Network, container_id: str, wanted: str, taken: set[str]) -> str:
    """A static address (``--ip``, ``network connect --ip``): a free host address of the
    network's subnet."""
    address = check_wanted(network, wanted, taken)
    network.allocations[container_id] = address
    return address


def check_wanted(network: Network, wanted: str, taken: set[str]) -> str:
    """``wanted`` if a container may have it on ``network``: an IPv4 address, a host address
    of the subnet, neither the gateway's nor another container's. Docker's wording."""
    try:
        address = ipaddress.IPv4Address(wanted)
    except ValueError:
        raise MinidockerError(f"invalid IPv4 address {wanted!r} for network {network.name}: "
                              "give one such as 172.19.0.9") from None
    subnet = parse_subnet(network.subnet)
    if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
        raise MinidockerError(f"Invalid address {wanted}: It does not belong to any of this "
                              f"network's subnets ({network.name}: {network.subnet}); choose "
                              "a host address inside it")
    if str(address) in taken:
        raise MinidockerError(f"Address already in use: {wanted} on network {network.name} "
                              "(the gateway's or another container's); choose another --ip")
    return str(address)


def release(network: Network, container_id: str) -> None:
    network.allocations.pop(container_id, None)


def prefixlen(network: Network) -> int:
    return parse_subnet(network.subnet).prefixlen


def mac_for(address: str) -> str:
    """Docker's MAC address for a container: 02:42 then the four bytes of its IPv4 address
    (02 = locally administered, so it never clashes with a real card's)."""
    octets = ipaddress.IPv4Address(address).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in octets)
