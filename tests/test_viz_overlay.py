"""Notebook 14b's helpers as data: the overlay graph from an etcd snapshot, a VXLAN packet
taken apart, the MTU arithmetic."""

import os
import socket
import struct

from minidocker.viz.overlay import mtu_table, overlay_graph, parse_vxlan

STATE = {
    "networks": {"net1": {"ID": "net1", "Name": "appnet", "VNI": 4097, "Subnet": "10.0.9.0/24",
                          "NodeAddresses": {"id1": "10.0.9.2", "id2": "10.0.9.4"}}},
    "nodes": {"id1": {"ID": "id1", "Hostname": "n1", "Address": "10.77.0.11"},
              "id2": {"ID": "id2", "Hostname": "n2", "Address": "10.77.0.12"}},
    "services": {"s1": {"ID": "s1", "Spec": {"Name": "a"}}},
    "tasks": {"t1": {"ID": "t1", "ServiceID": "s1", "Slot": 1, "NodeID": "id2",
                     "DesiredState": "running",
                     "NetworksAttachments": [{"NetworkID": "net1", "Address": "10.0.9.3"}]},
              "t0": {"ID": "t0", "ServiceID": "s1", "Slot": 1, "NodeID": "id1",
                     "DesiredState": "shutdown",
                     "NetworksAttachments": [{"NetworkID": "net1", "Address": "10.0.9.1"}]}},
}


def test_the_overlay_graph_shows_nodes_vteps_tasks_and_the_tunnel():
    graph = overlay_graph(STATE, "appnet")
    assert [n.id for n in graph.nodes] == ["node:n1", "vtep:n1", "node:n2", "vtep:n2", "task:t1"]
    assert graph.node("vtep:n2").label == "ov4097 10.0.9.4\nvx4097 VNI 4097"
    assert graph.node("task:t1").label == "a.1\n10.0.9.3"  # the shut-down task is not drawn
    assert ("task:t1", "vtep:n2", "veth") in graph.edges
    assert ("vtep:n1", "vtep:n2", "UDP 4789, VNI 4097") in graph.edges


def vxlan_packet(vni: int) -> bytes:
    inner_ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 84, 0, 0, 64, 1, 0,
                           socket.inet_aton("10.0.9.1"), socket.inet_aton("10.0.9.3"))
    inner = bytes.fromhex("02420a000903" "02420a000901" "0800") + inner_ip + bytes(64)
    vxlan = bytes([0x08, 0, 0, 0]) + vni.to_bytes(3, "big") + b"\0"
    udp = struct.pack("!HHHH", 40000, 4789, 8 + len(vxlan) + len(inner), 0)
    outer_ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp) + len(vxlan) + len(inner),
                           0, 0, 64, 17, 0, socket.inet_aton("10.77.0.11"),
                           socket.inet_aton("10.77.0.12"))
    return bytes.fromhex("aaaaaaaaaaaa" "bbbbbbbbbbbb" "0800") + outer_ip + udp + vxlan + inner


def test_a_vxlan_packet_taken_apart():
    packet = parse_vxlan(vxlan_packet(4097))
    assert packet["outer"]["ip_src"] == "10.77.0.11" and packet["outer"]["udp_dst"] == 4789
    assert packet["vxlan"] == {"flags": "0x08", "vni": 4097}
    assert packet["inner"]["src"] == "02:42:0a:00:09:01"
    assert (packet["inner"]["ip_src"], packet["inner"]["ip_dst"]) == ("10.0.9.1", "10.0.9.3")
    assert packet["inner"]["protocol"] == "icmp"
    assert parse_vxlan(vxlan_packet(4097)[:40]) is None


def test_the_mtu_arithmetic():
    rows = dict(mtu_table().rows)
    assert rows["overhead"] == 50 and rows["overlay MTU (bridge, vxlan, veths)"] == 1450


def test_a_capture_listens_before_it_returns():
    """capture() returns once its child's socket is bound: a packet sent at once (the
    notebook pings right after it) is caught, however long the child took to start."""
    from minidocker.viz.overlay import capture, captured

    reader = capture(f"/proc/{os.getpid()}/ns/net", "lo", count=1, timeout=30)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:  # over lo: VXLAN's payload
        udp.sendto(vxlan_packet(4242)[14 + 20 + 8:], ("127.0.0.1", 4789))
    (packet,) = captured(reader)
    assert packet["vxlan"]["vni"] == 4242 and packet["outer"]["ip_dst"] == "127.0.0.1"
