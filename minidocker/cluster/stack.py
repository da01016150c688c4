"""Stacks: a Compose file deployed as swarm services (``docker stack deploy``).

A stack is a name and the services of one Compose file, read by stage 13's loader (the same
model ``compose up`` uses: one parser, one set of checks). Each Compose service becomes one
swarm service, ``<stack>_<service>``, labelled ``com.docker.stack.namespace=<stack>``: that
label is all a stack is — ``stack ls``, ``ps``, ``services`` and ``rm`` find their services
by it, as docker/cli does. From a service's definition:

    image, command, entrypoint, environment, labels   -> TaskTemplate.ContainerSpec
    deploy.replicas, deploy.mode (replicated|global)  -> Mode
    deploy.placement.constraints, .preferences        -> TaskTemplate.Placement
    deploy.resources.limits, .reservations            -> TaskTemplate.Resources
    deploy.update_config                              -> UpdateConfig
    deploy.labels                                     -> the service's Labels (and so the
                                                         scheduling strategy, see below)
    ports (mode: ingress, the default | host)         -> EndpointSpec.Ports
    networks (with their aliases)                     -> TaskTemplate.Networks

A service picks its own scheduling strategy with the label ``com.minidocker.scheduler.strategy``
in ``deploy.labels`` (``service create --strategy`` writes the same label). What swarm mode
cannot do is said as ``docker stack deploy`` says it: "Ignoring unsupported options: build",
"Ignoring deprecated options", or an error for the options it refuses ("mem_limit: Set resource
limits using deploy.resources").

Networks: each network the services use is an overlay (overlay.py) named ``<stack>_<key>``,
``<stack>_default`` for the services that name none, labelled with the stack's namespace and
made before the services; an ``external: true`` one must exist already. A service joins its
networks with its short name as an alias (``web`` for ``demo_web``), so the stack's services
find each other as the file calls them (resolver.py answers an alias on its network only).
A task's container joins every network of its service, as Docker's. Ports go through the
routing mesh (``mode: ingress``, every node answers, mesh.py) or are published on the task's
node only (``mode: host``). ``stack rm`` removes the services, then, once none of their tasks
is left on them, the networks it made.

Docs: docs.docker.com "Deploy a stack to a swarm", ``docker stack deploy``; the Compose
Specification's deploy section (deploy.md). Used by: cli/stacks.py, tests/test_stack.py,
tests/test_cluster.py, notebooks/14-cluster.ipynb.
"""

import re
import time
from dataclasses import dataclass, field

from minidocker.cluster import overlay
from minidocker.cluster import swarm as records
from minidocker.cluster.strategies import strategy as named_strategy
from minidocker.compose.loader import Options, load
from minidocker.compose.model import Project, Service

NAMESPACE = "com.docker.stack.namespace"
IMAGE_LABEL = "com.docker.stack.image"
STRATEGY_LABEL = records.STRATEGY_LABEL
STACK_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")

# docker/cli's compose loader: what swarm mode ignores, what it calls deprecated, what it
# refuses — restricted to the keys stage 13 reads, plus those minidocker's tasks do not apply
# yet (volumes, health checks...), which are ignored as honestly.
UNSUPPORTED = ("build", "cap_add", "cap_drop", "dns", "domainname", "external_links",
               "extra_hosts", "healthcheck", "hostname", "init", "links", "network_mode",
               "privileged", "read_only", "restart", "stdin_open", "stop_grace_period",
               "stop_signal", "tmpfs", "tty", "user", "volumes", "working_dir")
DEPRECATED = {"container_name": "Setting the container name is not supported.",
              "expose": "Exposing ports is unnecessary - services on the same network can "
                        "access each other's containers on any port."}
FORBIDDEN = {"volumes_from": "To share a volume between services, define it using the "
                             "top-level `volumes` option and reference it from each service "
                             "that shares it using the service-level `volumes` option.",
             "mem_limit": "Set resource limits using deploy.resources",
             "cpus": "Set resource limits using deploy.resources",
             "pids_limit": "Set resource limits using deploy.resources"}
