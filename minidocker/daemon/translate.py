"""From the JSON of ``POST /containers/create`` to the engine's typed ``Config`` and
``HostConfig``: the one place where the daemon reads a container's configuration.

The body is Docker's ``ContainerConfig`` with two more objects inside, ``HostConfig`` and
``NetworkingConfig``. Most fields keep their name and meaning in minidocker's dataclasses
(container/config.py); a few arrive in another shape and are translated here:

* ``NetworkMode`` "" or "default" is the default bridge (dockerd's default; the Python API's
  own default is ``none``);
* ``Config.Volumes`` (``-v /data``) become anonymous volumes, like ``Binds`` without a source;
* ``Mounts`` arrive as objects (``{"Type", "Source", "Target", "ReadOnly", "BindOptions",
  "VolumeOptions", "TmpfsOptions"}``), ``Tmpfs`` as ``{path: options}``, ``Devices`` as
  ``{"PathOnHost", "PathInContainer", "CgroupPermissions"}``: each becomes the flag text the
  engine parses (``--mount``, ``--tmpfs``, ``--device``), so both front ends go through one
  parser;
* the limits are flat (``Memory``, ``NanoCpus``...) and are checked as ``-m``/``--cpus`` are;
* ``CapAdd``/``CapDrop``/``Privileged``/``SecurityOpt`` become stage 9's options.

A field that Docker knows and minidocker does not implement (``Shell``, ``OnBuild``...)
is accepted when empty and reported in the answer's ``Warnings`` when set; a field that is not
Docker's at all, or has the wrong type, is a 400 that names it.

Spec: Docker Engine API v1.50, "ContainerCreate" (ContainerConfig, HostConfig,
NetworkingConfig, Mount). Model: moby ``runconfig/config.go`` (decodeContainerConfig).
"""

from minidocker import volumes
from minidocker.cgroups import build_limits
from minidocker.cgroups.limits import parse_bytes
from minidocker.container import health
from minidocker.container.config import (
    CgroupnsMode,
    Config,
    HostConfig,
    IpcMode,
    NetworkMode,
    PidMode,
    RestartPolicy,
    UsernsMode,
    UTSMode,
    check_cgroup_parent,
    check_runtime,
)
from minidocker.container.networking import fixed_address
from minidocker.daemon import shapes
from minidocker.daemon.errors import ApiError
from minidocker.errors import MinidockerError

# The fields of ContainerConfig and HostConfig (shapes.py) that minidocker accepts and
# ignores: empty, or reported in Warnings; the client-side ones silently.
CONFIG_IGNORED = {"Domainname", "AttachStdin", "AttachStdout", "AttachStderr", "ArgsEscaped",
                  "OnBuild", "NetworkDisabled", "MacAddress", "Shell"}
CLIENT_SIDE = {"AttachStdin", "AttachStdout", "AttachStderr", "ArgsEscaped", "Domainname"}
HOST_IGNORED = {"ContainerIDFile", "VolumeDriver", "Annotations", "DnsOptions", "Cgroup",
                "OomScoreAdj", "StorageOpt", "ShmSize", "Sysctls", "Isolation",
                "MaskedPaths", "ReadonlyPaths", "BlkioWeight",
                "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps",
                "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "CpuRealtimePeriod",
                "CpuRealtimeRuntime", "CpusetMems", "DeviceCgroupRules", "DeviceRequests",
                "KernelMemory", "KernelMemoryTCP", "MemoryReservation", "MemorySwappiness",
                "OomKillDisable", "Ulimits", "CpuCount", "CpuPercent", "IOMaximumIOps",
                "IOMaximumBandwidth"}


def container_request(body: dict, log_default: dict | None = None,
                      ) -> tuple[Config, HostConfig, list[str]]:
    """``(Config, HostConfig, warnings)`` from a create body; a bad field is an ApiError.
    ``log_default`` is the daemon's LogConfig (daemon.json) for a body without one."""
    check_shape("HostConfig", body.get("HostConfig"), shapes.HOST_CONFIG)
    check_shape("NetworkingConfig", body.get("NetworkingConfig"), shapes.NETWORKING_CONFIG)
    host_body = body.get("HostConfig") or {}
    networking = body.get("NetworkingConfig") or {}
    config_body = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
    check_shape("Config", config_body, shapes.CONFIG)
    warnings = ignored_fields("Config", config_body, CONFIG_IGNORED - CLIENT_SIDE)
    warnings += ignored_fields("HostConfig", host_body, HOST_IGNORED)
    try:
        config, host = config_of(config_body), host_config_of(host_body, networking)
        if log_default:
            host.LogConfig = with_log_default(host_body.get("LogConfig") or {}, log_default)
    except ApiError:
        raise
    except MinidockerError as exc:  # the engine's parsers said what is wrong: a bad request
        raise ApiError(str(exc)) from None
    taken = targets(host)  # docker-compose names a volume in both Binds and Config.Volumes
    host.Binds += [path for path in config_body.get("Volumes") or {}  # -v /data: anonymous
                   if path.rstrip("/") not in taken]
    return config, host, warnings


