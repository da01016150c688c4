"""Stage 14, overlay networks: VXLAN between the lab's nodes, names answered from etcd, the
routing mesh. One lab of three nodes for the module; each test makes its services and removes
them. At the end, ``network rm`` and ``cluster down`` leave no VXLAN device, bridge, FDB entry
or rule."""

import json
import os
import subprocess

import pytest

from minidocker.cluster.engine import SERVICE_LABEL, TASK_LABEL, Engine
from minidocker.viz.engines import DOCKER
from minidocker.viz.overlay import lab_state
from tests.conftest import TIMEOUT_SCALE, minidocker
from tests.test_cluster import (  # noqa: F401 (swarm: a fixture)
    RESCHEDULE_WITHIN,
    converged,
    md_ok,
    swarm,
    tasks_running,
    wait_for,
)

N1, N2, N3 = "10.77.0.11", "10.77.0.12", "10.77.0.13"


def in_netns(holder: int, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net=/proc/{holder}/ns/net", *argv],
                          capture_output=True, text=True, timeout=timeout * TIMEOUT_SCALE)


def task_container(lab: dict, service: str) -> tuple[str, str, dict]:
    """(node, container ID, the container's inspect) of the service's one running task."""
    for name, node in lab["nodes"].items():
        engine = Engine(node["socket"])
        for c in engine.containers(label=TASK_LABEL):
            if c["Labels"].get(SERVICE_LABEL) == service:
                return name, c["Id"], engine.call("GET", f"/containers/{c['Id']}/json").json()
    raise AssertionError(f"no running task of {service}")


def exec_in(lab: dict, node: str, container: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKER, "-H",
                           f"unix://{lab['nodes'][node]['socket']}", "exec", container, *argv],
                          capture_output=True, text=True, timeout=30 * TIMEOUT_SCALE)


@pytest.fixture(scope="module")
def lab(swarm):  # noqa: F811 (the imported fixture, asked for by name)
    """test_cluster.py's lab of three nodes in one swarm, made again for this module."""
    return swarm


@pytest.fixture(scope="module")
def appnet(lab):
    network_id = md_ok("network", "create", "-d", "overlay", "--subnet", "10.0.9.0/24",
                       "appnet").strip()
    for name, node in (("a", "n1"), ("b", "n2")):
        md_ok("service", "create", "--name", name, "--network", "appnet", "--constraint",
              f"node.hostname=={node}", "busybox", "sleep", "1000")
    yield network_id


def test_overlay_network_is_a_record_until_a_task_needs_it(lab):
    result = minidocker("network", "create", "-d", "overlay", "--subnet", "10.77.0.0/25", "x")
    assert result.returncode == 1 and "overlaps 10.77.0.0/24" in result.stderr


def test_tasks_on_two_nodes_ping_each_other_by_name_over_vxlan(lab, appnet):
    listed = [line.split()[1:] for line in md_ok("network", "ls").splitlines()]
    assert ["appnet", "overlay", "swarm"] in listed
    node_a, a, inspect_a = task_container(lab, "a")
    node_b, b, inspect_b = task_container(lab, "b")
    assert (node_a, node_b) == ("n1", "n2")
    address_b = inspect_b["NetworkSettings"]["Networks"]["appnet"]["IPAddress"]
    given = {t["NetworksAttachments"][0]["Address"] for t in lab_state()["tasks"].values()
             if t["DesiredState"] == "running" and t.get("NetworksAttachments")}
    assert address_b.startswith("10.0.9.") and address_b in given  # the manager's, from etcd
    eth0 = exec_in(lab, "n1", a, "ip", "link", "show", "eth0").stdout
    assert "mtu 1450" in eth0  # 1500 - 50 bytes of VXLAN encapsulation
    pinged = wait_for(lambda: exec_in(lab, "n1", a, "ping", "-c", "1", "-W", "2", "b")
                      .returncode == 0 or None, 15, "a pings b by name")
    assert pinged
    answer = exec_in(lab, "n1", a, "nslookup", "b").stdout
    assert address_b in answer
    holder = lab["nodes"]["n1"]["holder"]
    fdb = in_netns(holder, "bridge", "fdb", "show", "dev", "vx4097").stdout
    assert f"dst {N2}" in fdb, fdb  # b's MAC lives behind node n2's underlay address
    neighbours = in_netns(holder, "ip", "neigh", "show", "dev", "vx4097").stdout
    assert address_b in neighbours
    details = in_netns(holder, "ip", "-d", "link", "show", "vx4097").stdout
    assert "vxlan id 4097" in details and "dstport 4789" in details
    assert "nolearning" in details and "proxy" in details and "mtu 1450" in details


