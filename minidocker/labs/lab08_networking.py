"""Checker of lab 08 — networking: connect a container to the world by hand.

The student wires a "container" (a process in a network namespace of its own, with only ``lo``)
to an "outside world" (another namespace, wired to the host, that knows nothing of the
container's private subnet): a veth pair, a bridge with the gateway address, the container's
address and default route, then ``ip_forward`` and MASQUERADE. Each step is checked on what the
kernel shows: the links and their peers (netlink, through pyroute2), a ping that arrives, and
an HTTP page fetched from the outside world, which says which source address it saw.

Nothing here may touch this machine's network, so every step first moves its sandbox (which
plays the host) into a network namespace of its own: the bridge, the veths and the iptables
rules the student makes live there, and vanish with the sandbox. Each step after the first
starts from the checker's own solution of the steps before it, so the steps are checked
independently.

Man pages: network_namespaces(7), veth(4), ip-link(8), ip-address(8), ip-route(8), bridge(8),
iptables(8), iptables-extensions(8) (MASQUERADE).
Used by: ``minidocker lab check 08``; the lab is labs/08-networking/.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from pyroute2 import IPRoute

from minidocker import kernel
from minidocker.labs.framework import Lab, Step, function
from minidocker.labs.sandbox import CheckFailed, call_student

HOST_IF, CONTAINER_IF, BRIDGE = "veth0", "eth0", "br0"
GATEWAY, CONTAINER_IP, PREFIX = "10.0.0.1", "10.0.0.2", 24
SUBNET = "10.0.0.0/24"
OUTSIDE_HOST_IP, OUTSIDE_IP = "203.0.113.1", "203.0.113.2"  # TEST-NET-3: never on the internet
OUTSIDE_IF = "out0"
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
IFF_UP = 1

OUTSIDE_SERVER = r"""
import http.server, sys
class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from the outside world: you came from {self.client_address[0]}\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())
    def log_message(self, *args):
        pass
http.server.HTTPServer(("0.0.0.0", 80), Echo).serve_forever()
"""

HTTP_GET = r"""
import socket, sys
with socket.create_connection((sys.argv[1], 80), timeout=2) as conn:
    conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
    reply = b""
    while chunk := conn.recv(4096):
        reply += chunk
print(reply.decode().split("\r\n\r\n", 1)[1], end="")
"""


@dataclass
class World:
    """The step's network: the host (the sandbox's own new namespace), a container and the
    outside world, each a process in its own network namespace."""

    container: int  # the PID of the container's process
    outside: int


# --- the world, made by the checker -----------------------------------------------------------

def ip(*args: str, pid: int | None = None) -> None:
    """The checker's own ``ip`` commands (``pid``: inside that process's network namespace)."""
    enter = ["nsenter", f"--net=/proc/{pid}/ns/net"] if pid else []
    done = subprocess.run([*enter, "ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise CheckFailed(f"the checker's 'ip {' '.join(args)}' failed: {done.stderr.strip()}")


def in_own_netns(argv: list[str] | None = None) -> int:
    """Fork a child that unshares a network namespace, then sleeps (or execs ``argv``)."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            kernel.unshare(kernel.CLONE_NEWNET)
            os.write(ready_w, b"x")
            os.close(ready_w)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            if argv:
                os.execv(argv[0], argv)
            while True:
                signal.pause()
        finally:
            os._exit(127)
    os.close(ready_w)
    os.read(ready_r, 1)  # once it has its namespace
    os.close(ready_r)
    return pid


