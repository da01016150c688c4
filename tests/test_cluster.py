"""Stage 14: a lab of three nodes (network namespaces, a daemon each) on a 3-member etcd, one
swarm, and the faults a cluster must survive: a node drained, crashed, partitioned; an etcd
member killed; the manager restarted. One lab for the whole module (it takes seconds to make);
each test makes its own service and removes it. At the end, ``cluster down`` leaves nothing."""

import functools
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from minidocker.cluster.engine import SERVICE_LABEL, TASK_LABEL, Engine
from minidocker.viz.engines import DOCKER  # docker CLI 28 where there is one, else 20.10
from tests.conftest import TIMEOUT_SCALE, minidocker
from tests.helpers import eventually

RESCHEDULE_WITHIN = 20.0  # seconds: a lease's TTL (10 s), a pass (1 s), a container start


def md_ok(*args: str, timeout: float = 90) -> str:
    result = minidocker(*args, timeout=timeout)
    assert result.returncode == 0, f"minidocker {' '.join(args)}: {result.stderr}"
    return result.stdout


def lab_record() -> dict:
    return json.loads((Path(os.environ["MINIDOCKER_ROOT"]) / "cluster" / "lab.json").read_text())


# Each poll runs the CLI (or asks etcd): a few a second are enough.
wait_for = functools.partial(eventually, every=0.3)


def containers_of(service: str) -> dict[str, list[str]]:
    """Node name -> the task IDs of ``service`` its daemon runs (asked of each daemon)."""
    found = {}
    for name, node in lab_record()["nodes"].items():
        engine = Engine(node["socket"])
        running = engine.containers(label=TASK_LABEL) if engine.ping() else []
        found[name] = sorted(c["Labels"][TASK_LABEL] for c in running
                             if c["Labels"].get(SERVICE_LABEL) == service)
    return found


def tasks_running(service: str) -> list[tuple[str, str]]:
    """(slot name, node) of each task ``service ps`` shows as running."""
    rows = md_ok("service", "ps", service, "--format", "{{.Name}} {{.Node}} {{.CurrentState}}")
    return [tuple(line.split()[:2]) for line in rows.splitlines()
            if "\\_" not in line and " Running " in line + " "]


def converged(service: str, replicas: int) -> bool:
    """The service runs ``replicas`` tasks, one per slot, and the daemons run exactly them."""
    running = tasks_running(service)
    on_nodes = [t for tasks in containers_of(service).values() for t in tasks]
    return len(running) == replicas == len({slot for slot, _ in running}) == len(on_nodes)


def nodes_running(service: str) -> set[str]:
    return {node for node, tasks in containers_of(service).items() if tasks}


def test_no_lab_is_a_clear_error():
    result = minidocker("node", "ls")
    assert result.returncode == 1
    assert result.stderr.startswith("minidocker: no cluster lab is up: start one with")
    assert "Traceback" not in result.stderr


def test_a_busy_daemon_is_there_a_crashed_one_is_not(tmp_path):
    """The agent's test before each renewal of its lease: a socket nobody listens on refuses
    at once (the node goes Down); a daemon too busy to answer in time still counts."""
    path = str(tmp_path / "md.sock")
    assert not Engine(path, timeout=0.2).present()  # no socket at all
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        server.listen()
        assert Engine(path, timeout=0.2).present()  # accepted, never answered: busy
    assert not Engine(path, timeout=0.2).present()  # the file left behind: refused


@pytest.mark.parametrize("step, states, converged", [
    (50.0, ("running",), True), (25.0, ("assigned", "preparing", "running"), True),
    (None, (), False)], ids=["slow-progress", "slow-steps", "stuck"])
