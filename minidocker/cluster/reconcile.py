"""The manager's loop: make what runs match what is wanted, one pass at a time.

A pass reads one snapshot of the store (etcd) and feeds the scheduler's ClusterView from it:
every node (Ready if its lease is alive, Down otherwise) and every task that should run. Then,
as SwarmKit's orchestrator, scheduler and dispatcher do in turn:

1. **orphans**: a task whose node is Down, drained or gone, or whose service was removed, is
   shut down (its slot becomes empty);
2. **orchestrate**: a rolling update shuts down its next batch of tasks (update.py); then
   each service gets its tasks — one per slot 1..N (replicated) or one per
   schedulable node (global); an empty slot gets a new task, an extra one is shut down;
3. **schedule**: each new task is placed by the scheduler (scheduler.py, with its explanation
   kept in the task); with no suitable node it stays ``pending`` and is tried again next pass;
4. **dispatch**: each Ready node's daemon (all at once, a thread each) is asked for the containers it runs (by their task
   label). A container whose task should not run there — shut down while the node was
   unreachable, for example — is removed; a task without its container gets one; a container
   that exited marks its task ``failed``, and the next pass refills the slot.

What a pass changed is written back in one etcd transaction, on condition that this manager
still holds the leader key and that no service it rewrites (an update's progress) was changed
by the CLI meanwhile: a reader never sees half a pass, a deposed leader writes nothing, and a
``service scale`` is never overwritten by a stale copy. The view is rebuilt from etcd at every pass, so a manager keeps nothing that etcd does not
have: a restarted manager (or a newly elected one) carries on where the last one stopped.
Docs: docs.docker.com "How services work" (tasks and scheduling), SwarmKit design docs
(orchestrators, scheduler, dispatcher). Used by: agent.py (the manager process).
"""

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from minidocker.cluster import overlay, update
from minidocker.cluster import swarm as records
from minidocker.cluster.engine import (
    NODE_LABEL,
    SERVICE_ID_LABEL,
    SERVICE_LABEL,
    TASK_LABEL,
    Engine,
    EngineError,
)
from minidocker.cluster.filters import constraint
from minidocker.cluster.model import (
    DOWN,
    READY,
    NodeView,
    Port,
    Resources,
    SchedulingError,
    TaskSpec,
)
from minidocker.cluster.scheduler import NoSuitableNode, Scheduler
from minidocker.cluster.strategies import strategy as named_strategy
from minidocker.cluster.view import ClusterView
from minidocker.state import now

RUNNING, SHUTDOWN = records.RUNNING, records.SHUTDOWN
HISTORY = 5  # dead tasks kept per slot, as --task-history-limit
log = logging.getLogger("minidocker.manager")


@dataclass
class Snapshot:
    """What the store holds, read at one revision."""

    swarm: dict
    nodes: dict[str, dict]
    alive: dict[str, dict]  # node ID -> what its agent wrote with its lease
    services: dict[str, dict]
    tasks: dict[str, dict]
    changed: set[str] = field(default_factory=set)  # the task IDs this pass rewrote
    changed_services: set[str] = field(default_factory=set)  # their update's progress
    revision: int = 0  # the store's revision when it was read
    networks: dict[str, dict] = field(default_factory=dict)  # the overlays (overlay.py)
    changed_networks: set[str] = field(default_factory=set)  # their nodes' addresses


def snapshot(store) -> Snapshot | None:
    values, revision = store.get_prefix(records.PREFIX)

    def under(prefix: str) -> dict[str, dict]:
        return {k.removeprefix(prefix): json.loads(v) for k, v in values.items()
                if k.startswith(prefix) and v}

    swarm = json.loads(values[records.SWARM]) if records.SWARM in values else None
    if swarm is None:
        return None
    return Snapshot(swarm, under(records.NODES), under(records.ALIVE),
                    under(records.SERVICES), under(records.TASKS), revision=revision,
                    networks=under(overlay.NETWORKS))