def test_a_service_name_reaches_each_of_its_tasks(lab, appnet):
    md_ok("service", "create", "--name", "echo", "--network", "name=appnet,alias=hello",
          "--replicas", "2", "busybox", "sh", "-c", "exec httpd -f -p 80 -h /etc")
    try:
        _, a, _ = task_container(lab, "a")
        hosts = set()

        def both_answered():
            got = exec_in(lab, "n1", a, "wget", "-qO-", "http://echo/hostname")
            if got.returncode == 0:
                hosts.add(got.stdout.strip())
            return len(hosts) == 2

        wait_for(both_answered, 20, "both tasks of echo answered by name")
        answer = exec_in(lab, "n1", a, "nslookup", "tasks.hello").stdout  # the alias's tasks
        assert answer.count("Address: 10.0.9.") == 2, answer
    finally:
        minidocker("service", "rm", "echo")


def test_the_routing_mesh_answers_on_every_node(lab, appnet):
    md_ok("service", "create", "--name", "mesh", "--publish", "8080:80", "--constraint",
          "node.hostname==n2", "busybox", "sh", "-c", "exec httpd -f -p 80 -h /etc")
    md_ok("service", "create", "--name", "local", "--publish",
          "mode=host,published=8081,target=80", "--constraint", "node.hostname==n3",
          "busybox", "sh", "-c", "exec httpd -f -p 80 -h /etc")
    try:
        _, _, inspect = task_container(lab, "mesh")
        for address in (N1, N2, N3):  # from the lab's own namespace: a client outside
            fetched = wait_for(lambda a=address: in_netns(
                lab["holder"], "curl", "-sS", "-m", "3",
                f"http://{a}:8080/hostname").stdout.strip(), 20, f"the mesh on {address}")
            assert fetched == inspect["Config"]["Hostname"]
        assert in_netns(lab["holder"], "curl", "-sS", "-m", "3",
                        f"http://{N3}:8081/hostname").returncode == 0
        assert in_netns(lab["holder"], "curl", "-sS", "-m", "3",
                        f"http://{N1}:8081/hostname").returncode != 0  # mode=host: n3 only
        rules = in_netns(lab["nodes"]["n1"]["holder"], "iptables", "-t", "nat", "-S",
                         "MD-MESH").stdout
        assert "--dport 8080 -j DNAT" in rules
        node, mesh, _ = task_container(lab, "mesh")  # on ingress only, a on appnet only
        assert "Address: 10.255.0." in exec_in(lab, node, mesh, "nslookup", "mesh").stdout
        _, a, _ = task_container(lab, "a")
        assert "10.255.0." not in exec_in(lab, "n1", a, "nslookup", "mesh").stdout  # scoped
    finally:
        minidocker("service", "rm", "mesh", "local")


