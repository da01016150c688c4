"""Notebook 08's pictures: the network as the kernel holds it, and the path a packet takes.

``topology({"host": "self", "box1": pid, ...})`` asks netlink (pyroute2's ``IPRoute``, opened
inside each namespace by a process's ``/proc/<pid>/ns/net``) for every namespace's links,
addresses and routes, pairs the veth ends across namespaces, and reads each namespace's
iptables rules (``iptables -S``, ``-t nat -S``) and ``ip_forward``. ``draw_network`` draws it;
``trace(topology, src, dst, port)`` follows one TCP packet from a namespace to an address —
routes, ARP on a bridge's segment, ``ip_forward``, the nat and filter chains that match — and
its reply back through conntrack's un-NAT. It is a model of the kernel's path, made of the
kernel's live data: it never sends a packet.

``Namespace`` is a bare network namespace for the hand-made steps: a ``sleep`` that
``unshare --net`` started, entered with ``nsenter --net=/proc/<pid>/ns/net``.

Man pages: ip-link(8), ip-route(8), veth(4), bridge(8), iptables(8), iptables-extensions(8).
Used by: notebooks/08-networking.ipynb.
"""

import ipaddress
import os
import shlex
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pyroute2 import IPRoute

from minidocker.viz.cli import Transcript, _run
from minidocker.viz.graph import FITS_THE_COLUMN

# --- bare namespaces, and a server that says who called --------------------------------------

ECHO_SERVER = r"""
import http.server, sys
class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from {sys.argv[1]}: you came from {self.client_address[0]}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("0.0.0.0", int(sys.argv[2])), Echo)
print("ready", flush=True)
server.serve_forever()
"""


