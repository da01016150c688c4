"""The swarm's records in etcd: the swarm, its nodes, services and tasks — and the verbs that
write them (``swarm init/join/leave``, ``node update``, ``service create/scale/rm``).

Everything the cluster knows lives under ``/minidocker/`` in etcd, as JSON in Docker's own
shapes (what ``docker node inspect`` and ``docker service inspect`` print):

    /minidocker/swarm             the swarm: its ID, join tokens, scheduling strategy
    /minidocker/nodes/<id>        a node: hostname, address, role, availability, labels
    /minidocker/alive/<id>        written with the node's lease by its agent: Ready while it
                                  is renewed, gone (Down) a TTL after the last renewal
    /minidocker/leader            the manager that reconciles, with its lease (an election)
    /minidocker/services/<id>     a service's spec: the *desired* state, written by the CLI
    /minidocker/tasks/<id>        a task: its slot, node, desired state and observed status

The CLI only writes desired state (services, node availability and labels); the leading
manager (reconcile.py) turns it into tasks, places them with the scheduler and makes each
node's daemon run them. Docs: docs.docker.com "How services work", "Manage nodes in a swarm";
Engine API v1.50 (Swarm, Node, Service, Task objects). Used by: cli/swarm.py, reconcile.py,
agent.py, tests/test_cluster.py.
"""

import json
import secrets
import string
import sys
from pathlib import Path

from minidocker.cluster import lab as labs
from minidocker.cluster.filters import parse_constraint, parse_preference
from minidocker.cluster.model import ACTIVE, MANAGER, WORKER
from minidocker.cluster.store import Store
from minidocker.cluster.strategies import strategy as named_strategy
from minidocker.errors import MinidockerError
from minidocker.state import now

PREFIX = "/minidocker/"
SWARM, LEADER = PREFIX + "swarm", PREFIX + "leader"
NODES, ALIVE = PREFIX + "nodes/", PREFIX + "alive/"
SERVICES, TASKS = PREFIX + "services/", PREFIX + "tasks/"
ALPHABET = string.ascii_lowercase + string.digits
RUNNING, SHUTDOWN = "running", "shutdown"
STRATEGY_LABEL = "com.minidocker.scheduler.strategy"  # a service's own strategy (its label)


class SwarmError(MinidockerError):
    """A swarm verb that cannot be done (Docker's wording where it has one)."""