def targets(host: HostConfig) -> set[str]:
    """The container paths that Binds (``src:dst[:opts]`` or ``dst``) and Mounts fill."""
    binds = {(bind.split(":")[1] if ":" in bind else bind).rstrip("/") for bind in host.Binds}
    return binds | {mount_object(text)["Target"].rstrip("/") for text in host.Mounts}


def check_shape(section: str, data, shape: dict) -> None:
    """The body's part ``section`` has Docker's fields only, each of its Go type (shapes.py)."""
    shapes.check(section, data, shape)
    unknown = sorted(set(data or {}) - set(shape))
    if unknown:
        raise ApiError(f"unknown field{'s' if len(unknown) > 1 else ''} in {section}: "
                       f"{', '.join(unknown)}")


def ignored_fields(section: str, data: dict, ignored: set) -> list[str]:
    """The Warnings for the fields Docker knows and minidocker ignores, when they are set."""
    return [f"{section}.{name} is not supported by minidocker and was ignored"
            for name in sorted(ignored) if data.get(name) not in (None, "", 0, -1, False, [], {})]


def config_of(body: dict) -> Config:
    image = body.get("Image") or ""
    if not image:
        raise ApiError("Config.Image is empty: name the image to run")
    return Config(
        Image=image, Cmd=strings(body.get("Cmd")), Entrypoint=strings(body.get("Entrypoint")),
        Env=list(body.get("Env") or []), WorkingDir=body.get("WorkingDir") or "",
        User=body.get("User") or "", Hostname=body.get("Hostname") or "",
        Tty=bool(body.get("Tty")), OpenStdin=bool(body.get("OpenStdin")),
        StdinOnce=bool(body.get("StdinOnce")), StopSignal=body.get("StopSignal") or "",
        StopTimeout=body.get("StopTimeout"), ExposedPorts=dict(body.get("ExposedPorts") or {}),
        Labels={str(k): str(v) for k, v in (body.get("Labels") or {}).items()},
        Healthcheck=healthcheck(body.get("Healthcheck")))


def healthcheck(body: dict | None) -> dict | None:
    """``Config.Healthcheck``: a test Docker knows, durations that are whole nanoseconds."""
    if not body:
        return None
    check = health.HealthConfig.from_dict(body)
    if check.Test and check.Test[0] not in ("NONE", "CMD", "CMD-SHELL"):
        raise ApiError(f"invalid Healthcheck.Test {list(check.Test)}: it starts with NONE, "
                       "CMD or CMD-SHELL")
    if check.Test[:1] in (("CMD",), ("CMD-SHELL",)) and len(check.Test) < 2:
        raise ApiError(f"invalid Healthcheck.Test {list(check.Test)}: give the command")
    for name in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
        if getattr(check, name) < 0:
            raise ApiError(f"Healthcheck.{name} cannot be negative")
    return check.to_dict()