# deploy keys the managers do not apply (a failed task's slot is always filled again, a
# rollback goes as update_config says, a service is reached at its tasks' addresses...)
UNSUPPORTED_DEPLOY = ("endpoint_mode", "placement.max_replicas_per_node", "resources.limits.pids",
                      "restart_policy", "rollback_config", "update_config.max_failure_ratio",
                      "update_config.order")


class StackError(records.SwarmError):
    """A stack that cannot be deployed as written."""


@dataclass
class StackNetwork:
    """An overlay the stack's services use: made by the stack, or ``external`` (found)."""

    name: str
    external: bool = False
    subnet: str = ""


@dataclass
class Plan:
    """What ``stack deploy`` will write (the service specs, the networks they use), and what
    it says first."""

    stack: str
    specs: list[dict]
    networks: list[StackNetwork]
    ignored: list[str] = field(default_factory=list)
    deprecated: list[str] = field(default_factory=list)


# --- from the Compose file to service specs ---------------------------------------------------

def plan(files: list[str], stack: str) -> Plan:
    """Read the file with stage 13's loader and turn each service into a ServiceSpec."""
    if not STACK_NAME.fullmatch(stack):
        raise StackError(f"invalid stack name {stack!r}: use letters, digits, '_', '.' or '-'")
    project = load(Options(files=files, project_name=stack, builds=False, files_flag="-c"))
    made = Plan(stack, [], networks_of(project))
    refuse_forbidden(project)
    for service in project.services.values():
        made.ignored += [k for k in UNSUPPORTED if k in service.definition]
        made.deprecated += [f"{k}: {why}" for k, why in DEPRECATED.items()
                            if k in service.definition]
        made.specs.append(service_spec(stack, service, made))
        made.specs[-1]["TaskTemplate"]["Networks"] = task_networks(service, project)
    made.ignored = sorted(set(made.ignored))
    made.deprecated = sorted(set(made.deprecated))
    return made


def refuse_forbidden(project: Project) -> None:
    found = sorted({f"{k}: {why}" for s in project.services.values()
                    for k, why in FORBIDDEN.items() if k in s.definition})
    if found:
        raise StackError("Compose file contains unsupported options: " + "; ".join(found))


def networks_of(project: Project) -> list[StackNetwork]:
    """The overlays the stack's services use (its other networks are left alone, as docker
    does), by the names they have in the swarm."""
    used = sorted({key for s in project.services.values() for key in s.networks})
    found = []
    for key in used:
        spec = project.networks[key]
        driver = project.model["networks"][key].get("driver", "overlay")
        if driver != "overlay" and not spec.external:
            raise StackError(f"network {key!r}: driver {driver!r} is not supported in a "
                             "stack: its networks span the nodes; use 'driver: overlay' "
                             "(or leave the driver out)")
        found.append(StackNetwork(spec.name, spec.external, spec.subnet))
    return found


def task_networks(service: Service, project: Project) -> list[dict]:
    """``TaskTemplate.Networks``: each network by name (``deploy`` puts its ID in), with the
    service's short name and its own aliases."""
    return [{"Target": project.networks[key].name, "Aliases": [service.name, *options.aliases]}
            for key, options in sorted(service.networks.items())]


