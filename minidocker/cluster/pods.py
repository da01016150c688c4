"""Stage 14 — pods: containers on one node that share a network namespace and storage.

Kubernetes schedules *pods*, not containers: "a group of one or more containers, with shared
storage and network resources". The group's namespaces belong to none of its containers:
each pod starts with a *pause* container (Kubernetes' ``pause.c``, podman's *infra*
container running ``catatonit -P``), a tiny PID 1 that only waits. It holds the network,
IPC and UTS namespaces and the published ports; every other container of the pod joins them
with ``setns(2)``, so they reach each other on ``127.0.0.1``, share System V IPC and POSIX
shared memory, and see the pod's host name. A container may exit and be replaced while the
pod keeps its address.

Here a pod is made of ordinary containers, through the engine's typed configuration and its
one create/start path:

* the infra container runs ``sleep infinity`` under the kit's init (``--init``: tini forwards
  ``stop``'s SIGTERM), with ``--ipc shareable``, the pod's ``--network``, ``-p`` and host
  name, and the pod's labels plus ``io.minidocker.pod=<pod id>``;
* a member (``run --pod P``) is given ``--network container:INFRA``, ``--ipc
  container:INFRA`` and the UTS namespace of INFRA (``UTSMode container:ID``, which no flag
  of Docker's offers), the pod's volumes, and the same label, so ``ps --filter
  label=io.minidocker.pod=<id>`` finds them;
* storage: a named volume ``<pod>_shared`` on ``/shared`` in every member (Kubernetes'
  ``emptyDir``: it lives and dies with the pod), and each ``pod create --volume``.

The infra container *is* the pod's record: its labels carry the pod's ID and name, its
HostConfig the pod's network, ports and volumes, so a pod appears and disappears in one
atomic step of the container store. ``pod rm`` removes the members, then the infra, then
the shared volume; the engine refuses to remove the infra while a member runs in its
namespaces (``lifecycle.refuse_if_joined``, as podman refuses).

Specs: Kubernetes "Pods" and "Volumes: emptyDir"; kubernetes ``build/pause/linux/pause.c``;
podman-pod-create(1), podman-run(1) ``--pod``. Man pages: setns(2), namespaces(7),
ipc_namespaces(7), uts_namespaces(7). Used by: ``minidocker pod``, ``run --pod``.
"""

import dataclasses
from dataclasses import dataclass, field

from minidocker.container import lifecycle, records
from minidocker.container.config import (
    Config,
    HostConfig,
    IpcMode,
    NetworkMode,
    UTSMode,
    port_bindings_dict,
)
from minidocker.container.create import create
from minidocker.container.names import check_name, new_id, random_name
from minidocker.errors import Conflict, MinidockerError, NotFound

POD_LABEL = "io.minidocker.pod"  # the pod's ID, on the infra and on every member
NAME_LABEL = "io.minidocker.pod.name"  # on the infra
INFRA_LABEL = lifecycle.POD_INFRA_LABEL  # "true" on the infra: its start brings members back
SHARED_AT = "/shared"  # where the pod's emptyDir-like volume is mounted
INFRA_IMAGE = "busybox"
INFRA_COMMAND = ["sleep", "infinity"]  # only waits; tini (--init) is PID 1 and forwards
SHARED_KINDS = ("ipc", "net", "uts")  # what the members join, as Kubernetes shares them


@dataclass
class PodSpec:
    """What ``pod create`` asks for."""

    name: str = ""
    hostname: str = ""  # "": the pod's name
    network: str = "bridge"
    publish: list = field(default_factory=list)  # network.PortBinding, parsed from -p
    labels: dict = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)  # -v specs given to every member


