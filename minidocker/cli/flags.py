"""The ``run``/``create`` flags of stages 8 (network) and 9 (security): parsed here, carried to
the engine in ``ContainerSpec.extra`` (Docker's HostConfig names), so that the lifecycle's own
flags (cli/lifecycle.py) do not grow with every stage."""

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


def extra(options: dict) -> dict:
    """Pop the later stages' flags out of ``options``; checked now, kept as HostConfig."""
    values = {name: options.pop(name) for name in NAMES}
    from minidocker import security

    opts = security.parse_security_opts(list(values["security_opt"]),
                                        cap_add=list(values["cap_add"]),
                                        cap_drop=list(values["cap_drop"]),
                                        privileged=values["privileged"])
    for warning in opts.warnings:
        click.echo(f"WARNING: {warning}", err=True)
    if values["publish"] or values["expose"] or values["add_host"]:
        from minidocker.network import hosts, ports  # pyroute2: only when networking is asked

        for spec in values["publish"]:
            ports.parse_publish(spec)  # a bad -p fails before anything is made
        for spec in values["expose"]:
            ports.parse_expose(spec)
        for spec in values["add_host"]:
            hosts.parse_add_host(spec)
    from minidocker.security.devices import parse_device

    devices = [parse_device(spec).to_dict() for spec in values["device"]]
    modes = {"IpcMode": check_mode("--ipc", values["ipc"], ("private", "shareable", "host")),
             "PidMode": check_mode("--pid", values["pid"], ("host",)),
             "UTSMode": check_mode("--uts", values["uts"], ("host",), containers=False)}
    from minidocker.security.userns import parse_userns

    idmap = parse_userns(values["userns"], values["uidmap"])
    if idmap:
        shared = [f"--{flag} host" for flag in ("pid", "network")
                  if values["network" if flag == "network" else flag] == "host"]
        if values["privileged"]:
            shared.append("--privileged")
        if shared:
            from minidocker.errors import MinidockerError

            raise MinidockerError(f"--userns private cannot be combined with "
                                  f"{', '.join(shared)}: the host's namespaces and devices do "
                                  "not belong to the container's user namespace")
    return {**modes, "Devices": devices, "UsernsMode": "private" if idmap else "",
            "UsernsMap": idmap, "UsernsFiles": "chown" if idmap else "", "NetworkMode": values["network"], "PublishAllPorts": values["publish_all"],
            "PortBindings": list(values["publish"]), "Expose": list(values["expose"]),
            "NetworkAliases": list(values["network_alias"]), "Links": list(values["link"]),
            "Dns": list(values["dns"]), "DnsSearch": list(values["dns_search"]),
            "ExtraHosts": list(values["add_host"]),
            "CapAdd": list(values["cap_add"]), "CapDrop": list(values["cap_drop"]),
            "Privileged": values["privileged"], "SecurityOpt": list(values["security_opt"]),
            "GroupAdd": list(values["group_add"]), "Security": opts.to_dict()}


def check_mode(flag: str, value: str | None, words: tuple[str, ...],
               containers: bool = True) -> str:
    """A namespace mode: one of ``words``, or ``container:NAME`` where that makes sense."""
    from minidocker.errors import MinidockerError

    if not value or value in words or (containers and value.startswith("container:")
                                       and len(value) > len("container:")):
        return value or ""
    choices = ", ".join([*words, *(["container:NAME"] if containers else [])])
    raise MinidockerError(f"invalid {flag} mode '{value}': use {choices}")
