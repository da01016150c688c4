"""Stage 13 — a project brought up and down through the engine's own calls.

``up`` is the story of a person typing Docker commands for a Compose file:

1. ``network create <project>_<name>`` for each network, ``volume create <project>_<name>``
   for each volume (both labelled with the project), unless they exist;
2. for each service, in ``depends_on`` order (order.py): wait for what it depends on (started,
   healthy, or completed successfully), make its image (build or pull), then *converge* its
   containers: each replica ``<project>-<service>-<n>`` whose configuration hash label matches
   the file is left as it is (started if stopped); one that differs is recreated
   (``stop``, ``rm``, ``create``, ``start``); replicas above the scale are removed;
3. each new container is created on every network of its service (highest ``priority``
   first, then by name: the first is eth0, with the default route), each with its aliases —
   the service's name among them — and its ``ipv4_address``; it joins them all at start,
   before its process runs, as ``docker compose`` v2 does (docker-compose 1.29 connects the
   others between create and start);
4. the containers are started by the state root's monitor host, one process for all of them
   (as the daemon's are: container/monitor.py), not by a monitor process each.

Nothing is remembered but the labels: ``ps``, ``down`` and the next ``up`` find the project's
containers, networks and volumes by ``com.docker.compose.project`` — so ``down`` removes
exactly what ``up`` made, also after an ``up`` that crashed half-way. A failed ``up`` leaves
the services it started running and says which one failed and why.

Docker: ``docker compose up/down`` reference; compose v2 ``pkg/compose/convergence.go``.
Used by: ``minidocker compose``, notebook 13-compose.
"""

import contextlib
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from minidocker.compose import convert, images, order
from minidocker.compose.convert import NUMBER, ONEOFF, PROJECT, SERVICE
from minidocker.compose.model import Project, Service
from minidocker.container import lifecycle, records
from minidocker.container.config import RestartPolicy
from minidocker.container.create import create
from minidocker.errors import MinidockerError, NotFound

Say = Callable[[str], None]
HEALTH_TIMEOUT = 120  # seconds a dependency may take to become healthy


class ServiceFailed(MinidockerError):
    """``up`` stopped at one service; the services started before it keep running."""


@dataclass
class UpOptions:
    services: list[str] = field(default_factory=list)  # none: all of them
    build: bool = False
    no_deps: bool = False
    force_recreate: bool = False
    remove_orphans: bool = False
    scale: dict[str, int] = field(default_factory=dict)


# --- finding what belongs to a project ----------------------------------------------------------

def containers(project_name: str, services=None, oneoff: bool = False,
               stopped: bool = True) -> list[records.ContainerRecord]:
    """The project's containers by their labels, ordered by service then number."""
    found = [r for r in lifecycle.current_records()
             if r.Config.Labels.get(PROJECT) == project_name
             and (services is None or r.Config.Labels.get(SERVICE) in services)
             and (oneoff or r.Config.Labels.get(ONEOFF) != "True")
             and (stopped or r.status in lifecycle.ACTIVE)]
    return sorted(found, key=lambda r: (r.Config.Labels.get(SERVICE, ""), number(r), r.Name))


def number(record: records.ContainerRecord) -> int:
    text = record.Config.Labels.get(NUMBER, "0")
    return int(text) if text.isdigit() else 0


def check_service(project: Project, name: str) -> None:
    """A service named on the command line must be one of the file's."""
    if name not in project.services:
        raise NotFound(f"no such service: {name} (the services are "
                       f"{', '.join(project.services)})")


def selected(project: Project, wanted: list[str], with_dependencies: bool = True) -> list[str]:
    """The services to act on, in start order: those named (all if none) and, unless
    ``--no-deps``, everything they depend on."""
    for name in wanted:
        check_service(project, name)
    graph = {name: list(s.depends_on) + [link.partition(":")[0] for link in s.links]
             for name, s in project.services.items()}
    chosen = set(wanted or project.services)
    if with_dependencies:
        pending = list(chosen)
        while pending:
            for dependency in graph[pending.pop()]:
                if dependency not in chosen:
                    chosen.add(dependency)
                    pending.append(dependency)
    return [name for name in order.start_order(graph) if name in chosen]


# --- up -----------------------------------------------------------------------------------------