@dataclass
class Pod:
    """A pod as found in the container store: its infra container and its members."""

    infra: records.ContainerRecord
    members: list[records.ContainerRecord]

    @property
    def id(self) -> str:
        return self.infra.Config.Labels[POD_LABEL]

    @property
    def name(self) -> str:
        return self.infra.Config.Labels[NAME_LABEL]

    @property
    def volume(self) -> str:
        return shared_volume(self.name)

    @property
    def status(self) -> str:
        """podman's words: Created, Running, Degraded (some member not running), Exited."""
        if self.infra.status not in lifecycle.ACTIVE:
            return "Created" if self.infra.status == "created" else "Exited"
        running = all(m.status in lifecycle.ACTIVE for m in self.members)
        return "Running" if running else "Degraded"

    def inspect(self) -> dict:
        """``pod inspect``, in podman's field names."""
        host = self.infra.HostConfig
        return {
            "Id": self.id, "Name": self.name, "Created": self.infra.Created,
            "State": self.status, "Hostname": self.infra.Config.Hostname,
            "Labels": {k: v for k, v in self.infra.Config.Labels.items()
                       if not k.startswith(POD_LABEL)},
            "InfraContainerID": self.infra.Id, "SharedNamespaces": list(SHARED_KINDS),
            "InfraConfig": {"NetworkMode": str(host.NetworkMode),
                            "PortBindings": port_bindings_dict(host.PortBindings),
                            "Volumes": list(host.Binds)},
            "NumContainers": 1 + len(self.members),
            "Containers": [{"Id": r.Id, "Name": r.Name, "State": r.status}
                           for r in [self.infra, *self.members]],
        }


def shared_volume(pod_name: str) -> str:
    return f"{pod_name}_shared"


# --- finding pods ------------------------------------------------------------------------------

def list_pods() -> list[Pod]:
    """Every pod, newest first: the infra containers, each with the members that carry its ID."""
    found = [lifecycle.refresh(r) for r in records.all_records()]
    found = [r for r in found if lifecycle.still_recorded(r)]
    infras = [r for r in found if r.Config.Labels.get(INFRA_LABEL) == "true"]
    return [Pod(infra, [r for r in found if r is not infra
                        and r.Config.Labels.get(POD_LABEL) == infra.Config.Labels[POD_LABEL]])
            for infra in infras]