def strings(value) -> list[str] | None:
    """Docker's StrSlice: null, one string, or a list of strings."""
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def host_config_of(body: dict, networking: dict) -> HostConfig:
    from minidocker import security
    from minidocker.security.devices import parse_device

    host = HostConfig.from_dict({  # the field whose shape is already minidocker's
        "RestartPolicy": restart_policy(body.get("RestartPolicy") or {}),
    })
    host.PortBindings = port_bindings(body.get("PortBindings") or {})
    mode = NetworkMode.parse(body.get("NetworkMode") or "default")
    host.NetworkMode = mode
    host.IpcMode = IpcMode.parse(body.get("IpcMode"))
    host.PidMode = PidMode.parse(body.get("PidMode"))
    host.UTSMode = UTSMode.parse(body.get("UTSMode"))
    host.UsernsMode = UsernsMode.parse(body.get("UsernsMode"))
    host.CgroupnsMode = CgroupnsMode.parse(body.get("CgroupnsMode"))
    if host.UsernsMode.is_private:
        raise ApiError("HostConfig.UsernsMode 'private' is not served by the daemon yet; use "
                       "minidocker's CLI (--userns private)")
    host.Binds = list(body.get("Binds") or [])
    host.Mounts = [mount_flag(m) for m in body.get("Mounts") or []]
    host.Tmpfs = [f"{path}:{options}" if options else path
                  for path, options in (body.get("Tmpfs") or {}).items()]
    host.VolumesFrom = list(body.get("VolumesFrom") or [])
    host.AutoRemove = bool(body.get("AutoRemove"))
    host.ReadonlyRootfs = bool(body.get("ReadonlyRootfs"))
    host.Init = bool(body.get("Init"))
    host.PublishAllPorts = bool(body.get("PublishAllPorts"))
    host.Links = list(body.get("Links") or [])
    host.Dns = list(body.get("Dns") or [])
    host.DnsSearch = list(body.get("DnsSearch") or [])
    host.ExtraHosts = list(body.get("ExtraHosts") or [])
    host.NetworkAliases = aliases(networking, mode)
    host.IPAMConfig = ipam_config(networking, mode)
    host.MoreNetworks = more_networks(networking, mode)
    host.MoreIPAMConfig = more_ipam_config(networking, mode)
    log_config = body.get("LogConfig") or {}  # checked by create (json-file, local, none)
    host.LogConfig = {"Type": log_config.get("Type") or "json-file",
                      "Config": dict(log_config.get("Config") or {})}
    host.Resources = limits(body)
    host.Devices = [parse_device(device_flag(d)) for d in body.get("Devices") or []]
    host.CapAdd, host.CapDrop = strings(body.get("CapAdd")) or [], strings(
        body.get("CapDrop")) or []
    host.Privileged, host.SecurityOpt = bool(body.get("Privileged")), list(
        body.get("SecurityOpt") or [])
    host.GroupAdd = list(body.get("GroupAdd") or [])
    try:
        host.Runtime = check_runtime(body.get("Runtime") or "minidocker")
        host.CgroupParent = check_cgroup_parent(body.get("CgroupParent") or "")
    except MinidockerError as exc:
        raise ApiError(str(exc)) from None
    host.Security = security.parse_security_opts(host.SecurityOpt, cap_add=host.CapAdd,
                                                 cap_drop=host.CapDrop,
                                                 privileged=host.Privileged)
    return host


def port_bindings(body: dict) -> list:
    """``PortBindings`` (``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}``) read as the
    ``-p`` text each binding is (``8080:80/tcp``), by the engine's one parser of it."""
    from minidocker.network import ports

    bindings = []
    for port, wanted in body.items():
        for binding in wanted:
            ip, host_port = binding.get("HostIp") or "", binding.get("HostPort") or ""
            spec = (f"{ip}:{host_port}:{port}" if ip else
                    f"{host_port}:{port}" if host_port else port)
            try:
                bindings += ports.parse_publish(spec)
            except MinidockerError as exc:
                raise ApiError(f'invalid HostConfig.PortBindings["{port}"]: {exc}') from None
    return bindings


def restart_policy(body: dict) -> dict:
    name = body.get("Name") or "no"
    count = body.get("MaximumRetryCount") or 0
    return vars(RestartPolicy.parse(f"{name}:{count}" if count else name))


def aliases(networking: dict, mode: NetworkMode) -> list[str]:
    """``--network-alias``: the Aliases of the endpoint for the container's network."""
    endpoints = networking.get("EndpointsConfig") or {}
    endpoint = endpoints.get(str(mode)) or endpoints.get(mode.network) or {}
    return list(endpoint.get("Aliases") or [])


def ipam_config(networking: dict, mode: NetworkMode) -> dict:
    """``--ip``: the IPAMConfig of the endpoint for the container's network."""
    endpoints = networking.get("EndpointsConfig") or {}
    return endpoint_ipam(endpoints.get(str(mode)) or endpoints.get(mode.network) or {})


def endpoint_ipam(endpoint) -> dict:
    """An endpoint's ``IPAMConfig`` as the engine keeps it: ``{"IPv4Address": ...}`` or {}
    (checked when the endpoint is made: inside the subnet, not taken)."""
    wanted = (endpoint.get("IPAMConfig") or {}) if isinstance(endpoint, dict) else {}
    return {"IPv4Address": str(wanted["IPv4Address"])} if wanted.get("IPv4Address") else {}


