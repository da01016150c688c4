"""The bridge: a virtual switch on the host that every container of one network plugs into.

A Linux bridge forwards Ethernet frames between its ports (the host ends of the containers'
veth pairs). Giving the bridge an address makes the host a member of the network too, and
that address is the containers' gateway: their packets to anywhere else reach the host, which
routes them on — once ``net.ipv4.ip_forward`` is 1 (it is per network namespace, and 0 in a
fresh one).

The netlink requests are rtnetlink messages (netlink.py: pyroute2's encoding, what ``ip
link``/``ip addr`` send), never the parsed output of ``ip``.

Several state roots (a class on one machine, each test session) may share one network
namespace: each bridge carries the state root that made it as its *alias* (``ip link`` shows
``alias minidocker:/var/lib/minidocker``), so that a prune takes only its own.

Man pages: ip-link(8) (type bridge, ``alias``), ip-address(8), bridge(8).
Docker: the ``docker0`` bridge, ``--bip``, ``com.docker.network.bridge.name``.
Used by: notebook 08-networking; lab 08-networking has the student build the same step by hand.
"""

import errno
from pathlib import Path

from minidocker.network.netlink import (
    NLM_F_CREATE,
    NLM_F_EXCL,
    RTM_DELLINK,
    RTM_GETLINK,
    RTM_NEWLINK,
    NetlinkError,
    Rtnl,
    address,
    link,
)

MTU = 1500


def sysctl(name: str, value: str) -> None:
    """Write a sysctl of *this* network namespace (``/proc/sys/net`` follows the reader's)."""
    Path("/proc/sys", name.replace(".", "/")).write_text(value)


def link_exists(name: str) -> bool:
    with Rtnl.here() as ip:
        return ip.link_index(name) is not None


def ensure_bridge(name: str, gateway: str, prefixlen: int, owner: str, mtu: int = MTU) -> None:
    """Create the bridge if it is missing, mark it with its ``owner`` (its alias, which
    ``ip link`` shows), give it the gateway address, and bring it up."""
    with Rtnl.here() as ip:
        _tolerate(errno.EEXIST, ip.request, link(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, attrs=[
            ("IFLA_IFNAME", name), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})]))
        found = ip.request(link(RTM_GETLINK, attrs=[("IFLA_IFNAME", name)]))[0]
        alias = [] if found.get_attr("IFLA_IFALIAS") else [("IFLA_IFALIAS", owner)]
        # (the kernel takes no alias when it creates a link, and another root's stays)
        ip.request(link(index=found["index"], up=True, attrs=[("IFLA_MTU", mtu), *alias]))
        _tolerate(errno.EEXIST, ip.request, address(found["index"], gateway, prefixlen))
    sysctl("net.ipv4.ip_forward", "1")  # be a router between the bridges and the world
    # Let packets to 127.0.0.1 be DNAT'ed onto the bridge (see firewall.py, "hairpin").
    sysctl(f"net.ipv4.conf.{name}.route_localnet", "1")


def remove_bridge(name: str) -> None:
    """Delete the bridge (its address and routes go with it); a missing one is fine."""
    delete_link(name)


def delete_link(name: str) -> None:
    """``ip link del NAME``; a link that is not there (any more) is fine."""
    with Rtnl.here() as ip:
        _tolerate(errno.ENODEV, ip.request, link(RTM_DELLINK, attrs=[("IFLA_IFNAME", name)]))


def _tolerate(code: int, call, *args) -> None:
    try:
        call(*args)
    except NetlinkError as exc:
        if exc.code != code:
            raise


def bridges_of(owner: str) -> list[str]:
    """The names of this namespace's links whose alias says ``owner`` made them."""
    with Rtnl.here() as ip:
        return sorted(found.get_attr("IFLA_IFNAME") for found in ip.links()
                      if found.get_attr("IFLA_IFALIAS") == owner)


def links_named(prefixes: tuple[str, ...]) -> list[str]:
    """The names of this namespace's links that start with one of ``prefixes``."""
    with Rtnl.here() as ip:
        names = [found.get_attr("IFLA_IFNAME") for found in ip.links()]
    return sorted(n for n in names if n.startswith(prefixes))