def find_pod(name_or_id: str) -> Pod:
    """A pod by its name, its ID or a unique prefix of it."""
    pods = list_pods()
    for pod in pods:
        if name_or_id in (pod.name, pod.id):
            return pod
    matches = [pod for pod in pods if name_or_id and pod.id.startswith(name_or_id)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise MinidockerError(f"pod ID prefix {name_or_id} is ambiguous: give more of it")
    raise NotFound(f"no such pod: {name_or_id} (see 'minidocker pod ls')")


# --- the pod's story: create, join, start, stop, rm ----------------------------------------------

def create_pod(spec: PodSpec) -> Pod:
    """``pod create``: the infra container, created (not started, as podman's) with the
    pod's network, ports, host name and volumes; its record is the pod's."""
    taken = {pod.name for pod in list_pods()}
    name = check_name(spec.name) if spec.name else random_name(taken)
    if name in taken:
        raise Conflict(f"pod {name} already exists: choose another --name, or remove it "
                       f"('minidocker pod rm {name}')")
    mode = NetworkMode.parse(spec.network)
    if spec.publish and not mode.is_bridge:
        raise MinidockerError(f"published ports need a bridge network, not --network {mode} "
                              "(drop -p)")
    if mode.container:
        raise MinidockerError("a pod's infra container holds its own network namespace: "
                              "--network container:X is for containers, not pods")
    pod_id = new_id()
    config = Config(Image=INFRA_IMAGE, Cmd=list(INFRA_COMMAND),
                    Hostname=spec.hostname or name,
                    Labels={**spec.labels, POD_LABEL: pod_id, NAME_LABEL: name,
                            INFRA_LABEL: "true"})
    host = HostConfig(NetworkMode=mode, PortBindings=list(spec.publish),
                      IpcMode=IpcMode("shareable"), Init=True,
                      Binds=[f"{shared_volume(name)}:{SHARED_AT}", *spec.volumes])
    infra = create(config, host, f"{name}-infra")
    return Pod(infra, [])


def join(pod_name: str, config: Config, host: HostConfig,
         start: bool = False) -> tuple[Config, HostConfig]:
    """``run/create --pod P``: the container's request, made a member of pod P — its
    network, IPC and UTS namespaces the infra's, the pod's volumes and label added. With
    ``start`` (``run``) the infra is started first, if it is not running."""
    pod = find_pod(pod_name)
    refuse_own_namespaces(pod, config, host)
    if start:
        start_infra(pod)
    infra = f"container:{pod.infra.Id}"
    config = dataclasses.replace(config, Hostname=pod.infra.Config.Hostname,
                                 Labels={**config.Labels, POD_LABEL: pod.id})
    host = dataclasses.replace(host, NetworkMode=NetworkMode(infra), IpcMode=IpcMode(infra),
                               UTSMode=UTSMode(infra),
                               Binds=[*pod.infra.HostConfig.Binds, *host.Binds])
    return config, host


def refuse_own_namespaces(pod: Pod, config: Config, host: HostConfig) -> None:
    """What a member cannot have of its own: it belongs to the infra (as in podman)."""
    own = [("-p/-P", host.PortBindings or host.PublishAllPorts,
            "published ports belong to the pod's infra container (give them to 'pod create')"),
           (f"--network {host.NetworkMode}", str(host.NetworkMode) != "bridge",
            "the pod's containers share its network (give --network to 'pod create')"),
           ("--ipc/--uts", str(host.IpcMode) or str(host.UTSMode),
            "the pod's containers share its IPC and UTS namespaces"),
           ("--hostname/--domainname", config.Hostname or config.Domainname,
            "the pod's containers share its host name (give --hostname to 'pod create')")]
    for flag, given, why in own:
        if given:
            raise MinidockerError(f"cannot use {flag} with --pod {pod.name}: {why}")


def start_infra(pod: Pod) -> None:
    """The infra first: a member can only join namespaces that a running PID 1 holds."""
    if pod.infra.status not in lifecycle.ACTIVE:
        lifecycle.start(pod.infra)


def start_pod(pod: Pod) -> None:
    """``pod start``: the infra, then each member that is not running."""
    start_infra(pod)
    for member in pod.members:
        if member.status not in lifecycle.ACTIVE:
            lifecycle.start(member)


def restart_pod(pod: Pod, timeout: int | None = None) -> None:
    """``pod restart``: stop, then start, so every member joins the infra's new namespaces."""
    stop_pod(pod, timeout)
    start_pod(find_pod(pod.id))


def stop_pod(pod: Pod, timeout: int | None = None) -> None:
    """``pod stop``: the members, then the infra that holds their namespaces."""
    for record in [*pod.members, pod.infra]:
        lifecycle.stop(record, timeout)


def remove_pod(pod: Pod, force: bool = False) -> None:
    """``pod rm``: the members, then the infra, then the pod's shared volume. Running
    members are killed only with ``force``. The shared volume is a named volume that any
    container may mount (``-v <pod>_shared:/x``): while one outside the pod does, the pod
    is not removed (``force`` or not), as ``volume rm`` refuses a volume in use."""
    from minidocker import volumes

    running = [m.Name for m in pod.members if m.status in lifecycle.ACTIVE]
    if running and not force:
        raise Conflict(f"pod {pod.name} has running containers ({', '.join(running)}): stop "
                       f"it first ('minidocker pod stop {pod.name}') or use 'pod rm -f'")
    refuse_outside_users(pod)
    for record in [*pod.members, pod.infra]:
        lifecycle.rm(record, force=True, volumes_too=True)
    with records.volume_users_held() as users:  # no create takes the volume meanwhile
        volumes.remove_volume(pod.volume, users, force=True)


def refuse_outside_users(pod: Pod) -> None:
    """A container that is no part of the pod but mounts its shared volume keeps the pod."""
    ours = {record.Name for record in [*pod.members, pod.infra]}
    outside = [name for name in records.volumes_in_use().get(pod.volume, []) if name not in ours]
    if outside:
        raise Conflict(f"volume {pod.volume} of pod {pod.name} is in use by container "
                       f"{', '.join(outside)}, which is not in the pod: remove that container "
                       f"first ('minidocker rm {outside[0]}')")
