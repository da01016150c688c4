"""Notebook 08's helpers: the topology read from netlink (nodes and edges, veth pairs found
across namespaces), and the packet tracer, first on a topology written by hand, then on one
the kernel reports (in the test session's lab host)."""

import subprocess
from pathlib import Path

import pytest

from minidocker.viz.network import (
    Link,
    Namespace,
    NamespaceView,
    Route,
    Topology,
    draw_network,
    format_trace,
    topology,
    trace,
)

MASQUERADE = "-A POSTROUTING -s 10.10.0.0/24 ! -o br0 -j MASQUERADE"
DNAT = "-A PREROUTING -d 203.0.113.1/32 -p tcp -m tcp --dport 8080 -j DNAT " \
       "--to-destination 10.10.0.11:80"


def hand_made(rules: list[str] = (), forwarding: bool = True) -> Topology:
    """host with br0 (10.10.0.1) and out-host (203.0.113.1); box1 behind br0; outside."""
    def view(name, links, routes, rules=(), forward=False):
        return NamespaceView(name, {link.name: link for link in links}, routes, forward,
                             {"filter": ["-P FORWARD ACCEPT"],
                              "nat": ["-P PREROUTING ACCEPT", "-P OUTPUT ACCEPT",
                                      "-P POSTROUTING ACCEPT", *rules]})
    host = view("host", [
        Link("host", 1, "lo", "loopback", True, ["127.0.0.1/8"]),
        Link("host", 3, "br0", "bridge", True, ["10.10.0.1/24"]),
        Link("host", 4, "veth-box1", "veth", True, [], "br0", peer=("box1", "eth0")),
        Link("host", 5, "out-host", "veth", True, ["203.0.113.1/24"], peer=("outside", "eth0"))],
        [Route("10.10.0.0/24", "br0"), Route("203.0.113.0/24", "out-host")], rules, forwarding)
    box1 = view("box1", [Link("box1", 1, "lo", "loopback", True, ["127.0.0.1/8"]),
                         Link("box1", 2, "eth0", "veth", True, ["10.10.0.11/24"],
                              peer=("host", "veth-box1"))],
                [Route("default", "eth0", "10.10.0.1"), Route("10.10.0.0/24", "eth0")])
    outside = view("outside", [Link("outside", 1, "lo", "loopback", True, ["127.0.0.1/8"]),
                               Link("outside", 2, "eth0", "veth", True, ["203.0.113.2/24"],
                                    peer=("host", "out-host"))],
                   [Route("203.0.113.0/24", "eth0")])
    return Topology({"host": host, "box1": box1, "outside": outside})


def whats(hops):
    return [(hop.namespace, hop.what) for hop in hops]


def test_edges_pair_veths_once_and_plug_ports_into_bridges():
    edges = hand_made().edges
    assert ("box1/eth0", "host/veth-box1", "veth") in edges
    assert ("host/out-host", "outside/eth0", "veth") in edges
    assert ("host/veth-box1", "host/br0", "port") in edges
    assert len([e for e in edges if e[2] == "veth"]) == 2


def test_without_masquerade_the_reply_has_no_way_back():
    hops = trace(hand_made(), "box1", "203.0.113.2")
    assert whats(hops)[-3:] == [("outside", "delivered"), ("outside", "reply"),
                                ("outside", "dropped")]
    assert "no route to 10.10.0.11 in outside" in hops[-1].detail


def test_without_ip_forward_the_host_drops_it():
    hops = trace(hand_made([MASQUERADE], forwarding=False), "box1", "203.0.113.2")
    assert hops[-1].what == "dropped" and "ip_forward is 0" in hops[-1].detail


def test_masquerade_rewrites_the_source_and_conntrack_undoes_it():
    hops = trace(hand_made([MASQUERADE]), "box1", "203.0.113.2")
    nat = [hop for hop in hops if hop.what == "nat"][0]
    assert "source 10.10.0.11 becomes 203.0.113.1" in nat.detail
    assert nat.rules == [MASQUERADE]
    assert "203.0.113.1 -> 203.0.113.2:80" in [h for h in hops if h.what == "delivered"][0].detail
    assert hops[-1].what == "answered" and "reaches 10.10.0.11" in hops[-1].detail