def other_endpoints(networking: dict, mode: NetworkMode) -> dict[str, dict]:
    """The endpoints of ``NetworkingConfig`` beyond NetworkMode's (API 1.44+ creates a
    container on several networks), in the order given."""
    endpoints = networking.get("EndpointsConfig") or {}
    if not isinstance(endpoints, dict):
        raise ApiError("invalid NetworkingConfig.EndpointsConfig: expected an object")
    return {str(name): endpoint or {} for name, endpoint in endpoints.items()
            if name not in (str(mode), mode.network, "default")  # "default": bridge's name
            and isinstance(endpoint, dict | None)}


def more_networks(networking: dict, mode: NetworkMode) -> dict[str, list[str]]:
    """The other networks and their aliases: joined after NetworkMode's at each start."""
    return {name: [str(a) for a in endpoint.get("Aliases") or []]
            for name, endpoint in other_endpoints(networking, mode).items()}


def more_ipam_config(networking: dict, mode: NetworkMode) -> dict[str, dict]:
    """The other networks' fixed addresses (a swarm task's, given by the manager)."""
    return {name: endpoint_ipam(endpoint)
            for name, endpoint in other_endpoints(networking, mode).items()
            if endpoint_ipam(endpoint)}


def with_log_default(given: dict, default: dict) -> dict:
    """moby's ``mergeAndVerifyLogConfig``: a request without a driver gets the daemon's, and
    for the daemon's driver its options fill those the request left out — the request's own
    (``docker run --log-opt max-size=1m``, which sends no driver) are kept, and checked."""
    driver = given.get("Type") or default.get("Type") or "json-file"
    options = dict(given.get("Config") or {})
    if driver == default.get("Type"):
        options = {**(default.get("Config") or {}), **options}
    return {"Type": driver, "Config": options}


def mount_flag(mount) -> str:
    """A Mount object as the ``--mount`` text the engine parses (CSV, as the docker CLI reads
    it: a value with commas, such as a volume's ``o=size=1m,uid=1000``, is quoted)."""
    fields = [f"type={mount.get('Type') or 'volume'}"]
    if mount.get("Source"):
        fields.append(f"source={mount['Source']}")
    fields.append(f"target={mount.get('Target') or ''}")
    if mount.get("ReadOnly"):
        fields.append("readonly")
    if mount.get("Consistency"):  # a Docker Desktop hint, accepted and ignored as on Linux
        fields.append(f"consistency={mount['Consistency']}")
    binds = bind_fields(mount.get("BindOptions") or {}, bool(mount.get("ReadOnly")))
    return volumes.mount_text([*fields, *binds, *volume_fields(mount.get("VolumeOptions") or {}),
                               *tmpfs_fields(mount.get("TmpfsOptions") or {})])


# What minidocker's mounts cannot do, and why: such a field is refused, never dropped.
BIND_REFUSED = {
    "NonRecursive": "a bind takes the mounts below its source too (MS_BIND|MS_REC)",
    "ReadOnlyNonRecursive": "a read-only bind is read-only all the way down, its submounts too",
    "CreateMountpoint": "the source must exist: create it first, or use Binds (-v), which "
                        "creates it"}
VOLUME_REFUSED = {  # dropped, a Subpath would mount the whole volume
    "Subpath": "mount the whole volume, or bind its directory (Type bind)"}
TMPFS_REFUSED = {"Options": "a tmpfs mount takes SizeBytes and Mode only (nosuid,nodev)"}


def refuse_unsupported(where: str, options: dict, refused: dict[str, str]) -> None:
    """A 400 for the first field of ``refused`` that ``options`` sets, saying why."""
    for name, why in refused.items():
        if options.get(name):
            raise ApiError(f"{where}.{name} is not supported by minidocker: {why}")


def bind_fields(options: dict, read_only: bool) -> list[str]:
    """``BindOptions``: ``Propagation`` as ``bind-propagation`` (which the engine accepts only
    private or rprivate); ``ReadOnlyForceRecursive`` is what minidocker does anyway (with
    ``ReadOnly``, which moby requires for it); the others it does not do are a 400 that says
    so."""
    refuse_unsupported("HostConfig.Mounts[].BindOptions", options, BIND_REFUSED)
    if options.get("ReadOnlyForceRecursive") and not read_only:
        raise ApiError("HostConfig.Mounts[].BindOptions.ReadOnlyForceRecursive requires "
                       "ReadOnly to be true: set it, or leave the option out")
    propagation = options.get("Propagation")
    return [f"bind-propagation={propagation}"] if propagation else []


