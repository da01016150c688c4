"""The flags of ``run`` and ``create`` become the container's typed configuration: Docker's
``Config`` (what runs) and ``HostConfig`` (how this host runs it), see container/config.py.
Each flag is parsed and checked here, once, before anything is made; the engine never sees
a raw flag. What the docker CLI does on the client side happens here too: ``--env-file`` is
read and ``-e KEY`` takes KEY from this environment.

The options of stages 8 (network) and 9 (security) are declared in this module, so that the
lifecycle's own list (cli/lifecycle.py) does not grow with every stage.

Spec: the docker CLI reference for ``docker run``; the Engine API's ContainerCreate body."""

import os
import re

import click

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
]
OPTIONS += NETWORK_OPTIONS
NAMES = ["cap_add", "cap_drop", "privileged", "security_opt", "group_add", "device", "ipc",
         "pid", "uts", "userns", "uidmap", "network",
         "publish", "publish_all", "expose", "network_alias", "link", "dns", "dns_search",
         "add_host"]


def later_stage_options(command):
    for option in reversed(OPTIONS):
        command = option(command)
    return command


def container_request(o: dict):
    """``(Config, HostConfig, name)`` from the flags of run/create (a bad flag fails here)."""
    from minidocker.cgroups import build_limits
    from minidocker.container.config import Config, HostConfig, RestartPolicy

    config = Config(
        Image=o["image"], Cmd=list(o["command"]) or None,
        Entrypoint=None if o["entrypoint"] is None else [o["entrypoint"]],
        Env=client_env([line for path in o["env_file"] for line in read_env_file(path)]
                       + list(o["env"])),
        WorkingDir=o["workdir"] or "", User=check_user(o["user"] or ""),
        Hostname=check_hostname(o["hostname"] or ""),
        Tty=o["tty"], OpenStdin=o["interactive"], StopSignal=o["stop_signal"] or "",
        StopTimeout=o["stop_timeout"], ExposedPorts=exposed_ports(o["expose"]))
    host = HostConfig(
        Binds=list(o["volumes"]), Mounts=list(o["mounts"]), Tmpfs=list(o["tmpfs"]),
        VolumesFrom=list(o["volumes_from"]), AutoRemove=o["remove"], Init=o["init"],
        ReadonlyRootfs=o["readonly"], RestartPolicy=RestartPolicy.parse(o["restart"]),
        LogConfig={"Type": "json-file", "Config": log_opts(o["log_opts"])},
        Resources=build_limits(o["memory"], o["memory_swap"], o["cpus"], o["cpu_shares"],
                               o["cpu_period"], o["cpu_quota"], o["cpuset_cpus"],
                               o["pids_limit"]),
        **network_config(o), **security_config(o))
    return config, host, o["name"]


def network_config(o: dict) -> dict:
    """Stage 8's flags as HostConfig fields: the mode, published ports, names and files."""
    from minidocker.container.config import NetworkMode

    mode = NetworkMode.parse(o["network"])
    bindings = []
    if o["publish"] or o["add_host"]:
        from minidocker.network import hosts, ports  # no pyroute2: they only parse

        bindings = [b for spec in o["publish"] for b in ports.parse_publish(spec)]
        for spec in o["add_host"]:
            hosts.parse_add_host(spec)
    if (bindings or o["publish_all"]) and not mode.is_bridge:
        from minidocker.errors import MinidockerError

        raise MinidockerError(f"published ports are discarded with --network {mode}: they "
                              "need a bridge network (drop -p/-P)")
    return {"NetworkMode": mode, "PortBindings": bindings, "PublishAllPorts": o["publish_all"],
            "NetworkAliases": list(o["network_alias"]), "Links": list(o["link"]),
            "Dns": [check_ip("--dns", ip) for ip in o["dns"]], "DnsSearch": list(o["dns_search"]),
            "ExtraHosts": list(o["add_host"])}


def security_config(o: dict) -> dict:
    """Stage 9's flags, and the namespace modes, as HostConfig fields."""
    from minidocker import security
    from minidocker.container.config import IpcMode, PidMode, UsernsMode, UTSMode
    from minidocker.errors import MinidockerError
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
             "UTSMode": UTSMode.parse(o["uts"]), "UsernsMode": UsernsMode.parse(o["userns"])}
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
    from minidocker.errors import MinidockerError

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
            from minidocker.errors import MinidockerError

            raise MinidockerError(f"invalid environment variable: {item!r} (use -e KEY=VALUE, "
                                  "with a name before the =)")
    return [item if "=" in item else f"{item}={os.environ[item]}"
            for item in items if "=" in item or item in os.environ]


HOSTNAME = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?")
MAX_ID = 2**32 - 2  # the largest uid or gid; 2**32 - 1 means "no id" to the kernel


def check_hostname(name: str) -> str:
    """``-h``: a name sethostname(2) takes (64 bytes at most) and resolvers accept (letters,
    digits, dots and dashes, RFC 1123)."""
    if name and (len(name) > 64 or not HOSTNAME.fullmatch(name)):
        from minidocker.errors import MinidockerError

        raise MinidockerError(f"invalid hostname {name[:70]!r}: use at most 64 letters, "
                              "digits, dots and dashes, e.g. web-1.example")
    return name


def check_user(spec: str) -> str:
    """``-u USER[:GROUP]``: a numeric uid or gid must fit the kernel's 32 bits."""
    for part in spec.split(":"):
        if part.isdigit() and int(part) > MAX_ID:
            from minidocker.errors import MinidockerError

            raise MinidockerError(f"invalid -u {spec}: {part} is larger than the largest uid "
                                  f"or gid ({MAX_ID})")
    return spec


def check_ip(flag: str, text: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        from minidocker.errors import MinidockerError

        raise MinidockerError(f"invalid {flag} {text!r}: give an IP address, e.g. "
                              "1.1.1.1") from None


def read_env_file(path: str) -> list[str]:
    """Docker's env file: one KEY=VALUE (or KEY) per line, ``#`` comments and blank lines
    skipped, no quoting rules: the value is the rest of the line."""
    from minidocker.errors import MinidockerError

    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise MinidockerError(f"cannot read --env-file {path}: {exc.strerror}") from exc
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
