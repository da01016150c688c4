"""A node's end of each overlay network: a bridge, a VXLAN device, and what etcd says is remote.

VXLAN (RFC 7348) carries Ethernet frames inside UDP packets (port 4789) between *VTEPs*, here
one per node at its underlay address. A frame sent to a container on another node leaves the
node's overlay bridge by its VXLAN port, is wrapped (outer IP: this node to that node; VNI:
which overlay) and unwrapped there into that node's bridge. Per node and overlay:

    container eth0 --veth-- bridge ov<VNI> (MTU 1450, the node's address on the overlay)
                              `-- vx<VNI>: vxlan id VNI dstport 4789 local <underlay> dev eth0
                                   learning off, proxy on

``learning off``: the device never guesses where a MAC lives from the traffic it sees, and
nothing is flooded to every node. It is *told*, as libnetwork's gossip tells it: for every
remote endpoint (a task's address on another node, another node's own address) one
forwarding entry (``bridge fdb add <MAC> dev vx<VNI> dst <that node>``) and one neighbour
entry (``ip neigh add <IP> lladdr <MAC> dev vx<VNI>``), so that with ``proxy on`` the VXLAN
device itself answers a container's ARP request. MACs are Docker's (02:42 + the IPv4 address),
so an address in etcd is enough to know its MAC.

**Who programs it: the node's agent**, not the manager's per-node call. These are the node's
own kernel tables, to be kept true as tasks come and go anywhere — also while no manager
reaches this node, and for containers the manager did not start here. The agent already runs
inside the node's network namespace, watching etcd; each change (and every second) it reads
the networks and tasks once and makes the node match: the network in its daemon (stage 8, a
bridge network with the overlay's subnet, the node's address as gateway and the overlay's MTU),
the VXLAN device on its bridge, exactly the entries etcd implies (missing ones added, stale
ones deleted) and the routing mesh's rules (mesh.py). A network no longer needed on the node
is taken down again. The manager waits (task state ``preparing``) until the network exists.

Man pages: ip-link(8) (type vxlan: id, dstport, local, learning, proxy), bridge(8) (fdb),
ip-neighbour(8). Used by: agent.py; notebook 14b-overlay-networks.
"""

import ipaddress
import logging

from pyroute2 import IPRoute, NetlinkError

from minidocker.cluster import overlay
from minidocker.cluster import swarm as records
from minidocker.cluster.engine import Engine, EngineError
from minidocker.network.ipam import mac_for
from minidocker.network.records import BRIDGE_NAME_OPTION, MTU_OPTION

NETWORK_LABEL = "com.docker.swarm.network.id"
NUD_PERMANENT = 0x80  # a neighbour entry nothing ages out (ndmsg states)
NTF_SELF = 0x02  # an FDB entry of the VXLAN device itself, not of the bridge above it
UNDERLAY_DEVICE = "eth0"
log = logging.getLogger("minidocker.vxlan")


def remote_endpoints(network: dict, tasks: dict[str, dict], nodes: dict[str, dict],
                     me: str) -> dict[str, str]:
    """Every address on ``network`` that lives on another node -> that node's underlay
    address: the tasks that should run there, and the nodes' own addresses."""
    remote = {}
    for task in tasks.values():
        node = nodes.get(task.get("NodeID", ""))
        if task["DesiredState"] != records.RUNNING or not node or node["ID"] == me:
            continue
        for attachment in task.get("NetworksAttachments", []):
            if attachment["NetworkID"] == network["ID"]:
                remote[attachment["Address"]] = node["Address"]
    for node_id, address in network["NodeAddresses"].items():
        if node_id != me and node_id in nodes:
            remote[address] = nodes[node_id]["Address"]
    return remote


def sync(store, node: dict) -> dict:
    """Make this node's overlays what etcd says (one pass of the agent); returns the snapshot
    read, for the node's name server."""
    state = overlay.read_state(store)
    engine = Engine(node["Socket"])
    mine = {n["ID"]: n for n in state["networks"].values() if node["ID"] in n["NodeAddresses"]}
    for network in mine.values():
        try:
            build(engine, network, network["NodeAddresses"][node["ID"]], node["Address"])
            program(network, remote_endpoints(network, state["tasks"], state["nodes"],
                                              node["ID"]))
        except (EngineError, NetlinkError) as exc:
            log.warning("overlay %s: %s", network["Name"], exc)
    for name, network_id in local_overlays(engine).items():
        if network_id not in mine:
            take_down(engine, name, state["networks"].get(network_id))
    from minidocker.cluster import mesh

    mesh.apply(state, mine, node)
    return state


# --- the node's end of one overlay ------------------------------------------------------------------

