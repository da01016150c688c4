"""The bridge: a virtual switch on the host that every container of one network plugs into.

A Linux bridge forwards Ethernet frames between its ports (the host ends of the containers'
veth pairs). Giving the bridge an address makes the host a member of the network too, and
that address is the containers' gateway: their packets to anywhere else reach the host, which
routes them on — once ``net.ipv4.ip_forward`` is 1 (it is per network namespace, and 0 in a
fresh one).

The netlink requests are pyroute2's ``IPRoute`` (what ``ip link``/``ip addr`` send), never the
parsed output of ``ip``.

Several state roots (a class on one machine, each test session) may share one network
namespace: each bridge carries the state root that made it as its *alias* (``ip link`` shows
``alias minidocker:/var/lib/minidocker``), so that a prune takes only its own.

Man pages: ip-link(8) (type bridge, ``alias``), ip-address(8), bridge(8).
Docker: the ``docker0`` bridge, ``--bip``, ``com.docker.network.bridge.name``.
Used by: notebook 08-networking; lab 08-networking has the student build the same step by hand.
"""

from pathlib import Path

from minidocker.network.netlink import IPRoute

MTU = 1500


def sysctl(name: str, value: str) -> None:
    """Write a sysctl of *this* network namespace (``/proc/sys/net`` follows the reader's)."""
    Path("/proc/sys", name.replace(".", "/")).write_text(value)


def link_exists(name: str) -> bool:
    with IPRoute() as ip:
        return bool(ip.link_lookup(ifname=name))


def ensure_bridge(name: str, gateway: str, prefixlen: int, owner: str, mtu: int = MTU) -> None:
    """Create the bridge if it is missing, mark it with its ``owner`` (its alias, which
    ``ip link`` shows), give it the gateway address, and bring it up."""
    with IPRoute() as ip:
        if not ip.link_lookup(ifname=name):
            ip.link("add", ifname=name, kind="bridge")  # the kernel takes no alias here
        index = ip.link_lookup(ifname=name)[0]
        if not ip.get_links(index)[0].get("ifalias"):
            ip.link("set", index=index, ifalias=owner)
        if not ip.get_addr(index=index, address=gateway):
            ip.addr("add", index=index, address=gateway, prefixlen=prefixlen)
        ip.link("set", index=index, mtu=mtu, state="up")
    sysctl("net.ipv4.ip_forward", "1")  # be a router between the bridges and the world
    # Let packets to 127.0.0.1 be DNAT'ed onto the bridge (see firewall.py, "hairpin").
    sysctl(f"net.ipv4.conf.{name}.route_localnet", "1")


def remove_bridge(name: str) -> None:
    """Delete the bridge (its address and routes go with it); a missing one is fine."""
    with IPRoute() as ip:
        for index in ip.link_lookup(ifname=name):
            ip.link("del", index=index)


def bridges_of(owner: str) -> list[str]:
    """The names of this namespace's links whose alias says ``owner`` made them."""
    with IPRoute() as ip:
        return sorted(link.get("ifname") for link in ip.get_links()
                      if link.get("ifalias") == owner)


def links_named(prefixes: tuple[str, ...]) -> list[str]:
    """The names of this namespace's links that start with one of ``prefixes``."""
    with IPRoute() as ip:
        names = [link.get("ifname") for link in ip.get_links()]
    return sorted(n for n in names if n.startswith(prefixes))
