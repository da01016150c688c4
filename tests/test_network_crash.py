"""Stage 8 when things go wrong: ``network create`` killed with SIGKILL at each of its steps
leaves a whole network or nothing that ``network ls`` shows, and what it made is undone by the
next create or prune; a prune takes the bridges of its own state root, never another's.

The kill comes from inside: a small Python process replaces one step of ``create`` by a
``kill -9`` of itself (no fault-injection switch lives in the engine). What is checked is the
kernel's view: the links of this network namespace and the iptables rules."""

import os
import subprocess
import sys

import pytest
from pyroute2 import IPRoute

from minidocker.network import bridge, store

# Where the create dies: after its pending record, after its rules, after its bridge (made
# last: a bridge that exists means its rules do, see endpoints.bring_up).
KILL_AT = {
    "record": "endpoints.bring_up = die",
    "rules": "bridge.ensure_bridge = die",
    "bridge": "store.commit = die",
}
KILLED_CREATE = """
import os, signal, sys
from minidocker.network import bridge, endpoints, networks, store
def die(*args):
    os.kill(os.getpid(), signal.SIGKILL)
{kill_at}
networks.create(sys.argv[1])
"""


def killed_create(name: str, kill_at: str) -> None:
    program = KILLED_CREATE.format(kill_at=KILL_AT[kill_at])
    done = subprocess.run([sys.executable, "-c", program, name], capture_output=True, text=True)
    assert done.returncode == -9, done.stderr


def rules_naming(link: str) -> list[str]:
    saved = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True)
    return [line for line in saved.stdout.splitlines() if link in line]


def network_names(md, env: dict | None = None) -> list[str]:
    listing = md("network", "ls", "--format", "{{.Name}}", env=env)
    assert listing.returncode == 0, listing.stderr
    return listing.stdout.split()


def half_made_bridges() -> list[str]:
    """Bridges this state root made for networks it has no complete record of."""
    known = {n.bridge for n in store.all_networks()}
    return [b for b in bridge.bridges_of(store.bridge_owner()) if b not in known]


@pytest.mark.parametrize("kill_at", KILL_AT)
@pytest.mark.parametrize("undo", [("network", "create"), ("network", "prune", "-f"),
                                  ("system", "prune", "-f")])
def test_a_killed_network_create_is_undone_by_the_next_command(md, kill_at, undo):
    killed_create("halfnet", kill_at)
    assert "halfnet" not in network_names(md)  # never shown half-made
    (pending,) = store.pending_networks()
    made = bridge.link_exists(pending.bridge)
    assert made == (kill_at == "bridge")
    assert bool(rules_naming(pending.bridge)) == (kill_at != "record")
    args = [*undo, "halfnet"] if undo[-1] == "create" else undo
    done = md(*args)
    assert done.returncode == 0, done.stderr
    try:
        assert store.pending_networks() == []
        assert not bridge.link_exists(pending.bridge)
        assert rules_naming(pending.bridge) == []
        assert half_made_bridges() == []
        if undo[-1] == "create":  # the name, the subnet and the bridge are free again
            (shown,) = [n for n in store.all_networks() if n.name == "halfnet"]
            assert shown.subnet == pending.subnet and bridge.link_exists(shown.bridge)
    finally:
        md("network", "rm", "halfnet")


def test_a_complete_create_leaves_only_its_record(md):
    assert md("network", "create", "wholenet").returncode == 0
    try:
        assert store.pending_networks() == []
        assert "wholenet" in network_names(md)
        network = store.find("wholenet")
        assert bridge.link_exists(network.bridge) and rules_naming(network.bridge)
    finally:
        assert md("network", "rm", "wholenet").returncode == 0


def test_a_create_never_takes_over_an_existing_link(md):
    with IPRoute() as ip:
        ip.link("add", ifname="not-ours0", kind="bridge")
    try:
        done = md("network", "create", "-o", "com.docker.network.bridge.name=not-ours0",
                  "takeover")
        assert done.returncode == 1 and "not-ours0 already exists" in done.stderr
        assert "takeover" not in network_names(md) and store.pending_networks() == []
        assert bridge.link_exists("not-ours0")
    finally:
        bridge.remove_bridge("not-ours0")


def test_prune_takes_only_the_bridges_of_its_own_state_root(md, tmp_path):
    other_root = os.path.realpath(tmp_path / "other-root")
    other = {"MINIDOCKER_ROOT": other_root}
    assert md("network", "create", "theirs", env=other).returncode == 0
    theirs = bridge.bridges_of(f"minidocker:{other_root}")
    assert len(theirs) == 1
    with IPRoute() as ip:  # a bridge of ours whose record is lost, and one nobody marked
        ip.link("add", ifname="md-lostrecord", kind="bridge")
        ip.link("set", index=ip.link_lookup(ifname="md-lostrecord")[0],
                ifalias=store.bridge_owner())
        ip.link("add", ifname="md-unmarked", kind="bridge")
    try:
        assert md("network", "prune", "-f").returncode == 0
        assert not bridge.link_exists("md-lostrecord")
        assert bridge.link_exists("md-unmarked")  # not known to be ours: left alone
        assert bridge.link_exists(theirs[0])  # the other state root's network still works
        assert rules_naming(theirs[0])
        assert "theirs" in network_names(md, env=other)
    finally:
        bridge.remove_bridge("md-unmarked")
        bridge.remove_bridge("md-lostrecord")
        assert md("network", "rm", "theirs", env=other).returncode == 0
    assert not bridge.link_exists(theirs[0])


def test_a_bridge_is_marked_with_its_state_root(md):
    assert md("network", "create", "marked").returncode == 0
    try:
        shown = subprocess.run(["ip", "link", "show", store.find("marked").bridge],
                               capture_output=True, text=True).stdout
        assert f"alias minidocker:{os.path.realpath(os.environ['MINIDOCKER_ROOT'])}" in shown
    finally:
        md("network", "rm", "marked")


KILLED_ATTACH = """
import os, signal, sys
from minidocker import namespaces, network
from minidocker.network import store
sleeper = namespaces.spawn(["sleep", "60"], {"net"})
def die(*args):
    sleeper.signal(signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
store.write_endpoints = die  # killed between the address lease and the endpoint record
network.attach(sys.argv[1], sleeper.pid, network.NetworkRequest("bridge"))
"""


def test_an_attach_killed_after_its_lease_leaves_an_address_prune_frees(md):
    container_id = store.new_id()
    done = subprocess.run([sys.executable, "-c", KILLED_ATTACH, container_id],
                          capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    assert container_id in store.find("bridge").allocations
    assert store.read_endpoints(container_id) is None
    assert md("network", "prune", "-f").returncode == 0
    assert container_id not in store.find("bridge").allocations
