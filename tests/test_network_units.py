"""Stage 8 without the kernel: -p parsing, IPAM, /etc/hosts and resolv.conf text."""

import os

import pytest

from minidocker.errors import MinidockerError
from minidocker.network import hosts, ipam, ports, store
from minidocker.network.ports import PortBinding
from minidocker.network.store import Network


@pytest.mark.parametrize("spec, expected", [
    ("80", [PortBinding(80)]),
    ("8080:80", [PortBinding(80, "tcp", "0.0.0.0", 8080)]),
    ("127.0.0.1:8080:80/udp", [PortBinding(80, "udp", "127.0.0.1", 8080)]),
    ("127.0.0.1::80", [PortBinding(80, "tcp", "127.0.0.1", 0)]),
    ("8000-8001:80-81", [PortBinding(80, "tcp", "0.0.0.0", 8000),
                         PortBinding(81, "tcp", "0.0.0.0", 8001)]),
])
def test_publish_specs_parse_like_docker(spec, expected):
    assert ports.parse_publish(spec) == expected


@pytest.mark.parametrize("spec", ["", "http", "80/sctp", "70000:80", "8000-8002:80-81",
                                  "1.2.3.4:80"])
def test_bad_publish_specs_are_clear_errors(spec):
    with pytest.raises(MinidockerError):
        ports.parse_publish(spec)


def test_port_lines_read_like_docker_port():
    assert PortBinding(80, "tcp", "0.0.0.0", 8080).line() == "80/tcp -> 0.0.0.0:8080"


def test_expose_and_publish_all_give_each_port_a_free_host_port():
    exposed = ports.parse_expose("80") + ports.parse_expose("53/udp")
    chosen = ports.assign_host_ports(ports.publish_all(exposed), set())
    assert {(b.container_port, b.proto) for b in chosen} == {(80, "tcp"), (53, "udp")}
    assert all(b.host_port > 1024 for b in chosen)


def test_a_port_another_container_published_is_taken():
    with pytest.raises(MinidockerError, match="port is already allocated"):
        ports.assign_host_ports([PortBinding(80, "tcp", "127.0.0.1", 8080)],
                                {("0.0.0.0", 8080, "tcp")})


def _network(subnet="10.9.0.0/29", **kw) -> Network:
    return Network("n" * 64, "test", "bridge", subnet, ipam.first_host(subnet), "br", **kw)


def test_ipam_gives_the_gateway_first_and_addresses_in_order_then_reuses_them():
    network = _network()
    assert network.gateway == "10.9.0.1"
    assert [ipam.allocate(network, c) for c in "abc"] == ["10.9.0.2", "10.9.0.3", "10.9.0.4"]
    ipam.release(network, "b")
    assert ipam.allocate(network, "d") == "10.9.0.3"
    assert ipam.mac_for("172.18.0.2") == "02:42:ac:12:00:02"


def test_ipam_exhaustion_is_a_clear_error():
    network = _network("10.9.0.0/30")  # hosts .1 (the gateway) and .2
    ipam.allocate(network, "a")
    with pytest.raises(MinidockerError, match="no available IPv4 addresses"):
        ipam.allocate(network, "b")


@pytest.mark.parametrize("wanted, error", [
    ("10.9.0.300", "invalid IPv4 address '10.9.0.300' for network test"),
    ("10.9.1.2", "Invalid address 10.9.1.2: It does not belong to any of this network's "
                 "subnets"),
    ("10.9.0.7", "Invalid address 10.9.0.7"),  # the broadcast address of the /29
    ("10.9.0.1", "Address already in use: 10.9.0.1 on network test"),  # the gateway's
    ("10.9.0.2", "Address already in use: 10.9.0.2"),  # a's
], ids=["malformed", "outside", "broadcast", "gateway", "taken"])
def test_a_fixed_address_is_checked_inside_the_subnet_and_free(wanted, error):
    network = _network()
    ipam.allocate(network, "a")
    with pytest.raises(MinidockerError, match=error):
        ipam.allocate(network, "b", wanted)
    assert ipam.allocate(network, "b", "10.9.0.6") == "10.9.0.6"


def test_overlapping_subnets_are_refused_and_the_pool_skips_taken_ones():
    taken = [_network("172.19.0.0/16"), _network("172.20.5.0/24")]
    with pytest.raises(ipam.PoolOverlaps, match="Pool overlaps with other one on this address"):
        ipam.check_no_overlap("172.19.3.0/24", taken)
    assert ipam.next_free_subnet(taken) == "172.21.0.0/16"


def test_concurrent_allocations_never_share_an_address():
    """Eight processes allocate at once on the default network, under the networks lock."""
    children = []
    for n in range(8):
        pid = os.fork()
        if pid == 0:
            try:
                with store.locked():
                    network = store.find("bridge")
                    ipam.allocate(network, f"concurrent{n}")
                    store.save(network)
            finally:
                os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    with store.locked():
        network = store.find("bridge")
        mine = {c: a for c, a in network.allocations.items() if c.startswith("concurrent")}
        for c in mine:
            ipam.release(network, c)
        store.save(network)
    assert len(mine) == 8 and len(set(mine.values())) == 8


def test_hosts_file_has_localhost_add_hosts_links_peers_and_ourselves():
    text = hosts.hosts_file("web.example", ["172.19.0.2"], [hosts.parse_add_host("db:10.0.0.5")],
                            [("172.18.0.3", ["cache", "abc123"])],
                            [("172.19.0.3", ["api", "api-alias"])])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "10.0.0.5\tdb" in lines
    assert "172.18.0.3\tcache abc123" in lines
    assert "172.19.0.3\tapi api-alias" in lines
    assert lines[-1] == "172.19.0.2\tweb.example web"


def test_add_host_needs_a_name_and_an_address():
    with pytest.raises(MinidockerError, match="--add-host"):
        hosts.parse_add_host("db")


def test_resolv_conf_drops_loopback_nameservers_like_docker():
    host = ["nameserver 127.0.0.53", "search lan", "options edns0"]
    assert hosts.resolv_conf([], [], host) == ("search lan\nnameserver 8.8.8.8\n"
                                               "nameserver 8.8.4.4\noptions edns0\n")
    host = ["nameserver 192.168.1.1", "nameserver 127.0.0.1"]
    assert hosts.resolv_conf([], [], host) == "nameserver 192.168.1.1\n"
    assert hosts.resolv_conf(["1.1.1.1"], ["corp"], host) == "search corp\nnameserver 1.1.1.1\n"


def test_enable_icc_false_loads_br_netfilter_or_says_why(tmp_path, monkeypatch):
    """Where br_netfilter's sysctl is missing, the engine runs modprobe (as dockerd does); if
    that cannot load it, the error names modprobe's reason and what to do."""
    from minidocker.network import firewall
    monkeypatch.setattr(firewall, "BRIDGE_NF_CALL_IPTABLES", tmp_path / "bridge-nf-call-iptables")
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "modprobe"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/asked\n"
                    "echo 'modprobe: FATAL: Module br_netfilter not found.' >&2; exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(MinidockerError, match="Module br_netfilter not found.*drop enable_icc"):
        firewall.ensure_bridge_netfilter()
    assert (tmp_path / "asked").read_text() == "br_netfilter\n"
    fake.write_text(f"#!/bin/sh\necho 1 > {tmp_path}/bridge-nf-call-iptables\n")
    firewall.ensure_bridge_netfilter()  # loaded: no error
    fake.unlink()
    (tmp_path / "bridge-nf-call-iptables").unlink()
    with pytest.raises(MinidockerError, match="apt install kmod"):
        firewall.ensure_bridge_netfilter()