def test_service_create_waits_while_the_service_makes_progress(monkeypatch, step, states,
                                                               converged):
    """``service create`` waits for its tasks as long as they come a step further within each
    60 s (a slow machine: 150 s for three to run here, or 225 s for three going through
    assigned, preparing and running one step each 25 s), and not for a service stuck at 0 of 3.
    A fake clock: each poll's sleep moves it on, and every ``step`` seconds one task takes its
    next step."""
    from minidocker.cluster import swarm as records
    from minidocker.cluster.traffic import CountingStore

    store, clock = CountingStore(), [0.0]
    service = {"ID": "s", "Spec": {"Mode": {"Replicated": {"Replicas": 3}}}}
    records.write(store, records.SERVICES + "s", service)
    for slot in range(3):
        records.write(store, records.TASKS + f"t{slot}", {
            "ID": f"t{slot}", "ServiceID": "s", "DesiredState": "running",
            "Status": {"State": "new"}})
    steps = [(slot, state) for slot in range(3) for state in states]

    def sleep(seconds: float) -> None:
        clock[0] += seconds
        while steps and clock[0] >= step * (3 * len(states) - len(steps) + 1):
            slot, state = steps.pop(0)
            task = records.read(store, records.TASKS + f"t{slot}")
            task["Status"]["State"] = state
            records.write(store, records.TASKS + f"t{slot}", task)

    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(time, "sleep", sleep)
    running, wanted, _ = records.wait_converged(store, service, 60.0)
    assert (running == wanted == 3) is converged and wanted == 3
    assert clock[0] >= (3 * len(states) * step if converged else 60)


@pytest.fixture(scope="module")
def swarm():
    """``cluster up --nodes 3``, ``swarm init`` on n1, n2 and n3 joined as workers."""
    try:
        md_ok("cluster", "up", "--nodes", "3")
        md_ok("swarm", "init", "--node", "n1")
        token = md_ok("swarm", "join-token", "-q", "worker").strip()
        for node in ("n2", "n3"):
            assert md_ok("swarm", "join", "--node", node, "--token", token) == \
                "This node joined a swarm as a worker.\n"
        wait_for(lambda: md_ok("node", "ls").count(" Ready ") == 3, 15, "3 nodes Ready")
        yield lab_record()
    finally:
        minidocker("cluster", "down", timeout=120)


@pytest.fixture(scope="module")
def web(swarm):
    """One replicated service for the module's faults: each test leaves it converged."""
    out = md_ok("service", "create", "--name", "web", "--replicas", "3",
                "--reserve-memory", "16m", "busybox", "sleep", "1000")
    assert out.splitlines()[1:] == ["overall progress: 3 out of 3 tasks",
                                    "verify: Service converged"]
    return "web"


def a_worker_running(service: str) -> str:
    return sorted(n for n in nodes_running(service) if n != "n1")[0]


def test_an_unknown_service_or_node_says_where_to_look(swarm):
    for args, words in [(("service", "inspect", "ghost"), "no such service: ghost (see "
                         "'minidocker service ls')"),
                        (("node", "inspect", "ghost"), "node ghost not found (see 'minidocker "
                         "node ls')")]:
        result = minidocker(*args)
        assert result.returncode == 1 and result.stderr == f"minidocker: {words}\n", result


def test_nodes_are_namespaces_with_a_daemon_each(swarm):
    ours = os.stat("/proc/self/ns/net").st_ino
    holders = [node["holder"] for node in swarm["nodes"].values()]
    inodes = {os.stat(f"/proc/{pid}/ns/net").st_ino for pid in holders}
    assert len(inodes) == 3 and ours not in inodes
    assert len({node["bridge_subnet"] for node in swarm["nodes"].values()}) == 3
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "lab0" not in links and "vn1" not in links  # nothing in our own namespace
    inside = subprocess.run(["nsenter", f"--net=/proc/{holders[1]}/ns/net", "ip", "-o", "-4",
                             "addr", "show", "eth0"], capture_output=True, text=True).stdout
    assert "10.77.0.12/24" in inside
    docker = subprocess.run([DOCKER, "-H", f"unix://{swarm['nodes']['n2']['socket']}",
                             "version", "--format", "{{.Server.APIVersion}}"],
                            capture_output=True, text=True, timeout=30 * TIMEOUT_SCALE)
    assert docker.returncode == 0 and docker.stdout.strip(), docker.stderr
    table = md_ok("node", "ls").splitlines()
    assert table[0].split() == ["ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER",
                                "STATUS", "ENGINE", "VERSION"]
    assert [line.split()[1:4] for line in table[1:]] == [
        ["*", "n1", "Ready"], ["n2", "Ready", "Active"], ["n3", "Ready", "Active"]]
    assert "Leader" in table[1]