class Namespace:
    """A network namespace with nothing in it but ``lo`` (down), held by a ``sleep``."""

    def __init__(self, name: str):
        self.name = name
        self._holder = subprocess.Popen(["unshare", "--net", "sleep", "infinity"])
        self.pid = self._holder.pid  # unshare execs sleep: the same process
        self._servers: list[subprocess.Popen] = []
        while os.readlink(f"/proc/{self.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            os.sched_yield()  # until unshare(2) has happened

    @property
    def enter(self) -> list[str]:
        return ["nsenter", f"--net=/proc/{self.pid}/ns/net"]

    def run(self, *args: str, timeout: float = 30) -> Transcript:
        """Run a host program inside this namespace (``nsenter``), shown like ``host()``."""
        argv = shlex.split(args[0]) if len(args) == 1 else list(args)
        return _run([*self.enter, *argv], [*self.enter, *argv], None, timeout)

    def serve(self, port: int = 80) -> None:
        """An HTTP server on ``port`` that answers "hello from NAME: you came from ADDRESS"."""
        server = subprocess.Popen([*self.enter, sys.executable, "-c", ECHO_SERVER, self.name,
                                   str(port)], stdout=subprocess.PIPE, text=True)
        self._servers.append(server)
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the server in {self.name} did not start")

    def remove(self) -> None:
        """Stop its processes: with the last one the kernel removes the namespace and every
        link in it (and so the far end of each veth pair too)."""
        for process in [*self._servers, self._holder]:
            process.kill()
            process.wait()
            if process.stdout:
                process.stdout.close()


def link_names() -> set[str]:
    """The links of this process's network namespace, from ``/proc/self/net/dev`` (which
    follows the reader's namespace; ``/sys/class/net`` follows the one sysfs was mounted in)."""
    with open("/proc/self/net/dev") as f:
        return {line.split(":")[0].strip() for line in f.readlines()[2:]}


def wait_until_gone(*links: str, timeout: float = 10) -> None:
    """Wait until the host's ``links`` are gone: when a namespace dies, the kernel deletes its
    links (and the host ends of their veth pairs) a moment later, in a work queue."""
    deadline = time.monotonic() + timeout
    while link_names() & set(links):
        if time.monotonic() > deadline:
            raise RuntimeError(f"still there after {timeout:g} s: {', '.join(links)}")
        time.sleep(0.02)


# --- the topology, from netlink ---------------------------------------------------------------

@dataclass
class Link:
    namespace: str
    index: int
    name: str
    kind: str  # "veth", "bridge", "loopback", ...
    up: bool
    addresses: list[str]  # "10.10.0.1/24"
    master: str | None = None  # the bridge it is plugged into
    peer_index: int | None = None  # a veth's other end: its index ...
    peer_nsid: int | None = None  # ... in the namespace this one calls nsid N (None: this one)
    peer: tuple[str, str] | None = None  # (namespace, name), once paired

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Route:
    dst: str  # "default" or "10.10.0.0/24"
    dev: str
    gateway: str | None = None
    src: str | None = None

    def __str__(self) -> str:
        via = f" via {self.gateway}" if self.gateway else ""
        return f"{self.dst}{via} dev {self.dev}"


@dataclass
class NamespaceView:
    name: str
    links: dict[str, Link]
    routes: list[Route]
    ip_forward: bool
    rules: dict[str, list[str]]  # table -> iptables -S lines
    nsids: dict[int, str] = field(default_factory=dict)  # nsid -> namespace name


@dataclass
class Topology:
    namespaces: dict[str, NamespaceView]

    @property
    def links(self) -> list[Link]:
        return [link for view in self.namespaces.values() for link in view.links.values()]

    def link(self, namespace: str, name: str) -> Link:
        return self.namespaces[namespace].links[name]

    @property
    def edges(self) -> list[tuple[str, str, str]]:
        """``(a, b, kind)``: "veth" between the two ends of a pair, "port" from a bridge's port
        to the bridge."""
        found = []
        for link in self.links:
            if link.peer and link.id < f"{link.peer[0]}/{link.peer[1]}":
                found.append((link.id, f"{link.peer[0]}/{link.peer[1]}", "veth"))
            if link.master:
                found.append((link.id, f"{link.namespace}/{link.master}", "port"))
        return found

    def addresses(self) -> dict[str, str]:
        """Every IPv4 address, with the namespace and link that hold it."""
        return {a.split("/")[0]: f"{link.namespace} {link.name}" for link in self.links
                for a in link.addresses}


def topology(namespaces: dict[str, int | str]) -> Topology:
    """Read every namespace: ``{"host": "self", "box1": 4242}`` (a PID in each). In a thread
    of its own: pyroute2's synchronous API runs an asyncio loop, which may not run inside the
    one a notebook's kernel already runs."""
    with ThreadPoolExecutor(1) as worker:
        return worker.submit(_topology, namespaces).result()


def _topology(namespaces: dict[str, int | str]) -> Topology:
    views = {name: _read_namespace(name, pid) for name, pid in namespaces.items()}
    for name, pid in namespaces.items():  # which nsid names which namespace, seen from "self"
        if pid == "self":
            with IPRoute() as ip:
                for other, other_pid in namespaces.items():
                    if other_pid != "self":
                        nsid = (ip.get_netnsid(pid=other_pid) or {}).get("nsid")
                        if nsid is not None and nsid < 2**31:
                            views[name].nsids[nsid] = other
    found = Topology(views)
    _pair_veths(found)
    return found


def _netlink(pid: int | str) -> IPRoute:
    return IPRoute() if pid == "self" else IPRoute(netns=f"/proc/{pid}/ns/net", flags=0)


def _read_namespace(name: str, pid: int | str) -> NamespaceView:
    with _netlink(pid) as ip:
        raw = list(ip.get_links())
        names = {link["index"]: link.get("ifname") for link in raw}
        addresses: dict[int, list[str]] = {}
        for addr in ip.get_addr(family=socket.AF_INET):
            addresses.setdefault(addr["index"], []).append(
                f"{addr.get('address')}/{addr['prefixlen']}")
        links = {}
        for link in raw:
            kind = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") or (
                "loopback" if link.get("ifname") == "lo" else "")
            links[link.get("ifname")] = Link(
                name, link["index"], link.get("ifname"), kind,
                bool(link["flags"] & 1), addresses.get(link["index"], []),
                names.get(link.get("master")), link.get("link") if kind == "veth" else None,
                link.get("link_netnsid"))
        routes = []
        for route in ip.get_routes(family=socket.AF_INET, table=254):
            dst = route.get("dst")
            routes.append(Route(f"{dst}/{route['dst_len']}" if dst else "default",
                                names.get(route.get("oif"), "?"), route.get("gateway"),
                                route.get("prefsrc")))
    proc = "self" if pid == "self" else str(pid)
    with open(f"/proc/{proc}/net/snmp") as f:  # the Ip: line's first field: 1 = forwarding
        ip_lines = [line.split() for line in f if line.startswith("Ip:")]
    forwarding = ip_lines[1][1] == "1"
    return NamespaceView(name, links, routes, forwarding, read_rules(pid))


