"""Notebook 14b's evidence: an overlay drawn from etcd, a VXLAN packet read byte by byte, the MTU.

``overlay_graph(state, name)`` draws one overlay network as etcd describes it (the same read
the agents make, ``overlay.read_state``): each node that holds the network, with its underlay
address, its bridge and VXLAN device; each task on it with its address; the VTEPs joined by
the UDP tunnels between them. The graph is data (tested in tests/test_viz_overlay.py);
``draw_overlay`` turns it into a graphviz picture.

``capture(netns, ...)`` reads packets off a node's underlay interface with an ``AF_PACKET``
socket (packet(7): every frame the interface sees, headers and all, what tcpdump reads too)
and ``parse_vxlan`` takes one apart: outer Ethernet, outer IPv4, UDP to port 4789, the 8-byte
VXLAN header (flags, then the 24-bit VNI), and inside it the container's own Ethernet frame
and IPv4 packet. No tcpdump: the course reads each header's offsets here.

Specs: RFC 7348 (VXLAN, section 5: the frame format), RFC 791 (IPv4), RFC 768 (UDP),
packet(7). Used by: notebooks/14b-overlay-networks.ipynb.
"""

import ipaddress
import json
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable

from minidocker.cluster import overlay
from minidocker.viz.graph import FITS_THE_COLUMN, Graph, GraphNode
from minidocker.viz.table import Table

ETH_P_ALL = 0x0003
LISTENING = "listening"  # what the capturing child says once its socket is bound
ETHERNET, IPV4, UDP, VXLAN = 14, 20, 8, 8  # header lengths (IPv4 without options)
STYLE = {"node": {"shape": "box3d", "style": "filled", "fillcolor": "lightgray"},
         "vtep": {"shape": "box", "style": "rounded,filled", "fillcolor": "palegreen"},
         "task": {"shape": "box", "style": "rounded,filled", "fillcolor": "lightblue"}}


# --- the overlay, drawn from etcd ------------------------------------------------------------------

def overlay_graph(state: dict, name: str) -> Graph:
    """One overlay: its nodes (underlay address), their bridge + VXLAN device (the node's
    address on the overlay), the tasks on it, and a tunnel between every two VTEPs."""
    network = next(n for n in state["networks"].values() if n["Name"] == name)
    nodes, edges = [], []
    holders = sorted(network["NodeAddresses"].items(),
                     key=lambda item: state["nodes"].get(item[0], {}).get("Hostname", ""))
    for node_id, address in holders:
        node = state["nodes"].get(node_id, {"Hostname": node_id, "Address": "?"})
        host = node["Hostname"]
        nodes.append(GraphNode(f"node:{host}", f"{host}\neth0 {node['Address']}", "node"))
        nodes.append(GraphNode(f"vtep:{host}", f"{overlay.bridge_name(network)} {address}\n"
                               f"{overlay.vxlan_name(network)} VNI {network['VNI']}", "vtep"))
        edges.append((f"node:{host}", f"vtep:{host}", ""))
    for task in sorted(state["tasks"].values(), key=lambda t: (t.get("Slot") or 0, t["ID"])):
        service = state["services"].get(task["ServiceID"])
        node = state["nodes"].get(task.get("NodeID", ""))
        for attachment in task.get("NetworksAttachments", []):
            if attachment["NetworkID"] != network["ID"] or not service or not node or \
                    task["DesiredState"] != "running":
                continue
            label = f"{service['Spec']['Name']}.{task.get('Slot') or node['Hostname']}"
            nodes.append(GraphNode(f"task:{task['ID']}", f"{label}\n{attachment['Address']}",
                                   "task"))
            edges.append((f"task:{task['ID']}", f"vtep:{node['Hostname']}", "veth"))
    hosts = [state["nodes"].get(n, {"Hostname": n})["Hostname"] for n, _ in holders]
    for index, first in enumerate(hosts):
        for second in hosts[index + 1:]:
            edges.append((f"vtep:{first}", f"vtep:{second}",
                          f"UDP {overlay.VXLAN_PORT}, VNI {network['VNI']}"))
    return Graph(nodes, edges)


def draw_overlay(state: dict, name: str):
    """The picture of ``overlay_graph`` (a graphviz object the notebook displays)."""
    import graphviz  # only the notebooks need it (the "lab" extra)

    graph = overlay_graph(state, name)
    dot = graphviz.Graph("overlay", graph_attr={"size": FITS_THE_COLUMN, "label": name,
                                                "labelloc": "t", "fontname": "Helvetica"},
                         node_attr={"fontname": "Helvetica", "fontsize": "11"},
                         edge_attr={"fontname": "Helvetica", "fontsize": "9"})
    ids = {node.id: f"n{i}" for i, node in enumerate(graph.nodes)}  # no ":" in DOT names
    for node in graph.nodes:
        dot.node(ids[node.id], node.label, **STYLE[node.kind])
    for source, target, label in graph.edges:
        tunnel = source.startswith("vtep:") and target.startswith("vtep:")
        dot.edge(ids[source], ids[target], label=label,
                 style="dashed" if tunnel else "solid", color="darkgreen" if tunnel else "gray40")
    return dot


# --- the MTU arithmetic ----------------------------------------------------------------------------

def mtu_table(underlay_mtu: int = overlay.UNDERLAY_MTU) -> Table:
    """What a VXLAN packet adds to the container's IP packet, and what is left for it."""
    rows = [("inner Ethernet header (the container's frame)", ETHERNET),
            ("VXLAN header (flags, VNI)", VXLAN), ("outer UDP header (port 4789)", UDP),
            ("outer IPv4 header (node to node)", IPV4)]
    total = sum(size for _, size in rows)
    rows += [("overhead", total), ("underlay MTU (eth0)", underlay_mtu),
             ("overlay MTU (bridge, vxlan, veths)", underlay_mtu - total)]
    return Table(("what", "bytes"), rows)


