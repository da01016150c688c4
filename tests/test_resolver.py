"""Stage 14's name server (minidocker/cluster/resolver.py) without a lab: the names it answers
from a state read of etcd, made here by hand, and the DNS messages it sends back (dnspython on
both ends, no socket: ``Resolver.__new__`` skips the bind to port 53)."""

from collections import Counter

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from minidocker.cluster.resolver import Resolver, endpoints, names

APPNET, OTHER = "10.0.1.0/24", "10.0.2.0/24"


def task(service: str, slot: int, *attached: tuple[str, str], state: str = "running") -> dict:
    """A task of ``service`` with an address on each network: (network ID, address) pairs."""
    return {"ID": f"{service}t{slot}", "ServiceID": service, "Slot": slot,
            "DesiredState": "running", "Status": {"State": state},
            "NetworksAttachments": [{"NetworkID": n, "Address": a} for n, a in attached]}


def service(name: str, *networks: str, aliases: tuple[str, ...] = ()) -> dict:
    return {"Spec": {"Name": name, "TaskTemplate": {"Networks": [
        {"Target": network, "Aliases": list(aliases)} for network in networks]}}}


def swarm(*tasks: dict, **services: dict) -> dict:
    return {"networks": {"n1": {"Subnet": APPNET}, "n2": {"Subnet": OTHER}},
            "services": services, "tasks": {t["ID"]: t for t in tasks}}


def resolver(state: dict) -> Resolver:
    """A name server that binds no socket (what ``__init__`` would do besides the two lines)."""
    made = Resolver.__new__(Resolver)
    made.turns = Counter()
    made.update(state)
    return made


def ask(server: Resolver, name: str, client: str) -> tuple[str, list[str]]:
    """The rcode and the A records of the answer to ``name``, asked from ``client``."""
    reply = dns.message.from_wire(server.answer(dns.message.make_query(name, "A").to_wire(),
                                                client))
    records = [r.address for rrset in reply.answer for r in rrset
               if rrset.rdtype == dns.rdatatype.A]
    return dns.rcode.to_text(reply.rcode()), records


def test_a_service_and_tasks_of_it_name_its_running_tasks():
    state = swarm(task("w", 1, ("n1", "10.0.1.3")), task("w", 2, ("n1", "10.0.1.4")),
                  task("w", 3, ("n1", "10.0.1.5"), state="starting"),
                  w=service("web", "n1"))
    table = names(state)["n1"]
    assert table["web"] == table["tasks.web"] == ["10.0.1.3", "10.0.1.4"]
    assert table["web.2.wt2"] == ["10.0.1.4"]
    assert "n2" not in names(state)  # no task of the swarm on it: no names there


def test_an_alias_and_tasks_of_the_alias_are_answered_on_its_own_network_only():
    state = swarm(task("a", 1, ("n1", "10.0.1.3")), task("a", 2, ("n1", "10.0.1.4")),
                  task("b", 1, ("n2", "10.0.2.3")),
                  a=service("a_web", "n1", aliases=("web", "www")),
                  b=service("b_web", "n2", aliases=("web",)))
    table = names(state)
    assert table["n1"]["www"] == table["n1"]["tasks.www"] == ["10.0.1.3", "10.0.1.4"]
    assert table["n2"]["web"] == table["n2"]["tasks.web"] == ["10.0.2.3"]
    server = resolver(state)
    assert ask(server, "tasks.www", "10.0.1.9") == ("NOERROR", ["10.0.1.3", "10.0.1.4"])
    assert ask(server, "tasks.web", "10.0.2.9") == ("NOERROR", ["10.0.2.3"])
    assert ask(server, "TASKS.Web", "10.0.2.9") == ("NOERROR", ["10.0.2.3"])  # names have no case
    assert ask(server, "tasks.www", "10.0.2.9") == ("REFUSED", [])  # another network's alias
    assert ask(server, "tasks.web", "10.77.0.1") == ("REFUSED", [])  # not on any overlay