def up(project: Project, options: UpOptions, say: Say) -> list[records.ContainerRecord]:
    """Bring the project to what its file says; the containers it runs. The images come
    first, then the services level by level: those that depend on nothing here, then those
    whose dependencies are all up, ... — the services of one level side by side, in threads
    (each start waits for its container's monitor: the engine's slow part)."""
    if not project.services:  # Compose v2's "no service selected"; 1.29 refuses an empty file
        files = ", ".join(os.path.basename(f) for f in project.files)
        raise MinidockerError(f"no service selected: {files} has no service to run (an "
                              "empty compose file, or each service behind a profile): define "
                              "one under 'services:', or enable its profile with --profile")
    names = selected(project, options.services, not options.no_deps)
    check_external(project)
    with ThreadPoolExecutor(max_workers=1) as pool:
        host = pool.submit(one_monitor_for_all)  # its start-up meanwhile, on the other core
        make_networks(project, say)
        make_volumes(project, say)
        orphans(project, options.remove_orphans, say)
        for name in names:
            with failure_of(name):
                images.ensure(project.services[name], options.build, say)
        host.result()
    running = []
    for level in levels(project, names):
        results = side_by_side([lambda name=name: bring_up(project, name, options, say)
                                for name in level])
        for name, (started, error) in zip(level, results, strict=True):
            if error:
                with failure_of(name):
                    raise error
            running += started
    return running


def one_monitor_for_all() -> None:
    """The project's containers are handed to the state root's monitor host, as the daemon's
    are (container/monitor.py): one process watches them all, and a start costs no new
    Python process and no imports of its own (in a running host, a fifth of a start under a
    monitor of its own). The host is started now if none runs, and loads the network stage
    while we make the networks; it leaves by itself once its last container has ended."""
    from minidocker.container import monitor

    if not monitor.USE_HOST:
        monitor.use_host()
        monitor.warm_host()


def bring_up(project: Project, name: str, options: UpOptions,
             say: Say) -> list[records.ContainerRecord]:
    service = project.services[name]
    wait_for_dependencies(project, service, say)
    replicas = options.scale.get(name, service.replicas)
    return converge(project, service, replicas, options.force_recreate, say)


@contextlib.contextmanager
def failure_of(name: str):
    """A failure of service ``name`` as the one line ``up`` ends with."""
    try:
        yield
    except MinidockerError as error:
        raise ServiceFailed(f"service {name!r} failed: {error} (the services started before "
                            "it keep running; 'compose down' removes them)") from None


def levels(project: Project, names: list[str]) -> list[list[str]]:
    """``names`` (in start order) grouped: each service one level above the highest of the
    services it needs among them."""
    level: dict[str, int] = {}
    for name in names:
        service = project.services[name]
        needs = [*service.depends_on, *(link.partition(":")[0] for link in service.links)]
        level[name] = 1 + max((level[n] for n in needs if n in level), default=-1)
    return [[n for n in names if level[n] == i] for i in range(max(level.values(), default=-1)
                                                                + 1)]


def side_by_side(calls: list) -> list[tuple[object, MinidockerError | None]]:
    """Run ``calls`` in threads; each one's result, or the MinidockerError it raised."""
    def attempt(call):
        try:
            return call(), None
        except MinidockerError as error:
            return None, error

    if len(calls) == 1:
        return [attempt(calls[0])]
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(attempt, calls))


def make_networks(project: Project, say: Say) -> None:
    from minidocker.network import networks, store

    used = {n for s in project.services.values() for n in s.networks}
    for key, spec in project.networks.items():
        if key in used and missing(store.find, spec, "network"):
            networks.create(spec.name, subnet=spec.subnet or None,
                            gateway=spec.gateway or None, internal=spec.internal,
                            labels={**spec.labels, PROJECT: project.name,
                                    convert.NETWORK: key})
            say(f" Network {spec.name}  Created")


def make_volumes(project: Project, say: Say) -> None:
    from minidocker import volumes

    for key, spec in project.volumes.items():
        if missing(volumes.get_volume, spec, "volume"):
            volumes.create_volume(spec.name, labels={**spec.labels, PROJECT: project.name,
                                                     convert.VOLUME: key},
                                  options=spec.driver_opts or None)
            say(f" Volume {spec.name}  Created")


def check_external(project: Project) -> None:
    """Every external network and volume exists, and every volume's ``driver_opts`` are the
    local driver's, before anything is made."""
    from minidocker import volumes
    from minidocker.network import store

    for spec in project.networks.values():
        if spec.external:
            missing(store.find, spec, "network")
    for key, spec in project.volumes.items():
        if spec.external:
            missing(volumes.get_volume, spec, "volume")
        try:
            volumes.check_driver_options(spec.driver_opts)
        except MinidockerError as exc:
            raise MinidockerError(f"volume {key}: driver_opts: {exc}") from None


