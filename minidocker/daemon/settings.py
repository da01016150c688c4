"""Stage 12 — ``daemon.json``: the daemon's settings in a file, as dockerd's.

dockerd reads ``/etc/docker/daemon.json``; ``minidocker daemon`` reads
``/etc/minidocker/daemon.json`` (or ``--config-file``). Each key is the long name of one of the
daemon's flags, and the seeds' favourite is ``bip``, the default bridge's address::

    {"bip": "10.66.0.1/24", "icc": false, "default-address-pools":
     [{"base": "10.70.0.0/16", "size": 24}], "insecure-registries": ["registry.lab:5000"],
     "log-opts": {"max-size": "1m", "max-file": "2"}, "data-root": "/srv/minidocker"}

dockerd's rules, kept here: a key that is no setting is refused ("the following directives
don't match any configuration option"), and so is a key given both in the file and as a flag
("... specified both as a flag and in the configuration file"): the daemon never guesses which
one you meant. A missing default file is no error; a missing ``--config-file`` is.

How do the settings reach the engine? The engine reads its host-wide choices from its
environment — ``MINIDOCKER_ROOT``, ``MINIDOCKER_BRIDGE_SUBNET``, ``MINIDOCKER_ICC``,
``MINIDOCKER_ADDRESS_POOLS``, ``MINIDOCKER_INSECURE_REGISTRIES`` — which a user of the
daemonless CLI sets the same way. ``Settings.environment()`` is that translation, applied once
by ``serve()`` before anything touches the state root. The default log options are the
daemon's own: a container created through the API without a ``LogConfig`` gets them.

Docs: dockerd(8), "Daemon configuration file"; moby ``daemon/config/config.go``.
Used by: ``minidocker daemon``; tests/test_daemon_settings.py.
"""

import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path

from minidocker.errors import MinidockerError

DEFAULT_FILE = Path("/etc/minidocker/daemon.json")
MAX_FILE = 1 << 20  # a settings file is small; a bigger one is a mistake

# key -> the JSON type it takes
KEYS = {"data-root": str, "bip": str, "default-address-pools": list, "icc": bool,
        "insecure-registries": list, "log-driver": str, "log-opts": dict, "group": str,
        "hosts": list, "tlsverify": bool, "tlscacert": str, "tlscert": str, "tlskey": str,
        "debug": bool, "log-level": str}


@dataclass
class Settings:
    """The daemon's settings: the file's, then the flags'."""

    data_root: str = ""
    bip: str = ""
    default_address_pools: list = field(default_factory=list)  # [{"base": CIDR, "size": N}]
    icc: bool = True
    insecure_registries: list = field(default_factory=list)
    log_driver: str = "json-file"
    log_opts: dict = field(default_factory=dict)
    group: str = ""
    hosts: list = field(default_factory=list)
    tlsverify: bool = False
    tlscacert: str = ""
    tlscert: str = ""
    tlskey: str = ""
    debug: bool = False
    log_level: str = "info"

    def environment(self) -> dict[str, str]:
        """The engine's environment for these settings (see the module's docstring)."""
        env = {"MINIDOCKER_ICC": "true" if self.icc else "false"}
        if self.data_root:
            env["MINIDOCKER_ROOT"] = self.data_root
        if self.bip:
            env["MINIDOCKER_BRIDGE_SUBNET"] = bridge_subnet(self.bip)
        if self.default_address_pools:
            env["MINIDOCKER_ADDRESS_POOLS"] = ",".join(  # 10.70.0.0/16:24,...
                f"{pool['base']}:{pool['size']}" for pool in self.default_address_pools)
        if self.insecure_registries:
            env["MINIDOCKER_INSECURE_REGISTRIES"] = ",".join(self.insecure_registries)
        return env

    def log_config(self) -> dict:
        """The LogConfig of a container created without one."""
        return {"Type": self.log_driver, "Config": dict(self.log_opts)}