def volume_fields(options: dict) -> list[str]:
    """``VolumeOptions`` (``NoCopy``, ``Labels``, ``DriverConfig.Name`` and ``.Options``): a
    volume that does not exist yet is made with them, as ``--mount volume-opt=`` does.
    ``Subpath`` (API 1.45) is refused."""
    refuse_unsupported("HostConfig.Mounts[].VolumeOptions", options, VOLUME_REFUSED)
    driver = options.get("DriverConfig") or {}
    return [*(["volume-nocopy"] if options.get("NoCopy") else []),
            *([f"volume-driver={driver['Name']}"] if driver.get("Name") else []),
            *(f"volume-opt={k}={v}" for k, v in (driver.get("Options") or {}).items()),
            *(f"volume-label={k}={v}" for k, v in (options.get("Labels") or {}).items())]


def tmpfs_fields(options: dict) -> list[str]:
    """``TmpfsOptions``: ``SizeBytes`` and ``Mode`` (a number; ``tmpfs-mode`` is octal).
    ``Options`` (API 1.46, mount flags such as ``[["exec"]]``) is refused, never dropped."""
    refuse_unsupported("HostConfig.Mounts[].TmpfsOptions", options, TMPFS_REFUSED)
    return [*([f"tmpfs-size={options['SizeBytes']}"] if options.get("SizeBytes") else []),
            *([f"tmpfs-mode={options['Mode']:o}"] if options.get("Mode") else [])]


def device_flag(device) -> str:
    if not (device or {}).get("PathOnHost"):
        raise ApiError("invalid HostConfig.Devices: each device needs PathOnHost")
    return ":".join([device["PathOnHost"],
                     device.get("PathInContainer") or device["PathOnHost"],
                     device.get("CgroupPermissions") or "rwm"])


def limits(body: dict):
    """The flat limits, checked as the CLI's ``-m``, ``--cpus``... are (0: no limit)."""
    def text(name: str) -> str | None:
        value = body.get(name)
        return str(value) if value not in (None, 0, "") else None

    nano = body.get("NanoCpus") or 0
    return build_limits(text("Memory"), text("MemorySwap"),
                        str(nano / 1e9) if nano else None, text("CpuShares"),
                        text("CpuPeriod"), text("CpuQuota"), text("CpusetCpus"),
                        text("PidsLimit") if (body.get("PidsLimit") or 0) > 0 else None)


# --- and back: the HostConfig of ``inspect`` in Docker's shapes ------------------------------

def docker_host_config(host: HostConfig) -> dict:
    """``HostConfig.to_dict()`` with the three fields whose shape differs from the flags'
    text put back in Docker's: ``Tmpfs`` a map, ``Mounts`` and ``Devices`` objects (the
    docker CLI decodes these into typed Go structs and fails on any other shape)."""
    data = host.to_dict()
    data["Tmpfs"] = dict(item.partition(":")[::2] for item in host.Tmpfs)
    data["Mounts"] = [mount_object(text) for text in host.Mounts]
    data["Devices"] = [{"PathOnHost": d.host_path, "PathInContainer": d.container_path,
                        "CgroupPermissions": d.permissions} for d in host.Devices]
    return data


def mount_object(text: str) -> dict:
    """``type=bind,source=/a,target=/b,readonly`` as Docker's Mount object, with the
    ``BindOptions``, ``VolumeOptions`` and ``TmpfsOptions`` it was given (their empty parts
    left out, as dockerd's JSON does)."""
    keys = {"type": "Type", "source": "Source", "src": "Source", "target": "Target",
            "destination": "Target", "dst": "Target"}
    mount = {"Type": "volume", "Source": "", "Target": "", "ReadOnly": False}
    options, driver, tmpfs, bind = {}, {}, {}, {}
    for part in volumes.mount_fields(text):
        key, _, value = part.partition("=")
        name, _, setting = value.partition("=")
        if key in keys:
            mount[keys[key]] = value
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = value in ("", "1", "true")
        elif key == "volume-nocopy":
            options["NoCopy"] = value in ("", "1", "true")
        elif key == "volume-label":
            options.setdefault("Labels", {})[name] = setting
        elif key == "volume-driver":
            driver["Name"] = value
        elif key == "volume-opt":
            driver.setdefault("Options", {})[name] = setting
        elif key == "tmpfs-size":
            tmpfs["SizeBytes"] = parse_bytes("tmpfs-size", value)
        elif key == "tmpfs-mode":
            tmpfs["Mode"] = int(value, 8)
        elif key == "bind-propagation":
            bind["Propagation"] = value
        elif key == "consistency":
            mount["Consistency"] = value
    if driver:
        options["DriverConfig"] = driver
    return {**mount, **({"BindOptions": bind} if bind else {}),
            **({"VolumeOptions": options} if options else {}),
            **({"TmpfsOptions": tmpfs} if tmpfs else {})}


