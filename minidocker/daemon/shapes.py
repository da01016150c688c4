"""The shape of a JSON body, written as Go's types are: checked once, before anything reads it.

dockerd decodes a request body into typed Go structs (``container.Config``,
``container.HostConfig``, ``network.NetworkingConfig``); a value of the wrong JSON type stops
the decoder with a message naming the field and the type it wanted (``json: cannot unmarshal
string into Go struct field HostConfig.HostConfig.PortBindings of type nat.PortMap``). Python
reads JSON into untyped dicts and lists, so the daemon writes those Go types down here and walks
the body against them once: a wrong shape is a 400 that gives the field's path and what it
should be, never a Python error from deep inside the translation.

A shape is one of:

* ``str``, ``int``, ``bool`` — a JSON string, integer (not a float, not true/false), boolean;
* ``ListOf(shape)`` — Go's ``[]T``; ``MapOf(shape)`` — Go's ``map[string]T``;
* ``STR_SLICE`` — Docker's ``strslice.StrSlice``: one string or a list of strings;
* a dict ``{"Field": shape}`` — a Go struct: the fields it names are checked, others are left
  to the caller (Go ignores unknown fields; translate.py refuses them at the top level).

``null`` is accepted for a struct's field and for a map's value that is a struct, as Go
accepts it for pointers, slices and maps (the field stays empty); not as an item of a list,
which each handler would have to read as an empty object.

Model: Go's ``encoding/json`` (``UnmarshalTypeError``); moby ``api/types/container`` and
``api/types/mount`` for the types.
"""

import json
from typing import NamedTuple

from minidocker.daemon.errors import ApiError


class ListOf(NamedTuple):
    item: object


class MapOf(NamedTuple):
    value: object


STR_SLICE = "string or list of strings"
STRINGS = ListOf(str)
STRING_MAP = MapOf(str)
NAMES = {str: "a string", int: "an integer", bool: "a boolean"}


def check(where: str, value, shape) -> None:
    """Raise an ApiError naming ``where`` (and the path inside it) if ``value`` is not of
    ``shape``."""
    if value is None and isinstance(shape, dict):
        return
    if isinstance(shape, dict):
        _require(where, value, isinstance(value, dict), shape)
        for name, field in shape.items():
            if value.get(name) is not None:
                check(f"{where}.{name}", value[name], field)
    elif isinstance(shape, ListOf):
        _require(where, value, isinstance(value, list), shape)
        for index, item in enumerate(value):
            _require(f"{where}[{index}]", item, item is not None, shape.item)
            check(f"{where}[{index}]", item, shape.item)
    elif isinstance(shape, MapOf):
        _require(where, value, isinstance(value, dict), shape)
        for key, item in value.items():
            check(f"{where}[{json.dumps(key)}]", item, shape.value)
    elif shape is STR_SLICE:
        _require(where, value, isinstance(value, str) or isinstance(value, list) and all(
            isinstance(word, str) for word in value), shape)
    else:
        _require(where, value, isinstance(value, shape) and not (
            shape is int and isinstance(value, bool)), shape)


def _require(where: str, value, ok: bool, shape) -> None:
    if not ok:
        raise ApiError(f"invalid {where}: expected {describe(shape)}, "
                       f"got {json.dumps(value)[:60]}")


def describe(shape) -> str:
    """A shape in words: ``a list of objects``, ``an object of strings``..."""
    if isinstance(shape, dict):
        return "an object" + (f" ({', '.join(shape)})" if 0 < len(shape) <= 5 else "")
    if isinstance(shape, ListOf):
        return f"a list of {_plural(shape.item)}"
    if isinstance(shape, MapOf):
        return f"an object of {_plural(shape.value)}"
    if shape is STR_SLICE:
        return "a string or a list of strings"
    return NAMES[shape]


def _plural(shape) -> str:
    if isinstance(shape, dict):
        return "objects" + (f" ({', '.join(shape)})" if 0 < len(shape) <= 5 else "")
    words = describe(shape).split(" ", 1)[1]  # "a string" -> "strings", "a list of" -> "lists"
    first, _, rest = words.partition(" ")
    return f"{first}s" + (f" {rest}" if rest else "")


# --- POST /containers/create: moby api/types/container, mount and network, as of API 1.50 ----

DURATION = int  # Go's time.Duration: whole nanoseconds

HEALTH_CONFIG = {"Test": STRINGS, "Interval": DURATION, "Timeout": DURATION,
                 "StartPeriod": DURATION, "StartInterval": DURATION, "Retries": int}
PORT_SET = MapOf({})  # nat.PortSet, map[Port]struct{}; also Config.Volumes