def make_world() -> World:
    """Move the sandbox (the host) into a new network namespace; make the outside world and
    the container in theirs. The outside is on 203.0.113.0/24 and has no other route."""
    kernel.unshare(kernel.CLONE_NEWNET)
    # A new network namespace copies the IPv4 settings of the machine's first one (unless
    # net.core.devconf_inherit_init_net says otherwise): on a host that forwards, ip_forward
    # would be 1 here already, and step 4 would pass without the student turning it on.
    set_ip_forward("0")
    ip("link", "set", "lo", "up")
    outside = in_own_netns([sys.executable, "-c", OUTSIDE_SERVER])
    ip("link", "add", OUTSIDE_IF, "type", "veth", "peer", "name", "eth0", "netns", str(outside))
    ip("addr", "add", f"{OUTSIDE_HOST_IP}/24", "dev", OUTSIDE_IF)
    ip("link", "set", OUTSIDE_IF, "up")
    for args in (("addr", "add", f"{OUTSIDE_IP}/24", "dev", "eth0"),
                 ("link", "set", "eth0", "up"), ("link", "set", "lo", "up")):
        ip(*args, pid=outside)
    return World(in_own_netns(), outside)


def set_ip_forward(value: str) -> None:
    """net.ipv4.ip_forward of the namespace this process is in (sysctl files under
    /proc/sys/net show the reader's network namespace)."""
    with open(IP_FORWARD, "w") as f:
        f.write(value)


def solve_veth(world: World) -> None:
    ip("link", "add", HOST_IF, "type", "veth", "peer", "name", CONTAINER_IF, "netns",
       str(world.container))
    ip("link", "set", HOST_IF, "up")
    ip("link", "set", CONTAINER_IF, "up", pid=world.container)
    ip("link", "set", "lo", "up", pid=world.container)


def solve_bridge(world: World) -> None:
    ip("link", "add", BRIDGE, "type", "bridge")
    ip("addr", "add", f"{GATEWAY}/{PREFIX}", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")
    ip("link", "set", HOST_IF, "master", BRIDGE)


def solve_container(world: World) -> None:
    ip("addr", "add", f"{CONTAINER_IP}/{PREFIX}", "dev", CONTAINER_IF, pid=world.container)
    ip("route", "add", "default", "via", GATEWAY, pid=world.container)


def world_for_step(step: int) -> World:
    """A new world, with the checker's own solution of the steps before ``step`` in place, so
    that each step is checked on its own."""
    world = make_world()
    for solve in (solve_veth, solve_bridge, solve_container)[:step - 1]:
        solve(world)
    return world


# --- what the kernel shows --------------------------------------------------------------------

def links(pid: int | None = None) -> dict[str, dict]:
    """The links of the host (``pid`` None) or of a process's namespace, by name: kind, up,
    index, the veth peer's index, the master's name, the IPv4 addresses."""
    netlink = IPRoute(netns=f"/proc/{pid}/ns/net", flags=0) if pid else IPRoute()
    with netlink as nl:
        raw = list(nl.get_links())
        names = {link["index"]: link.get("ifname") for link in raw}
        addresses: dict[int, list[str]] = {}
        for addr in nl.get_addr(family=socket.AF_INET):
            addresses.setdefault(addr["index"], []).append(
                f"{addr.get('address')}/{addr['prefixlen']}")
        return {link.get("ifname"): {
            "kind": link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND"),
            "up": bool(link["flags"] & IFF_UP), "index": link["index"],
            "peer": link.get("link"), "other_netns": link.get("link_netnsid") is not None,
            "master": names.get(link.get("master")),
            "addresses": addresses.get(link["index"], [])} for link in raw}


def routes(pid: int) -> list[str]:
    done = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "ip", "route"],
                          capture_output=True, text=True)
    return [line.strip() for line in done.stdout.splitlines()]


def ping(pid: int, address: str) -> bool:
    """One ping from inside the namespace of ``pid``; a second chance for the first ARP."""
    for _ in range(2):
        done = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "busybox", "ping",
                               "-c1", "-W1", address], capture_output=True, text=True)
        if done.returncode == 0:
            return True
    return False


def expect_ping(world: World, address: str, complaint: str) -> None:
    """The container pings ``address``; if it cannot, the step fails with ``complaint``."""
    if not ping(world.container, address):
        raise CheckFailed(complaint)


def fetch(pid: int, address: str) -> str | None:
    """GET / from ``address``:80, from inside the namespace of ``pid``; the body, or None."""
    for _ in range(10):  # the outside's server may still be starting
        done = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c",
                               HTTP_GET, address], capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout.strip()
        time.sleep(0.2)
    return None