def test_replicas_spread_with_an_explanation(web):
    assert nodes_running(web) == {"n1", "n2", "n3"}  # spread: one each
    explained = md_ok("service", "ps", "--explain", web)
    assert "resources       memory 16 MiB" in explained and "scores" in explained
    inspected = json.loads(md_ok("service", "inspect", web))[0]
    assert inspected["Spec"]["Mode"] == {"Replicated": {"Replicas": 3}}
    assert inspected["Spec"]["TaskTemplate"]["Resources"]["Reservations"] == \
        {"MemoryBytes": 16 * 1024 * 1024}
    listed = md_ok("service", "ls").splitlines()
    assert listed[0].split() == ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]
    assert listed[1].split()[1:5] == [web, "replicated", "3/3", "busybox"]


def test_a_global_service_publishes_its_port_on_each_node(swarm):
    """One task per node; the published port answers on the node's own address (mode=host),
    from another node; a second service wanting that port finds no node and says why."""
    md_ok("service", "create", "--name", "edge", "--mode", "global", "--publish",
          "mode=host,published=8080,target=80",
          "busybox", "sh", "-c", "echo hello from $(hostname); exec httpd -f -p 80 -h /etc")
    try:
        assert nodes_running("edge") == {"n1", "n2", "n3"}
        n2 = swarm["nodes"]["n2"]["holder"]
        fetched = subprocess.run(["nsenter", f"--net=/proc/{n2}/ns/net", "busybox", "wget",
                                  "-qO-", "http://10.77.0.11:8080/hostname"],
                                 capture_output=True, text=True, timeout=30 * TIMEOUT_SCALE)
        on_n1 = containers_of("edge")["n1"][0]
        logs = md_ok("service", "logs", "edge")
        assert f"hello from {fetched.stdout.strip()}" in logs, (fetched, logs)
        assert "@n1    | hello from" in logs and on_n1
        md_ok("service", "create", "--name", "extra", "--detach", "--publish",
              "mode=host,published=8080,target=80",
              "busybox", "sleep", "1000")
        wait_for(lambda: "port            8080/tcp                     removed n1, n2, n3"
                 in md_ok("service", "ps", "--explain", "extra"), 10, "extra explained")
        assert "Pending" in md_ok("service", "ps", "extra")
    finally:
        minidocker("service", "rm", "edge", "extra")


def test_a_rolling_update_and_a_failed_one_rolled_back(web):
    before = {t for tasks in containers_of(web).values() for t in tasks}
    out = md_ok("service", "update", "--env-add", "V=2", "--update-parallelism", "0",
                "--update-monitor", "1s", web)
    assert out.splitlines()[-1] == "verify: Service converged"
    status = json.loads(md_ok("service", "inspect", web))[0]["UpdateStatus"]
    assert status["State"] == "completed"
    after = {t for tasks in containers_of(web).values() for t in tasks}
    assert len(after) == 3 and not after & before  # every task replaced
    failing = minidocker("service", "update", "--args", "sh -c 'exit 3'",
                         "--update-monitor", "3s", "--update-failure-action", "rollback", web,
                         timeout=120)
    assert failing.returncode == 1
    assert "update rolled back due to failure or early termination of task" in failing.stderr
    status = json.loads(md_ok("service", "inspect", web))[0]["UpdateStatus"]
    assert status["State"] == "rollback_completed"
    wait_for(lambda: converged(web, 3), 20, "the rolled-back service converged")
    assert "Failed" in md_ok("service", "ps", web)


def test_a_drained_node_and_a_crashed_node_lose_their_tasks(web):
    md_ok("node", "update", "--availability", "drain", "n3")
    try:
        wait_for(lambda: converged(web, 3) and "n3" not in nodes_running(web), 20,
                 "the tasks leave the drained node")
    finally:
        md_ok("node", "update", "--availability", "active", "n3")
    md_ok("cluster", "crash", "n2")
    crashed = time.monotonic()
    wait_for(lambda: all(node != "n2" for _, node in tasks_running(web))
             and len(tasks_running(web)) == 3, RESCHEDULE_WITHIN,
             "the crashed node's tasks rescheduled")
    print(f"rescheduled {time.monotonic() - crashed:.1f}s after the crash")
    md_ok("cluster", "restart", "n2")
    wait_for(lambda: converged(web, 3) and not containers_of(web)["n2"], 20,
             "the old task removed from the node back")


