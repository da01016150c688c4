"""The flags of ``run`` and ``create`` become the container's typed configuration: Docker's
``Config`` (what runs) and ``HostConfig`` (how this host runs it), see container/config.py.
Each flag is parsed and checked here, once, before anything is made; the engine never sees
a raw flag. What the docker CLI does on the client side happens here too: ``--env-file`` is
read and ``-e KEY`` takes KEY from this environment.

The options of stages 8 (network) and 9 (security), and the ones Docker users reach for after
the basics (labels, ulimits, sysctls, the rest of the cgroup knobs, the log driver...), are
declared in this module, so that the lifecycle's own list (cli/lifecycle.py) does not grow
with every stage.

Spec: the docker CLI reference for ``docker run``; the Engine API's ContainerCreate body."""

import os
import re
import sys

import click

from minidocker.errors import MinidockerError

OPTIONS = [
    click.option("--cap-add", multiple=True, metavar="CAP", help="Add a Linux capability."),
    click.option("--cap-drop", multiple=True, metavar="CAP",
                 help="Drop a Linux capability (ALL drops every one)."),
    click.option("--privileged", is_flag=True, help="Give every capability, no seccomp, "
                 "writable /sys and all devices (dangerous: see notebook 09)."),
    click.option("--security-opt", multiple=True, metavar="OPT",
                 help="no-new-privileges, seccomp=unconfined, seccomp=PROFILE.json."),
    click.option("--group-add", multiple=True, metavar="GROUP",
                 help="Add a supplementary group (name from the image, or a GID)."),
    click.option("--device", multiple=True, metavar="HOST[:CTR][:rwm]",
                 help="Give the container a host device."),
    click.option("--ipc", metavar="MODE", help="IPC namespace: private (default), host, "
                 "container:NAME."),
    click.option("--pid", metavar="MODE", help="PID namespace: host or container:NAME."),
    click.option("--uts", metavar="MODE", help="UTS namespace: host."),
    click.option("--userns", metavar="MODE", help="host (default) or private: root inside "
                 "is an unprivileged user on the host."),
    click.option("--uidmap", metavar="CTR:HOST:COUNT", help="The map of --userns private "
                 "(default 0:100000:65536)."),
    click.option("--cgroupns", metavar="MODE", help="Cgroup namespace: private (default) or "
                 "host."),
]
MORE_OPTIONS = [
    click.option("-l", "--label", "labels", multiple=True, metavar="KEY=VALUE",
                 help="Set metadata on the container."),
    click.option("--label-file", multiple=True, metavar="FILE",
                 help="Read labels from a file (KEY=VALUE lines)."),
    click.option("--domainname", metavar="NAME", help="Container NIS domain name."),
    click.option("--ulimit", "ulimits", multiple=True, metavar="NAME=SOFT[:HARD]",
                 help="A resource limit, e.g. nofile=1024:2048 (setrlimit)."),
    click.option("--sysctl", "sysctls", multiple=True, metavar="NAME=VALUE",
                 help="A namespaced kernel parameter, e.g. net.ipv4.ip_forward=1."),
    click.option("--shm-size", metavar="BYTES", help="Size of /dev/shm (default 64m)."),
    click.option("--oom-score-adj", metavar="N", help="OOM preference, -1000 to 1000."),
    click.option("--memory-reservation", metavar="BYTES", help="Memory soft limit."),
    click.option("--memory-swappiness", metavar="N", help="Swappiness, 0 to 100 (-1: the "
                 "host's)."),
    click.option("--oom-kill-disable", is_flag=True, help="Do not OOM-kill it: over -m, it "
                 "waits for memory."),
    click.option("--blkio-weight", metavar="N", help="Block IO weight, 10 to 1000."),
    click.option("--device-read-bps", multiple=True, metavar="DEVICE:RATE",
                 help="Limit read rate from a block device (e.g. /dev/vda:1mb)."),
    click.option("--device-write-bps", multiple=True, metavar="DEVICE:RATE",
                 help="Limit write rate to a block device."),
    click.option("--cpuset-mems", metavar="LIST", help="Memory nodes it may use (0-1, 0,2)."),
    click.option("--cgroup-parent", metavar="PATH", help="Parent cgroup for the container "
                 "(default minidocker)."),
    click.option("--runtime", default="minidocker", metavar="NAME", help="Who starts the "
                 "container: minidocker (default) or runc, from an OCI bundle."),
    click.option("--log-driver", default="json-file", metavar="DRIVER",
                 help="json-file (default), local or none."),
    click.option("--pull", default="missing", metavar="WHEN",
                 help="missing (default), never or always (needs a registry)."),
    click.option("--platform", metavar="OS/ARCH", help="Platform of the image (this "
                 "machine's)."),
    click.option("--health-cmd", metavar="COMMAND", help="Command to run to check health "
                 "(a shell line, run inside the container)."),
    click.option("--health-interval", metavar="DURATION", help="Time between running the "
                 "check (ms|s|m|h, default 30s)."),
    click.option("--health-timeout", metavar="DURATION", help="Maximum time to allow one "
                 "check to run (default 30s)."),
    click.option("--health-retries", type=int, metavar="N", help="Consecutive failures "
                 "needed to report unhealthy (default 3)."),
    click.option("--health-start-period", metavar="DURATION", help="Start period for the "
                 "container to initialize before failures count (default 0s)."),
    click.option("--health-start-interval", metavar="DURATION", help="Time between checks "
                 "during the start period (default 5s)."),
    click.option("--no-healthcheck", is_flag=True, help="Disable any container-specified "
                 "HEALTHCHECK."),
]
NETWORK_OPTIONS = [
    click.option("--network", "--net", "network", default="bridge", metavar="NETWORK",
                 help="bridge (default: minidocker0), none, host, container:NAME, or a "
                      "network made with 'network create'."),
    click.option("-p", "--publish", multiple=True, metavar="[IP:]HOST:CTR[/udp]",
                 help="Publish a container's port on the host (needs a bridge network)."),
    click.option("-P", "--publish-all", is_flag=True, help="Publish every exposed port to a "
                 "free host port."),
    click.option("--expose", multiple=True, metavar="PORT[/PROTO]", help="Expose a port."),
    click.option("--network-alias", multiple=True, metavar="NAME",
                 help="Another name the container has on its user network."),
    click.option("--link", multiple=True, metavar="NAME[:ALIAS]",
                 help="Add a hosts entry for another container (default bridge)."),
    click.option("--dns", multiple=True, metavar="IP", help="A DNS server for resolv.conf."),
    click.option("--dns-search", multiple=True, metavar="DOMAIN", help="A search domain."),
    click.option("--add-host", multiple=True, metavar="NAME:IP", help="Add a hosts entry."),
    click.option("--ip", metavar="IPv4", help="The container's address on a user network."),
    click.option("--mac-address", metavar="MAC", help="The container's MAC address."),
]
OPTIONS += NETWORK_OPTIONS + MORE_OPTIONS