def test_a_task_on_two_overlays_has_its_address_on_each_and_their_names(lab, appnet):
    """``service create --network appnet --network backnet``: the task's container has an
    interface on each overlay, at the addresses the manager gave it, before its process
    starts; and it resolves (and reaches, over backnet's VXLAN) a service only on backnet."""
    backnet = md_ok("network", "create", "-d", "overlay", "--subnet", "10.0.10.0/24",
                    "backnet").strip()
    md_ok("service", "create", "--detach", "--name", "both", "--network", "appnet",
          "--network", "backnet", "--constraint", "node.hostname==n1", "busybox", "sh", "-c",
          "ip -o -4 addr > /tmp/at-start; exec sleep 1000")
    md_ok("service", "create", "--detach", "--name", "behind", "--network", "backnet",
          "--constraint", "node.hostname==n2", "busybox", "sleep", "1000")
    try:
        wait_for(lambda: converged("both", 1) and converged("behind", 1), 30,
                 "both and behind running")
        node, both, inspect = task_container(lab, "both")
        _, _, behind = task_container(lab, "behind")
        task = lab_state()["tasks"][inspect["Config"]["Labels"][TASK_LABEL]]
        given = {a["NetworkID"]: a["Address"] for a in task["NetworksAttachments"]}
        seen = exec_in(lab, node, both, "cat", "/tmp/at-start").stdout  # what PID 1 saw
        assert f"eth0    inet {given[appnet]}/24" in seen, seen
        assert f"eth1    inet {given[backnet]}/24" in seen, seen
        assert {name: n["IPAddress"] for name, n in
                inspect["NetworkSettings"]["Networks"].items()} == {
            "appnet": given[appnet], "backnet": given[backnet]}
        address = behind["NetworkSettings"]["Networks"]["backnet"]["IPAddress"]
        answer = exec_in(lab, node, both, "nslookup", "behind").stdout  # asked on appnet
        assert f"Address: {address}" in answer, answer
        assert wait_for(lambda: exec_in(lab, node, both, "ping", "-c", "1", "-W", "2",
                                        "behind").returncode == 0 or None, 15,
                        "both pings behind over backnet")
    finally:
        minidocker("service", "rm", "both", "behind")
        wait_for(lambda: minidocker("network", "rm", "backnet").returncode == 0, 20,
                 "backnet removed")


def test_a_meshed_service_on_an_overlay_survives_a_crash_and_a_partition(lab, appnet):
    """The issue's "done when": a replicated service with a published port on an overlay
    network keeps answering, through the mesh and by name, after a node crashes and after
    another is cut off — and runs no slot twice once the cut node is back."""
    md_ok("service", "create", "--name", "ha", "--network", "appnet", "--replicas", "2",
          "--publish", "8090:80", "--constraint", "node.hostname!=n1",
          "busybox", "sh", "-c", "exec httpd -f -p 80 -h /etc")
    _, a, _ = task_container(lab, "a")  # on n1, a client on the same overlay

    def answers(*addresses: str) -> bool:
        by_mesh = all(in_netns(lab["holder"], "curl", "-sS", "-m", "3",
                               f"http://{address}:8090/hostname").returncode == 0
                      for address in addresses)
        return by_mesh and exec_in(lab, "n1", a, "wget", "-qO-", "http://ha/hostname") \
            .returncode == 0

    try:
        wait_for(lambda: converged("ha", 2) and answers(N1, N2, N3), 30, "ha answers")
        md_ok("cluster", "crash", "n2")
        try:
            wait_for(lambda: [node for _, node in tasks_running("ha")] == ["n3", "n3"],
                     RESCHEDULE_WITHIN, "n2's task rescheduled on n3")
            wait_for(lambda: answers(N1, N3), 20, "ha answers with n2 crashed")
        finally:
            md_ok("cluster", "restart", "n2")
        wait_for(lambda: md_ok("node", "ls").count(" Ready ") == 3, 20, "n2 Ready again")
        md_ok("cluster", "partition", "n3")
        try:
            wait_for(lambda: len(tasks_running("ha")) == 2
                     and all(node == "n2" for _, node in tasks_running("ha")),
                     RESCHEDULE_WITHIN + 5, "n3's tasks rescheduled on n2")
            wait_for(lambda: answers(N1, N2), 20, "ha answers with n3 cut off")
        finally:
            md_ok("cluster", "heal", "n3")
        wait_for(lambda: md_ok("node", "ls").count(" Ready ") == 3, 20, "n3 Ready again")
        wait_for(lambda: converged("ha", 2), 20, "no slot runs twice after the heal")
    finally:
        minidocker("service", "rm", "ha")


def test_network_rm_takes_every_end_down(lab, appnet):
    refused = minidocker("network", "rm", "appnet")
    assert refused.returncode == 1 and "in use by service" in refused.stderr
    md_ok("service", "rm", "a", "b")
    md_ok("network", "rm", "appnet")

    def gone():
        for node in lab["nodes"].values():
            links = in_netns(node["holder"], "ip", "-o", "link").stdout
            if "vx4097" in links or "ov4097" in links:
                return False
            if in_netns(node["holder"], "iptables", "-t", "nat", "-S").stdout.count("MD-MESH"):
                return False
        return True

    wait_for(gone, 20, "no VXLAN device, bridge or mesh rule left on any node")
    assert json.loads(md_ok("network", "inspect", "bridge"))


