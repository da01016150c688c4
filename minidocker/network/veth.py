"""The veth pair: a virtual cable with one end on the host's bridge, one inside the container.

What goes in one end of a veth pair comes out of the other. The pair is created on the host;
one end (``veth<7 hex>``) is plugged into the bridge; the other is moved into the container's
network namespace by its PID (``IFLA_NET_NS_PID``, ``ip link set dev X netns PID``), and there
renamed ``eth0`` (``eth1`` for a second network), given its address and MAC, brought up with
``lo``, and given a default route via the gateway.

Inside the container's namespace we talk netlink through a socket *opened in that namespace*:
``IPRoute(netns="/proc/<pid>/ns/net")`` has a short-lived child setns(2) there, open the
socket and pass it back — a netlink socket stays bound to the namespace it was born in, so our
process never leaves its own.

Deleting either end destroys the pair; when the container's namespace dies (its last process
exited), its end is destroyed and so is ours.

Man pages: veth(4), ip-link(8), network_namespaces(7), setns(2).
Used by: notebook 08-networking; lab 08-networking has the student build the same step by hand.
"""

import errno
import secrets

from minidocker import explain
from minidocker.network.bridge import MTU
from minidocker.network.netlink import IPRoute, NetlinkError


def new_veth_name() -> str:
    """``veth`` + 7 hex digits, like Docker's host-side names (15 chars is the kernel's max)."""
    return "veth" + secrets.token_hex(4)[:7]


def container_netns(pid: int) -> IPRoute:
    """A netlink connection inside the network namespace of process ``pid``."""
    return IPRoute(netns=f"/proc/{pid}/ns/net", flags=0)  # flags=0: never create one


def loopback_up(pid: int) -> None:
    """Bring up ``lo`` in the container: a fresh namespace has it, down."""
    with container_netns(pid) as ns:
        ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")


def plug(pid: int, veth: str, bridge: str, ifname: str, address: str, prefixlen: int,
         mac: str, gateway: str | None, mtu: int = MTU) -> None:
    """Connect the container ``pid`` to ``bridge``: the whole veth story, in order."""
    peer = "p" + veth[1:]  # a temporary name for the container's end while it is on the host
    explain.step("ip link", f"add {veth} type veth peer name {peer}; set {peer} netns {pid} "
                 f"name {ifname}; set {veth} master {bridge}")
    explain.step("ip addr", f"add {address}/{prefixlen} dev {ifname} (in {pid}'s namespace)")
    if gateway:
        explain.step("ip route", f"add default via {gateway} (in {pid}'s namespace)")
    with IPRoute() as host:
        host.link("add", ifname=veth, kind="veth", peer={"ifname": peer})
        host_end = host.link_lookup(ifname=veth)[0]
        host.link("set", index=host_end, master=host.link_lookup(ifname=bridge)[0])
        host.link("set", index=host_end, mtu=mtu, state="up")
        host.link("set", index=host.link_lookup(ifname=peer)[0], net_ns_pid=pid)
    with container_netns(pid) as ns:
        inside = ns.link_lookup(ifname=peer)[0]
        ns.link("set", index=inside, ifname=ifname, address=mac, mtu=mtu)
        ns.addr("add", index=inside, address=address, prefixlen=prefixlen)
        ns.link("set", index=inside, state="up")
        ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        if gateway:
            ns.route("add", dst="0.0.0.0/0", gateway=gateway)


def unplug(veth: str) -> None:
    """Delete the host end, and with it the pair; a missing one is fine: when the container's
    namespace dies the kernel deletes the pair itself (a moment later, so it may vanish between
    our lookup and our delete)."""
    with IPRoute() as host:
        for index in host.link_lookup(ifname=veth):
            try:
                host.link("del", index=index)
            except NetlinkError as exc:
                if exc.code != errno.ENODEV:
                    raise