# --- from the store to the scheduler's view ---------------------------------------------------------

def node_view(record: dict, alive: dict | None) -> NodeView:
    """A node as the scheduler sees it: Ready if its lease is alive, with the resources its
    agent reported."""
    resources = (alive or {}).get("Resources", {})
    return NodeView(record["ID"], record["Hostname"], role=record["Role"].lower(),
                    labels=dict(record.get("Labels", {})), availability=record["Availability"],
                    state=READY if alive and not record.get("Left") else DOWN,
                    total=Resources(resources.get("MemoryBytes", 0),
                                    resources.get("NanoCPUs", 0)))


def task_spec(task: dict, service: dict) -> TaskSpec:
    """What the scheduler reads of a task: the reservations and placement rules of the spec
    it was made from."""
    template = task.get("Spec") or service["Spec"]["TaskTemplate"]
    reserved = template.get("Resources", {}).get("Reservations", {})
    placement = template.get("Placement", {})
    constraints = tuple(placement.get("Constraints", []))
    if task.get("Pinned"):  # a global service's task belongs to one node
        constraints += (f"node.id=={task['Pinned']}",)
    ports = tuple(Port(p["PublishedPort"], p.get("Protocol", "tcp"))
                  for p in host_ports(service))
    return TaskSpec(task["ID"], service["Spec"]["Name"], template["ContainerSpec"]["Image"],
                    name=container_name(task, service),
                    reservations=Resources(reserved.get("MemoryBytes", 0),
                                           reserved.get("NanoCPUs", 0)),
                    constraints=constraints,
                    placement_prefs=tuple(f"spread={p['Spread']['SpreadDescriptor']}"
                                          for p in placement.get("Preferences", [])),
                    ports=ports)


def host_ports(service: dict) -> list[dict]:
    """The ports published on the task's own node (``mode=host``): a resource of the node, so
    the port filter sees them; the routing mesh's are every node's at once (vxlan.py)."""
    return [p for p in service["Spec"].get("EndpointSpec", {}).get("Ports", [])
            if p.get("PublishedPort") and p.get("PublishMode", "ingress") == "host"]


def container_name(task: dict, service: dict) -> str:
    """Docker's: ``web.2.<task id>`` (replicated) or ``web.<node id>.<task id>`` (global)."""
    slot = task.get("Slot") or task.get("Pinned")
    return f"{service['Spec']['Name']}.{slot}.{task['ID']}"


def build_view(state: Snapshot) -> ClusterView:
    view = ClusterView([node_view(n, state.alive.get(n["ID"])) for n in state.nodes.values()])
    for task in state.tasks.values():
        service = state.services.get(task["ServiceID"])
        if task["DesiredState"] == RUNNING and task.get("NodeID") in view.nodes and service:
            view.bind(task_spec(task, service), task["NodeID"])
    return view


# --- one pass ---------------------------------------------------------------------------------------