def build(engine: Engine, network: dict, address: str, underlay: str) -> None:
    """The overlay's bridge (a network of the node's daemon) and its VXLAN port, if missing;
    both with the MTU the underlay leaves them (eth0's, less the VXLAN encapsulation)."""
    with IPRoute() as ip:
        underlay_mtu = ip.get_links(ip.link_lookup(ifname=UNDERLAY_DEVICE)[0])[0] \
            .get_attr("IFLA_MTU")
    if not engine.has_network(network["Name"]):
        engine.call("POST", "/networks/create", json={
            "Name": network["Name"], "Driver": "bridge",
            "IPAM": {"Config": [{"Subnet": network["Subnet"], "Gateway": address}]},
            "Options": {BRIDGE_NAME_OPTION: overlay.bridge_name(network),
                        MTU_OPTION: str(overlay.mtu(underlay_mtu))},
            "Labels": {NETWORK_LABEL: network["ID"]}})
    with IPRoute() as ip:
        bridge = ip.link_lookup(ifname=overlay.bridge_name(network))[0]
        # The bridge's MAC, like a container's, follows from its address: the other nodes
        # write it into their tables without asking.
        ip.link("set", index=bridge, address=mac_for(address))
        if not ip.link_lookup(ifname=overlay.vxlan_name(network)):
            add_vxlan(ip, network, underlay, bridge, overlay.mtu(underlay_mtu))


def add_vxlan(ip: IPRoute, network: dict, underlay: str, bridge: int, mtu: int) -> None:
    """``ip link add vx<VNI> type vxlan id <VNI> dstport 4789 local <underlay> dev eth0
    nolearning proxy``, MTU 1450, a port of the overlay's bridge."""
    name = overlay.vxlan_name(network)
    ip.link("add", ifname=name, kind="vxlan", vxlan_id=network["VNI"],
            vxlan_port=overlay.VXLAN_PORT, vxlan_local=underlay,
            vxlan_link=ip.link_lookup(ifname=UNDERLAY_DEVICE)[0],
            vxlan_learning=0, vxlan_proxy=1)
    index = ip.link_lookup(ifname=name)[0]
    ip.link("set", index=index, mtu=mtu, master=bridge, state="up")


def program(network: dict, remote: dict[str, str]) -> None:
    """Exactly one neighbour and one FDB entry per remote endpoint on the VXLAN device."""
    with IPRoute() as ip:
        vxlan = ip.link_lookup(ifname=overlay.vxlan_name(network))[0]
        neighbours = {n.get_attr("NDA_DST"): n.get_attr("NDA_LLADDR")
                      for n in ip.get_neighbours(ifindex=vxlan, family=2)}
        forwarding = {(f.get_attr("NDA_LLADDR"), f.get_attr("NDA_DST"))
                      for f in ip.fdb("dump", ifindex=vxlan) if f.get_attr("NDA_DST")}
        wanted_fdb = {(mac_for(address), node) for address, node in remote.items()}
        for address in set(neighbours) - set(remote):
            ip.neigh("del", dst=address, ifindex=vxlan)
        for mac, node in forwarding - wanted_fdb:
            ip.fdb("del", ifindex=vxlan, lladdr=mac, dst=node)
        for address in remote:
            if neighbours.get(address) != mac_for(address):
                ip.neigh("replace", dst=address, lladdr=mac_for(address), ifindex=vxlan,
                         state=NUD_PERMANENT)
        for mac, node in wanted_fdb - forwarding:
            ip.fdb("replace", ifindex=vxlan, lladdr=mac, dst=node, state=NUD_PERMANENT,
                   flags=NTF_SELF)


def local_overlays(engine: Engine) -> dict[str, str]:
    """The overlays this node's daemon has: network name -> overlay ID."""
    try:
        found = engine.call("GET", "/networks").json()
    except EngineError:
        return {}
    return {n["Name"]: n["Labels"][NETWORK_LABEL] for n in found
            if NETWORK_LABEL in (n.get("Labels") or {})}


def take_down(engine: Engine, name: str, network: dict | None) -> None:
    """The overlay is no longer needed here: its network goes (once no container is on it),
    and with its bridge the VXLAN device and its entries."""
    try:
        engine.call("DELETE", f"/networks/{name}")
    except EngineError as exc:
        log.info("overlay %s stays for now: %s", name, exc)
        return
    if network:
        with IPRoute() as ip:
            for index in ip.link_lookup(ifname=overlay.vxlan_name(network)):
                ip.link("del", index=index)


def vxlan_devices() -> list[dict]:
    """This namespace's VXLAN devices as ``ip -d link`` shows them: name, VNI, local, port,
    learning, proxy, MTU, master (for the notebook and the tests)."""
    with IPRoute() as ip:
        found = []
        for link in ip.get_links():
            info = link.get_attr("IFLA_LINKINFO")
            if not info or info.get_attr("IFLA_INFO_KIND") != "vxlan":
                continue
            data = info.get_attr("IFLA_INFO_DATA")
            master = link.get_attr("IFLA_MASTER")
            found.append({
                "name": link.get_attr("IFLA_IFNAME"), "vni": data.get_attr("IFLA_VXLAN_ID"),
                "local": str(ipaddress.ip_address(data.get_attr("IFLA_VXLAN_LOCAL"))),
                "port": data.get_attr("IFLA_VXLAN_PORT"),
                "learning": data.get_attr("IFLA_VXLAN_LEARNING"),
                "proxy": data.get_attr("IFLA_VXLAN_PROXY"), "mtu": link.get_attr("IFLA_MTU"),
                "master": ip.get_links(master)[0].get_attr("IFLA_IFNAME") if master else ""})
        return found
