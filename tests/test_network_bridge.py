"""Stage 8 on the real kernel: bridge networks between "containers" (processes in their own
network namespace, attached exactly as the lifecycle attaches them: in ``before_start``), an
"outside world" namespace wired to the lab host, and checks made from inside each of them.

Everything lives in the lab host's private network namespace that the test session runs in.
"""

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

from minidocker import namespaces, network
from minidocker.errors import MinidockerError, NotFound
from minidocker.network import NetworkRequest, networks
from minidocker.network.ports import parse_publish
from minidocker.network.store import new_id
from tests.helpers import port_taken

OUTSIDE_HOST_IP, OUTSIDE_IP = "10.200.0.1", "10.200.0.2"


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def state() -> dict:
    """What the lab host's kernel holds: links (by name: a bridge's carrier state comes and
    goes on its own), IPv4 addresses (the kernel's own IPv6 link-local ones change flags while
    duplicate address detection runs), filter and nat rules."""
    def run(*argv):
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return {"links": link_names(), "addresses": run("ip", "-o", "-4", "addr"),
            "filter": run("iptables", "-w", "-S"), "nat": run("iptables", "-w", "-t", "nat", "-S")}


def link_names() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {line.split(": ")[1].split("@")[0] for line in out.splitlines()}


@dataclass
class Box:
    """A stand-in for a container: ``busybox httpd`` serving its name, in its own net and uts
    namespaces."""

    id: str
    name: str
    process: namespaces.Process
    endpoints: list = field(default_factory=list)

    @property
    def ip(self) -> str:
        return self.endpoints[0].ip_address

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        return namespaces.enter(self.process.pid, list(argv), ["net"])

    def ping(self, address: str) -> bool:
        return self.run("busybox", "ping", "-c1", "-W1", address).returncode == 0

    def fetch(self, address: str, port: int = 80, tries: int = 15) -> str | None:
        return retry(lambda: self.run(*http_get(address, port)), tries)


def http_get(address: str, port: int) -> list[str]:
    """A command that GETs / and prints the body (busybox wget crashes on this machine)."""
    return [sys.executable, "-c", HTTP_GET, address, str(port)]


HTTP_GET = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1) as conn:
    conn.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
    reply = b""
    while chunk := conn.recv(4096):
        reply += chunk
print(reply.decode().split("\\r\\n\\r\\n", 1)[1], end="")
"""


def retry(attempt, tries: int) -> str | None:
    """The server may still be starting: try a few times, give back the body or None."""
    for _ in range(tries):
        done = attempt()
        if done.returncode == 0:
            return done.stdout
        time.sleep(0.2)
    return None


@pytest.fixture
def user_networks():
    """``make(name, **options)`` -> a user network, removed afterwards."""
    made = []

    def make(name: str, **options) -> networks.Network:
        made.append(networks.create(name, **options))
        return made[-1]

    yield make
    for net in made:
        try:
            networks.remove(net.id)
        except NotFound:
            pass  # the test removed it


@pytest.fixture
def boxes(tmp_path, user_networks):  # boxes go before their networks
    """``start(name, request)`` -> a Box; every box is killed and released afterwards."""
    started: list[Box] = []

    def start(name: str, request: NetworkRequest | None = None) -> Box:
        request = request or NetworkRequest("bridge")
        request.name = name
        www = tmp_path / name
        www.mkdir()
        (www / "index.html").write_text(f"hello from {name}\n")
        box_id = new_id()
        endpoints = []
        process = namespaces.spawn(
            ["busybox", "httpd", "-f", "-p", "80", "-h", str(www)], {"net", "uts"},
            before_start=lambda pid: endpoints.extend(network.attach(box_id, pid, request)))
        box = Box(box_id, name, process, endpoints)
        started.append(box)
        return box

    yield start
    for box in started:
        box.process.signal(signal.SIGKILL)
        box.process.wait()
        network.release(box.id)


@pytest.fixture
def outside():
    """A second namespace standing for the world outside the lab host, joined to it by its
    own veth pair (wan0 on the lab host, eth0 there) and routed through it."""
    world = namespaces.spawn(["sleep", "60"], {"net"})
    pid = str(world.pid)
    commands = [
        ["ip", "link", "add", "wan0", "type", "veth", "peer", "name", "wanpeer", "netns", pid],
        ["ip", "addr", "add", f"{OUTSIDE_HOST_IP}/24", "dev", "wan0"],
        ["ip", "link", "set", "wan0", "up"],
        ["nsenter", "-t", pid, "-n", "ip", "link", "set", "wanpeer", "name", "eth0"],
        ["nsenter", "-t", pid, "-n", "ip", "addr", "add", f"{OUTSIDE_IP}/24", "dev", "eth0"],
        ["nsenter", "-t", pid, "-n", "ip", "link", "set", "eth0", "up"],
        ["nsenter", "-t", pid, "-n", "ip", "link", "set", "lo", "up"],
        ["nsenter", "-t", pid, "-n", "ip", "route", "add", "default", "via", OUTSIDE_HOST_IP],
    ]
    try:
        for argv in commands:
            subprocess.run(argv, check=True, capture_output=True)
        yield world
    finally:
        world.signal(signal.SIGKILL)
        world.wait()
        subprocess.run(["ip", "link", "del", "wan0"], capture_output=True)


def outside_fetch(world, address: str, port: int) -> str | None:
    return retry(lambda: namespaces.enter(world.pid, http_get(address, port), ["net"]), 15)


def host_fetch(port: int, tries: int = 15) -> str | None:
    """GET / from the lab host's own 127.0.0.1 (plain sockets: no proxy, no client)."""
    for _ in range(tries):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                reply = b""
                while chunk := conn.recv(4096):
                    reply += chunk
            return reply.decode().split("\r\n\r\n", 1)[1]
        except OSError:
            time.sleep(0.2)
    return None