def reconcile(store, leader: str, engine=Engine, workers: int = 0) -> Snapshot | None:
    """One pass: orphans, orchestrate, schedule, dispatch; the changed tasks written back,
    only if ``leader`` (a node ID) still leads: a manager whose lease expired mid-pass writes
    nothing (its stale view must not win over the new leader's). ``engine`` makes a node's
    daemon client from its socket (traffic.py passes simulated ones), ``workers`` caps the
    threads of dispatch (0: one per node)."""
    state = snapshot(store)
    if state is None:
        return None
    shut_down_orphans(state)
    view = build_view(state)
    strategy = named_strategy(state.swarm.get("Strategy", "spread"))
    scheduler = Scheduler(view, strategy)
    for service in state.services.values():
        orchestrate(state, service, view)
    for task in sorted(state.tasks.values(), key=lambda t: (t["CreatedAt"], t["ID"])):
        if task["DesiredState"] == RUNNING and not task.get("NodeID"):
            schedule(state, task, scheduler)
    ready = [n for n in state.nodes.values() if n["ID"] in state.alive and not n.get("Left")]
    state.changed_networks = overlay.place_nodes(state.networks, overlay.needed(
        state.networks, state.services, state.tasks, [n["ID"] for n in ready]), state.tasks)
    with ThreadPoolExecutor(max_workers=workers or max(len(ready), 1)) as pool:  # at once
        list(pool.map(lambda node: dispatch(state, node, engine(node["Socket"])), ready))
    forgotten = forget_old_tasks(state)
    writes = {records.TASKS + task_id: json.dumps(state.tasks[task_id], sort_keys=True)
              for task_id in state.changed}
    writes |= {records.SERVICES + service_id: json.dumps(state.services[service_id],
                                                         sort_keys=True)
               for service_id in state.changed_services}
    writes |= {overlay.NETWORKS + network_id: json.dumps(state.networks[network_id],
                                                         sort_keys=True)
               for network_id in state.changed_networks}
    services = [records.SERVICES + service_id for service_id in state.changed_services]
    services += [overlay.NETWORKS + network_id for network_id in state.changed_networks]
    if not store.commit(writes, [records.TASKS + task_id for task_id in forgotten],
                        only_if=(records.LEADER, leader), unchanged=services,
                        since=state.revision):
        log.warning("no longer the leader, or a service changed meanwhile: this pass is not "
                    "written (the next one starts from the store again)")
    return state


def set_status(state: Snapshot, task: dict, status: str, message: str = "",
               error: str = "", desired: str | None = None) -> None:
    if desired:
        task["DesiredState"] = desired
    task["Status"].update({"State": status, "Message": message, "Err": error,
                           "Timestamp": now()})
    state.changed.add(task["ID"])


def shut_down_orphans(state: Snapshot) -> None:
    for task in state.tasks.values():
        if task["DesiredState"] != RUNNING:
            continue
        node = state.nodes.get(task.get("NodeID", ""))
        if task["ServiceID"] not in state.services:
            set_status(state, task, task["Status"]["State"], "service removed",
                       desired=SHUTDOWN)
        elif not task.get("NodeID"):
            continue  # pending: the scheduler will try it again
        elif node is None or node.get("Left"):
            set_status(state, task, "orphaned", "node left the swarm", desired=SHUTDOWN)
        elif node["ID"] not in state.alive:
            set_status(state, task, "orphaned", "node is down", desired=SHUTDOWN)
        elif node["Availability"] == "drain":
            set_status(state, task, task["Status"]["State"], "node is drained",
                       desired=SHUTDOWN)


def orchestrate(state: Snapshot, service: dict, view: ClusterView) -> None:
    """Give every slot of ``service`` one task that should run: new ones for empty slots,
    extra ones shut down (scale down)."""
    mine = [t for t in state.tasks.values() if t["ServiceID"] == service["ID"]]
    live = [t for t in mine if t["DesiredState"] == RUNNING]
    for task in update.roll(service, live, [t for t in mine if t["DesiredState"] != RUNNING]):
        retire(state, view, task, "updating")
        live.remove(task)
    if service.pop("_changed", False):
        state.changed_services.add(service["ID"])
    mode = service["Spec"]["Mode"]
    if "Replicated" in mode:
        wanted = {slot: {"Slot": slot} for slot in range(1, mode["Replicated"]["Replicas"] + 1)}
        key = "Slot"
    else:
        wanted = {node_id: {"Pinned": node_id} for node_id in eligible(service, view)}
        key = "Pinned"
    taken = set()
    for task in sorted(live, key=lambda t: (t["Status"]["State"] != RUNNING, t["CreatedAt"])):
        if task.get(key) in wanted and task.get(key) not in taken:
            taken.add(task[key])
        else:
            retire(state, view, task, "scaled down")
    for slot, fields in wanted.items():
        if slot not in taken:
            task = {"ID": records.new_id(), "ServiceID": service["ID"], **fields,
                    "CreatedAt": now(), "DesiredState": RUNNING, "NodeID": "",
                    "Status": {"State": "new", "Timestamp": now()},
                    "SpecVersion": service["Version"]["Index"],
                    "Spec": service["Spec"]["TaskTemplate"]}
            overlay.attach_task(task, service, state.networks, state.tasks)
            state.tasks[task["ID"]] = task
            state.changed.add(task["ID"])


