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


def new_link(name: str, kind: str):
    """``ip link add NAME type KIND``: RTM_NEWLINK, refused if the name is taken."""
    return link(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, attrs=[
        ("IFLA_IFNAME", name), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", kind)]})])


def test_a_socket_opened_inside_speaks_to_the_other_namespace(sleeper):
    bridge = new_link("probe0", "bridge")
    with Rtnl.inside(sleeper.pid) as ns:
        assert ns.link_index("probe0") is None
        ns.request(bridge, link(index=netlink.LOOPBACK_INDEX, up=True))  # one buffer, two ACKs
        assert ns.link_index("probe0") is not None
    assert "probe0" in ip_inside(sleeper.pid, "-o", "link")
    assert ",UP" in ip_inside(sleeper.pid, "-o", "link", "show", "lo")
    with Rtnl.here() as host:
        assert host.link_index("probe0") is None  # we never left our own namespace


@pytest.mark.parametrize("name, kind, code, words", [
    ("lo", "bridge", errno.EEXIST, ["RTM_NEWLINK lo: File exists"]),
    ("odd0", "no-such", errno.EOPNOTSUPP, ["RTM_NEWLINK odd0", "Unknown device type"]),
], ids=["exists", "unknown-kind"])
def test_an_error_names_the_request_the_errno_and_the_kernels_words(sleeper, name, kind, code,
                                                                      words):
    with Rtnl.inside(sleeper.pid) as ns, pytest.raises(netlink.NetlinkError) as raised:
        ns.request(new_link(name, kind))
    assert raised.value.code == code
    assert all(said in str(raised.value) for said in words), str(raised.value)
