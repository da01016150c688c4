"""Stage 8's netlink transport (network/netlink.py): pyroute2's messages over a plain socket.

What the kernel answers is checked with the kernel's own tool (``ip``), never with the module
under test alone: a socket opened by ``Rtnl.inside`` is in the other namespace, several
requests in one buffer are each answered, and an error names the request and carries the
kernel's words."""

import errno
import signal
import subprocess

import pytest

from minidocker import namespaces
from minidocker.network import netlink
from minidocker.network.netlink import NLM_F_CREATE, NLM_F_EXCL, RTM_NEWLINK, Rtnl, link


@pytest.fixture
def sleeper():
    process = namespaces.spawn(["sleep", "60"], {"net"})
    yield process
    process.signal(signal.SIGKILL)
    process.wait()


def ip_inside(pid: int, *args: str) -> str:
    return subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "ip", *args],
                          capture_output=True, text=True, check=True).stdout


def test_a_socket_opened_inside_speaks_to_the_other_namespace(sleeper):
    bridge = link(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, attrs=[
        ("IFLA_IFNAME", "probe0"), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})])
    with Rtnl.inside(sleeper.pid) as ns:
        assert ns.link_index("probe0") is None
        ns.request(bridge, link(index=netlink.LOOPBACK_INDEX, up=True))  # one buffer, two ACKs
        assert ns.link_index("probe0") is not None
    assert "probe0" in ip_inside(sleeper.pid, "-o", "link")
    assert ",UP" in ip_inside(sleeper.pid, "-o", "link", "show", "lo")
    with Rtnl.here() as host:
        assert host.link_index("probe0") is None  # we never left our own namespace


def test_an_error_names_the_request_and_the_errno(sleeper):
    again = link(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, attrs=[
        ("IFLA_IFNAME", "lo"), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})])
    with Rtnl.inside(sleeper.pid) as ns, pytest.raises(netlink.NetlinkError) as raised:
        ns.request(again)
    assert raised.value.code == errno.EEXIST
    assert "RTM_NEWLINK lo: File exists" in str(raised.value)


def test_an_error_carries_the_kernels_own_words(sleeper):
    unknown = link(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, attrs=[
        ("IFLA_IFNAME", "odd0"), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "no-such")]})])
    with Rtnl.inside(sleeper.pid) as ns, pytest.raises(netlink.NetlinkError) as raised:
        ns.request(unknown)
    assert raised.value.code == errno.EOPNOTSUPP
    assert "RTM_NEWLINK odd0" in str(raised.value) and "Unknown device type" in str(raised.value)