def later_stage_options(command):
    for option in reversed(OPTIONS):
        command = option(command)
    return command


def container_request(o: dict):
    """``(Config, HostConfig, name)`` from the flags of run/create (a bad flag fails here)."""
    from minidocker.cgroups import build_limits
    from minidocker.container import health
    from minidocker.container.config import Config, HostConfig, RestartPolicy

    check_pull(o["pull"])
    check_platform(o["platform"])
    config = Config(
        Image=o["image"], Cmd=list(o["command"]) or None,
        Entrypoint=None if o["entrypoint"] is None else [o["entrypoint"]],
        Env=client_env([line for path in o["env_file"] for line in read_env_file(path)]
                       + list(o["env"])),
        WorkingDir=o["workdir"] or "", User=check_user(o["user"] or ""),
        Hostname=check_hostname(o["hostname"] or ""),
        Domainname=check_hostname(o["domainname"] or "", "--domainname"),
        Tty=o["tty"], OpenStdin=o["interactive"], StopSignal=o["stop_signal"] or "",
        StopTimeout=o["stop_timeout"], ExposedPorts=exposed_ports(o["expose"]),
        Labels=labels(o["labels"], o["label_file"]),
        MacAddress=check_mac(o["mac_address"] or ""),
        Healthcheck=health.from_flags(o["health_cmd"], o["health_interval"],
                                      o["health_timeout"], o["health_start_period"],
                                      o["health_start_interval"], o["health_retries"],
                                      o["no_healthcheck"]))
    host = HostConfig(
        Binds=list(o["volumes"]), Mounts=list(o["mounts"]), Tmpfs=list(o["tmpfs"]),
        VolumesFrom=list(o["volumes_from"]), AutoRemove=o["remove"], Init=o["init"],
        ReadonlyRootfs=o["readonly"], RestartPolicy=RestartPolicy.parse(o["restart"]),
        LogConfig={"Type": o["log_driver"], "Config": log_opts(o["log_opts"])},
        Resources=build_limits(o["memory"], o["memory_swap"], o["cpus"], o["cpu_shares"],
                               o["cpu_period"], o["cpu_quota"], o["cpuset_cpus"],
                               o["pids_limit"], o["memory_reservation"],
                               o["memory_swappiness"], o["oom_kill_disable"],
                               o["cpuset_mems"], o["blkio_weight"], o["device_read_bps"],
                               o["device_write_bps"]),
        **network_config(o), **security_config(o), **process_config(o))
    warn_about_limits(host.Resources)
    return config, host, o["name"]