def new_id(length: int = 25) -> str:
    """A random ID of Docker's shape for swarm objects: 25 characters, [a-z0-9]."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def connect() -> tuple["labs.Lab", Store]:
    """The lab and a client of its etcd, from this process (which joins the lab's network)."""
    lab = labs.load()
    if not lab.etcd:
        raise SwarmError("this lab has no etcd cluster: make one with 'minidocker cluster up'")
    labs.enter(lab)
    return lab, Store.for_lab(lab)


def read(store: Store, key: str) -> dict | None:
    value = store.get(key)
    return json.loads(value) if value else None


def read_all(store: Store, prefix: str) -> dict[str, dict]:
    values, _ = store.get_prefix(prefix)
    return {key.removeprefix(prefix): json.loads(v) for key, v in values.items() if v}


def write(store: Store, key: str, record: dict, lease: int = 0) -> None:
    store.put(key, json.dumps(record, sort_keys=True), lease)


def swarm(store: Store) -> dict:
    record = read(store, SWARM)
    if not record:
        raise SwarmError("This node is not a swarm manager. Use \"minidocker swarm init\" or "
                         "\"minidocker swarm join\" to connect this node to swarm and try again.")
    return record


# --- swarm init / join / leave ---------------------------------------------------------------------

def init(lab, store: Store, hostname: str, strategy: str = "spread") -> tuple[dict, dict]:
    """Make the swarm (once) with ``hostname`` as its first manager."""
    named_strategy(strategy)  # a one-line error for an unknown name
    record = {"ID": new_id(), "CreatedAt": now(), "Strategy": strategy,
              "JoinTokens": {"Worker": "SWMTKN-1-" + new_id(50) + "-" + new_id(),
                             "Manager": "SWMTKN-1-" + new_id(50) + "-" + new_id()}}
    if not store.create(SWARM, json.dumps(record)):
        raise SwarmError("This node is already part of a swarm. Use \"minidocker swarm leave\" "
                         "to leave this swarm and join another one.")
    node = register(lab, store, hostname, MANAGER)
    return record, node


def join(lab, store: Store, hostname: str, token: str) -> dict:
    tokens = swarm(store)["JoinTokens"]
    if token not in tokens.values():
        raise SwarmError("invalid join token: ask a manager for one with "
                         "'minidocker swarm join-token worker'")
    role = MANAGER if token == tokens["Manager"] else WORKER
    return register(lab, store, hostname, role)


def register(lab, store: Store, hostname: str, role: str) -> dict:
    """The node's record, then its agent (and, for a manager, its manager loop)."""
    node = lab.node(hostname)
    member = find_node(store, hostname, missing_ok=True)
    if member and not member.get("Left"):
        raise SwarmError("This node is already part of a swarm. Use \"minidocker swarm leave\" "
                         "to leave this swarm and join another one.")
    record = {"ID": new_id(), "CreatedAt": now(), "Hostname": hostname, "Role": role,
              "Availability": ACTIVE, "Labels": {}, "Address": node.address,
              "Socket": node.socket}
    write(store, NODES + record["ID"], record)
    start_processes(lab, node, record)
    return record


def start_processes(lab, node, record: dict) -> None:
    """The node's agent (its lease) and, on a manager, the manager loop: each a process in
    the node's network namespace, so a node unplugged loses both."""
    wanted = ["agent"] + (["manager"] if record["Role"] == MANAGER else [])
    for name in wanted:
        if labs.alive(node.processes.get(name, 0)):
            continue
        argv = [sys.executable, "-m", "minidocker.cluster.agent", name, record["ID"]]
        log = Path(node.socket).with_name(f"{name}.log")
        node.processes[name] = labs.spawn(labs.in_namespace(node.netns, argv), log, None)
    for name in set(node.processes) - set(wanted):
        labs.kill(node.processes.pop(name))
    lab.save()


def leave(lab, store: Store, hostname: str, force: bool = False) -> None:
    record = find_node(store, hostname)
    if record["Role"] == MANAGER and not force:
        raise SwarmError("You are attempting to leave the swarm on a node that is "
                         "participating as a manager. Use `--force` to ignore this message.")
    node = lab.node(hostname)
    for pid in node.processes.values():
        labs.kill(pid)
    node.processes.clear()
    lab.save()
    store.delete(ALIVE + record["ID"])
    record["Left"] = True  # Down until 'node rm', as Docker shows a node that left
    write(store, NODES + record["ID"], record)
    if not any(n["Role"] == MANAGER and not n.get("Left") for n in read_all(store, NODES)
               .values()):
        store.delete(PREFIX, prefix=True)  # the last manager left: the swarm is gone


# --- nodes -----------------------------------------------------------------------------------------

def find_node(store: Store, ref: str, missing_ok: bool = False) -> dict | None:
    """A node by ID, ID prefix or hostname."""
    nodes = read_all(store, NODES)
    found = [n for n in nodes.values() if ref in (n["ID"], n["Hostname"])] or \
        [n for n in nodes.values() if n["ID"].startswith(ref)]
    if len(found) > 1:  # a hostname that left and joined again: the member, not the ghost
        found = [n for n in found if not n.get("Left")] or found[:1]
    if len(found) == 1:
        return found[0]
    if missing_ok:
        return None
    if found:
        raise SwarmError(f"node {ref} is ambiguous ({len(found)} matches)")
    swarm(store)  # no swarm at all is the thing to say first, as Docker's
    raise SwarmError(f"node {ref} not found (see 'minidocker node ls')")


def node_status(store: Store, record: dict, alive: set[str] | None = None) -> str:
    if alive is None:
        alive = set(read_all(store, ALIVE))
    return "Ready" if record["ID"] in alive and not record.get("Left") else "Down"


def update_node(store: Store, ref: str, availability: str | None = None,
                add_labels: dict | None = None, remove_labels: tuple = (),
                role: str | None = None) -> dict:
    record = find_node(store, ref)
    if availability:
        if availability not in ("active", "pause", "drain"):
            raise SwarmError(f"invalid availability {availability!r}: use active, pause or "
                             "drain")
        record["Availability"] = availability
    record["Labels"] = {**record["Labels"], **(add_labels or {})}
    for key in remove_labels:
        record["Labels"].pop(key, None)
    if role:
        record["Role"] = role
    write(store, NODES + record["ID"], record)
    return record


def promote(lab, store: Store, ref: str, role: str) -> dict:
    """``node promote`` / ``demote``: the role changes, and the manager loop starts or stops."""
    record = find_node(store, ref)
    if role == WORKER and record["Role"] == MANAGER:
        managers = [n for n in read_all(store, NODES).values() if n["Role"] == MANAGER]
        if len(managers) == 1:
            raise SwarmError(f"rpc error: code = FailedPrecondition desc = attempting to "
                             f"demote the last manager of the swarm ({record['Hostname']})")
    record = update_node(store, ref, role=role)
    node = lab.node(record["Hostname"])
    if labs.alive(node.processes.get("agent", 0)):
        start_processes(lab, node, record)
    return record


def remove_node(store: Store, ref: str, force: bool = False) -> dict:
    record = find_node(store, ref)
    if node_status(store, record) == "Ready" and not force:
        raise SwarmError(f"rpc error: code = FailedPrecondition desc = node {record['ID']} is "
                         "not down and can't be removed")
    store.delete(NODES + record["ID"])
    store.delete(ALIVE + record["ID"])
    return record


# --- services --------------------------------------------------------------------------------------

def service_spec(name: str, image: str, args: list[str], replicas: int | None, mode: str,
                 constraints: list[str], preferences: list[str], ports: list[dict],
                 env: list[str], limit_memory: int, reserve_memory: int,
                 reserve_cpu: int, labels: dict | None = None, strategy: str = "") -> dict:
    """The spec ``service create`` sends (Engine API ServiceSpec), its rules checked first.
    ``strategy`` overrides the swarm's for this service: it is kept as the service's label
    STRATEGY_LABEL, which a stack file can also set (``deploy.labels``)."""
    labels = dict(labels or {})
    if strategy:
        named_strategy(strategy)  # a one-line error for an unknown name
        labels[STRATEGY_LABEL] = strategy
    for constraint in constraints:
        parse_constraint(constraint)
    spread = [parse_preference(p) for p in preferences]
    if mode not in ("replicated", "global"):
        raise SwarmError(f"invalid mode {mode!r}: use replicated or global")
    if mode == "global" and replicas is not None:
        raise SwarmError("replicas can only be used with replicated mode")
    resources = {"Limits": {"MemoryBytes": limit_memory} if limit_memory else {},
                 "Reservations": {k: v for k, v in (("MemoryBytes", reserve_memory),
                                                    ("NanoCPUs", reserve_cpu)) if v}}
    return {
        "Name": name, "Labels": labels,
        "TaskTemplate": {
            "ContainerSpec": {"Image": image, "Args": args, "Env": env},
            "Resources": resources,
            "Placement": {"Constraints": constraints,
                          "Preferences": [{"Spread": {"SpreadDescriptor": s}} for s in spread]},
        },
        "Mode": {"Global": {}} if mode == "global"
        else {"Replicated": {"Replicas": 1 if replicas is None else replicas}},
        "EndpointSpec": {"Mode": "vip", "Ports": ports},
    }


def create_service(store: Store, spec: dict) -> dict:
    swarm(store)
    if not spec["Name"]:
        spec["Name"] = "service_" + new_id(6)
    if any(s["Spec"]["Name"] == spec["Name"] for s in read_all(store, SERVICES).values()):
        # by name only: a new name may well be the prefix of another service's ID
        raise SwarmError(f"rpc error: code = AlreadyExists desc = name conflicts with an "
                         f"existing object: service {spec['Name']} already exists")
    record = {"ID": new_id(), "CreatedAt": now(), "UpdatedAt": now(), "Version": {"Index": 1},
              "Spec": spec}
    write(store, SERVICES + record["ID"], record)
    return record


def find_service(store: Store, ref: str, missing_ok: bool = False) -> dict | None:
    services = read_all(store, SERVICES)
    found = [s for s in services.values() if ref in (s["ID"], s["Spec"]["Name"])] or \
        [s for s in services.values() if s["ID"].startswith(ref)]
    if len(found) == 1:
        return found[0]
    if missing_ok:
        return None
    swarm(store)
    raise SwarmError(f"no such service: {ref} (see 'minidocker service ls')")


def scale(store: Store, ref: str, replicas: int) -> dict:
    record = find_service(store, ref)
    mode = record["Spec"]["Mode"]
    if "Replicated" not in mode:
        raise SwarmError(f"{record['Spec']['Name']}: scale can only be used with replicated "
                         "mode")
    mode["Replicated"]["Replicas"] = replicas
    record["Version"]["Index"] += 1
    record["UpdatedAt"] = now()
    write(store, SERVICES + record["ID"], record)
    return record


def update_service(store: Store, ref: str, image: str | None, args: list[str] | None,
                   env_add: list[str], replicas: int | None, update_config: dict) -> dict:
    """``service update``: a changed task template starts a rolling update (update.py); a
    changed replica count alone is a scale."""
    record = find_service(store, ref)
    spec = json.loads(json.dumps(record["Spec"]))
    container = spec["TaskTemplate"]["ContainerSpec"]
    if image:
        container["Image"] = image
    if args is not None:
        container["Args"] = args
    if env_add:
        names = {e.partition("=")[0] for e in env_add}
        container["Env"] = [e for e in container.get("Env", [])
                            if e.partition("=")[0] not in names] + env_add
    spec["UpdateConfig"] = {**spec.get("UpdateConfig", {"Parallelism": 1, "Delay": 0,
                                                       "FailureAction": "pause"}),
                            **update_config}
    if replicas is not None:
        if "Replicated" not in spec["Mode"]:
            raise SwarmError("replicas can only be used with replicated mode")
        spec["Mode"]["Replicated"]["Replicas"] = replicas
    return replace_spec(store, record, spec)


def replace_spec(store: Store, record: dict, spec: dict) -> dict:
    """``spec`` becomes the service's: a changed task template is rolled out (update.py), any
    other change (replicas, labels) takes effect at the next pass."""
    from minidocker.cluster import update

    if spec["TaskTemplate"] != record["Spec"]["TaskTemplate"]:
        update.begin(record, spec)
    else:
        record["Spec"] = spec
        record["Version"]["Index"] += 1
        record["UpdatedAt"] = now()
    write(store, SERVICES + record["ID"], record)
    return record


def rollback_service(store: Store, ref: str) -> dict:
    """``service rollback``: the previous spec becomes current, rolled out as an update."""
    from minidocker.cluster import update

    record = find_service(store, ref)
    if not record.get("PreviousSpec"):
        raise SwarmError(f"service {record['Spec']['Name']} does not have a previous spec")
    update.begin(record, record["PreviousSpec"], rollback=True)
    write(store, SERVICES + record["ID"], record)
    return record


def remove_service(store: Store, ref: str) -> dict:
    """The spec goes; the manager shuts its tasks down and removes their containers."""
    record = find_service(store, ref)
    store.delete(SERVICES + record["ID"])
    return record


def tasks_of(store: Store, service_id: str | None = None) -> list[dict]:
    tasks = read_all(store, TASKS).values()
    return [t for t in tasks if service_id is None or t["ServiceID"] == service_id]


def wait_converged(store: Store, service: dict, timeout: float) -> tuple[int, int, dict]:
    """Poll until the service runs as many tasks as it wants and its update (if any) is over;
    (running, wanted, its UpdateStatus). ``timeout`` is how long it may go without progress
    (a task a step further on its way to running than ever before, or the update a step
    further): a slow machine still preparing and starting containers is waited for, a service
    stuck (no suitable node, a task that keeps failing) is reported — after at most a few such
    periods, as progress has an end."""
    import time

    from minidocker.cluster.update import IN_PROGRESS

    deadline, best, states = time.monotonic() + timeout, -1, set()
    while True:
        current = read(store, SERVICES + service["ID"]) or service
        status = current.get("UpdateStatus") or {}
        tasks = tasks_wanted(store, current)
        running, wanted = replicas_of(store, current, tasks)
        if running == wanted and status.get("State") not in IN_PROGRESS or \
                status.get("State") == "paused":
            return running, wanted, status
        steps = steps_taken(tasks)
        if steps > best or status.get("State") not in states:  # progress: wait anew
            best, deadline = max(best, steps), time.monotonic() + timeout
            states.add(status.get("State"))
        elif time.monotonic() > deadline:
            return running, wanted, status
        time.sleep(0.3)


TASK_STEPS = ("new", "pending", "assigned", "preparing", RUNNING)  # a task's way to running


def tasks_wanted(store: Store, service: dict) -> list[dict]:
    """The service's tasks that should run (desired state ``running``)."""
    return [t for t in tasks_of(store, service["ID"]) if t["DesiredState"] == RUNNING]


def steps_taken(tasks: list[dict]) -> int:
    """How far tasks that should run have come, all together: each counts the steps of
    TASK_STEPS it has taken (a failed or rejected one: none)."""
    return sum(TASK_STEPS.index(t["Status"]["State"]) for t in tasks
               if t["Status"]["State"] in TASK_STEPS)


def replicas_of(store: Store, service: dict,
                tasks: list[dict] | None = None) -> tuple[int, int]:
    """(running tasks, wanted tasks): the REPLICAS column, ``2/3``; a global service wants one
    task per node its constraints allow. ``tasks``: its tasks_wanted, if already read."""
    tasks = tasks_wanted(store, service) if tasks is None else tasks
    running = sum(t["Status"]["State"] == RUNNING for t in tasks)
    mode = service["Spec"]["Mode"]
    if "Replicated" in mode:
        return running, mode["Replicated"]["Replicas"]
    from minidocker.cluster.reconcile import global_tasks_wanted

    return running, global_tasks_wanted(store, service)


def ensure_agents(lab, store: Store) -> None:
    """After a restart of a crashed node's daemon: its swarm processes come back."""
    for record in read_all(store, NODES).values():
        if record.get("Left") or record["Hostname"] not in lab.nodes:
            continue
        node = lab.nodes[record["Hostname"]]
        if labs.alive(node.daemon):
            start_processes(lab, node, record)


def etcd_member(lab, name: str, running: bool) -> None:
    """Stop or start one etcd member (the cluster keeps going with two of three)."""
    from minidocker.cluster import etcd

    if name not in lab.etcd:
        raise SwarmError(f"no etcd member {name!r} (members: {', '.join(lab.etcd)})")
    if running:
        if labs.alive(lab.etcd[name]):
            return
        etcd.restart_member(lab, name)
    else:
        labs.kill(lab.etcd[name])
        lab.save()