def load(path: Path | None, flags: dict) -> Settings:
    """The settings of ``path`` (the default file when None), with ``flags`` — the options
    given on the command line, by their daemon.json names, None when not given — on top; a
    key given both ways is an error."""
    from_file = read_file(path or DEFAULT_FILE, required=path is not None)
    given = {key: value for key, value in flags.items() if value is not None}
    both = sorted(set(from_file) & set(given))
    if both:
        raise MinidockerError("the following directives are specified both as a flag and in "
                              f"the configuration file: {', '.join(both)}: keep one")
    merged = {**from_file, **given}
    settings = Settings(**{key.replace("-", "_"): value for key, value in merged.items()})
    check(settings)
    return settings


def read_file(path: Path, required: bool) -> dict:
    """The JSON object of the file, its keys and types checked."""
    try:
        if path.stat().st_size > MAX_FILE:
            raise MinidockerError(f"{path} is larger than 1 MiB: is it the right file?")
        data = json.loads(path.read_text())
    except FileNotFoundError:
        if required:
            raise MinidockerError(f"unable to configure the daemon: {path} does not exist "
                                  "(--config-file)") from None
        return {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise MinidockerError(f"unable to configure the daemon with file {path}: {exc}") \
            from None
    if not isinstance(data, dict):
        raise MinidockerError(f"{path}: expected a JSON object of settings, e.g. "
                              '{"bip": "10.66.0.1/24"}')
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise MinidockerError("the following directives don't match any configuration "
                              f"option: {', '.join(unknown)} (in {path}; the options are "
                              f"{', '.join(sorted(KEYS))})")
    for key, value in data.items():
        if not isinstance(value, KEYS[key]):
            raise MinidockerError(f"{path}: {key!r} takes a {KEYS[key].__name__}, not "
                                  f"{json.dumps(value)}")
    return data


def check(settings: Settings) -> None:
    """Values that would fail later, refused before the daemon starts."""
    if settings.bip:
        bridge_subnet(settings.bip)
    for pool in settings.default_address_pools:
        if not isinstance(pool, dict) or set(pool) != {"base", "size"}:
            raise MinidockerError(f"default-address-pools: {json.dumps(pool)} is not "
                                  '{"base": "10.70.0.0/16", "size": 24}')
        base = parse_network("default-address-pools", pool["base"])
        if not isinstance(pool["size"], int) or not base.prefixlen <= pool["size"] <= 30:
            raise MinidockerError(f"default-address-pools: size {pool['size']} must be a "
                                  f"prefix length between {base.prefixlen} and 30")
    for host in settings.insecure_registries:
        if not isinstance(host, str) or "/" in host:
            raise MinidockerError(f"insecure-registries: {host!r} is not HOST[:PORT]")
    if settings.data_root and not Path(settings.data_root).is_absolute():
        raise MinidockerError(f"data-root {settings.data_root!r} must be an absolute path")
    if any([settings.tlscacert, settings.tlscert, settings.tlskey]) and not settings.tlsverify:
        raise MinidockerError("tlscacert/tlscert/tlskey are used with tlsverify: add "
                              "--tlsverify (clients must show a certificate the CA signed)")


def bridge_subnet(bip: str) -> str:
    """``bip`` is the bridge's own address with its prefix (``10.66.0.1/24``); the default
    bridge takes the first host address of its subnet, so that is what bip must name."""
    try:
        interface = ipaddress.IPv4Interface(bip)
    except ValueError:
        raise MinidockerError(f"invalid bip {bip!r}: give the bridge's address and prefix, "
                              "e.g. 10.66.0.1/24") from None
    subnet = interface.network
    first = next(subnet.hosts(), None)
    if interface.ip != first:
        raise MinidockerError(f"bip {bip}: minidocker's bridge takes the first address of its "
                              f"subnet: use {first}/{subnet.prefixlen}")
    return str(subnet)


def parse_network(key: str, text) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text, strict=True)
    except (ValueError, TypeError):
        raise MinidockerError(f"{key}: {text!r} is not a network address with a prefix, "
                              "e.g. 10.70.0.0/16") from None