def host_netns() -> str:
    return os.readlink("/proc/self/ns/net")


def call(student, name: str, *args) -> None:
    """Call the student's function; the caller (the host) must stay in its namespace."""
    before = host_netns()
    call_student(function(student, name), *args)
    if host_netns() != before:
        raise CheckFailed(f"{name}() moved its caller (the host, here) into another network "
                          "namespace: enter the container's namespace in a child process "
                          "(nsenter, 'ip -n', or pyroute2's NetNS), never in the caller")


# --- step 1: the veth pair ----------------------------------------------------------------------

def check_veth(student, _workspace) -> str:
    world = world_for_step(1)
    call(student, "create_veth_pair", world.container)
    host, inside = links(), links(world.container)
    if HOST_IF not in host:
        where = " (it is inside the container: keep that end on the host)" \
            if HOST_IF in inside else ""
        raise CheckFailed(f"the host has no link {HOST_IF}{where}: create the pair with "
                          f"'ip link add {HOST_IF} type veth peer name {CONTAINER_IF}'")
    if host[HOST_IF]["kind"] != "veth":
        raise CheckFailed(f"{HOST_IF} is a {host[HOST_IF]['kind']!r} link, not a veth")
    if CONTAINER_IF not in inside:
        where = " it is still on the host:" if CONTAINER_IF in host else ""
        raise CheckFailed(f"the container's namespace has no {CONTAINER_IF}:{where} move it "
                          f"there with 'ip link set {CONTAINER_IF} netns PID' (PID "
                          f"{world.container} is the container's process)")
    theirs = inside[CONTAINER_IF]
    if theirs["index"] != host[HOST_IF]["peer"] or theirs["peer"] != host[HOST_IF]["index"]:
        raise CheckFailed(f"{HOST_IF} and the container's {CONTAINER_IF} are not the two ends "
                          "of one veth pair: create them together (type veth peer name ...)")
    down = [name for name, link in ((f"{HOST_IF} (host)", host[HOST_IF]),
                                    (f"{CONTAINER_IF} (container)", theirs),
                                    ("lo (container)", inside["lo"])) if not link["up"]]
    if down:
        raise CheckFailed(f"{', '.join(down)} is DOWN: bring it up (ip link set DEV up; in the "
                          "container, inside its namespace)")
    return (f"{HOST_IF} (host, index {host[HOST_IF]['index']}) and {CONTAINER_IF} (container, "
            f"index {theirs['index']}) are the two ends of one veth pair, each naming the "
            "other as its peer in another namespace; both UP, and the container's lo too")


# --- step 2: the bridge ---------------------------------------------------------------------------

def check_bridge(student, _workspace) -> str:
    world = world_for_step(2)
    call(student, "create_bridge")
    host = links()
    bridge = host.get(BRIDGE)
    if bridge is None or bridge["kind"] != "bridge":
        raise CheckFailed(f"the host has no bridge {BRIDGE}: 'ip link add {BRIDGE} type bridge'")
    if f"{GATEWAY}/{PREFIX}" not in bridge["addresses"]:
        raise CheckFailed(f"{BRIDGE} has the addresses {bridge['addresses']}, not "
                          f"{GATEWAY}/{PREFIX}: the bridge's address is the containers' "
                          "gateway, and its prefix tells the host that the subnet is behind it")
    if not bridge["up"]:
        raise CheckFailed(f"{BRIDGE} is DOWN: bring it up")
    if host[HOST_IF]["master"] != BRIDGE:
        raise CheckFailed(f"{HOST_IF} is not plugged into {BRIDGE} (its master is "
                          f"{host[HOST_IF]['master']}): 'ip link set {HOST_IF} master {BRIDGE}'")
    solve_container(world)
    expect_ping(world, GATEWAY, f"the container ({CONTAINER_IP}) cannot ping the bridge "
                f"({GATEWAY})")
    return (f"{BRIDGE} is a bridge, UP, with {GATEWAY}/{PREFIX}, and {HOST_IF} is its port; "
            f"a container at {CONTAINER_IP} pings {GATEWAY} through it")


