"""Stage 13 — the keys of a Compose file, checked and written one way (the canonical form).

A Compose file may say the same thing several ways: ``ports: ["8080:80"]`` or
``[{target: 80, published: 8080}]``, ``environment`` as a list or a mapping, ``command`` as a
string or a list. Each key here has one *normaliser* that checks its type and returns the
long form, so that merging several files, printing ``compose config``, hashing a service's
configuration and creating its containers each read one shape. A key nobody knows is refused
with the closest known one ("did you mean"), a wrong type with what was expected; every error is
one line naming the file, the service and the key.

Spec: the Compose Specification, "Services top-level element" (05-services.md), "Networks"
(06-networks.md), "Volumes" (07-volumes.md); its JSON schema (schema/compose-spec.json).
Used by: loader.py.
"""

import difflib
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from minidocker.errors import MinidockerError

TYPE_NAMES = {str: "a string", int: "a number", float: "a number", bool: "a boolean",
              list: "a list", dict: "a mapping", type(None): "null"}
DURATION = re.compile(r"(\d+(\.\d+)?(us|ms|s|m|h))+")
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
RESTART = re.compile(r"no|always|unless-stopped|on-failure(:\d+)?")


class ComposeFileError(MinidockerError):
    """A Compose file that cannot be a project: the message names the file, service and key."""


@dataclass(frozen=True)
class Where:
    """Where a value sits: the file, the section ("service", "network", "volume" or "") and the
    entry's name, for error messages; plus what resolving a value needs."""

    file: str
    section: str = ""
    name: str = ""
    project_dir: Path = Path(".")
    env: tuple = ()  # the interpolation environment, as items (bare environment names)

    def fail(self, key: str, what: str) -> ComposeFileError:
        entry = f"{self.section} {self.name!r}: " if self.section else ""
        return ComposeFileError(f"{self.file}: {entry}key {key!r}: {what}")


def type_name(value) -> str:
    return TYPE_NAMES.get(type(value), type(value).__name__)


def expect(value, types: tuple, where: Where, key: str, wanted: str):
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise where.fail(key, f"must be {wanted}, not {type_name(value)} ({value!r})")
    return value