def read_rules(pid: int | str = "self") -> dict[str, list[str]]:
    """``iptables -S`` of the filter and nat tables of the namespace of ``pid``."""
    enter = [] if pid == "self" else ["nsenter", f"--net=/proc/{pid}/ns/net"]
    rules = {}
    for table in ("filter", "nat"):
        done = subprocess.run([*enter, "iptables", "-w", "-t", table, "-S"],
                              capture_output=True, text=True)
        rules[table] = done.stdout.splitlines() if done.returncode == 0 else []
    return rules


def _pair_veths(found: Topology) -> None:
    """Pair each veth with its other end: the link whose index is our peer index and whose
    peer index is ours, in the namespace that ``peer_nsid`` names (or in any other one, when
    we cannot tell which that is)."""
    for link in found.links:
        if link.kind != "veth" or link.peer_index is None:
            continue
        if link.peer_nsid is None:
            candidates = [link.namespace]
        elif link.peer_nsid in found.namespaces[link.namespace].nsids:
            candidates = [found.namespaces[link.namespace].nsids[link.peer_nsid]]
        else:
            candidates = [n for n in found.namespaces if n != link.namespace]
        for name in candidates:
            for other in found.namespaces[name].links.values():
                if other.kind == "veth" and other.index == link.peer_index \
                        and other.peer_index == link.index and other is not link:
                    link.peer = (other.namespace, other.name)
                    break
            if link.peer:
                break


# --- the picture --------------------------------------------------------------------------------

INTERESTING_TARGETS = ("DNAT", "MASQUERADE", "SNAT", "DROP")


def interesting_rules(view: NamespaceView) -> list[str]:
    """The rules that rewrite or drop packets (the hooks and ACCEPTs are left out)."""
    return [f"{table}: {line[3:]}" for table, lines in view.rules.items() for line in lines
            if line.startswith("-A ") and any(f"-j {t}" in line for t in INTERESTING_TARGETS)]


def draw_network(found: Topology, title: str = ""):
    """A graphviz picture: a box per namespace with its links (kind, state, addresses), its
    routes and its NAT/DROP rules; veth pairs as thick lines, bridge ports as arrows."""
    import graphviz

    graph = graphviz.Digraph(graph_attr={"rankdir": "LR", "size": FITS_THE_COLUMN,
                                         "label": title, "labelloc": "t",
                                         "fontname": "Helvetica", "compound": "true"},
                             node_attr={"fontname": "Helvetica", "fontsize": "10",
                                        "shape": "box", "style": "rounded,filled"})
    for view in found.namespaces.values():
        with graph.subgraph(name=f"cluster_{view.name}") as box:
            forward = "ip_forward = 1" if view.ip_forward else "ip_forward = 0"
            box.attr(label=f"{view.name}  ({forward})", style="rounded",
                     color="gray40", fontname="Helvetica-Bold")
            for link in view.links.values():
                colour = {"bridge": "gold", "veth": "lightblue", "loopback": "gray90"}.get(
                    link.kind, "white")
                state = "UP" if link.up else "DOWN"
                label = "\n".join([f"{link.name}", f"{link.kind or 'link'} · {state}",
                                   *link.addresses])
                box.node(link.id, label, fillcolor=colour if link.up else "white")
            lines = [str(r) for r in view.routes] or ["(no routes)"]
            box.node(f"{view.name}/routes", "routes\n" + "\n".join(lines) + "\\l",
                     shape="note", fillcolor="white", fontsize="9")
            rules = interesting_rules(view)
            if rules:
                box.node(f"{view.name}/rules", "iptables\n" + "\\l".join(rules) + "\\l",
                         shape="note", fillcolor="mistyrose", fontsize="9")
    for a, b, kind in found.edges:
        if kind == "veth":
            graph.edge(a, b, dir="none", penwidth="3", color="steelblue", label="veth")
        else:
            graph.edge(a, b, color="darkgoldenrod", label="master")
    return graph


