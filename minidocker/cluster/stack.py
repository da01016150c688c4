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
    ports                                             -> EndpointSpec.Ports, host mode

A service picks its own scheduling strategy with the label ``com.minidocker.scheduler.strategy``
in ``deploy.labels`` (``service create --strategy`` writes the same label). What swarm mode
cannot do is said as ``docker stack deploy`` says it: "Ignoring unsupported options: build",
"Ignoring deprecated options", or an error for the options it refuses ("mem_limit: Set resource
limits using deploy.resources").

Networks: a stack's networks are overlay networks, which this cluster does not have yet; its
tasks use each node's bridge, and a file that names networks is refused (``networks_of``).
Published ports are host-mode until the routing mesh exists (``endpoint_ports``).

Docs: docs.docker.com "Deploy a stack to a swarm", ``docker stack deploy``; the Compose
Specification's deploy section (deploy.md). Used by: cli/stacks.py, tests/test_stack.py,
tests/test_cluster.py, notebooks/14-cluster.ipynb.
"""

import re
from dataclasses import dataclass, field

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
class Plan:
    """What ``stack deploy`` will write: the service specs, and what it says first."""

    stack: str
    specs: list[dict]
    ignored: list[str] = field(default_factory=list)
    deprecated: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- from the Compose file to service specs ---------------------------------------------------

def plan(files: list[str], stack: str) -> Plan:
    """Read the file with stage 13's loader and turn each service into a ServiceSpec."""
    if not STACK_NAME.fullmatch(stack):
        raise StackError(f"invalid stack name {stack!r}: use letters, digits, '_', '.' or '-'")
    project = load(Options(files=files, project_name=stack, builds=False))
    made = Plan(stack, [])
    refuse_forbidden(project)
    networks_of(project)
    for service in project.services.values():
        made.ignored += [k for k in UNSUPPORTED if k in service.definition]
        made.deprecated += [f"{k}: {why}" for k, why in DEPRECATED.items()
                            if k in service.definition]
        made.specs.append(service_spec(stack, service, made))
    made.ignored = sorted(set(made.ignored))
    made.deprecated = sorted(set(made.deprecated))
    return made


def refuse_forbidden(project: Project) -> None:
    found = sorted({f"{k}: {why}" for s in project.services.values()
                    for k, why in FORBIDDEN.items() if k in s.definition})
    if found:
        raise StackError("Compose file contains unsupported options: " + "; ".join(found))


def networks_of(project: Project) -> list[str]:
    """The overlay networks the stack needs. The hook for the overlay driver: until it is
    there, the implicit ``default`` network is each node's bridge, and a file that names
    networks of its own is refused rather than deployed without them."""
    named = sorted({net for s in project.services.values() for net in s.networks
                    if net != "default"})
    if named:
        raise StackError(f"network {named[0]!r}: overlay networks are not available in this "
                         "cluster yet; remove 'networks:' from the file (the tasks then use "
                         "each node's bridge) or wait for 'network create -d overlay'")
    return []


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
        endpoint_ports(service, made),
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


def endpoint_ports(service: Service, made: Plan) -> list[dict]:
    """Published ports, in host mode: each task publishes on its own node. The routing mesh
    (``mode: ingress``, every node answering) is the overlay's; until it lands an ingress port
    is published in host mode, and said so."""
    ports = []
    for port, raw in zip(service.ports, service.definition.get("ports", []), strict=True):
        published = int(port.published) if port.published.isdigit() else 0
        if port.published and not published:
            raise StackError(f"service {service.name!r}: port {port.published}: a stack "
                             "publishes one port per target (no ranges)")
        if published and raw.get("mode", "ingress") == "ingress":
            made.notes.append(f"port {published} of {service.name}: published in host mode "
                              "(the routing mesh is not available yet)")
        ports.append({"Protocol": port.protocol, "TargetPort": port.target,
                      "PublishedPort": published, "PublishMode": "host"})
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
    said = []
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


def remove(store, stack: str) -> list[str]:
    """``stack rm``: the stack's services go (the managers stop their tasks)."""
    said = []
    for service in services_of(store, stack):
        records.remove_service(store, service["ID"])
        said.append(f"Removing service {service['Spec']['Name']}")
    return said
