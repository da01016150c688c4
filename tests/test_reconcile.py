"""The manager's pass without a cluster: a snapshot of the store in memory, the steps of
reconcile.py on it (orphans, slots, scheduling), and the etcd gateway's key ranges."""

from minidocker.cli.swarm import demultiplex
from minidocker.cluster import reconcile
from minidocker.cluster.reconcile import RUNNING, SHUTDOWN, Snapshot
from minidocker.cluster.scheduler import Scheduler
from minidocker.cluster.store import prefix_end

GIB = 1024**3


def node(node_id: str, **fields) -> dict:
    return {"ID": node_id, "Hostname": node_id, "Role": "worker", "Availability": "active",
            "Labels": {}, "Address": "", "Socket": "", **fields}


def service(service_id: str, replicas: int | None = 3, constraints=(), memory=0,
            ports=()) -> dict:
    mode = {"Replicated": {"Replicas": replicas}} if replicas is not None else {"Global": {}}
    return {"ID": service_id, "Version": {"Index": 1}, "Spec": {
        "Name": service_id, "Mode": mode,
        "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Args": ["sleep", "9"]},
                         "Resources": {"Reservations": {"MemoryBytes": memory}},
                         "Placement": {"Constraints": list(constraints)}},
        "EndpointSpec": {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": p,
                                    "PublishMode": "host"}
                                   for p in ports]}}}


def snapshot(nodes: list[dict], services: list[dict], tasks=(), down=()) -> Snapshot:
    alive = {n["ID"]: {"Resources": {"MemoryBytes": 4 * GIB, "NanoCPUs": 2 * 10**9}}
             for n in nodes if n["ID"] not in down}
    return Snapshot({"Strategy": "spread"}, {n["ID"]: n for n in nodes}, alive,
                    {s["ID"]: s for s in services}, {t["ID"]: t for t in tasks})


def task(task_id: str, service_id: str, slot: int, node_id: str, state=RUNNING) -> dict:
    return {"ID": task_id, "ServiceID": service_id, "Slot": slot, "NodeID": node_id,
            "DesiredState": RUNNING, "CreatedAt": f"2026-01-01T00:00:0{slot}Z",
            "Status": {"State": state, "Timestamp": "2026-01-01T00:00:00Z"}}


def one_pass(state: Snapshot) -> list[dict]:
    """Orphans, slots and scheduling (no dispatch): the tasks that should run, placed."""
    reconcile.shut_down_orphans(state)
    view = reconcile.build_view(state)
    for made in state.services.values():
        reconcile.orchestrate(state, made, view)
    scheduler = Scheduler(view)
    for pending in state.tasks.values():
        if pending["DesiredState"] == RUNNING and not pending["NodeID"]:
            reconcile.schedule(state, pending, scheduler)
    return [t for t in state.tasks.values() if t["DesiredState"] == RUNNING]


def test_empty_slots_get_tasks_spread_over_the_nodes():
    state = snapshot([node("a"), node("b"), node("c")], [service("web", 3)])
    running = one_pass(state)
    assert sorted(t["Slot"] for t in running) == [1, 2, 3]
    assert sorted(t["NodeID"] for t in running) == ["a", "b", "c"]
    assert all("-> " in t["Explain"] for t in running)  # each decision, explained


def test_a_down_nodes_task_is_orphaned_and_its_slot_refilled_elsewhere():
    tasks = [task("t1", "web", 1, "a"), task("t2", "web", 2, "b")]
    state = snapshot([node("a"), node("b")], [service("web", 2)], tasks, down=["b"])
    running = one_pass(state)
    assert state.tasks["t2"]["DesiredState"] == SHUTDOWN
    assert state.tasks["t2"]["Status"]["State"] == "orphaned"
    assert sorted((t["Slot"], t["NodeID"]) for t in running) == [(1, "a"), (2, "a")]


def test_scaling_down_shuts_the_highest_slots_and_a_drained_node_empties():
    tasks = [task(f"t{i}", "web", i, "ab"[i % 2]) for i in range(1, 5)]
    state = snapshot([node("a"), node("b", Availability="drain")], [service("web", 2)], tasks)
    running = one_pass(state)
    assert sorted(t["Slot"] for t in running) == [1, 2]
    assert {t["NodeID"] for t in running} == {"a"}