# What dockerd answers in ``inspect`` for what minidocker does not model: the same keys with
# Docker's zero values, so a client that reads them finds them with the type it expects
# (tests/test_daemon_vs_dockerd.py compares both daemons key by key).
CONTAINER_ZERO = {"MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None}
CONFIG_ZERO = {"AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
               "OnBuild": None}
HOST_ZERO = {"ContainerIDFile": "", "VolumeDriver": "", "DnsOptions": [], "Cgroup": "",
             "Runtime": "runc", "ConsoleSize": [0, 0], "Isolation": "",
             "BlkioWeightDevice": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [],
             "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "DeviceCgroupRules": None,
             "DeviceRequests": None, "KernelMemory": 0, "KernelMemoryTCP": 0, "CpuCount": 0,
             "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0}
SETTINGS_ZERO = {"Bridge": "", "SandboxID": "", "HairpinMode": False,
                 "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
                 "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
                 "EndpointID": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                 "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": ""}
ENDPOINT_ZERO = {"Links": None, "EndpointID": "", "IPv6Gateway": "", "GlobalIPv6Address": "",
                 "GlobalIPv6PrefixLen": 0, "DriverOpts": None}


def docker_container(record, data: dict) -> dict:
    """Complete a container's inspect JSON with dockerd's keys: the files bind-mounted over
    /etc (``ResolvConfPath``...), the overlay's directories (``GraphDriver``), the paths the
    container cannot see (``MaskedPaths``), the legacy top-level network fields (filled by
    Docker from the container's first network) and the zero values of the rest."""
    from minidocker.rootfs import MASKED_PATHS, READONLY_PATHS

    directory = record.directory
    for key, name in (("ResolvConfPath", "resolv.conf"), ("HostnamePath", "hostname"),
                      ("HostsPath", "hosts")):
        data[key] = str(directory / name) if (directory / name).exists() else ""
    data["GraphDriver"] = {"Name": "overlay2", "Data": {
        "LowerDir": ":".join(record.Config.LowerDirs), "UpperDir": str(directory / "upper"),
        "WorkDir": str(directory / "work"), "MergedDir": str(directory / "merged")}}
    privileged = record.HostConfig.Privileged
    data["HostConfig"] = {**HOST_ZERO, "MaskedPaths": [] if privileged else list(MASKED_PATHS),
                          "ReadonlyPaths": [] if privileged else list(READONLY_PATHS),
                          **data["HostConfig"]}
    data["Config"] = {**CONFIG_ZERO, **data["Config"]}
    settings = data.setdefault("NetworkSettings", {})
    networks = settings.get("Networks") or planned_network(record)
    first = next(iter(networks.values()), {})
    pid = record.State.get("Pid")
    data["NetworkSettings"] = {
        **SETTINGS_ZERO, "IPPrefixLen": first.get("IPPrefixLen", 0),
        "MacAddress": first.get("MacAddress", ""),
        "SandboxKey": f"/proc/{pid}/ns/net" if pid else "", **settings,
        "Networks": docker_endpoints(networks)}
    return {**CONTAINER_ZERO, **data}


def docker_endpoints(networks: dict) -> dict:
    """``NetworkSettings.Networks`` with every key of dockerd's EndpointSettings."""
    return {name: {**ENDPOINT_ZERO, **endpoint} for name, endpoint in networks.items()}


def planned_network(record) -> dict:
    """The networks a container that never started will join, as dockerd shows them: their
    names and the aliases asked for, no address yet."""
    host = record.HostConfig
    if record.State.get("StartedAt") or not host.NetworkMode.is_bridge:
        return {}
    planned = {host.NetworkMode.network: host.NetworkAliases, **host.MoreNetworks}
    return {name: {"Aliases": list(aliases), "NetworkID": "",
                   "IPAMConfig": fixed_address(host, name) or None,
                   "IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": ""}
            for name, aliases in planned.items()}