def service_spec(stack: str, service: Service, made: Plan) -> dict:
    """One Compose service as the ServiceSpec ``service create`` would send."""
    if service.build and not service.definition.get("image"):
        raise StackError(f"service {service.name!r}: a stack deploys images; give it an "
                         "'image:' (build it and push it first)")
    deploy = service.definition.get("deploy", {})
    made.ignored += [f"deploy.{path}" for path in UNSUPPORTED_DEPLOY if given(deploy, path)]
    placement = deploy.get("placement", {})
    resources = deploy.get("resources", {})
    limits, reserved = resources.get("limits", {}), resources.get("reservations", {})
    mode = deploy.get("mode", "replicated")
    spec = records.service_spec(
        f"{stack}_{service.name}", service.image, service.command or [],
        deploy.get("replicas"), mode,
        placement.get("constraints", []),
        [f"spread={p['spread']}" for p in placement.get("preferences", []) if "spread" in p],
        endpoint_ports(service),
        [f"{k}={v}" for k, v in service.environment.items() if v is not None],
        memory(limits), memory(reserved), nano_cpus(reserved),
        labels={**deploy.get("labels", {}), NAMESPACE: stack, IMAGE_LABEL: service.image})
    container = spec["TaskTemplate"]["ContainerSpec"]
    container["Labels"] = {**service.labels, NAMESPACE: stack}
    if service.entrypoint is not None:
        container["Command"] = service.entrypoint
    if limits.get("cpus"):
        spec["TaskTemplate"]["Resources"]["Limits"]["NanoCPUs"] = nano_cpus(limits)
    if "update_config" in deploy:
        spec["UpdateConfig"] = update_config(deploy["update_config"])
    strategy = spec["Labels"].get(STRATEGY_LABEL)
    if strategy:
        named_strategy(strategy)  # a one-line error for an unknown name
    return spec


def given(mapping: dict, path: str) -> bool:
    """Whether the dotted ``path`` (``update_config.order``) is set in ``mapping``."""
    for key in path.split("."):
        if not isinstance(mapping, dict) or key not in mapping:
            return False
        mapping = mapping[key]
    return True


def endpoint_ports(service: Service) -> list[dict]:
    """Published ports: through the routing mesh (``mode: ingress``, Docker's default: every
    node answers) or on the task's own node (``mode: host``)."""
    ports = []
    for port, raw in zip(service.ports, service.definition.get("ports", []), strict=True):
        published = int(port.published) if port.published.isdigit() else 0
        if port.published and not published:
            raise StackError(f"service {service.name!r}: port {port.published}: a stack "
                             "publishes one port per target (no ranges)")
        ports.append({"Protocol": port.protocol, "TargetPort": port.target,
                      "PublishedPort": published, "PublishMode": raw.get("mode", "ingress")})
    return ports


def memory(resources: dict) -> int:
    from minidocker.cgroups.limits import parse_bytes

    value = resources.get("memory", "")
    return parse_bytes("deploy.resources memory", value) if value else 0


def nano_cpus(resources: dict) -> int:
    value = resources.get("cpus", "")
    try:
        return int(float(value) * 1_000_000_000) if value else 0
    except ValueError:
        raise StackError(f"invalid cpus {value!r} in deploy.resources: use a number of "
                         "CPUs, e.g. 0.5") from None


def update_config(config: dict) -> dict:
    """Compose's ``update_config`` as the Engine API's UpdateConfig (durations in ns)."""
    from minidocker.cluster.update import parse_duration

    shown = {"Parallelism": config.get("parallelism", 1),
             "FailureAction": config.get("failure_action", "pause")}
    if shown["FailureAction"] not in ("pause", "continue", "rollback"):
        raise StackError(f"invalid update_config.failure_action "
                         f"{shown['FailureAction']!r}: use pause, continue or rollback")
    for key, name in (("delay", "Delay"), ("monitor", "Monitor")):
        if key in config:
            shown[name] = parse_duration(f"update_config.{key}", config[key])
    return shown


# --- the verbs ------------------------------------------------------------------------------------