def check_keys(given: dict, known, where: Where, what: str = "") -> None:
    """Refuse an unknown key, naming the closest known one; ``x-`` keys are extensions."""
    for key in given:
        if not isinstance(key, str):
            raise where.fail(str(key), "a key must be a string")
        if key in known or key.startswith("x-"):
            continue
        if key in NOT_HERE:
            raise where.fail(key, f"is part of the Compose Specification but not of "
                                  f"minidocker compose: {NOT_HERE[key]}")
        close = difflib.get_close_matches(key, list(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise where.fail(f"{what}{key}", f"unknown key{hint}")


# --- small types --------------------------------------------------------------------------------

def string(value, where: Where, key: str) -> str:
    return expect(value, (str,), where, key, "a string")


def name_or_number(value, where: Where, key: str) -> str:
    """A string that YAML may have read as a number (``user: 1000``)."""
    return str(expect(value, (str, int), where, key, "a string"))


def boolean(value, where: Where, key: str) -> bool:
    return expect(value, (bool,), where, key, "true or false")


def integer(value, where: Where, key: str) -> int:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return expect(value, (int,), where, key, "a whole number")


def number_text(value, where: Where, key: str) -> str:
    """``cpus: 0.5``, ``mem_limit: 64m`` or ``mem_limit: 67108864``: kept as text."""
    return str(expect(value, (str, int, float), where, key, "a number or a string"))


def byte_size(value, where: Where, key: str) -> str:
    """``mem_limit: 64m`` or ``67108864``: a size in Docker's units, checked when the file is
    read (``config`` too), not when ``up`` has made half the project."""
    from minidocker.cgroups.limits import parse_bytes

    text = number_text(value, where, key)
    try:
        parse_bytes(key, text)
    except MinidockerError:
        raise where.fail(key, f"invalid size {text!r}: use a number with an optional unit b, "
                              "k, m or g (e.g. 64m)") from None
    return text


def duration(value, where: Where, key: str) -> str:
    """Go's durations, as Compose reads them: ``1m30s``, ``500ms``, ``10s``."""
    text = str(expect(value, (str, int), where, key, "a duration like 10s"))
    text = f"{text}s" if text.isdigit() else text
    if not DURATION.fullmatch(text):
        raise where.fail(key, f"invalid duration {value!r}: use a number and a unit, e.g. 10s, "
                              "1m30s, 500ms")
    return text


def strings(value, where: Where, key: str) -> list[str]:
    """A list of strings; a single string is a list of one."""
    if isinstance(value, str):
        return [value]
    items = expect(value, (list,), where, key, "a list of strings")
    return [name_or_number(item, where, key) for item in items]


def command(value, where: Where, key: str) -> list[str]:
    """``command``/``entrypoint``: a string is split as a shell would split it."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as err:
            raise where.fail(key, f"cannot split {value!r} into words: {err}") from None
    return [str(item) for item in expect(value, (list,), where, key, "a string or a list")]


def mapping(value, where: Where, key: str, bare=None) -> dict:
    """A mapping, or a list of ``KEY=VALUE`` (``environment``, ``labels``, ``args``). A bare
    ``KEY`` (no ``=``) gets ``bare(KEY)``."""
    if isinstance(value, list):
        pairs = {}
        for item in value:
            text = string(item, where, key)
            name, sep, val = text.partition("=")
            pairs[name] = val if sep else (bare(name) if bare else None)
        return pairs
    expect(value, (dict,), where, key, "a mapping or a list of KEY=VALUE")
    return {str(k): (bare(str(k)) if bare else None) if v is None else scalar(v, where, key)
            for k, v in value.items()}


def scalar(value, where: Where, key: str) -> str:
    """A value of ``environment``/``labels``: YAML's numbers and booleans as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(expect(value, (str, int, float), where, key, "a string, number or boolean"))


def path(value, where: Where, key: str) -> str:
    """A host path as given, made absolute against the project directory (``~`` expanded)."""
    text = os.path.expanduser(string(value, where, key))
    return os.path.normpath(where.project_dir / text)


def sub_mapping(value, keys: dict, where: Where, key: str) -> dict:
    """A nested mapping whose keys each have a normaliser (``build``, ``healthcheck``...)."""
    expect(value, (dict,), where, key, "a mapping")
    check_keys(value, keys, where, f"{key}.")
    return {k: keys[k](v, where, f"{key}.{k}") for k, v in value.items()
            if not k.startswith("x-")}


# --- the service keys with a shape of their own ------------------------------------------------

def environment(value, where: Where, key: str) -> dict:
    """A bare name (``- HOME``, ``HOME:``) takes its value from the environment Compose runs
    in; one that is not set there stays null (and is not given to the container)."""
    env = dict(where.env)
    return mapping(value, where, key, bare=env.get)


def env_file(value, where: Where, key: str) -> list[str]:
    return [path(item, where, key) for item in strings(value, where, key)]


def build(value, where: Where, key: str) -> dict:
    if isinstance(value, str):
        value = {"context": value}
    result = sub_mapping(value, BUILD_KEYS, where, key)
    result.setdefault("context", path(".", where, key))
    return result


def healthcheck(value, where: Where, key: str) -> dict:
    result = sub_mapping(value, HEALTHCHECK_KEYS, where, key)
    test = result.get("test")
    if isinstance(test, list) and test and test[0] not in ("NONE", "CMD", "CMD-SHELL"):
        raise where.fail(f"{key}.test", f"a list starts with CMD, CMD-SHELL or NONE, not "
                                        f"{test[0]!r}")
    return result


def health_test(value, where: Where, key: str) -> list[str]:
    if isinstance(value, str):
        return ["CMD-SHELL", value]
    return [str(item) for item in expect(value, (list,), where, key, "a string or a list")]


def restart(value, where: Where, key: str) -> str:
    text = string(value, where, key)
    if not RESTART.fullmatch(text):
        raise where.fail(key, f"invalid restart policy {text!r}: use no, always, on-failure, "
                              "on-failure:N or unless-stopped")
    return text


def depends_on(value, where: Where, key: str) -> dict:
    if isinstance(value, list):
        value = {string(item, where, key): None for item in value}
    expect(value, (dict,), where, key, "a list of services or a mapping")
    result = {}
    for service, options in value.items():
        options = sub_mapping(options or {}, DEPENDS_KEYS, where, f"{key}.{service}")
        condition = options.setdefault("condition", "service_started")
        if condition not in CONDITIONS:
            raise where.fail(f"{key}.{service}.condition", f"unknown condition {condition!r} "
                             f"(use {', '.join(CONDITIONS)})")
        result[service] = options
    return result


def service_networks(value, where: Where, key: str) -> dict:
    if isinstance(value, list):
        return {string(item, where, key): None for item in value}
    expect(value, (dict,), where, key, "a list of networks or a mapping")
    return {name: None if options is None else
            sub_mapping(options, SERVICE_NETWORK_KEYS, where, f"{key}.{name}")
            for name, options in value.items()}


def deploy(value, where: Where, key: str) -> dict:
    return sub_mapping(value, DEPLOY_KEYS, where, key)


def resources(value, where: Where, key: str) -> dict:
    return sub_mapping(value, RESOURCES_KEYS, where, key)


def limits(value, where: Where, key: str) -> dict:
    return sub_mapping(value, LIMIT_KEYS, where, key)


# --- ports and volumes: the short syntax parsed into the long one ----------------------------

PORT = re.compile(r"(?:(?:(?P<ip>\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(?P<published>[\d-]*):)?"
                  r"(?P<target>[\d-]+)(?:/(?P<protocol>tcp|udp|sctp))?")


def ports(value, where: Where, key: str) -> list[dict]:
    items = expect(value, (list,), where, key, "a list")
    result = []
    for item in items:
        if isinstance(item, dict):
            port = sub_mapping(item, PORT_KEYS, where, key)
            if "target" not in port:
                raise where.fail(key, f"{item!r} needs a target (the container's port)")
            result.append(long_port(port))
        else:
            result += short_ports(str(expect(item, (str, int), where, key, "a port")),
                                  where, key)
    return result


def long_port(port: dict) -> dict:
    published = port.get("published")
    return {"mode": port.get("mode", "ingress"), "host_ip": port.get("host_ip", ""),
            "target": port["target"], "published": "" if published is None else published,
            "protocol": port.get("protocol", "tcp")}


def short_ports(text: str, where: Where, key: str) -> list[dict]:
    """``[IP:][HOST:]CONTAINER[/PROTO]``, ranges allowed (``8000-8001:80-81``)."""
    match = PORT.fullmatch(text)
    if not match:
        raise where.fail(key, f"invalid port {text!r}: use [IP:][HOST_PORT:]CONTAINER_PORT"
                              "[/PROTOCOL], e.g. 8080:80")
    targets = port_range(match["target"], where, key)
    published = port_range(match["published"], where, key) if match["published"] else []
    if published and len(published) not in (1, len(targets)):
        raise where.fail(key, f"invalid port {text!r}: the two ranges differ in length")
    result = []
    for index, target in enumerate(targets):
        host = published[index] if len(published) == len(targets) else \
            (f"{published[0]}-{published[-1]}" if published else "")
        result.append({"mode": "ingress", "host_ip": (match["ip"] or "").strip("[]"),
                       "target": target, "published": str(host),
                       "protocol": match["protocol"] or "tcp"})
    return result


def port_range(text: str, where: Where, key: str) -> list[int]:
    low, _, high = text.partition("-")
    if not low.isdigit() or (high and not high.isdigit()) or \
            not 0 < int(low) <= int(high or low) <= 65535:
        raise where.fail(key, f"invalid port {text!r}: a number from 1 to 65535, or a range")
    return list(range(int(low), int(high or low) + 1))


def volumes(value, where: Where, key: str) -> list[dict]:
    items = expect(value, (list,), where, key, "a list")
    result = []
    for item in items:
        if isinstance(item, dict):
            result.append(long_volume(item, where, key))
        else:
            result.append(short_volume(string(item, where, key), where, key))
    return result


def long_volume(item: dict, where: Where, key: str) -> dict:
    volume = sub_mapping(item, VOLUME_MOUNT_KEYS, where, key)
    kind = volume.get("type")
    if kind not in ("bind", "volume", "tmpfs"):
        raise where.fail(f"{key}.type", f"{kind!r}: use bind, volume or tmpfs")
    if "target" not in volume:
        raise where.fail(key, f"{item!r} needs a target (a path in the container)")
    if kind == "bind" and "source" in volume:
        volume["source"] = path(volume["source"], where, f"{key}.source")
    return volume


def short_volume(text: str, where: Where, key: str) -> dict:
    """``[SOURCE:]TARGET[:MODE]``: a SOURCE that starts with ``.``, ``/`` or ``~`` is a host
    path (a bind), another a named volume; no SOURCE is an anonymous volume."""
    parts = text.split(":")
    if len(parts) == 1:
        return {"type": "volume", "target": container_path(parts[0], where, key)}
    if len(parts) > 3 or not parts[0]:
        raise where.fail(key, f"invalid volume {text!r}: use [SOURCE:]TARGET[:ro|rw]")
    source, target, mode = parts[0], parts[1], parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise where.fail(key, f"invalid mode {mode!r} in {text!r}: use ro or rw")
    bind = source.startswith((".", "/", "~"))
    volume = {"type": "bind" if bind else "volume",
              "source": path(source, where, key) if bind else source,
              "target": container_path(target, where, key)}
    if mode == "ro":
        volume["read_only"] = True
    return volume


def container_path(text: str, where: Where, key: str) -> str:
    if not text.startswith("/"):
        raise where.fail(key, f"{text!r} is not an absolute path in the container")
    return text


def tmpfs(value, where: Where, key: str) -> list[str]:
    return [container_path(item, where, key) for item in strings(value, where, key)]


# --- the tables ---------------------------------------------------------------------------------

BUILD_KEYS = {"context": path, "dockerfile": string, "target": string,
              "args": lambda v, w, k: mapping(v, w, k, bare=dict(w.env).get),
              "labels": mapping}
HEALTHCHECK_KEYS = {"test": health_test, "interval": duration, "timeout": duration,
                    "retries": integer, "start_period": duration, "disable": boolean}
DEPENDS_KEYS = {"condition": string, "restart": boolean, "required": boolean}
SERVICE_NETWORK_KEYS = {"aliases": strings, "ipv4_address": string, "priority": integer}
LIMIT_KEYS = {"cpus": number_text, "memory": number_text, "pids": integer}
RESOURCES_KEYS = {"limits": limits, "reservations": limits}
PLACEMENT_KEYS = {"constraints": strings, "max_replicas_per_node": integer,
                  "preferences": lambda v, w, k: [
                      sub_mapping(item, {"spread": string}, w, k)
                      for item in expect(v, (list,), w, k, "a list of {spread: KEY}")]}
UPDATE_KEYS = {"parallelism": integer, "delay": duration, "failure_action": string,
               "monitor": duration, "max_failure_ratio": number_text, "order": string}
RESTART_POLICY_KEYS = {"condition": string, "delay": duration, "max_attempts": integer,
                       "window": duration}
DEPLOY_KEYS = {"replicas": integer, "resources": resources, "mode": string,
               "labels": mapping, "endpoint_mode": string,
               "update_config": lambda v, w, k: sub_mapping(v, UPDATE_KEYS, w, k),
               "rollback_config": lambda v, w, k: sub_mapping(v, UPDATE_KEYS, w, k),
               "restart_policy": lambda v, w, k: sub_mapping(v, RESTART_POLICY_KEYS, w, k),
               "placement": lambda v, w, k: sub_mapping(v, PLACEMENT_KEYS, w, k)}
PORT_KEYS = {"target": integer, "published": name_or_number, "host_ip": string,
             "protocol": string, "mode": string}
VOLUME_MOUNT_KEYS = {"type": string, "source": string, "target": string,
                     "read_only": boolean, "volume": lambda v, w, k: sub_mapping(
                         v, {"nocopy": boolean}, w, k),
                     "bind": lambda v, w, k: sub_mapping(
                         v, {"create_host_path": boolean, "propagation": string}, w, k),
                     "tmpfs": lambda v, w, k: sub_mapping(
                         v, {"size": number_text, "mode": integer}, w, k)}

SERVICE_KEYS = {
    "image": string, "build": build, "command": command, "entrypoint": command,
    "environment": environment, "env_file": env_file, "ports": ports, "expose": strings,
    "volumes": volumes, "volumes_from": strings, "networks": service_networks,
    "network_mode": string, "links": strings, "external_links": strings,
    "depends_on": depends_on, "healthcheck": healthcheck, "restart": restart,
    "deploy": deploy, "scale": integer, "user": name_or_number, "working_dir": string,
    "hostname": string, "labels": mapping, "cap_add": strings, "cap_drop": strings,
    "privileged": boolean, "read_only": boolean, "tmpfs": tmpfs, "init": boolean,
    "stop_signal": string, "stop_grace_period": duration, "mem_limit": byte_size,
    "cpus": number_text, "pids_limit": integer, "profiles": strings,
    "container_name": string, "dns": strings, "extra_hosts": strings,
    "stdin_open": boolean, "tty": boolean, "domainname": string,
}
NOT_HERE = {"secrets": "mount the file with volumes instead",
            "configs": "mount the file with volumes instead",
            "extends": "copy the keys, or use several -f files",
            "include": "use several -f files",
            "logging": "containers log with json-file",
            "devices": "use 'minidocker run --device'",
            "sysctls": "use 'minidocker run --sysctl'",
            "ulimits": "use 'minidocker run --ulimit'",
            "security_opt": "use 'minidocker run --security-opt'"}


def external(value, where: Where, key: str) -> bool:
    if isinstance(value, dict):  # the old form, external: {name: NAME}
        return True
    return boolean(value, where, key)


def ipam(value, where: Where, key: str) -> dict:
    result = sub_mapping(value, {"driver": string, "config": lambda v, w, k: [
        sub_mapping(item, {"subnet": string, "gateway": string, "ip_range": string}, w, k)
        for item in expect(v, (list,), w, k, "a list")]}, where, key)
    return result


NETWORK_KEYS = {"driver": string, "driver_opts": mapping, "external": external,
                "name": string, "ipam": ipam, "labels": mapping, "internal": boolean,
                "attachable": boolean}
VOLUME_KEYS = {"driver": string, "driver_opts": mapping, "external": external,
               "name": string, "labels": mapping}
TOP_KEYS = ("version", "name", "services", "networks", "volumes")


def normalise_file(tree, where: Where) -> dict:
    """One file's YAML tree in the canonical form; its first wrong key is an error."""
    if tree is None:
        return {}
    expect(tree, (dict,), where, "(top level)", "a mapping of services, networks, volumes")
    check_keys(tree, TOP_KEYS, where)
    result = {}
    if "version" in tree:
        result["version"] = name_or_number(tree["version"], where, "version")
    if "name" in tree:
        result["name"] = string(tree["name"], where, "name")
    for section, keys, label in (("services", SERVICE_KEYS, "service"),
                                 ("networks", NETWORK_KEYS, "network"),
                                 ("volumes", VOLUME_KEYS, "volume")):
        if section in tree:
            result[section] = normalise_section(tree[section], keys, where, label, section)
    return result


def normalise_section(entries, keys: dict, where: Where, label: str, section: str) -> dict:
    expect(entries or {}, (dict,), where, section, f"a mapping of {section}")
    result = {}
    for name, body in (entries or {}).items():
        if str(name).startswith("x-"):
            continue
        here = Where(where.file, label, str(name), where.project_dir, where.env)
        result[str(name)] = normalise_entry(body, keys, here)
    return result


def normalise_entry(body, keys: dict, where: Where):
    """One service, network or volume; ``!reset``/``!override`` values pass through
    (loader.py's merge acts on them). A null value is the key left out."""
    if body is None:
        return {}
    if isinstance(body, Tagged):
        return type(body)(normalise_entry(body.value, keys, where))
    if not isinstance(body, dict):
        raise where.fail("(definition)", f"must be a mapping, not {type_name(body)}")
    check_keys(body, keys, where)
    result = {}
    for key, value in body.items():
        if key.startswith("x-") or value is None:
            continue
        if isinstance(value, Reset):
            result[key] = value
        elif isinstance(value, Override):
            result[key] = Override(keys[key](value.value, where, key))
        else:
            result[key] = keys[key](value, where, key)
    if keys is SERVICE_KEYS and "env_file" in result:
        result["environment"] = with_env_files(result.pop("env_file"), result, where)
    return result


def with_env_files(files, service: dict, where: Where) -> dict:
    """``env_file``: each file's variables, then ``environment`` over them (it wins)."""
    from minidocker.compose.interpolation import read_env_file

    values = {}
    for name in (files.value if isinstance(files, Tagged) else files):
        if not os.path.isfile(name):
            raise where.fail("env_file", f"{name} does not exist (env_file paths are relative "
                                         "to the project directory)")
        values.update(read_env_file(Path(name)))
    return {**values, **service.get("environment", {})}


@dataclass
class Tagged:
    """A value tagged in YAML by an override file (13-merge.md)."""

    value: object


class Reset(Tagged):
    """``!reset``: the key is removed from what the earlier files said."""


class Override(Tagged):
    """``!override``: the value replaces the earlier one instead of merging with it."""
