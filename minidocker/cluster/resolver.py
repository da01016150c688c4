"""Service discovery: a name server on each node, answering from etcd, round robin.

A task's ``/etc/resolv.conf`` names its node's address on the overlay (the task's gateway), and
there the node's agent answers DNS queries (UDP port 53) from what it last read in etcd:

    web                  every running task of service ``web``: all their addresses, in an
    tasks.web            order that turns at each query for that name (DNS round robin)
    web.2.<task id>      one task, by its container's name
    front                an alias the service has on a network (``TaskTemplate.Networks[].
    tasks.front          Aliases``: a stack's service ``demo_front`` is ``front`` on its
                         stack's networks) — answered only to a client on that network, as
                         Docker scopes aliases, so two stacks may each have a ``front``

The first three are answered to any task of the swarm, on whichever overlay it is: Docker
scopes them too (a container resolves only the services of its own networks). Here a task on
another overlay gets addresses it cannot reach, where Docker's answer is that no such name
exists.

We chose **DNS round robin** over a virtual IP. A VIP needs a load balancer on the path: IPVS
(not in this kernel) or iptables DNAT with the ``statistic`` match — and since a task on
another node would answer the client directly, the DNAT'd packets must also be SNAT'd to an
address of the balancing node, so the server never sees its client. Round robin needs nothing
on the path: a client gets every address, the first one turning at each query, and connects
straight over the overlay (Docker's ``--endpoint-mode dnsrr``). Its price: a client that
caches an answer keeps its server (the TTL is 0 to discourage it), and a dead task stays in an
answer until the agent reads the next change (a second at most).
Docker's embedded DNS (libnetwork's resolver.go) differs in two ways, both for the course's
sake: it *shuffles* the addresses of each answer at random, where this one turns them by one
per query of a name (so a notebook can show the turn, and print the same in every run), and it
answers with a TTL of 600 seconds, where this one says 0. The routing mesh, where the
client is outside the overlay and cannot resolve anything, does use DNAT and SNAT (mesh.py).

Names the swarm does not know get ``REFUSED``: the lab has no upstream resolver to ask.
The DNS messages are parsed and built by dnspython; what the course shows is which names exist
and where their answers come from.

Docs: RFC 1035 (messages), docs.docker.com "Manage swarm service networks" (service discovery,
``tasks.<service>``, ``--endpoint-mode dnsrr``). Used by: agent.py, notebook 14b-overlay-networks.
"""

import ipaddress
import logging
import socket
import threading
from collections import Counter

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from minidocker.cluster import swarm as records

PORT = 53
TTL = 0
log = logging.getLogger("minidocker.resolver")


def names(state: dict) -> dict[str, list[str]]:
    """Every name the swarm answers for, with its addresses (running tasks only)."""
    table: dict[str, list[str]] = {}
    for task in sorted(state["tasks"].values(), key=lambda t: (t.get("Slot") or 0, t["ID"])):
        service = state["services"].get(task["ServiceID"])
        if not service or task["DesiredState"] != records.RUNNING or \
                task["Status"]["State"] != records.RUNNING:
            continue
        addresses = [a["Address"] for a in task.get("NetworksAttachments", [])]
        if not addresses:
            continue
        name = service["Spec"]["Name"]
        slot = task.get("Slot") or task.get("Pinned")
        for key in (name, f"tasks.{name}"):
            table.setdefault(key.lower(), []).extend(addresses[:1])
        table[f"{name}.{slot}.{task['ID']}".lower()] = addresses[:1]
    return table


def aliases(state: dict) -> dict[str, dict[str, list[str]]]:
    """Each network's subnet -> the aliases of the services on it (each also as
    ``tasks.<alias>``, as libnetwork registers it), with their running tasks' addresses there
    (a task's first network, the one it is attached to)."""
    scoped: dict[str, dict[str, list[str]]] = {}
    for task in sorted(state["tasks"].values(), key=lambda t: (t.get("Slot") or 0, t["ID"])):
        service = state["services"].get(task["ServiceID"])
        if not service or task["DesiredState"] != records.RUNNING or \
                task["Status"]["State"] != records.RUNNING:
            continue
        given = {n["Target"]: n.get("Aliases", [])
                 for n in service["Spec"]["TaskTemplate"].get("Networks", [])}
        for attachment in task.get("NetworksAttachments", [])[:1]:
            network = state["networks"].get(attachment["NetworkID"])
            for alias in given.get(attachment["NetworkID"], []) if network else []:
                for key in (alias, f"tasks.{alias}"):
                    scoped.setdefault(network["Subnet"], {}).setdefault(key.lower(), []) \
                        .append(attachment["Address"])
    return scoped


class Resolver:
    """The node's name server: a UDP socket and the table of the latest etcd read."""

    def __init__(self, address: str = "0.0.0.0", port: int = PORT):
        self.table: dict[str, list[str]] = {}
        self.aliases: dict[str, dict[str, list[str]]] = {}
        self.turns: Counter[tuple[str, str]] = Counter()  # (network, name) -> answers given
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))

    def update(self, state: dict) -> None:
        self.table, self.aliases = names(state), aliases(state)

    def lookup(self, name: str, client: str) -> tuple[str, list[str] | None]:
        """A swarm-wide name, or an alias on the client's own network: where the name was
        found (``""`` for swarm-wide, else the network's subnet) and its addresses."""
        if name in self.table:
            return "", self.table[name]
        for subnet, names_ in self.aliases.items():
            if client and ipaddress.ip_address(client) in ipaddress.ip_network(subnet):
                return subnet, names_.get(name)
        return "", None

    def turn(self, record_set: tuple[str, str], addresses: list[str]) -> list[str]:
        """Round robin: each answer for this record set starts one further than the last.
        A record set turns alone: asking for one name does not turn the order of another,
        nor of the same alias on another network (whose tasks are others)."""
        first = self.turns[record_set] % len(addresses)
        self.turns[record_set] += 1
        return addresses[first:] + addresses[:first]

    def answer(self, query: bytes, client: str = "") -> bytes:
        request = dns.message.from_wire(query)
        response = dns.message.make_response(request)
        response.flags |= dns.flags.RA
        question = request.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        network, addresses = self.lookup(name, client)
        if addresses is None:
            response.set_rcode(dns.rcode.REFUSED)
        elif question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text_list(
                question.name, TTL, dns.rdataclass.IN, dns.rdatatype.A,
                self.turn((network, name), addresses)))
        return response.to_wire(want_shuffle=False)  # dnspython shuffles unless told: the turn is ours

    def serve(self) -> None:
        while True:
            query, client = self.sock.recvfrom(4096)
            try:
                self.sock.sendto(self.answer(query, client[0]), client)
            except Exception as exc:  # a malformed query must not stop the name server
                log.warning("dns query from %s: %s", client[0], exc)

    def start(self) -> "Resolver":
        threading.Thread(target=self.serve, daemon=True).start()
        return self