def test_dnat_publishes_a_port_to_the_outside_but_not_to_the_hosts_loopback():
    found = hand_made([MASQUERADE, DNAT])
    hops = trace(found, "outside", "203.0.113.1", 8080)
    assert ("box1", "delivered") in whats(hops) and hops[-1].what == "answered"
    assert "203.0.113.2 -> 10.10.0.11:80" in [h for h in hops if h.what == "delivered"][0].detail
    local = trace(found, "host", "127.0.0.1", 8080)  # PREROUTING never sees it
    assert whats(local) == [("host", "sent"), ("host", "delivered"), ("host", "reply"),
                            ("host", "answered")]


def test_no_route_and_nobody_home():
    bare = hand_made()
    bare.namespaces["box1"].routes = [Route("10.10.0.0/24", "eth0")]
    assert "Network is unreachable" in trace(bare, "box1", "203.0.113.2")[-1].detail
    assert "nobody answers ARP for 10.10.0.99" in trace(bare, "box1", "10.10.0.99")[-1].detail
    assert "its own loopback" in trace(bare, "box1", "127.0.0.1")[1].detail


@pytest.fixture
def lab():
    """outside -- out-host [host] br0 -- veth-t1 -- box1 (eth0), made with ip; all removed."""
    made = [Namespace("outside"), Namespace("box1")]
    outside, box1 = made

    def ip(*args, ns=None):
        subprocess.run([*(ns.enter if ns else []), "ip", *args], check=True)

    try:
        ip("link", "add", "out-t", "type", "veth", "peer", "name", "eth0", "netns",
           str(outside.pid))
        ip("addr", "add", "203.0.113.1/24", "dev", "out-t")
        ip("link", "set", "out-t", "up")
        ip("addr", "add", "203.0.113.2/24", "dev", "eth0", ns=outside)
        ip("link", "set", "eth0", "up", ns=outside)
        ip("link", "add", "br-t", "type", "bridge")
        ip("addr", "add", "10.10.0.1/24", "dev", "br-t")
        ip("link", "set", "br-t", "up")
        ip("link", "add", "veth-t1", "master", "br-t", "type", "veth", "peer", "name", "eth0",
           "netns", str(box1.pid))
        ip("link", "set", "veth-t1", "up")
        ip("addr", "add", "10.10.0.11/24", "dev", "eth0", ns=box1)
        ip("link", "set", "eth0", "up", ns=box1)
        ip("link", "set", "lo", "up", ns=box1)
        ip("route", "add", "default", "via", "10.10.0.1", ns=box1)
        yield {"host": "self", "box1": box1.pid, "outside": outside.pid}
    finally:  # the host ends first: a veth dies with its namespace only later (asynchronously)
        for link in ("out-t", "veth-t1", "br-t"):
            subprocess.run(["ip", "link", "del", link], check=False, capture_output=True)
        for ns in made:
            ns.remove()


def test_the_topology_comes_from_netlink(lab):
    found = topology(lab)
    assert found.link("box1", "eth0").peer == ("host", "veth-t1")
    assert found.link("host", "veth-t1").peer == ("box1", "eth0")
    assert found.link("host", "out-t").peer == ("outside", "eth0")
    assert ("host/veth-t1", "host/br-t", "port") in found.edges
    assert found.link("box1", "eth0").addresses == ["10.10.0.11/24"]
    assert found.link("host", "br-t").kind == "bridge"
    assert not found.link("outside", "lo").up
    assert [str(r) for r in found.namespaces["box1"].routes] == [
        "default via 10.10.0.1 dev eth0", "10.10.0.0/24 dev eth0"]
    source = draw_network(found, "test").source
    assert '"box1/eth0" -> "host/veth-t1"' in source and "ip_forward" in source


def test_the_tracer_reads_live_rules(lab):
    subprocess.run(["iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-s", "10.10.0.0/24",
                    "!", "-o", "br-t", "-j", "MASQUERADE"], check=True)
    forward = Path("/proc/sys/net/ipv4/ip_forward")
    before = forward.read_text()
    try:
        forward.write_text("0")
        assert "ip_forward is 0" in format_trace(trace(topology(lab), "box1", "203.0.113.2"))
        forward.write_text("1")
        hops = trace(topology(lab), "box1", "203.0.113.2")
        text = format_trace(hops)
        assert "POSTROUTING MASQUERADE: source 10.10.0.11 becomes 203.0.113.1" in text
        assert hops[-1].what == "answered", text
    finally:
        forward.write_text(before)
        subprocess.run(["iptables", "-w", "-t", "nat", "-D", "POSTROUTING", "-s", "10.10.0.0/24",
                        "!", "-o", "br-t", "-j", "MASQUERADE"], check=True)