def missing(find, spec, kind: str) -> bool:
    """Is it still to be made? An ``external`` one must exist already: Compose never makes
    it (nor removes it)."""
    try:
        find(spec.name)
        return False
    except NotFound:
        if spec.external:
            raise MinidockerError(f"{kind} {spec.name} is declared as external, but could not "
                                  f"be found: create it with 'minidocker {kind} create "
                                  f"{spec.name}'") from None
        return True


def orphans(project: Project, remove: bool, say: Say) -> None:
    """Containers of the project whose service is no longer in the file."""
    for record in containers(project.name, oneoff=False):
        service = record.Config.Labels.get(SERVICE)
        if service in project.services:
            continue
        if remove:
            remove_container(record, say)
        else:
            say(f"WARNING: Found orphan container {record.Name} of service {service!r}: "
                "remove it with --remove-orphans")


def converge(project: Project, service: Service, replicas: int, force: bool,
             say: Say) -> list[records.ContainerRecord]:
    """Make ``service`` have exactly ``replicas`` containers of its current configuration."""
    if service.container_name and replicas > 1:
        raise MinidockerError(f"service {service.name!r} has container_name "
                              f"{service.container_name!r}: a name can be given to one "
                              "container only, not scaled to {replicas}")
    current = {number(r): r for r in containers(project.name, [service.name])}
    wanted_hash, wanted_image = service.config_hash(), images.image_id(service.image)
    result = []
    for record in [r for n, r in current.items() if n > replicas]:
        remove_container(record, say)
    for n in range(1, replicas + 1):
        record = current.get(n)
        if record and not force and record.Image == wanted_image and \
                record.Config.Labels.get(convert.CONFIG_HASH) == wanted_hash:
            if record.status not in lifecycle.ACTIVE:
                start_container(record, say)
            else:
                say(f" Container {record.Name}  Running")
            result.append(record)
            continue
        if record:
            say(f" Container {record.Name}  Recreate")
            remove_container(record, say, quiet=True)
        record = create_container(project, service, n, say)
        start_container(record, say)
        result.append(record)
    return result


def create_container(project: Project, service: Service, n: int, say: Say,
                     oneoff: str = "") -> records.ContainerRecord:
    config, host = convert.container_request(project, service, n, bool(oneoff))
    check_addresses(project, service)
    record = create(config, host, convert.container_name(project, service, n, oneoff))
    say(f" Container {record.Name}  Created")
    return record


def check_addresses(project: Project, service: Service) -> None:
    """Each ``ipv4_address`` is a free host address of its network's subnet, before the
    container is made (dockerd checks it at create since API 1.44), so a typo costs no
    half-made container."""
    from minidocker.network import networks

    for key, options in service.networks.items():
        if options.ipv4_address:
            try:
                networks.check_address(project.networks[key].name, options.ipv4_address)
            except MinidockerError as error:
                raise MinidockerError(f"networks.{key}.ipv4_address: {error}") from None


def start_container(record: records.ContainerRecord, say: Say) -> None:
    """``start``: the container joins every network of the service before its process runs
    (they are in its HostConfig, convert.network_fields)."""
    lifecycle.start(record)
    say(f" Container {record.Name}  Started")


def remove_container(record: records.ContainerRecord, say: Say, quiet: bool = False,
                     volumes_too: bool = False) -> None:
    lifecycle.stop(record, record.Config.StopTimeout)
    lifecycle.rm(record.reload(), force=True, volumes_too=volumes_too)
    if not quiet:
        say(f" Container {record.Name}  Removed")


# --- waiting for a dependency's condition -------------------------------------------------------

def wait_for_dependencies(project: Project, service: Service, say: Say) -> None:
    for name, condition in service.depends_on.items():
        for record in containers(project.name, [name]):
            if condition == "service_healthy":
                wait_healthy(record, project.services[name], say)
            elif condition == "service_completed_successfully":
                wait_completed(record, say)