# --- the tests ----------------------------------------------------------------------------------

def test_a_container_gets_eth0_an_address_and_a_default_route(boxes):
    box = boxes("first")
    addresses = box.run("ip", "-o", "addr").stdout
    assert f"eth0    inet {box.ip}/16" in addresses
    assert "lo    inet 127.0.0.1/8" in addresses
    route = box.run("ip", "route").stdout
    assert f"default via {box.endpoints[0].gateway} dev eth0" in route
    assert box.endpoints[0].veth in link_names()
    assert box.ping(box.endpoints[0].gateway)


def test_containers_on_one_bridge_reach_each_other(boxes):
    web, client = boxes("web"), boxes("client")
    assert web.ip != client.ip
    assert client.fetch(web.ip) == "hello from web\n"


def test_different_networks_are_isolated(boxes, user_networks):
    user_networks("front")
    user_networks("back")
    a = boxes("a", NetworkRequest("front"))
    b = boxes("b", NetworkRequest("back"))
    assert a.ping(a.endpoints[0].gateway)
    assert not a.ping(b.ip)
    assert a.fetch(b.ip, tries=2) is None


def test_an_internal_network_has_no_way_out(boxes, user_networks, outside):
    vault = user_networks("vault", internal=True)
    inside, neighbour = boxes("inside", NetworkRequest("vault")), boxes("n", NetworkRequest("vault"))
    assert "default" not in inside.run("ip", "route").stdout
    assert not inside.ping(OUTSIDE_IP)
    assert inside.fetch(neighbour.ip) == "hello from n\n"
    assert f"-s {vault.subnet} ! -o {vault.bridge} -j MASQUERADE" not in state()["nat"]


def test_containers_reach_the_outside_world_masqueraded(boxes, outside):
    box = boxes("egress")
    assert box.ping(OUTSIDE_IP)


def test_icc_false_keeps_containers_of_one_network_apart(boxes, user_networks):
    user_networks("lonely", options={"com.docker.network.bridge.enable_icc": "false"})
    a, b = boxes("a", NetworkRequest("lonely")), boxes("b", NetworkRequest("lonely"))
    assert a.ping(a.endpoints[0].gateway)
    assert not a.ping(b.ip)