def deploy(store, made: Plan, prune: bool = False) -> list[str]:
    """Create each service, or update it if the stack already has it; with ``prune``, remove
    the stack's services the file no longer names. What was done, in Docker's words."""
    records.swarm(store)
    said = make_networks(store, made)
    current = {s["Spec"]["Name"]: s for s in services_of(store, made.stack)}
    for spec in sorted(made.specs, key=lambda s: s["Name"]):
        if spec["Name"] in current:
            record = current[spec["Name"]]
            records.replace_spec(store, record, spec)
            said.append(f"Updating service {spec['Name']} (id: {record['ID']})")
        else:
            records.create_service(store, spec)
            said.append(f"Creating service {spec['Name']}")
    wanted = {spec["Name"] for spec in made.specs}
    for name in sorted(set(current) - wanted) if prune else ():
        records.remove_service(store, current[name]["ID"])
        said.append(f"Removing service {name}")
    return said


def make_networks(store, made: Plan) -> list[str]:
    """The stack's overlays, made if missing (an external one must exist), and each service's
    networks by ID, as the swarm keeps them."""
    said, ids = [], {}
    for network in made.networks:
        found = overlay.find(store, network.name, missing_ok=True)
        if network.external and not found:
            raise StackError(f"network {network.name!r} is declared as external, but could "
                             "not be found: create it first with 'minidocker network create "
                             f"-d overlay {network.name}'")
        if not found:
            said.append(f"Creating network {network.name}")
            found = overlay.create(store, network.name, network.subnet or None,
                                   labels={NAMESPACE: made.stack})
        ids[network.name] = found["ID"]
    for spec in made.specs:
        for attachment in spec["TaskTemplate"].get("Networks", []):
            attachment["Target"] = ids.get(attachment["Target"], attachment["Target"])
    return said


def services_of(store, stack: str) -> list[dict]:
    """The stack's services: those with its namespace label, by name."""
    found = [s for s in records.read_all(store, records.SERVICES).values()
             if s["Spec"].get("Labels", {}).get(NAMESPACE) == stack]
    return sorted(found, key=lambda s: s["Spec"]["Name"])


def stacks(store) -> dict[str, int]:
    """``stack ls``: each stack's name and how many services it has."""
    counted: dict[str, int] = {}
    for service in records.read_all(store, records.SERVICES).values():
        name = service["Spec"].get("Labels", {}).get(NAMESPACE)
        if name:
            counted[name] = counted.get(name, 0) + 1
    return dict(sorted(counted.items()))


def networks_of_stack(store, stack: str) -> list[dict]:
    """The overlays the stack made (an external network has not its label), by name."""
    found = [n for n in overlay.networks(store).values()
             if n.get("Labels", {}).get(NAMESPACE) == stack]
    return sorted(found, key=lambda n: n["Name"])


def remove(store, stack: str, timeout: float = 30.0):
    """``stack rm``: the stack's services go (the managers stop their tasks), then its
    networks, each once no task is on it and no node holds its end any more (so that each
    node's agent takes its bridge and VXLAN device down). Yields what it did, as it does it;
    a network still in use after ``timeout`` is a StackError."""
    for service in services_of(store, stack):
        records.remove_service(store, service["ID"])
        yield f"Removing service {service['Spec']['Name']}"
    for network in networks_of_stack(store, stack):
        yield f"Removing network {network['Name']}"
        if not wait_unused(store, network["ID"], timeout):
            raise StackError(f"failed to remove network {network['Name']}: still in use "
                             f"after {timeout:.0f}s; see 'minidocker stack ps {stack}' and "
                             "run 'minidocker stack rm' again")
        overlay.remove(store, network["ID"])


def wait_unused(store, network_id: str, timeout: float) -> bool:
    """Poll until no task runs (or should run) on the network and no node holds an address
    on it (the manager takes them back once their tasks are gone)."""
    deadline = time.monotonic() + timeout
    while True:
        state = overlay.read_state(store)
        network = state["networks"].get(network_id)
        busy = [t for t in state["tasks"].values()
                if (t["DesiredState"] == records.RUNNING or
                    t["Status"]["State"] == records.RUNNING) and
                any(a["NetworkID"] == network_id for a in t.get("NetworksAttachments", []))]
        if network is None or not busy and not network["NodeAddresses"]:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)