def wait_healthy(record: records.ContainerRecord, dependency: Service, say: Say) -> None:
    """Poll ``State.Health.Status`` (what ``inspect`` shows; the container's monitor runs the
    probes, container/health.py) until it is ``healthy``."""
    if dependency.healthcheck is None and not record.Config.Healthcheck:
        raise MinidockerError(f"container {record.Name} has no healthcheck configured: give "
                              f"service {dependency.name!r} a healthcheck")
    say(f" Container {record.Name}  Waiting")
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline:
        record = lifecycle.refresh(record.reload())
        health = (record.State.get("Health") or {}).get("Status")
        if health == "healthy":
            say(f" Container {record.Name}  Healthy")
            return
        if health == "unhealthy" or record.status not in lifecycle.ACTIVE:
            raise MinidockerError(f"dependency failed to start: container {record.Name} is "
                                  f"{health or record.status}")
        time.sleep(0.2)
    raise MinidockerError(f"container {record.Name} did not become healthy in "
                          f"{HEALTH_TIMEOUT} s")


def wait_completed(record: records.ContainerRecord, say: Say) -> None:
    code = lifecycle.wait(record)
    if code != 0:
        raise MinidockerError(f"service {record.Config.Labels.get(SERVICE)!r} didn't complete "
                              f"successfully: container {record.Name} exited with {code}")
    say(f" Container {record.Name}  Exited")


# --- down and the other verbs -------------------------------------------------------------------

def down(project_name: str, services: list[str] | None, say: Say, volumes_too: bool = False,
         remove_orphans: bool = False, images_to_remove: list[str] = ()) -> None:
    """Stop and remove the project's containers (``services`` in start order: the last
    started goes first), then its networks, and with ``volumes_too`` its named volumes —
    everything found by the project's label."""
    found = containers(project_name, oneoff=True)
    rank = {name: index for index, name in enumerate(services or [])}
    found.sort(key=lambda r: rank.get(r.Config.Labels.get(SERVICE), len(rank)), reverse=True)
    chosen = []
    for record in found:
        service = record.Config.Labels.get(SERVICE)
        if services is None or service in services or remove_orphans:
            chosen.append(record)
        else:
            say(f"WARNING: Found orphan container {record.Name} of service {service!r}: "
                "remove it with --remove-orphans")
    stop_all(chosen)
    for record in chosen:
        remove_container(record, say, volumes_too=volumes_too)
    remove_networks(project_name, say)
    if volumes_too:
        remove_volumes(project_name, say)
    for image in images_to_remove:
        remove_image(image, say)


def stop_all(containers: list[records.ContainerRecord]) -> None:
    """Stop them all at once, as Compose does: each stop may wait for its grace period."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda r: lifecycle.stop(r, r.Config.StopTimeout), containers))


def remove_networks(project_name: str, say: Say) -> None:
    from minidocker.network import networks, store

    for network in store.all_networks():
        if network.labels.get(PROJECT) == project_name:
            try:
                networks.remove(network.id)
                say(f" Network {network.name}  Removed")
            except MinidockerError as error:
                say(f"WARNING: network {network.name} kept: {error}")


def remove_volumes(project_name: str, say: Say) -> None:
    from minidocker import volumes

    with records.volume_users_held() as users:
        for volume in volumes.list_volumes():
            if volume.Labels.get(PROJECT) == project_name:
                volumes.remove_volume(volume.Name, users)
                say(f" Volume {volume.Name}  Removed")


def remove_image(name: str, say: Say) -> None:
    from minidocker.image.verbs import remove_image as rmi

    with records.all_locked():
        try:
            rmi(name, False, records.images_in_use())
            say(f" Image {name}  Removed")
        except NotFound:
            pass
        except MinidockerError as error:
            say(f"WARNING: image {name} kept: {error}")


def run_oneoff(project: Project, service: Service, command: list[str] | None, env: list[str],
               remove: bool, say: Say) -> records.ContainerRecord:
    """``compose run``: a one-off container of the service (its dependencies started first),
    named ``<project>-<service>-run-<id>``, labelled ``oneoff=True``."""
    import secrets

    if service.depends_on:
        up(project, UpOptions(services=list(service.depends_on)), say)
        wait_for_dependencies(project, service, say)
    images.ensure(service, False, say)
    config, host = convert.container_request(project, service, 1, oneoff=True)
    if command:
        config.Cmd = command
    config.Env += env
    config.Tty = config.OpenStdin = False
    host.AutoRemove, host.PortBindings = remove, []
    if remove:
        host.RestartPolicy = RestartPolicy()
    check_addresses(project, service)
    name = convert.container_name(project, service, 1, secrets.token_hex(6))
    return create(config, host, name)