def process_config(o: dict) -> dict:
    """The process's own knobs (rlimits, sysctls, OOM score, /dev/shm) and its cgroup's
    place, as HostConfig fields."""
    from minidocker.cgroups.limits import parse_bytes
    from minidocker.container import tunables
    from minidocker.container.config import check_cgroup_parent, check_runtime

    shm = parse_bytes("--shm-size", o["shm_size"]) if o["shm_size"] else 64 * 2**20
    if shm <= 0:
        raise MinidockerError(f"invalid value '{o['shm_size']}' for --shm-size: give a size "
                              "above 0, e.g. 128m")
    ulimits = {u["Name"]: u for u in map(tunables.parse_ulimit, o["ulimits"])}  # last wins
    return {"Ulimits": list(ulimits.values()),
            "Sysctls": dict(tunables.parse_sysctl(spec) for spec in o["sysctls"]),
            "ShmSize": shm, "OomScoreAdj": tunables.check_oom_score_adj(
                whole_number("--oom-score-adj", o["oom_score_adj"] or "0")),
            "CgroupParent": check_cgroup_parent(o["cgroup_parent"] or ""),
            "Runtime": check_runtime(o["runtime"])}


def warn_about_limits(limits) -> None:
    """What Docker warns about instead of refusing."""
    from minidocker import cgroups

    warnings = cgroups.warnings(limits)
    if limits.oom_kill_disable and not limits.memory:
        warnings.append("Disabling the OOM killer on containers without setting a "
                        "'-m/--memory' limit may be dangerous.")
    for warning in warnings:
        click.echo(f"WARNING: {warning}", err=True)


def network_config(o: dict) -> dict:
    """Stage 8's flags as HostConfig fields: the mode, published ports, names and files."""
    from minidocker.container.config import NetworkMode

    mode = NetworkMode.parse(o["network"])
    ip = check_ip("--ip", o["ip"]) if o["ip"] else ""
    if ip and (not mode.is_bridge or mode.network == "bridge"):
        raise MinidockerError(f"user specified IP address is supported on user defined "
                              f"networks only (--ip {ip} with --network {mode}: make one with "
                              "'network create')")
    if o["mac_address"] and not mode.is_bridge:
        raise MinidockerError(f"--mac-address needs a bridge network, not --network {mode}")
    bindings = []
    if o["publish"] or o["add_host"]:
        from minidocker.network import hosts, ports  # no pyroute2: they only parse

        bindings = [b for spec in o["publish"] for b in ports.parse_publish(spec)]
        for spec in o["add_host"]:
            hosts.parse_add_host(spec)
    if (bindings or o["publish_all"]) and not mode.is_bridge:
        raise MinidockerError(f"published ports are discarded with --network {mode}: they "
                              "need a bridge network (drop -p/-P)")
    return {"NetworkMode": mode, "PortBindings": bindings, "PublishAllPorts": o["publish_all"],
            "NetworkAliases": list(o["network_alias"]), "Links": list(o["link"]),
            "IPAMConfig": {"IPv4Address": ip} if ip else {},
            "Dns": [check_ip("--dns", ip) for ip in o["dns"]], "DnsSearch": list(o["dns_search"]),
            "ExtraHosts": list(o["add_host"])}