def retire(state: Snapshot, view: ClusterView, task: dict, why: str) -> None:
    """The task should no longer run: what it held on its node is free for this pass's new
    tasks (its container stops at dispatch, before any new one starts there)."""
    set_status(state, task, task["Status"]["State"], why, desired=SHUTDOWN)
    if view.node_of(task["ID"]):
        view.unbind(task["ID"])


def eligible(service: dict, view: ClusterView) -> set[str]:
    """Where a global service runs: every schedulable node that its constraints allow."""
    return constraint(task_spec({"ID": "", "Slot": 0}, service), set(view.schedulable), view,
                      soft=True)


def global_tasks_wanted(store, service: dict) -> int:
    state = snapshot(store)
    return len(eligible(service, build_view(state))) if state else 0


def schedule(state: Snapshot, task: dict, scheduler: Scheduler) -> None:
    """Place one task; its decision, explained, goes with it (``service ps --explain``)."""
    service = state.services[task["ServiceID"]]
    spec = task_spec(task, service)
    try:
        decision = own_scheduler(service, scheduler).place(spec, explain=True)
    except (NoSuitableNode, SchedulingError) as exc:
        explanation = str(getattr(exc, "decision", exc))
        if task.get("Explain") != explanation:
            task["Explain"] = explanation
            set_status(state, task, "pending", "pending task scheduling",
                       f"no suitable node ({getattr(exc, 'decision', None) and exc.decision.summary()})")
        return
    task["NodeID"] = decision.node
    task["Explain"] = str(decision)
    set_status(state, task, "assigned", "scheduler assigned task to node")


def own_scheduler(service: dict, scheduler: Scheduler) -> Scheduler:
    """A service's own strategy (``service create --strategy``, kept as its label) ranks
    the nodes instead of the swarm's, on the same view."""
    name = service["Spec"].get("Labels", {}).get(records.STRATEGY_LABEL)
    if not name or name == scheduler.strategy.name:
        return scheduler
    return Scheduler(scheduler.view, named_strategy(name), scheduler.filters)


def dispatch(state: Snapshot, node: dict, engine: Engine) -> None:
    """Make node ``node``'s daemon run exactly the tasks assigned to it."""
    try:
        containers = engine.containers(all=True, label=TASK_LABEL)
    except EngineError as exc:
        log.warning("node %s: %s", node["Hostname"], exc)
        return
    present = {}
    for container in containers:
        task = state.tasks.get(container["Labels"].get(TASK_LABEL, ""))
        if not task or task["DesiredState"] != RUNNING or task.get("NodeID") != node["ID"]:
            remove(engine, container, task, state)
        elif container["State"] != "running":
            code = container.get("Status", "")
            set_status(state, task, "failed", "task exited", f"task: {code}", desired=SHUTDOWN)
            remove(engine, container, None, state)
        else:
            present[task["ID"]] = container
    for task in state.tasks.values():
        if task.get("NodeID") != node["ID"] or task["DesiredState"] != RUNNING:
            continue
        if task["ID"] in present:
            if task["Status"]["State"] != RUNNING:
                set_status(state, task, RUNNING, "started")
            continue
        start(state, engine, node, task)


def remove(engine: Engine, container: dict, task: dict | None, state: Snapshot) -> None:
    try:
        engine.remove(container["Id"])
    except EngineError as exc:
        log.warning("removing %s: %s", container["Id"][:12], exc)
        return
    if task and task["Status"]["State"] in (RUNNING, "orphaned", "assigned"):
        set_status(state, task, "shutdown", task["Status"].get("Message", ""))