CONFIG = {
    "Hostname": str, "Domainname": str, "User": str, "AttachStdin": bool,
    "AttachStdout": bool, "AttachStderr": bool, "ExposedPorts": PORT_SET, "Tty": bool,
    "OpenStdin": bool, "StdinOnce": bool, "Env": STRINGS, "Cmd": STR_SLICE,
    "Healthcheck": HEALTH_CONFIG, "ArgsEscaped": bool, "Image": str, "Volumes": PORT_SET,
    "WorkingDir": str, "Entrypoint": STR_SLICE, "NetworkDisabled": bool, "MacAddress": str,
    "OnBuild": STRINGS, "Labels": STRING_MAP, "StopSignal": str, "StopTimeout": int,
    "Shell": STR_SLICE}

MOUNT = {
    "Type": str, "Source": str, "Target": str, "ReadOnly": bool, "Consistency": str,
    "BindOptions": {"Propagation": str, "NonRecursive": bool, "CreateMountpoint": bool,
                    "ReadOnlyNonRecursive": bool, "ReadOnlyForceRecursive": bool},
    "VolumeOptions": {"NoCopy": bool, "Labels": STRING_MAP, "Subpath": str,
                      "DriverConfig": {"Name": str, "Options": STRING_MAP}},
    "TmpfsOptions": {"SizeBytes": int, "Mode": int, "Options": ListOf(STRINGS)},
    "ImageOptions": {"Subpath": str}}

THROTTLE_DEVICE = ListOf({"Path": str, "Rate": int})

HOST_CONFIG = {
    "Binds": STRINGS, "ContainerIDFile": str, "LogConfig": {"Type": str, "Config": STRING_MAP},
    "NetworkMode": str, "PortBindings": MapOf(ListOf({"HostIp": str, "HostPort": str})),
    "RestartPolicy": {"Name": str, "MaximumRetryCount": int}, "AutoRemove": bool,
    "VolumeDriver": str, "VolumesFrom": STRINGS, "ConsoleSize": ListOf(int),
    "Annotations": STRING_MAP, "CapAdd": STR_SLICE, "CapDrop": STR_SLICE,
    "CgroupnsMode": str, "Dns": STRINGS, "DnsOptions": STRINGS, "DnsSearch": STRINGS,
    "ExtraHosts": STRINGS, "GroupAdd": STRINGS, "IpcMode": str, "Cgroup": str,
    "Links": STRINGS, "OomScoreAdj": int, "PidMode": str, "Privileged": bool,
    "PublishAllPorts": bool, "ReadonlyRootfs": bool, "SecurityOpt": STRINGS,
    "StorageOpt": STRING_MAP, "Tmpfs": STRING_MAP, "UTSMode": str, "UsernsMode": str,
    "ShmSize": int, "Sysctls": STRING_MAP, "Runtime": str, "Isolation": str,
    "MaskedPaths": STRINGS, "ReadonlyPaths": STRINGS, "Init": bool, "Mounts": ListOf(MOUNT),
    # Resources, embedded in HostConfig
    "CpuShares": int, "Memory": int, "NanoCpus": int, "CgroupParent": str,
    "BlkioWeight": int, "BlkioWeightDevice": ListOf({"Path": str, "Weight": int}),
    "BlkioDeviceReadBps": THROTTLE_DEVICE, "BlkioDeviceWriteBps": THROTTLE_DEVICE,
    "BlkioDeviceReadIOps": THROTTLE_DEVICE, "BlkioDeviceWriteIOps": THROTTLE_DEVICE,
    "CpuPeriod": int, "CpuQuota": int, "CpuRealtimePeriod": int, "CpuRealtimeRuntime": int,
    "CpusetCpus": str, "CpusetMems": str,
    "Devices": ListOf({"PathOnHost": str, "PathInContainer": str, "CgroupPermissions": str}),
    "DeviceCgroupRules": STRINGS,
    "DeviceRequests": ListOf({"Driver": str, "Count": int, "DeviceIDs": STRINGS,
                              "Capabilities": ListOf(STRINGS), "Options": STRING_MAP}),
    "KernelMemory": int, "KernelMemoryTCP": int, "MemoryReservation": int, "MemorySwap": int,
    "MemorySwappiness": int, "OomKillDisable": bool, "PidsLimit": int,
    "Ulimits": ListOf({"Name": str, "Hard": int, "Soft": int}), "CpuCount": int,
    "CpuPercent": int, "IOMaximumIOps": int, "IOMaximumBandwidth": int}

ENDPOINT_SETTINGS = {
    "IPAMConfig": {"IPv4Address": str, "IPv6Address": str, "LinkLocalIPs": STRINGS},
    "Links": STRINGS, "Aliases": STRINGS, "DriverOpts": STRING_MAP, "MacAddress": str,
    "NetworkID": str, "EndpointID": str, "Gateway": str, "IPAddress": str,
    "IPPrefixLen": int, "DNSNames": STRINGS, "GwPriority": int}
NETWORKING_CONFIG = {"EndpointsConfig": MapOf(ENDPOINT_SETTINGS)}