def test_a_service_is_answered_only_on_the_networks_it_shares_with_the_client():
    """Service ``front`` is on n1 and n2, ``db`` on n1 only, ``cache`` on n2 only; the
    client ``api`` is a task on n1 and n2, asking from its n2 address."""
    state = swarm(task("f", 1, ("n1", "10.0.1.3"), ("n2", "10.0.2.3")),
                  task("f", 2, ("n1", "10.0.1.4"), ("n2", "10.0.2.4")),
                  task("d", 1, ("n1", "10.0.1.5")), task("c", 1, ("n2", "10.0.2.5")),
                  task("p", 1, ("n2", "10.0.2.6"), ("n1", "10.0.1.6")),
                  f=service("front", "n1", "n2"), d=service("db", "n1"),
                  c=service("cache", "n2"), p=service("api", "n2", "n1"))
    assert endpoints(state)["n2", "10.0.2.6"] == ["n2", "n1"]
    server = resolver(state)
    assert ask(server, "db", "10.0.2.5") == ("REFUSED", [])  # cache, on n2 only: no db there
    assert ask(server, "cache", "10.0.1.5") == ("REFUSED", [])  # nor a cache for db
    assert ask(server, "db", "10.0.2.6") == ("NOERROR", ["10.0.1.5"])  # api is on n1 as well
    assert ask(server, "cache", "10.0.2.6") == ("NOERROR", ["10.0.2.5"])
    assert ask(server, "front", "10.0.1.5") == ("NOERROR", ["10.0.1.3", "10.0.1.4"])
    assert ask(server, "tasks.front", "10.0.2.5") == ("NOERROR", ["10.0.2.3", "10.0.2.4"])
    assert ask(server, "front.1.ft1", "10.0.2.5") == ("NOERROR", ["10.0.2.3"])
    assert sorted(ask(server, "front", "10.0.2.6")[1]) == ["10.0.2.3", "10.0.2.4"]  # from n2
    assert ask(server, "db", "10.0.1.200") == ("NOERROR", ["10.0.1.5"])  # on n1, not a task


def test_each_answer_starts_one_further_round_robin():
    state = swarm(task("a", 1, ("n1", "10.0.1.3")), task("a", 2, ("n1", "10.0.1.4")),
                  a=service("a_echo", "n1", aliases=("echo",)))
    server = resolver(state)
    firsts = [ask(server, "tasks.echo", "10.0.1.9")[1][0] for _ in range(3)]
    assert firsts == ["10.0.1.3", "10.0.1.4", "10.0.1.3"]


def test_each_name_turns_alone_per_network():
    """A query for one name does not turn another name's order, nor the same name's order
    on another network: each record set turns by itself."""
    state = swarm(task("a", 1, ("n1", "10.0.1.3"), ("n2", "10.0.2.3")),
                  task("a", 2, ("n1", "10.0.1.4"), ("n2", "10.0.2.4")),
                  a=service("a_echo", "n1", "n2", aliases=("echo",)))
    server = resolver(state)
    asked = [("tasks.echo", "10.0.1.9"), ("echo", "10.0.1.9"), ("echo", "10.0.2.9"),
             ("a_echo", "10.0.2.9"), ("echo", "10.0.1.9"), ("echo", "10.0.2.9")]
    firsts = [ask(server, name, client)[1][0] for name, client in asked]
    assert firsts == ["10.0.1.3", "10.0.1.3", "10.0.2.3", "10.0.2.3", "10.0.1.4", "10.0.2.4"]


def test_the_long_network_form_gives_a_service_its_aliases():
    from minidocker.cli.swarm import _network_attachment
    from minidocker.cluster.swarm import SwarmError

    assert _network_attachment("appnet") == ("appnet", [])
    assert _network_attachment("name=appnet,alias=x,alias=y") == ("appnet", ["x", "y"])
    for wrong in ("alias=x", "name=a,name=b", "name=appnet,driver-opt=a=b", "name=appnet,x"):
        with pytest.raises(SwarmError, match=r"^invalid --network .*: use NAME or name=NAME"):
            _network_attachment(wrong)
