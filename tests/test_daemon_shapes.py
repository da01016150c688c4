"""A create body of the wrong shape is a 400 naming the field and the type it should have,
as moby's JSON decoder says (``cannot unmarshal string into Go struct field
HostConfig.PortBindings of type nat.PortMap``), never a Python error (minidocker/daemon/shapes.py).
No daemon is needed: the body's translation is a plain function."""

import re

import pytest

from minidocker import volumes
from minidocker.daemon.errors import ApiError
from minidocker.daemon.translate import container_request, mount_object
from minidocker.errors import MinidockerError

WRONG = [  # (part of the body, what the error says)
    ({"HostConfig": {"PortBindings": {"80/tcp": "8080"}}},
     'HostConfig.PortBindings["80/tcp"]: expected a list of objects (HostIp, HostPort)'),
    ({"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": 8080}]}}},
     'HostConfig.PortBindings["80/tcp"][0].HostPort: expected a string, got 8080'),
    ({"HostConfig": {"LogConfig": {"Config": ["max-size=1m"]}}},
     "HostConfig.LogConfig.Config: expected an object of strings"),
    ({"Healthcheck": {"Test": ["CMD", "true"], "Interval": "1s"}},
     "Config.Healthcheck.Interval: expected an integer"),
    ({"ExposedPorts": {"80/tcp": "yes"}}, 'Config.ExposedPorts["80/tcp"]: expected an object'),
    ({"NetworkingConfig": {"EndpointsConfig": "bridge"}},
     "NetworkingConfig.EndpointsConfig: expected an object of objects"),
    ({"NetworkingConfig": {"EndpointsConfig": {"bridge": {"IPAMConfig": "10.0.0.2"}}}},
     'EndpointsConfig["bridge"].IPAMConfig: expected an object'),
    ({"HostConfig": {"Mounts": [{"Type": "bind", "Source": ["/a"], "Target": "/b"}]}},
     "HostConfig.Mounts[0].Source: expected a string"),
    ({"HostConfig": {"Devices": [{"PathOnHost": 1}]}},
     "HostConfig.Devices[0].PathOnHost: expected a string"),
    ({"HostConfig": {"Ulimits": "nofile=1024"}}, "HostConfig.Ulimits: expected a list of objects"),
    ({"Cmd": [1]}, "Config.Cmd: expected a string or a list of strings"),
    ({"HostConfig": "host"}, "HostConfig: expected an object"),
    ({"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "http"}]}}},
     'PortBindings["80/tcp"]: invalid publish spec'),  # a string, but no port
    ({"HostConfig": {"PortBindings": {"web": [{"HostPort": "80"}]}}},
     'HostConfig.PortBindings["web"]: invalid publish spec'),
]


@pytest.mark.parametrize("part, message", WRONG, ids=[m.split(":")[0] for _, m in WRONG])
def test_a_wrong_shape_names_the_field_and_its_type(part, message):
    with pytest.raises(ApiError, match="^invalid ") as refused:
        container_request({"Image": "busybox", **part})
    assert message in str(refused.value)


def test_docker_shapes_are_accepted():
    config, host, _ = container_request({
        "Image": "busybox", "Cmd": "true", "Volumes": {"/data": {}},
        "ExposedPorts": {"80/tcp": None},
        "HostConfig": {"CapAdd": "NET_ADMIN", "PortBindings": {"80/tcp": [{"HostPort": "8080"}]},
                       "Mounts": None},
        "NetworkingConfig": {"EndpointsConfig": {"bridge": None}}})
    assert config.Cmd == ["true"] and host.CapAdd == ["NET_ADMIN"]
    assert [(b.container_port, b.host_port) for b in host.PortBindings] == [(80, 8080)]


def bind(**options) -> dict:
    return {"HostConfig": {"Mounts": [{"Type": "bind", "Source": "/tmp", "Target": "/t",
                                       "ReadOnly": True, "BindOptions": options}]}}


@pytest.mark.parametrize("option", ["NonRecursive", "ReadOnlyNonRecursive", "CreateMountpoint"])
def test_bind_options_minidocker_cannot_honour_are_refused(option):
    with pytest.raises(ApiError, match=f"BindOptions.{option} is not supported by minidocker"):
        container_request({"Image": "busybox", **bind(**{option: True})})


def test_read_only_force_recursive_asks_for_read_only():
    """moby: "option 'ReadOnlyForceRecursive' requires 'ReadOnly' to be true"."""
    body = bind(ReadOnlyForceRecursive=True)
    body["HostConfig"]["Mounts"][0]["ReadOnly"] = False
    with pytest.raises(ApiError, match="ReadOnlyForceRecursive requires ReadOnly"):
        container_request({"Image": "busybox", **body})


def test_bind_options_minidocker_does_are_kept():
    _, host, _ = container_request({"Image": "busybox", **bind(
        Propagation="rprivate", ReadOnlyForceRecursive=True, NonRecursive=False)})
    assert volumes.parse_mount(host.Mounts[0]).readonly  # what create reads: it is valid
    assert mount_object(host.Mounts[0])["BindOptions"] == {"Propagation": "rprivate"}
    _, host, _ = container_request({"Image": "busybox", **bind(Propagation="rshared")})
    with pytest.raises(MinidockerError, match="minidocker keeps every mount private"):
        volumes.parse_mount(host.Mounts[0])  # create's 400


def test_a_null_in_a_list_is_named():
    with pytest.raises(ApiError, match=r"HostConfig.Mounts\[0\]: expected an object"):
        container_request({"Image": "busybox", "HostConfig": {"Mounts": [None]}})


@pytest.mark.parametrize("mount, option", [
    ({"Type": "volume", "Source": "v", "VolumeOptions": {"Subpath": "sub"}},
     "VolumeOptions.Subpath"),
    ({"Type": "tmpfs", "TmpfsOptions": {"Options": [["exec"]]}}, "TmpfsOptions.Options"),
], ids=["Subpath", "TmpfsOptions.Options"])
def test_mount_options_minidocker_cannot_honour_are_refused(mount, option):
    """Dropped, a Subpath would mount the whole volume: a 400 says so instead."""
    with pytest.raises(ApiError, match=f"{option} is not supported by minidocker"):
        container_request({"Image": "busybox",
                           "HostConfig": {"Mounts": [{**mount, "Target": "/t"}]}})


@pytest.mark.parametrize("body, message", [
    ({"IPAM": {"Config": [{"Subnet": "10.9.0.0/24", "IPRange": "10.9.0.128/25"}]}},
     "IPAM.Config[0].IPRange is not supported by minidocker"),
    ({"IPAM": {"Config": [{"Subnet": "10.9.0.0/24", "AuxiliaryAddresses": {"h": "10.9.0.5"}}]}},
     "IPAM.Config[0].AuxiliaryAddresses is not supported by minidocker"),
    ({"EnableIPv6": True}, "EnableIPv6: minidocker's networks are IPv4 only"),
], ids=["IPRange", "AuxiliaryAddresses", "EnableIPv6"])
def test_network_ipam_minidocker_cannot_honour_is_refused(body, message):
    """Dropped, an IPRange would hand out addresses outside it: a 400 says so instead."""
    from minidocker.daemon.networks import ipam_request

    with pytest.raises(ApiError, match=re.escape(message)):
        ipam_request({"Name": "n", **body})
    assert ipam_request({"Name": "n", "EnableIPv6": False, "IPAM": {"Driver": "default", "Config": [
        {"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1"}]}})["Gateway"] == "10.9.0.1"