# --- a packet's path ------------------------------------------------------------------------------

@dataclass
class Packet:
    src: str | None
    dst: str
    dport: int
    proto: str = "tcp"

    def __str__(self) -> str:
        return f"{self.src or '?'} -> {self.dst}:{self.dport}/{self.proto}"


@dataclass
class Hop:
    namespace: str
    what: str  # "sent", "route", "nat", "filter", "link", "delivered", "dropped", "reply"...
    detail: str
    rules: list[str] = field(default_factory=list)  # the iptables rules that matched

    def __str__(self) -> str:
        text = f"{self.namespace:>8} | {self.what:9} {self.detail}"
        return text + "".join(f"\n{'':>8} |{'':10} rule: {r}" for r in self.rules)


class _Chains:
    """The -S lines of one table, ready to walk."""

    def __init__(self, lines: list[str]):
        self.policy: dict[str, str] = {}
        self.rules: dict[str, list[tuple[list[str], str]]] = {}  # chain -> (args, line)
        for line in lines:
            words = shlex.split(line)
            if words[:1] == ["-P"]:
                self.policy[words[1]] = words[2]
            elif words[:1] == ["-N"]:
                self.rules.setdefault(words[1], [])
            elif words[:1] == ["-A"]:
                self.rules.setdefault(words[1], []).append((words[2:], line))


def _in(address: str | None, network: str) -> bool:
    return address is not None and ipaddress.ip_address(address) in \
        ipaddress.ip_network(network, strict=False)


def _matches(args: list[str], pkt: Packet, in_if: str | None, out_if: str | None,
             local: bool) -> bool:
    i, negate = 0, False
    while i < len(args):
        word = args[i]
        if word == "!":
            negate, i = True, i + 1
            continue
        if word == "-j":
            return True
        value = args[i + 1] if i + 1 < len(args) else ""
        if word in ("-s", "-d"):
            ok = _in(pkt.src if word == "-s" else pkt.dst, value)
        elif word in ("-i", "-o"):
            name = in_if if word == "-i" else out_if
            ok = name is not None and (name == value or (value.endswith("+")
                                                         and name.startswith(value[:-1])))
        elif word == "-p":
            ok = pkt.proto == value
        elif word == "--dport":
            low, _, high = value.partition(":")
            ok = int(low) <= pkt.dport <= int(high or low)
        elif word == "--dst-type":
            ok = local == (value == "LOCAL")
        elif word == "--ctstate":
            ok = "NEW" in value.split(",")  # the traced packet opens a connection
        else:  # -m MODULE and options we do not model
            ok = True
        if ok == negate:
            return False
        negate, i = False, i + 2
    return True


def _walk(chains: _Chains, chain: str, pkt: Packet, in_if, out_if, local,
          matched: list[str]) -> tuple[str | None, list[str]]:
    """Walk one chain; return the verdict (None: fell off the end) and the target's args."""
    for args, line in chains.rules.get(chain, []):
        if not _matches(args, pkt, in_if, out_if, local):
            continue
        target = args[args.index("-j") + 1] if "-j" in args else None
        matched.append(line)
        if target in chains.rules:
            verdict, extra = _walk(chains, target, pkt, in_if, out_if, local, matched)
            if verdict and verdict != "RETURN":
                return verdict, extra
            continue
        if target in ("ACCEPT", "DROP", "REJECT", "RETURN", "DNAT", "SNAT", "MASQUERADE"):
            return target, args[args.index("-j") + 2:]
        if target is None:
            matched.pop()
    return None, []


def _chain(view: NamespaceView, table: str, chain: str, pkt: Packet, in_if, out_if,
           local: bool) -> tuple[str, list[str], list[str]]:
    """A built-in chain: its verdict (the policy when no rule decides), args and rules."""
    chains = _Chains(view.rules.get(table, []))
    matched: list[str] = []
    verdict, extra = _walk(chains, chain, pkt, in_if, out_if, local, matched)
    if verdict in (None, "RETURN"):
        verdict = chains.policy.get(chain, "ACCEPT")
        if verdict != "ACCEPT":
            matched.append(f"-P {chain} {verdict}")
    return verdict, extra, matched