def test_a_global_service_runs_where_its_constraints_allow():
    nodes = [node("a", Labels={"zone": "east"}), node("b"), node("c", Labels={"zone": "east"})]
    state = snapshot(nodes, [service("agent", None, ["node.labels.zone==east"])])
    assert sorted(t["NodeID"] for t in one_pass(state)) == ["a", "c"]


def test_a_task_with_no_suitable_node_stays_pending_and_says_why():
    state = snapshot([node("a")], [service("web", 2, ports=[8080])])
    running = one_pass(state)
    pending = [t for t in running if not t["NodeID"]]
    assert len(pending) == 1 and pending[0]["Status"]["State"] == "pending"
    assert "port removed 1" in pending[0]["Status"]["Err"]


def test_the_container_carries_its_task_labels_and_published_port():
    made = service("web", 1, ports=[8080])
    body = reconcile.container_body(task("t1", "web", 1, "a"), made, node("a"))
    assert body["Labels"]["com.docker.swarm.task.id"] == "t1"
    assert body["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostPort": "8080"}]}
    assert reconcile.container_name(task("t1", "web", 1, "a"), made) == "web.1.t1"


def test_a_task_on_two_networks_is_created_on_both_at_its_addresses():
    """The manager's body for a task of a service on two overlays, as the node's daemon reads
    it: the first network is NetworkMode (eth0, the node's name server there), the second one
    of MoreNetworks, each with the address of the task's NetworksAttachments."""
    from minidocker.daemon.translate import host_config_of

    networks = {"n1": {"ID": "n1", "Name": "front", "NodeAddresses": {"a": "10.0.1.2"}},
                "n2": {"ID": "n2", "Name": "back", "NodeAddresses": {"a": "10.0.2.2"}}}
    made = task("t1", "web", 1, "a") | {"NetworksAttachments": [
        {"NetworkID": "n1", "Address": "10.0.1.5"}, {"NetworkID": "n2", "Address": "10.0.2.7"}]}
    body = reconcile.container_body(made, service("web", 1), node("a"), networks)
    assert body["HostConfig"]["NetworkMode"] == "front"
    assert body["HostConfig"]["Dns"] == ["10.0.1.2"]
    assert body["NetworkingConfig"]["EndpointsConfig"] == {
        "front": {"IPAMConfig": {"IPv4Address": "10.0.1.5"}},
        "back": {"IPAMConfig": {"IPv4Address": "10.0.2.7"}}}
    host = host_config_of(body["HostConfig"], body["NetworkingConfig"])
    assert (host.IPAMConfig, host.MoreNetworks, host.MoreIPAMConfig) == (
        {"IPv4Address": "10.0.1.5"}, {"back": []}, {"back": {"IPv4Address": "10.0.2.7"}})


def test_a_rolling_update_replaces_one_batch_at_a_time_and_rolls_back_on_failure():
    from minidocker.cluster import update

    made = service("web", 3)
    made["Spec"]["UpdateConfig"] = {"Parallelism": 2, "FailureAction": "rollback"}
    tasks = [task(f"t{i}", "web", i, "a") for i in (1, 2, 3)]
    spec = {**made["Spec"], "TaskTemplate": {**made["Spec"]["TaskTemplate"],
                                             "ContainerSpec": {"Image": "busybox:2"}}}
    update.begin(made, spec)
    assert [t["ID"] for t in update.roll(made, tasks, [])] == ["t1", "t2"]
    fresh = task("t4", "web", 1, "a", state="new") | {"SpecVersion": 2,
                                                       "CreatedAt": made["UpdateStatus"]["StartedAt"]}
    assert update.roll(made, [fresh, tasks[2]], []) == []  # the batch is still starting
    failed = fresh | {"DesiredState": SHUTDOWN, "Status": {"State": "failed"}}
    assert update.roll(made, [tasks[2]], [failed]) == []
    assert made["UpdateStatus"]["State"] == update.ROLLBACK_STARTED
    assert made["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "busybox"
    assert update.parse_duration("--update-delay", "1.5s") == 1_500_000_000


def test_a_prefix_range_and_the_log_stream_frames():
    assert prefix_end("/minidocker/") == "/minidocker0"
    framed = b"\x01\0\0\0\0\0\0\x03hi\n" + b"\x02\0\0\0\0\0\0\x04err\n"
    assert demultiplex(framed) == "hi\nerr\n"
    assert demultiplex(b"plain\n") == "plain\n"