# --- step 3: the container's address and route ------------------------------------------------------

def check_container(student, _workspace) -> str:
    world = world_for_step(3)
    call(student, "configure_container", world.container)
    inside = links(world.container)
    eth0 = inside.get(CONTAINER_IF)
    if eth0 is None:
        raise CheckFailed(f"the container has no {CONTAINER_IF} any more: configure it, do not "
                          "recreate it")
    if f"{CONTAINER_IP}/{PREFIX}" not in eth0["addresses"]:
        raise CheckFailed(f"the container's {CONTAINER_IF} has the addresses "
                          f"{eth0['addresses']}, not {CONTAINER_IP}/{PREFIX} (give it in the "
                          "container's namespace, with its prefix length)")
    if not eth0["up"]:
        raise CheckFailed(f"the container's {CONTAINER_IF} is DOWN")
    table = routes(world.container)
    if f"default via {GATEWAY} dev {CONTAINER_IF}" not in table:
        raise CheckFailed(f"the container's routes are {table}: there is no default route via "
                          f"{GATEWAY}, so every address outside {SUBNET} is 'Network is "
                          "unreachable'")
    expect_ping(world, GATEWAY, f"the container cannot ping its gateway {GATEWAY}")
    return (f"the container has {CONTAINER_IP}/{PREFIX} on {CONTAINER_IF}, pings {GATEWAY}, and "
            f"its routes are: {'; '.join(table)}")


# --- step 4: out to the world ----------------------------------------------------------------------

def check_nat(student, _workspace) -> str:
    world = world_for_step(4)
    call(student, "enable_nat")
    with open(IP_FORWARD) as f:
        forwarding = f.read().strip()
    rules = subprocess.run(["iptables", "-w", "-t", "nat", "-S", "POSTROUTING"],
                           capture_output=True, text=True).stdout.splitlines()
    masquerade = [r for r in rules if "MASQUERADE" in r]
    if not ping(world.container, OUTSIDE_IP):
        if forwarding != "1":
            raise CheckFailed(f"the container cannot ping the outside world ({OUTSIDE_IP}): "
                              "net.ipv4.ip_forward is 0, so the host drops every packet that "
                              "is not its own instead of routing it")
        if not masquerade:
            raise CheckFailed(f"the container cannot ping the outside world ({OUTSIDE_IP}): the "
                              f"packets get there, but from {CONTAINER_IP}, an address the "
                              "outside has no route back to; nat POSTROUTING has no MASQUERADE "
                              "rule to give them the host's address")
        raise CheckFailed(f"the container cannot ping the outside world ({OUTSIDE_IP}); nat "
                          f"POSTROUTING holds {masquerade}: does it match packets from {SUBNET} "
                          f"leaving by {OUTSIDE_IF} (or by anything but {BRIDGE})?")
    page = fetch(world.container, OUTSIDE_IP)
    if page is None:
        raise CheckFailed(f"the container pings {OUTSIDE_IP} but cannot fetch http://"
                          f"{OUTSIDE_IP}/: does a rule match only icmp?")
    if not page.endswith(f"you came from {OUTSIDE_HOST_IP}"):
        raise CheckFailed(f"the outside world answered {page!r}: it should see the host's "
                          f"address {OUTSIDE_HOST_IP}")
    return (f"ip_forward = 1; {'; '.join(masquerade)}; the container pings {OUTSIDE_IP} and "
            f"fetched http://{OUTSIDE_IP}/: {page!r}")


LAB = Lab("08-networking", (
    Step(1, "a veth pair from the host into the container", check_veth),
    Step(2, "a bridge with the gateway's address, the veth plugged in", check_bridge),
    Step(3, "the container's address and default route", check_container),
    Step(4, "ip_forward and MASQUERADE: out to the world", check_nat),
))