STACK_FILE = """
services:
  web:
    image: busybox
    command: ["sh", "-c", "exec httpd -f -p 80 -h /etc"]
    ports: ["8090:80"]
    networks: [back]
    deploy: {placement: {constraints: ["node.hostname==n2"]}}
  client:
    image: busybox
    command: sleep 1000
    networks: [back]
    deploy: {placement: {constraints: ["node.hostname==n1"]}}
networks:
  back: {}
"""


def test_a_stack_on_its_own_overlay_by_name_through_the_mesh(lab, tmp_path):
    (tmp_path / "compose.yml").write_text(STACK_FILE.replace("back: {}",
                                                             "back: {external: true}"))
    refused = minidocker("stack", "deploy", "-c", str(tmp_path / "compose.yml"), "st")
    assert refused.returncode == 1 and refused.stderr.startswith(
        "minidocker: network 'back' is declared as external, but could not be found"), \
        refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    (tmp_path / "compose.yml").write_text(STACK_FILE)
    deployed = md_ok("stack", "deploy", "-c", str(tmp_path / "compose.yml"),
                     "--detach=false", "st", timeout=90)
    assert deployed.splitlines()[:3] == ["Creating network st_back",
                                         "Creating service st_client", "Creating service st_web"]
    [network] = json.loads(md_ok("network", "inspect", "st_back"))
    assert network["Labels"] == {"com.docker.stack.namespace": "st"}
    vni = network["VNI"]
    _, client, _ = task_container(lab, "st_client")
    _, _, web = task_container(lab, "st_web")
    fetched = wait_for(lambda: exec_in(lab, "n1", client, "wget", "-qO-", "http://web/hostname")
                       .stdout.strip(), 15, "client on n1 reaches web on n2 by its short name")
    assert fetched == web["Config"]["Hostname"]
    for address in (N1, N2, N3):  # the routing mesh: every node answers
        assert wait_for(lambda a=address: in_netns(
            lab["holder"], "curl", "-sS", "-m", "3", f"http://{a}:8090/hostname")
            .stdout.strip(), 15, f"the mesh on {address}") == web["Config"]["Hostname"]
    assert md_ok("stack", "rm", "st", timeout=60).splitlines() == [
        "Removing service st_client", "Removing service st_web", "Removing network st_back"]
    assert "st_back" not in md_ok("network", "ls")

    def gone():
        return not any(f"vx{vni}" in links or f"ov{vni}" in links
                       for links in (in_netns(node["holder"], "ip", "-o", "link").stdout
                                     for node in lab["nodes"].values()))

    wait_for(gone, 20, "no VXLAN device or bridge of the stack's overlay left on any node")


def netns_in_use(inode: int) -> bool:
    """Does any process still hold the network namespace ``inode``?"""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino == inode:
                return True
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return False


def test_cluster_down_leaves_no_vxlan_device_bridge_entry_or_rule(lab):
    """Down with an overlay in use: every node's namespace goes, and with it (the kernel's
    doing) its VXLAN devices, bridges, FDB and neighbour entries and iptables rules; nothing
    of the overlay was ever made in this namespace."""
    md_ok("network", "create", "-d", "overlay", "last")
    md_ok("service", "create", "--name", "everywhere", "--mode", "global", "--network", "last",
          "--publish", "8082:80", "busybox", "sleep", "1000")
    holders = [node["holder"] for node in lab["nodes"].values()]
    for holder in holders:
        assert "vxlan id" in in_netns(holder, "ip", "-d", "link", "show", "type", "vxlan").stdout
    inodes = [os.stat(f"/proc/{holder}/ns/net").st_ino for holder in holders]
    assert md_ok("cluster", "down", timeout=120) == "removed 3 node(s)\n"
    wait_for(lambda: not [inode for inode in inodes if netns_in_use(inode)], 10,
             "every node's network namespace gone (its last process may take a moment)")
    here = subprocess.run(["ip", "-o", "link", "show", "type", "vxlan"], capture_output=True,
                          text=True).stdout
    assert "vx40" not in here
    assert subprocess.run(["iptables", "-t", "nat", "-S", "MD-MESH"],
                          capture_output=True).returncode != 0