def security_config(o: dict) -> dict:
    """Stage 9's flags, and the namespace modes, as HostConfig fields."""
    from minidocker import security
    from minidocker.container.config import CgroupnsMode, IpcMode, PidMode, UsernsMode, UTSMode
    from minidocker.namespaces import IdMap
    from minidocker.security.devices import parse_device
    from minidocker.security.userns import parse_userns

    opts = security.parse_security_opts(list(o["security_opt"]), cap_add=list(o["cap_add"]),
                                        cap_drop=list(o["cap_drop"]),
                                        privileged=o["privileged"])
    for warning in opts.warnings:
        click.echo(f"WARNING: {warning}", err=True)
    idmap = parse_userns(o["userns"], o["uidmap"])
    modes = {"IpcMode": IpcMode.parse(o["ipc"]), "PidMode": PidMode.parse(o["pid"]),
             "UTSMode": UTSMode.parse(o["uts"]), "UsernsMode": UsernsMode.parse(o["userns"]),
             "CgroupnsMode": CgroupnsMode.parse(o["cgroupns"])}
    if idmap:
        shared = [f"--{flag} host" for flag in ("pid", "network") if o[flag] == "host"]
        if o["privileged"]:
            shared.append("--privileged")
        if shared:
            raise MinidockerError(f"--userns private cannot be combined with "
                                  f"{', '.join(shared)}: the host's namespaces and devices do "
                                  "not belong to the container's user namespace")
    return {**modes, "UsernsMap": IdMap(**idmap) if idmap else None,
            "UsernsFiles": "chown" if idmap else "",
            "Devices": [parse_device(spec) for spec in o["device"]],
            "CapAdd": list(o["cap_add"]), "CapDrop": list(o["cap_drop"]),
            "Privileged": o["privileged"], "SecurityOpt": list(o["security_opt"]),
            "GroupAdd": list(o["group_add"]), "Security": opts}


def exposed_ports(specs) -> dict:
    """``--expose 80 --expose 53/udp`` as Config.ExposedPorts: ``{"80/tcp": {}, ...}``."""
    if not specs:
        return {}
    from minidocker.network.ports import parse_expose

    return {f"{port}/{proto}": {} for spec in specs for port, proto in parse_expose(spec)}


def log_opts(options) -> dict:
    """``--log-opt KEY=VALUE`` as LogConfig.Config (create checks the keys and values)."""
    config = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep:
            raise MinidockerError(f"invalid log opt '{option}': use --log-opt KEY=VALUE, "
                                  "e.g. max-size=10m")
        config[key] = value
    return config


def client_env(items: list[str]) -> list[str]:
    """``-e KEY`` (no ``=``) copies KEY from this environment, dropped if unset; only the
    user's flags may do that, never an image's Env."""
    for item in items:
        if not item.partition("=")[0] or "\0" in item:
            raise MinidockerError(f"invalid environment variable: {item!r} (use -e KEY=VALUE, "
                                  "with a name before the =)")
    return [item if "=" in item else f"{item}={os.environ[item]}"
            for item in items if "=" in item or item in os.environ]


HOSTNAME = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?")
MAX_ID = 2**32 - 2  # the largest uid or gid; 2**32 - 1 means "no id" to the kernel


def check_hostname(name: str, flag: str = "hostname") -> str:
    """``-h`` (and ``--domainname``): a name sethostname(2) takes (64 bytes at most) and
    resolvers accept (letters, digits, dots and dashes, RFC 1123)."""
    if name and (len(name) > 64 or not HOSTNAME.fullmatch(name)):
        raise MinidockerError(f"invalid {flag} {name[:70]!r}: use at most 64 letters, "
                              "digits, dots and dashes, e.g. web-1.example")
    return name


MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


def check_mac(text: str) -> str:
    """``--mac-address``: six bytes; a multicast one (low bit of the first byte) cannot be
    an interface's address."""
    if text and (not MAC.fullmatch(text) or int(text[:2], 16) & 1):
        raise MinidockerError(f"invalid --mac-address {text!r}: give six hex bytes of a "
                              "unicast address, e.g. 02:42:ac:11:00:09")
    return text.lower()