def _is_local(view: NamespaceView, address: str) -> bool:
    if _in(address, "127.0.0.0/8"):
        return any(link.kind == "loopback" and link.up for link in view.links.values())
    return any(a.split("/")[0] == address for link in view.links.values()
               for a in link.addresses)


def _route(view: NamespaceView, address: str) -> Route | None:
    """The longest prefix that matches, among the routes of the main table."""
    best = None
    for route in view.routes:
        network = "0.0.0.0/0" if route.dst == "default" else route.dst
        if _in(address, network) and (best is None or ipaddress.ip_network(network).prefixlen
                                      > ipaddress.ip_network(best[0]).prefixlen):
            best = (network, route)
    return best[1] if best else None


def _source_for(view: NamespaceView, route: Route) -> str | None:
    if route.src:
        return route.src
    link = view.links.get(route.dev)
    return link.addresses[0].split("/")[0] if link and link.addresses else None


def _segment_owner(found: Topology, start: Link, address: str) -> tuple[Link | None, list[str]]:
    """Who answers ARP for ``address`` on the Ethernet segment that ``start`` is on: walk
    veth pairs and bridge ports (links that are up), and return that link and the way there."""
    todo, seen = [(start, [start.id])], {start.id}
    while todo:
        link, path = todo.pop(0)
        if link is not start and any(a.split("/")[0] == address for a in link.addresses):
            return link, path
        neighbours = []
        if link.peer:
            neighbours.append(found.link(*link.peer))
        if link.master:
            neighbours.append(found.link(link.namespace, link.master))
        if link.kind == "bridge":
            neighbours += [other for other in found.namespaces[link.namespace].links.values()
                           if other.master == link.name]
        for other in neighbours:
            if other.id not in seen and other.up:
                seen.add(other.id)
                todo.append((other, [*path, other.id]))
    return None, []


def trace(found: Topology, src: str, dst: str, port: int = 80) -> list[Hop]:
    """Follow a TCP packet from a process in namespace ``src`` to ``dst:port``, and its reply
    back. Each hop says where the packet is, what decided its way, and which rules matched."""
    pkt, namespace, in_if = Packet(None, dst, port), src, None
    hops: list[Hop] = []
    nat: list[tuple[str, str, str, str]] = []  # (namespace, "SNAT"|"DNAT", before, after)
    for _ in range(12):
        view = found.namespaces[namespace]
        if in_if is None:  # made here: the socket picks its source from the first route
            route = _route(view, pkt.dst)
            if _is_local(view, pkt.dst):
                pkt.src = pkt.dst  # to itself: from the same address
            elif route is None:
                hops.append(Hop(namespace, "dropped", f"no route to {pkt.dst}: connect() fails "
                                "with 'Network is unreachable'"))
                return hops
            else:
                pkt.src = _source_for(view, route)
            hops.append(Hop(namespace, "sent", str(pkt)))
            hook = "OUTPUT"
        else:
            hook = "PREROUTING"
        local = _is_local(view, pkt.dst)
        verdict, extra, rules = _chain(view, "nat", hook, pkt, in_if, None, local)
        if verdict == "DNAT":
            before = f"{pkt.dst}:{pkt.dport}"
            to = extra[extra.index("--to-destination") + 1]
            pkt.dst, _, new_port = to.partition(":")
            pkt.dport = int(new_port or pkt.dport)
            nat.append((namespace, "DNAT", before, f"{pkt.dst}:{pkt.dport}"))
            hops.append(Hop(namespace, "nat", f"{hook} DNAT: destination {before} becomes "
                            f"{pkt.dst}:{pkt.dport}", rules))
        if _is_local(view, pkt.dst):
            hops.append(Hop(namespace, "delivered", f"{pkt} is for this namespace "
                            f"({'its own loopback' if _in(pkt.dst, '127.0.0.0/8') else 'local'})"))
            return hops + _reply(found, namespace, pkt, nat, src)
        route = _route(view, pkt.dst)
        if route is None:
            hops.append(Hop(namespace, "dropped", f"no route to {pkt.dst} here"))
            return hops
        hops.append(Hop(namespace, "route", f"{pkt.dst}: {route}"))
        if in_if is not None:  # not ours: forward it, if this namespace is a router
            if not view.ip_forward:
                hops.append(Hop(namespace, "dropped", "ip_forward is 0: this namespace does "
                                "not route packets that are not its own"))
                return hops
            verdict, _, rules = _chain(view, "filter", "FORWARD", pkt, in_if, route.dev, False)
            if verdict != "ACCEPT":
                hops.append(Hop(namespace, "dropped", f"filter FORWARD: {verdict}", rules))
                return hops
            if rules:
                hops.append(Hop(namespace, "filter", "FORWARD: ACCEPT", rules))
        verdict, _, rules = _chain(view, "nat", "POSTROUTING", pkt, in_if, route.dev, False)
        if verdict in ("MASQUERADE", "SNAT"):
            before = pkt.src
            pkt.src = _source_for(view, Route("", route.dev))
            nat.append((namespace, "SNAT", before, pkt.src))
            hops.append(Hop(namespace, "nat", f"POSTROUTING {verdict}: source {before} becomes "
                            f"{pkt.src} (the address of {route.dev})", rules))
        next_hop = route.gateway or pkt.dst
        owner, path = _segment_owner(found, view.links[route.dev], next_hop)
        if owner is None:
            hops.append(Hop(namespace, "dropped", f"out of {route.dev}, nobody answers ARP for "
                            f"{next_hop}"))
            return hops
        hops.append(Hop(namespace, "link", " -> ".join(path)))
        namespace, in_if = owner.namespace, owner.name
    hops.append(Hop(namespace, "dropped", "too many hops"))
    return hops