def test_a_partitioned_node_runs_no_task_twice_once_healed(web):
    cut = a_worker_running(web)
    md_ok("cluster", "partition", cut)
    try:
        wait_for(lambda: " Down " in md_ok("node", "ls"), RESCHEDULE_WITHIN, f"{cut} Down")
        wait_for(lambda: len(tasks_running(web)) == 3
                 and all(node != cut for _, node in tasks_running(web)),
                 RESCHEDULE_WITHIN, f"{cut}'s task rescheduled")
        assert containers_of(web)[cut]  # cut off, it still runs its old one
    finally:
        md_ok("cluster", "heal", cut)
    wait_for(lambda: md_ok("node", "ls").count(" Ready ") == 3, 15, f"{cut} Ready again")
    wait_for(lambda: not containers_of(web)[cut], 10, f"{cut}'s stale task removed")
    assert converged(web, 3)


def test_one_etcd_member_killed_the_cluster_keeps_scheduling(web):
    md_ok("cluster", "etcd", "stop", "etcd1")
    crashed = a_worker_running(web)
    try:
        assert f"{web} scaled to 4" in md_ok("service", "scale", f"{web}=4")
        assert converged(web, 4)
        md_ok("cluster", "crash", crashed)
        wait_for(lambda: len(tasks_running(web)) == 4
                 and all(n != crashed for _, n in tasks_running(web)), RESCHEDULE_WITHIN,
                 "rescheduled with two etcd members")
    finally:
        md_ok("cluster", "etcd", "start", "etcd1")
        md_ok("cluster", "restart", crashed)
    wait_for(lambda: converged(web, 4), 20, "converged after the node came back")


def test_a_restarted_manager_rebuilds_its_view_from_etcd(web):
    manager = lab_record()["nodes"]["n1"]["processes"]["manager"]
    os.kill(manager, 9)
    md_ok("service", "scale", "--detach", f"{web}=2")
    time.sleep(2)
    assert len(tasks_running(web)) == 4  # no manager: nothing happens
    md_ok("cluster", "restart", "n1")
    wait_for(lambda: converged(web, 2), 20, "the new manager converged the service")
    assert sorted(slot for slot, _ in tasks_running(web)) == ["web.1", "web.2"]
    md_ok("service", "rm", web)
    wait_for(lambda: not any(containers_of(web).values()), 20, "the service's containers gone")


def test_when_the_leader_crashes_another_manager_takes_over(swarm):
    assert md_ok("node", "promote", "n2") == "Node n2 promoted to a manager in the swarm.\n"
    md_ok("cluster", "crash", "n1")
    try:
        wait_for(lambda: [line.split()[1] for line in md_ok("node", "ls").splitlines()
                          if "Leader" in line] == ["n2"], RESCHEDULE_WITHIN, "n2 leads")
        md_ok("service", "create", "--name", "later", "--replicas", "2", "busybox", "sleep",
              "1000")
        assert nodes_running("later") == {"n2", "n3"}
    finally:
        md_ok("cluster", "restart", "n1")
    md_ok("service", "rm", "later")


def test_a_service_with_its_own_strategy(swarm):
    """The swarm spreads; a service created with ``--strategy binpack`` packs its replicas
    onto one node, and ``service inspect`` shows the strategy as the service's label."""
    md_ok("service", "create", "--name", "packed", "--strategy", "binpack", "--replicas", "3",
          "--reserve-memory", "16m", "busybox", "sleep", "1000")
    try:
        assert len(nodes_running("packed")) == 1
        labels = json.loads(md_ok("service", "inspect", "packed"))[0]["Spec"]["Labels"]
        assert labels == {"com.minidocker.scheduler.strategy": "binpack"}
        assert "(strategy binpack)" in md_ok("service", "ps", "--explain", "packed")
    finally:
        md_ok("service", "rm", "packed")


STACK_FILE = """
services:
  web:
    image: busybox
    build: .
    command: ["sh", "-c", "echo web $$GREETING; exec sleep 1000"]
    environment:
      GREETING: hello
    labels:
      tier: front
    deploy:
      replicas: 2
      labels:
        com.minidocker.scheduler.strategy: binpack
      placement:
        constraints: ["node.hostname!=n1"]
      resources:
        reservations: {memory: 16M}
        limits: {memory: 64M}
      update_config: {parallelism: 2, delay: 1s, failure_action: rollback}
  agent:
    image: busybox
    command: sleep 1000
    deploy:
      mode: global
"""


