"""Stage 14's name server (minidocker/cluster/resolver.py) without a lab: the names it answers
from a state read of etcd, made here by hand, and the DNS messages it sends back (dnspython on
both ends, no socket: ``Resolver.__new__`` skips the bind to port 53)."""

from collections import Counter

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from minidocker.cluster.resolver import Resolver, aliases, names

APPNET, OTHER = "10.0.1.0/24", "10.0.2.0/24"


def task(service: str, slot: int, address: str, network: str, state: str = "running") -> dict:
    return {"ID": f"{service}t{slot}", "ServiceID": service, "Slot": slot,
            "DesiredState": "running", "Status": {"State": state},
            "NetworksAttachments": [{"NetworkID": network, "Address": address}]}


def service(name: str, network: str, *given: str) -> dict:
    return {"Spec": {"Name": name, "TaskTemplate": {"Networks": [
        {"Target": network, "Aliases": list(given)}]}}}


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
    state = swarm(task("w", 1, "10.0.1.3", "n1"), task("w", 2, "10.0.1.4", "n1"),
                  task("w", 3, "10.0.1.5", "n1", state="starting"),
                  w=service("web", "n1"))
    table = names(state)
    assert table["web"] == table["tasks.web"] == ["10.0.1.3", "10.0.1.4"]
    assert table["web.2.wt2"] == ["10.0.1.4"]


def test_an_alias_and_tasks_of_the_alias_are_answered_on_its_own_network_only():
    state = swarm(task("a", 1, "10.0.1.3", "n1"), task("a", 2, "10.0.1.4", "n1"),
                  task("b", 1, "10.0.2.3", "n2"),
                  a=service("a_web", "n1", "web", "www"), b=service("b_web", "n2", "web"))
    assert aliases(state) == {
        APPNET: {"web": ["10.0.1.3", "10.0.1.4"], "tasks.web": ["10.0.1.3", "10.0.1.4"],
                 "www": ["10.0.1.3", "10.0.1.4"], "tasks.www": ["10.0.1.3", "10.0.1.4"]},
        OTHER: {"web": ["10.0.2.3"], "tasks.web": ["10.0.2.3"]}}
    server = resolver(state)
    assert ask(server, "tasks.www", "10.0.1.9") == ("NOERROR", ["10.0.1.3", "10.0.1.4"])
    assert ask(server, "tasks.web", "10.0.2.9") == ("NOERROR", ["10.0.2.3"])
    assert ask(server, "TASKS.Web", "10.0.2.9") == ("NOERROR", ["10.0.2.3"])  # names have no case
    assert sorted(ask(server, "a_web", "10.0.2.9")[1]) == ["10.0.1.3", "10.0.1.4"]  # swarm-wide
    assert ask(server, "tasks.www", "10.0.2.9") == ("REFUSED", [])  # another network's alias
    assert ask(server, "tasks.web", "10.77.0.1") == ("REFUSED", [])  # not on any overlay


def test_each_answer_starts_one_further_round_robin():
    state = swarm(task("a", 1, "10.0.1.3", "n1"), task("a", 2, "10.0.1.4", "n1"),
                  a=service("a_echo", "n1", "echo"))
    server = resolver(state)
    firsts = [ask(server, "tasks.echo", "10.0.1.9")[1][0] for _ in range(3)]
    assert firsts == ["10.0.1.3", "10.0.1.4", "10.0.1.3"]


def test_each_name_turns_alone_per_network():
    """A query for one name does not turn another name's order, nor the same alias's order
    on another network: each record set turns by itself."""
    state = swarm(task("a", 1, "10.0.1.3", "n1"), task("a", 2, "10.0.1.4", "n1"),
                  task("b", 1, "10.0.2.3", "n2"), task("b", 2, "10.0.2.4", "n2"),
                  a=service("a_echo", "n1", "echo"), b=service("b_echo", "n2", "echo"))
    server = resolver(state)
    asked = [("tasks.echo", "10.0.1.9"), ("echo", "10.0.1.9"), ("echo", "10.0.2.9"),
             ("a_echo", "10.0.2.9"), ("echo", "10.0.1.9"), ("echo", "10.0.2.9")]
    firsts = [ask(server, name, client)[1][0] for name, client in asked]
    assert firsts == ["10.0.1.3", "10.0.1.3", "10.0.2.3", "10.0.1.3", "10.0.1.4", "10.0.2.4"]


def test_the_long_network_form_gives_a_service_its_aliases():
    from minidocker.cli.swarm import _network_attachment
    from minidocker.cluster.swarm import SwarmError

    assert _network_attachment("appnet") == ("appnet", [])
    assert _network_attachment("name=appnet,alias=x,alias=y") == ("appnet", ["x", "y"])
    for wrong in ("alias=x", "name=a,name=b", "name=appnet,driver-opt=a=b", "name=appnet,x"):
        with pytest.raises(SwarmError, match=r"^invalid --network .*: use NAME or name=NAME"):
            _network_attachment(wrong)