def start(state: Snapshot, engine: Engine, node: dict, task: dict) -> None:
    """``docker run -d`` on the node, through its daemon, with the task's labels."""
    service = state.services[task["ServiceID"]]
    body = container_body(task, service, node, state.networks)
    joined = body.get("NetworkingConfig", {}).get("EndpointsConfig", {})
    if not all(engine.has_network(name) for name in joined):
        if task["Status"]["State"] != "preparing":  # the node's agent has not built them yet
            set_status(state, task, "preparing", "waiting for the overlay networks on the node")
        return
    try:
        container = engine.run(container_name(task, service), body)
    except EngineError as exc:
        set_status(state, task, "rejected", "starting container failed", str(exc),
                   desired=SHUTDOWN)
        return
    task["ContainerID"] = container
    set_status(state, task, RUNNING, "started")


def container_body(task: dict, service: dict, node: dict,
                   networks: dict[str, dict] | None = None) -> dict:
    """The Engine API's ContainerCreate body for a task: image, command, env, limits, the host
    ports it publishes, its overlay networks, and the labels that tie the container to its
    task."""
    spec = service["Spec"]
    template = task.get("Spec") or spec["TaskTemplate"]
    container = template["ContainerSpec"]
    limits = template.get("Resources", {}).get("Limits", {})
    host = {"Memory": limits.get("MemoryBytes", 0),
            "NanoCpus": limits.get("NanoCPUs", 0),
            "PortBindings": {f"{p['TargetPort']}/{p.get('Protocol', 'tcp')}":
                             [{"HostPort": str(p["PublishedPort"])}]
                             for p in host_ports(service)}}
    body = {"Image": container["Image"], "Cmd": container.get("Args") or None,
            "Entrypoint": container.get("Command") or None, "Env": container.get("Env", []),
            "ExposedPorts": {k: {} for k in host["PortBindings"]},
            "Labels": {**container.get("Labels", {}), SERVICE_LABEL: spec["Name"],
                       SERVICE_ID_LABEL: service["ID"], TASK_LABEL: task["ID"],
                       NODE_LABEL: node["ID"]},
            "HostConfig": host}
    networks = networks or {}
    attached = [(networks[a["NetworkID"]], a["Address"])
                for a in task.get("NetworksAttachments") or [] if a["NetworkID"] in networks]
    if attached:  # every network of the service, at the address the manager gave the task
        first = attached[0][0]  # eth0, with the default route
        host["NetworkMode"] = first["Name"]
        # the node's name server, asked on the first network, answers for all of them
        host["Dns"] = [first["NodeAddresses"].get(node["ID"], "")]
        # API 1.44+: the daemon makes every endpoint before the task's process starts
        body["NetworkingConfig"] = {"EndpointsConfig": {
            network["Name"]: {"IPAMConfig": {"IPv4Address": address}}
            for network, address in attached}}
    return body


def forget_old_tasks(state: Snapshot) -> list[str]:
    """Keep the last HISTORY dead tasks of each slot (and none of a removed service); the
    IDs of the others, to delete."""
    dead: dict[tuple, list[dict]] = {}
    for task in state.tasks.values():
        if task["DesiredState"] != RUNNING and task["Status"]["State"] not in (RUNNING,
                                                                              "orphaned"):
            dead.setdefault((task["ServiceID"], task.get("Slot") or task.get("Pinned")),
                            []).append(task)
    forgotten = []
    for (service_id, _), tasks in dead.items():
        tasks.sort(key=lambda t: t["CreatedAt"])
        keep = HISTORY if service_id in state.services else 0
        for task in tasks[:max(len(tasks) - keep, 0)]:
            forgotten.append(task["ID"])
            state.changed.discard(task["ID"])
            del state.tasks[task["ID"]]
    return forgotten