# --- a VXLAN packet, byte by byte ------------------------------------------------------------------

def mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def parse_vxlan(frame: bytes) -> dict | None:
    """The layers of one VXLAN packet as captured on the underlay (None: not one)."""
    if len(frame) < ETHERNET + IPV4 + UDP + VXLAN + ETHERNET or \
            struct.unpack("!H", frame[12:14])[0] != 0x0800:  # outer EtherType: IPv4
        return None
    outer_ip = frame[ETHERNET:]
    header_length = (outer_ip[0] & 0x0F) * 4
    if outer_ip[9] != socket.IPPROTO_UDP:
        return None
    udp = outer_ip[header_length:]
    source_port, destination_port = struct.unpack("!HH", udp[:4])
    if destination_port != overlay.VXLAN_PORT:
        return None
    vxlan = udp[UDP:]
    flags, vni = vxlan[0], int.from_bytes(vxlan[4:7], "big")  # I flag 0x08: the VNI is valid
    inner = vxlan[VXLAN:]
    packet = {"outer": {"src": mac(frame[6:12]), "dst": mac(frame[0:6]),
                        "ip_src": str(ipaddress.ip_address(outer_ip[12:16])),
                        "ip_dst": str(ipaddress.ip_address(outer_ip[16:20])),
                        "udp_src": source_port, "udp_dst": destination_port},
              "vxlan": {"flags": f"0x{flags:02x}", "vni": vni},
              "inner": {"src": mac(inner[6:12]), "dst": mac(inner[0:6]),
                        "ethertype": f"0x{struct.unpack('!H', inner[12:14])[0]:04x}"}}
    if packet["inner"]["ethertype"] == "0x0800":
        ip = inner[ETHERNET:]
        packet["inner"].update({"ip_src": str(ipaddress.ip_address(ip[12:16])),
                                "ip_dst": str(ipaddress.ip_address(ip[16:20])),
                                "protocol": {1: "icmp", 6: "tcp", 17: "udp"}.get(ip[9], ip[9]),
                                "length": struct.unpack("!H", ip[2:4])[0]})
    return packet


def read_vxlan(interface: str, count: int, timeout: float,
               listening: Callable[[], None] = lambda: None) -> list[dict]:
    """Up to ``count`` VXLAN packets seen on ``interface`` (in this network namespace);
    ``listening`` is called once the socket is bound: from then on no packet is missed."""
    packets = []
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as raw:
        raw.bind((interface, 0))
        listening()
        deadline = time.monotonic() + timeout
        while len(packets) < count and time.monotonic() < deadline:
            raw.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                frame, address = raw.recvfrom(65535)
            except TimeoutError:
                break
            parsed = parse_vxlan(frame)
            if parsed and address[2] != socket.PACKET_OUTGOING:
                packets.append(parsed)
    return packets


def capture(netns: str, interface: str = "eth0", count: int = 1,
            timeout: float = 10.0) -> subprocess.Popen:
    """Start reading VXLAN packets in another network namespace (a child entered there with
    nsenter), and return once it listens (its first line says so: a packet sent before
    would be missed, and a busy machine may take seconds to start a Python); ``captured``
    gives the packets back once the traffic was made."""
    reader = subprocess.Popen(["nsenter", f"--net={netns}", sys.executable, "-m",
                               "minidocker.viz.overlay", interface, str(count), str(timeout)],
                              stdout=subprocess.PIPE, text=True)
    said = reader.stdout.readline().strip()
    if said != LISTENING:
        reader.wait(timeout=60)
        raise RuntimeError(f"the capture on {interface} in {netns} did not start "
                           f"(exit status {reader.returncode}): {said or 'nothing said'}")
    return reader


def captured(reader: subprocess.Popen) -> list[dict]:
    out, _ = reader.communicate(timeout=60)
    return json.loads(out or "[]")


def layers(packet: dict) -> Table:
    """One captured packet, a row per field, outermost first."""
    rows = [("outer Ethernet", "src > dst", f"{packet['outer']['src']} > {packet['outer']['dst']}"),
            ("outer IPv4", "src > dst", f"{packet['outer']['ip_src']} > {packet['outer']['ip_dst']}"),
            ("outer UDP", "dst port", packet["outer"]["udp_dst"]),
            ("VXLAN", "flags, VNI", f"{packet['vxlan']['flags']}, {packet['vxlan']['vni']}"),
            ("inner Ethernet", "src > dst", f"{packet['inner']['src']} > {packet['inner']['dst']}")]
    if "ip_src" in packet["inner"]:
        rows.append(("inner IPv4", "src > dst, protocol",
                     f"{packet['inner']['ip_src']} > {packet['inner']['ip_dst']}, "
                     f"{packet['inner']['protocol']}"))
    return Table(("layer", "field", "value"), rows)


def lab_state() -> dict:
    """What etcd holds (``overlay.read_state``), read by a child that joins the lab's network
    namespace — the notebook's own process stays where it is."""
    out = subprocess.run([sys.executable, "-m", "minidocker.viz.overlay", "--state"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return json.loads(out)


def _print_state() -> None:
    from minidocker.cluster import swarm

    _, store = swarm.connect()
    print(json.dumps(overlay.read_state(store)))


if __name__ == "__main__":
    if sys.argv[1:] == ["--state"]:
        _print_state()
    else:
        print(json.dumps(read_vxlan(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]),
                                    lambda: print(LISTENING, flush=True))))
