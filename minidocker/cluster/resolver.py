"""Service discovery: a name server on each node, answering from etcd, round robin.

A task's ``/etc/resolv.conf`` names its node's address on the overlay (the task's gateway), and
there the node's agent answers DNS queries (UDP port 53) from what it last read in etcd. Each
overlay has its own names, as each of Docker's networks has its service records:

    web                  every running task of service ``web`` on this network: their
    tasks.web            addresses here, in an order that turns at each query for that name
                         (DNS round robin)
    web.2.<task id>      one task, by its container's name
    front                an alias the service has on this network (``TaskTemplate.Networks[].
    tasks.front          Aliases``: a stack's service ``demo_front`` is ``front`` on its
                         stack's networks), so two stacks may each have a ``front``

**Who asks** is the query's source address: the overlay whose subnet holds it is the network
the query came from, and the task with that address there (``NetworksAttachments``) names the
client's other networks. A name is looked up on those networks only, the one asked from
first, as Docker's sandbox tries its endpoints in order: a container resolves the services of
its own networks, and a service on two networks is answered on each with its addresses there.
Elsewhere the name does not exist. (The names follow the swarm's records, the tasks'
``NetworksAttachments``, which are also the addresses of the task's container on each of its
networks: reconcile.py.)

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

Names not found on the client's networks get ``REFUSED``: the lab has no upstream resolver to
ask (Docker would forward them to the host's).
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


def running(state: dict) -> list[tuple[dict, dict]]:
    """(task, service) for each running task, in slot order: the order of every answer."""
    found = []
    for task in sorted(state["tasks"].values(), key=lambda t: (t.get("Slot") or 0, t["ID"])):
        service = state["services"].get(task["ServiceID"])
        if service and task["DesiredState"] == records.RUNNING and \
                task["Status"]["State"] == records.RUNNING:
            found.append((task, service))
    return found


def names(state: dict) -> dict[str, dict[str, list[str]]]:
    """Each network's ID -> every name answered on it -> the addresses there: a service with
    a running task on the network, as its name and ``tasks.<name>``, each of its aliases on
    that network and ``tasks.<alias>`` (as libnetwork registers them); each task by its
    container's name. A service on two networks has on each its tasks' addresses there."""
    table: dict[str, dict[str, list[str]]] = {}
    for task, service in running(state):
        name = service["Spec"]["Name"]
        given = {n["Target"]: n.get("Aliases", [])
                 for n in service["Spec"]["TaskTemplate"].get("Networks", [])}
        slot = task.get("Slot") or task.get("Pinned")
        for attachment in task.get("NetworksAttachments", []):
            network, address = attachment["NetworkID"], attachment["Address"]
            if network not in state["networks"]:
                continue
            here = table.setdefault(network, {})
            for key in dict.fromkeys(k.lower() for k in (name, *given.get(network, []))):
                for record in (key, f"tasks.{key}"):
                    here.setdefault(record, []).append(address)
            here[f"{name}.{slot}.{task['ID']}".lower()] = [address]
    return table


def endpoints(state: dict) -> dict[tuple[str, str], list[str]]:
    """(network ID, address) -> the networks of the task that holds that address, that one
    first: what a query's source address says about who asks (tasks about to run included,
    their containers may ask before the manager records them running)."""
    found = {}
    for task in state["tasks"].values():
        if task["DesiredState"] != records.RUNNING:
            continue
        attached = [a["NetworkID"] for a in task.get("NetworksAttachments", [])]
        for attachment in task.get("NetworksAttachments", []):
            found[attachment["NetworkID"], attachment["Address"]] = [
                attachment["NetworkID"], *(n for n in attached if n != attachment["NetworkID"])]
    return found


class Resolver:
    """The node's name server: a UDP socket and the table of the latest etcd read."""

    def __init__(self, address: str = "0.0.0.0", port: int = PORT):
        self.names: dict[str, dict[str, list[str]]] = {}
        self.subnets: dict[str, ipaddress.IPv4Network] = {}
        self.endpoints: dict[tuple[str, str], list[str]] = {}
        self.turns: Counter[tuple[str, str]] = Counter()  # (network, name) -> answers given
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))

    def update(self, state: dict) -> None:
        self.names, self.endpoints = names(state), endpoints(state)
        self.subnets = {network_id: ipaddress.ip_network(network["Subnet"])
                        for network_id, network in state["networks"].items()}

    def networks_of(self, client: str) -> list[str]:
        """The networks of the container that asks: the overlay its address is on (the query
        came in there), then the other networks of its task. None for an address on no
        overlay."""
        for network_id, subnet in self.subnets.items():
            if ipaddress.ip_address(client) in subnet:
                return self.endpoints.get((network_id, client), [network_id])
        return []

    def lookup(self, name: str, client: str) -> tuple[str, list[str] | None]:
        """The name on the client's own networks, the one it asks from first (Docker's
        sandbox tries its endpoints in order): on which network it was found, and its
        addresses there. A name of a service on no network of the client's is not found."""
        for network_id in self.networks_of(client):
            if name in self.names.get(network_id, {}):
                return network_id, self.names[network_id][name]
        return "", None

    def turn(self, record_set: tuple[str, str], addresses: list[str]) -> list[str]:
        """Round robin: each answer for this record set starts one further than the last.
        A record set turns alone: asking for one name does not turn the order of another,
        nor of the same name on another network (whose addresses are others)."""
        first = self.turns[record_set] % len(addresses)
        self.turns[record_set] += 1
        return addresses[first:] + addresses[:first]

    def answer(self, query: bytes, client: str) -> bytes:
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