def test_a_published_port_is_reachable_from_outside_and_from_localhost(boxes, outside):
    box = boxes("published", NetworkRequest("bridge", publish=parse_publish("8080:80")))
    assert [p.line() for p in box.endpoints[0].ports] == ["80/tcp -> 0.0.0.0:8080"]
    assert outside_fetch(outside, OUTSIDE_HOST_IP, 8080) == "hello from published\n"
    assert host_fetch(8080) == "hello from published\n"


def test_publish_all_picks_a_free_ephemeral_port(boxes):
    box = boxes("all", NetworkRequest("bridge", publish_all=True, expose=[(80, "tcp")]))
    (binding,) = box.endpoints[0].ports
    assert binding.container_port == 80 and binding.host_port > 1024
    assert host_fetch(binding.host_port) == "hello from all\n"


def test_a_port_in_use_is_a_clear_error_and_leaves_nothing(boxes):
    before = link_names()
    with port_taken(9090):
        with pytest.raises(MinidockerError, match="port is already allocated"):
            boxes("clash", NetworkRequest("bridge", publish=parse_publish("9090:80")))
    owner = boxes("owner", NetworkRequest("bridge", publish=parse_publish("9191:80")))
    with pytest.raises(MinidockerError, match="9191 failed: port is already allocated"):
        boxes("second", NetworkRequest("bridge", publish=parse_publish("9191:80")))
    assert link_names() - before - {"minidocker0"} == {owner.endpoints[0].veth}


def test_an_overlapping_subnet_is_refused(user_networks):
    user_networks("ten", subnet="10.50.0.0/16")
    with pytest.raises(MinidockerError, match="Pool overlaps with other one on this address"):
        user_networks("ten-too", subnet="10.50.1.0/24")


def test_an_unknown_network_is_a_clear_error(boxes):
    with pytest.raises(NotFound, match="network nowhere not found"):
        boxes("lost", NetworkRequest("nowhere"))


def test_network_none_has_only_loopback_up(boxes):
    box = boxes("alone", NetworkRequest("none"))
    assert box.endpoints == []
    links = box.run("ip", "-o", "link").stdout
    assert "lo:" in links and "UP" in links and "eth0" not in links


def test_release_leaves_nothing_even_after_sigkill(boxes):
    boxes("stays")  # the bridge and the chains exist from here on
    before = state()
    gone = boxes("gone", NetworkRequest("bridge", publish=parse_publish("8181:80")))
    assert state() != before
    gone.process.signal(signal.SIGKILL)
    gone.process.wait()
    network.release(gone.id)
    network.release(gone.id)  # idempotent
    assert state() == before


def test_prune_releases_dead_containers_and_then_the_whole_setup(boxes, user_networks):
    network.prune()  # what earlier tests left: the default bridge and the chains
    pristine = state()
    user_networks("tmpnet")
    box = boxes("crashed", NetworkRequest("tmpnet", publish=parse_publish("8282:80")))
    box.process.signal(signal.SIGKILL)
    box.process.wait()  # a crash: nobody calls release
    assert any("crashed" in line or box.id[:12] in line for line in network.prune())
    assert box.endpoints[0].veth not in link_names()
    assert "8282" not in state()["nat"]
    networks.prune()
    network.prune()
    assert state() == pristine


def test_hosts_files_name_the_peers_of_a_user_network(boxes, user_networks, tmp_path):
    user_networks("app")
    web = boxes("web", NetworkRequest("app", aliases=["www"], add_hosts=["db:10.0.0.5"]))
    api = boxes("api", NetworkRequest("app", dns=["1.1.1.1"]))
    files = network.write_container_files(web.id, tmp_path / "web-files")
    network.write_container_files(api.id, tmp_path / "api-files")
    web_hosts = files["/etc/hosts"]
    inode = web_hosts.stat().st_ino
    assert f"{api.ip}\tapi" in web_hosts.read_text()
    assert "10.0.0.5\tdb" in web_hosts.read_text()
    assert web_hosts.read_text().splitlines()[-1] == f"{web.ip}\t{web.id[:12]}"
    assert f"{web.ip}\tweb www" in (tmp_path / "api-files" / "hosts").read_text()
    assert (tmp_path / "api-files" / "resolv.conf").read_text() == "nameserver 1.1.1.1\n"
    api.process.signal(signal.SIGKILL)
    api.process.wait()
    network.release(api.id)
    assert "api" not in web_hosts.read_text()
    assert web_hosts.stat().st_ino == inode  # rewritten in place: a bind mount still sees it
    assert web.run("busybox", "ping", "-c1", "-W1", web.ip).returncode == 0