def labels(items, files) -> dict:
    """``--label KEY=VALUE`` (a KEY alone: an empty value) and ``--label-file`` lines, the
    files first, as Docker reads them."""
    result = {}
    lines = [line for path in files for line in read_env_file(path, "--label-file")]
    for item in lines + list(items):
        key, _, value = item.partition("=")
        if not key:
            raise MinidockerError(f"invalid label '{item}': use --label KEY=VALUE")
        result[key] = value
    return result


def whole_number(flag: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise MinidockerError(f"invalid value '{text}' for {flag}: give a whole "
                              "number") from None


PULL_POLICIES = ("missing", "never", "always")


def check_pull(policy: str) -> None:
    """``--pull missing|never|always``: checked here, applied by ``cli.registry.ensure_image``
    before the container is created."""
    if policy not in PULL_POLICIES:
        raise MinidockerError(f"invalid --pull '{policy}': use missing, never or always")


def check_platform(text: str | None) -> None:
    """``--platform OS/ARCH[/VARIANT]``: only this machine's own, as there is no emulation."""
    import platform

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    accepted = {f"linux/{arch}", arch, *([f"linux/{arch}/v8"] if arch == "arm64" else [])}
    if text is not None and text.lower() not in accepted:
        raise MinidockerError(f"invalid --platform '{text}': this machine runs linux/{arch} "
                              "and minidocker does not emulate other CPUs")


def check_user(spec: str) -> str:
    """``-u USER[:GROUP]``: a numeric uid or gid must fit the kernel's 32 bits."""
    for part in spec.split(":"):
        if part.isdigit() and int(part) > MAX_ID:
            raise MinidockerError(f"invalid -u {spec}: {part} is larger than the largest uid "
                                  f"or gid ({MAX_ID})")
    return spec


def check_ip(flag: str, text: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise MinidockerError(f"invalid {flag} {text!r}: give an IP address, e.g. "
                              "1.1.1.1") from None


def read_env_file(path: str, flag: str = "--env-file") -> list[str]:
    """Docker's env file: one KEY=VALUE (or KEY) per line, ``#`` comments and blank lines
    skipped, no quoting rules: the value is the rest of the line."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise MinidockerError(f"cannot read {flag} {path}: {exc.strerror}") from exc
    items = []
    for number, line in enumerate(lines, 1):
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key = line.split("=", 1)[0]
        if not key or any(c.isspace() for c in key):
            raise MinidockerError(f"{path}, line {number}: variable '{key}' contains "
                                  "whitespaces or is empty; write KEY=VALUE")
        items.append(line)
    return items


def prune_filter_option(command):
    """``--filter KEY=VALUE`` of a prune (``-f`` is its ``--force``): which unused objects
    go (minidocker/filters.py's ``PRUNE_FILTERS``)."""
    return click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
                        help="Remove only these, e.g. until=24h or label=tier=web "
                        "(repeatable).")(command)


def confirm_prune(force: bool, warning: str) -> None:
    """The question every prune asks unless ``-f``: ``WARNING! ... [y/N]`` on stdout, one line
    read from stdin. Only ``y`` (or ``Y``) goes on; any other answer, or none, cancels the
    prune with nothing printed and exit 0, as docker 28 does (its ``cancelledErr`` is
    neither shown nor a failure)."""
    if force:
        return
    click.echo(f"{warning} [y/N] ", nl=False)
    if sys.stdin.readline().strip().lower() != "y":
        raise click.exceptions.Exit(0)


def echo_pruned(deleted: dict[str, list[str]], reclaimed: int | None = 0) -> None:
    """A prune's report as docker/cli prints it: for each kind with something deleted,
    ``Deleted Containers:`` and one line an object, then an empty line; last ``Total
    reclaimed space: 0B`` (``network prune`` has no total: ``reclaimed`` None)."""
    from minidocker.humanize import size

    for kind, items in deleted.items():
        if items:
            click.echo(f"Deleted {kind}:\n" + "".join(f"{item}\n" for item in items))
    if reclaimed is not None:
        click.echo(f"Total reclaimed space: {size(reclaimed, 4)}")


def filter_option(command):
    """``-f/--filter KEY=VALUE`` of a listing (ps, images, volume ls, network ls); each kind's
    keys live with it (see minidocker/filters.py)."""
    return click.option("-f", "--filter", "filters", multiple=True, metavar="KEY=VALUE",
                        help="Filter the list, e.g. label=tier=web (repeatable; a wrong KEY "
                        "is told the keys).")(command)
