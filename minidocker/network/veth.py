"""The veth pair: a virtual cable with one end on the host's bridge, one inside the container.

What goes in one end of a veth pair comes out of the other. The host end (``veth<7 hex>``) is
plugged into the bridge; the other end is the container's ``eth0`` (``eth1`` for a second
network), with its address and MAC, up with ``lo``, and a default route via the gateway.

The kernel lets one ``RTM_NEWLINK`` make the whole cable (``ip link add vethX mtu 1500 master
BRIDGE up type veth peer name eth0 address MAC netns PID``): the peer's attributes
(``VETH_INFO_PEER``) name its namespace by the container's PID, so it is born there, already
named ``eth0`` — no temporary name on the host, no move, no rename. Only its ``up`` must wait:
a veth end cannot open before its peer exists (``ENOTCONN``), and the peer is made first.

The container's side is configured through a netlink socket *opened in its namespace*
(``Rtnl.inside(pid)``: a short-lived thread setns(2)'s there and opens it; see netlink.py),
with one buffer of requests: its address, ``eth0`` and ``lo`` up, the default route. A plug
is four netlink round trips: the bridge's index and the pair on the host, ``eth0``'s index
and the rest inside.

Deleting either end destroys the pair; when the container's namespace dies (its last process
exited), its end is destroyed and so is ours.

Man pages: veth(4), ip-link(8), network_namespaces(7), setns(2), rtnetlink(7).
Used by: notebook 08-networking; lab 08-networking has the student build the same step by hand.
"""

import secrets

from minidocker import explain
from minidocker.network.bridge import MTU, delete_link
from minidocker.network.netlink import (
    LOOPBACK_INDEX,
    NLM_F_CREATE,
    NLM_F_EXCL,
    RTM_NEWLINK,
    Rtnl,
    address,
    default_route,
    link,
)


def new_veth_name() -> str:
    """``veth`` + 7 hex digits, like Docker's host-side names (15 chars is the kernel's max)."""
    return "veth" + secrets.token_hex(4)[:7]


def loopback_up(pid: int) -> None:
    """Bring up ``lo`` in the container: a fresh namespace has it, down."""
    with Rtnl.inside(pid) as ns:
        ns.request(link(index=LOOPBACK_INDEX, up=True))


def plug(pid: int, veth: str, bridge: str, ifname: str, ip: str, prefixlen: int,
         mac: str, gateway: str | None, mtu: int = MTU) -> None:
    """Connect the container ``pid`` to ``bridge``: the whole veth story, in order."""
    explain.step("ip link", f"add {veth} mtu {mtu} master {bridge} up type veth peer name "
                 f"{ifname} address {mac} netns {pid}")
    with Rtnl.here() as host:
        host.request(link(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, up=True, attrs=[
            ("IFLA_IFNAME", veth), ("IFLA_MTU", mtu),
            ("IFLA_MASTER", host.link_index(bridge)),
            ("IFLA_LINKINFO", {"attrs": [
                ("IFLA_INFO_KIND", "veth"),
                ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", {"attrs": [
                    ("IFLA_IFNAME", ifname), ("IFLA_ADDRESS", mac), ("IFLA_MTU", mtu),
                    ("IFLA_NET_NS_PID", pid)]})]})]})]))
    with Rtnl.inside(pid) as ns:  # setns(2), in a thread of its own
        explain.step("ip addr", f"add {ip}/{prefixlen} dev {ifname} (inside)")
        explain.step("ip link", f"set {ifname} up; set lo up (inside)")
        if gateway:
            explain.step("ip route", f"add default via {gateway} (inside)")
        inside = ns.link_index(ifname)
        ns.request(address(inside, ip, prefixlen),
                   link(index=inside, up=True),
                   link(index=LOOPBACK_INDEX, up=True),
                   *([default_route(gateway)] if gateway else []))


def unplug(veth: str) -> None:
    """Delete the host end, and with it the pair; a missing one is fine: when the container's
    namespace dies the kernel deletes the pair itself (a moment later, so it may vanish between
    our lookup and our delete)."""
    delete_link(veth)