def test_connect_and_disconnect_a_running_container(boxes, user_networks):
    extra = user_networks("extra")
    box = boxes("multi")
    endpoint = networks.connect("extra", box.id)
    assert endpoint.ifname == "eth1" and endpoint.gateway == extra.gateway
    assert f"eth1    inet {endpoint.ip_address}/16" in box.run("ip", "-o", "addr").stdout
    with pytest.raises(MinidockerError, match="active endpoints"):
        networks.remove("extra")
    networks.disconnect("extra", box.id)
    assert "eth1" not in box.run("ip", "-o", "link").stdout
    assert networks.inspect("extra")["Containers"] == {}
    with pytest.raises(MinidockerError, match="does not belong to any of this network's"):
        networks.connect("extra", box.id, ip="10.99.0.9")
    with pytest.raises(MinidockerError, match=f"Address already in use: {extra.gateway}"):
        networks.connect("extra", box.id, ip=extra.gateway)
    fixed = str(ipaddress.ip_network(extra.subnet)[200])
    assert networks.connect("extra", box.id, ip=fixed).ip_address == fixed  # --ip
    assert f"eth1    inet {fixed}/16" in box.run("ip", "-o", "addr").stdout


def test_a_link_puts_the_linked_container_in_hosts_under_its_alias(boxes, tmp_path):
    db = boxes("db", NetworkRequest("bridge", publish=parse_publish("127.0.0.1:5432:80")))
    app = boxes("app", NetworkRequest("bridge", links=["db:database"], hostname="app.local"))
    hosts = network.write_container_files(app.id, tmp_path / "app")["/etc/hosts"].read_text()
    assert f"{db.ip}\tdatabase {db.id[:12]} db" in hosts
    assert hosts.splitlines()[-1] == f"{app.ip}\tapp.local app"
    assert network.port_lines(db.id) == ["80/tcp -> 127.0.0.1:5432"]
    assert network.port_lines(db.id, "80") == ["80/tcp -> 127.0.0.1:5432"]
    with pytest.raises(NotFound, match="No public port '81/tcp'"):
        network.port_lines(db.id, "81")
    with pytest.raises(NotFound, match="could not get container for nobody"):
        boxes("orphan", NetworkRequest("bridge", links=["nobody"]))


def test_host_mode_changes_nothing_and_copies_the_hosts_files(tmp_path):
    before = state()
    container_id = new_id()
    assert network.attach(container_id, os.getpid(), NetworkRequest("host")) == []
    with pytest.raises(MinidockerError, match="published ports are discarded"):
        network.attach(new_id(), os.getpid(), NetworkRequest("host", publish=parse_publish("80")))
    try:
        files = network.write_container_files(container_id, tmp_path)
        assert files["/etc/resolv.conf"].read_text().strip() == \
            open("/etc/resolv.conf").read().strip()
    finally:
        network.release(container_id)
    assert state() == before


def test_attach_refuses_a_process_in_the_hosts_own_network_namespace():
    before = state()
    with pytest.raises(MinidockerError, match="shares this host's network namespace"):
        network.attach(new_id(), os.getpid(), NetworkRequest("bridge"))
    assert state() == before


def test_container_mode_shares_the_other_containers_files(boxes, tmp_path):
    owner = boxes("owner")
    network.write_container_files(owner.id, tmp_path / "owner")
    joiner = new_id()
    try:
        assert network.attach(joiner, owner.process.pid,
                              NetworkRequest(f"container:{owner.id}")) == []
        files = network.write_container_files(joiner, tmp_path / "joiner")
        assert files["/etc/hosts"].read_text() == (tmp_path / "owner" / "hosts").read_text()
    finally:
        network.release(joiner)
    assert owner.endpoints[0].veth in link_names()  # the owner's network is untouched