def test_stack_deploy_ls_services_ps_rm(swarm, tmp_path):
    (tmp_path / "compose.yml").write_text(STACK_FILE)
    deployed = minidocker("stack", "deploy", "-c", str(tmp_path / "compose.yml"),
                          "--detach=false", "demo", timeout=120)
    assert deployed.returncode == 0, deployed.stderr
    assert deployed.stderr == "Ignoring unsupported options: build\n\n"
    assert deployed.stdout.splitlines()[:3] == ["Creating network demo_default",
                                                "Creating service demo_agent",
                                                "Creating service demo_web"]
    assert md_ok("stack", "ls").split() == ["NAME", "SERVICES", "demo", "2"]
    listed = md_ok("stack", "services", "demo").splitlines()
    assert [line.split()[1:4] for line in listed[1:]] == [
        ["demo_agent", "global", "3/3"], ["demo_web", "replicated", "2/2"]]
    rows = md_ok("stack", "ps", "demo", "--format", "{{.Name}} {{.Node}} {{.DesiredState}}")
    web_nodes = {line.split()[1] for line in rows.splitlines() if line.startswith("demo_web.")}
    assert len(web_nodes) == 1 and "n1" not in web_nodes  # binpack, and the constraint
    spec = json.loads(md_ok("service", "inspect", "demo_web"))[0]["Spec"]
    assert spec["Labels"]["com.docker.stack.namespace"] == "demo"
    assert spec["UpdateConfig"] == {"Parallelism": 2, "Delay": 10**9,
                                    "FailureAction": "rollback"}
    assert spec["TaskTemplate"]["Resources"] == {"Limits": {"MemoryBytes": 64 * 2**20},
                                                 "Reservations": {"MemoryBytes": 16 * 2**20}}
    node = swarm["nodes"][web_nodes.pop()]
    running = Engine(node["socket"]).containers(label="com.docker.stack.namespace=demo")
    web = [c for c in running if c["Labels"].get(SERVICE_LABEL) == "demo_web"]
    assert len(web) == 2 and web[0]["Labels"]["tier"] == "front"
    assert "web hello" in md_ok("service", "logs", "demo_web")
    (tmp_path / "compose.yml").write_text(STACK_FILE.split("  agent:")[0])
    again = md_ok("stack", "deploy", "--prune", "-c", str(tmp_path / "compose.yml"), "demo")
    assert "Updating service demo_web (id: " in again
    assert again.splitlines()[-1] == "Removing service demo_agent"
    assert md_ok("stack", "rm", "demo") == ("Removing service demo_web\n"
                                            "Removing network demo_default\n")
    wait_for(lambda: not any(containers_of("demo_web").values())
             and not any(containers_of("demo_agent").values()), 20, "the stack's tasks gone")
    gone = minidocker("stack", "ps", "demo")
    assert (gone.returncode, gone.stderr) == (1, "minidocker: nothing found in stack: demo\n")
    none = minidocker("stack", "services", "demo")  # docker/cli: a note, not an error
    assert (none.returncode, none.stdout, none.stderr) == (0, "", "Nothing found in stack: demo\n")


def test_cluster_down_leaves_nothing(swarm):
    lab = lab_record()
    pids = [lab["holder"], *lab["etcd"].values(), *lab["etcd_holders"].values()]
    for node in lab["nodes"].values():
        pids += [node["holder"], node["daemon"], *node["processes"].values()]
    roots = [node["root"] for node in lab["nodes"].values()]
    parents = [node["cgroup_parent"] for node in lab["nodes"].values()]
    assert md_ok("cluster", "down", timeout=120) == "removed 3 node(s)\n"
    alive = [pid for pid in pids if pid and Path(f"/proc/{pid}").exists()
             and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]]
    assert alive == []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        assert not any(f"MINIDOCKER_ROOT={root}".encode() in environ for root in roots), cmdline
        assert lab["directory"].encode() not in cmdline  # no etcd member
        assert f"MINIDOCKER_LAB={lab['directory']}".encode() not in environ
    for parent in parents:
        assert not list(Path("/sys/fs/cgroup").glob(f"*/{parent}")), parent
        assert not Path("/sys/fs/cgroup", parent).exists()
    assert not (Path(os.environ["MINIDOCKER_ROOT"]) / "cluster").exists()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert "/cluster/" not in mounts
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not [line for line in links.splitlines()
                if any(word in line for word in ("vxlan", "lab0", "veth"))], links