def _reply(found: Topology, namespace: str, pkt: Packet, nat: list, origin: str) -> list[Hop]:
    """The answer goes back from ``namespace``; conntrack undoes each NAT on the way."""
    reply = Packet(pkt.dst, pkt.src, pkt.dport)
    hops = [Hop(namespace, "reply", f"{reply.src}:{reply.dport} -> {reply.dst}")]
    for _ in range(12):
        view = found.namespaces[namespace]
        for where, kind, before, after in nat:
            if where == namespace and kind == "SNAT" and reply.dst == after:
                reply.dst = before
                hops.append(Hop(namespace, "un-nat", f"conntrack: destination {after} back to "
                                f"{before}"))
            if where == namespace and kind == "DNAT" and \
                    f"{reply.src}:{reply.dport}" == after:
                reply.src, _, old_port = before.partition(":")
                reply.dport = int(old_port)
                hops.append(Hop(namespace, "un-nat", f"conntrack: source {after} back to "
                                f"{before}"))
        if _is_local(view, reply.dst):
            ok = namespace == origin
            hops.append(Hop(namespace, "answered" if ok else "dropped",
                            f"the reply reaches {reply.dst}" if ok else
                            f"{reply.dst} is local here, not where the connection began"))
            return hops
        route = _route(view, reply.dst)
        if route is None:
            hops.append(Hop(namespace, "dropped", f"the reply has no way back: no route to "
                            f"{reply.dst} in {namespace}"))
            return hops
        if namespace != hops[0].namespace and not view.ip_forward:
            hops.append(Hop(namespace, "dropped", "ip_forward is 0"))
            return hops
        owner, path = _segment_owner(found, view.links[route.dev], route.gateway or reply.dst)
        if owner is None:
            hops.append(Hop(namespace, "dropped", f"out of {route.dev}, nobody answers ARP for "
                            f"{route.gateway or reply.dst}"))
            return hops
        hops.append(Hop(namespace, "link", " -> ".join(path)))
        namespace = owner.namespace
    return hops


def format_trace(hops: list[Hop]) -> str:
    return "\n".join(str(hop) for hop in hops)


def tracer_widget(found: Topology, destinations: dict[str, str], port: int = 80):
    """Pick a source namespace and a destination; see ``trace``'s hops (only in a browser)."""
    import ipywidgets as widgets

    source = widgets.Dropdown(options=list(found.namespaces), description="from")
    target = widgets.Dropdown(options=list(destinations), description="to")
    dport = widgets.IntText(value=port, description="port")
    out = widgets.Output()

    def show(_change=None):
        out.clear_output()
        with out:
            print(format_trace(trace(found, source.value, destinations[target.value],
                                     dport.value)))

    for control in (source, target, dport):
        control.observe(show, names="value")
    show()
    return widgets.VBox([widgets.HBox([source, target, dport]), out])
