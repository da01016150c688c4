"""rtnetlink, spoken directly: pyroute2's message classes over a plain ``AF_NETLINK`` socket.

``ip link``, ``ip addr`` and ``ip route`` are clients of one kernel interface: a socket of
family ``AF_NETLINK``, protocol ``NETLINK_ROUTE``, on which each request is a message (a
``nlmsghdr``, a fixed struct such as ``ifinfomsg``, then typed attributes such as
``IFLA_IFNAME``) and each answer an ACK or an error code. minidocker sends its requests the same
way: pyroute2 encodes and decodes the messages (its ``ifinfmsg``, ``ifaddrmsg``, ``rtmsg``),
and this module is the transport — send, read the answers in order, raise the first error
with the kernel's own words (``NETLINK_EXT_ACK``).

Why not pyroute2's ``IPRoute``: from 0.9 on it runs an asyncio event loop of its own, so a
``run`` on the bridge imported 99 of pyroute2's modules and asyncio (~45 ms) and paid the
loop's start-up per connection, and a Jupyter cell (already inside a loop) could not call it
at all. The message classes alone are 26 modules (~11 ms), and a socket is synchronous.

Three things the kernel lets one request do, which make a container's attach short:

* **Several requests in one ``send``**: the kernel handles each message of the buffer in turn
  and answers each (``request(*messages)``) — one round trip for a list of steps.
* **A socket born in another network namespace**: setns(2) with ``CLONE_NEWNET`` moves only
  the calling *thread*, and a netlink socket stays in the namespace it was created in.
  ``Rtnl.inside(pid)`` has a short-lived thread join the container's namespace, open the
  socket there and end; the process never leaves its own namespace, and nothing is forked
  (libnetwork does the same with a locked OS thread).
* **Objects addressed by name** (``IFLA_IFNAME``) where the kernel accepts it, so most steps
  need no lookup of an index first.

``pyroute2/__init__`` imports every netlink family the library knows (IPDB, NDB, WireGuard,
nl80211...); ``_rtnetlink_only`` registers the package without running it (importlib's
``module_from_spec``, the documented recipe of a lazy import), so that only the rtnetlink
messages load. Whoever later asks the package itself for a name (``from pyroute2 import
IPRoute``, as the notebooks, viz/network.py and lab 08 do) reaches its module ``__getattr__``
(PEP 562), which runs the real ``__init__`` then, into the same module.

Man pages: netlink(7), rtnetlink(7), setns(2).
Used by: bridge.py and veth.py; notebook 08-networking.
"""

import errno
import importlib.util
import os
import socket
import struct
import sys
import threading

from minidocker import kernel


def _rtnetlink_only() -> None:
    """Put pyroute2 in ``sys.modules`` without running its ``__init__`` (unless it is there)."""
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    package = importlib.util.module_from_spec(spec)  # __path__ set, __init__ not run

    def __getattr__(name: str):
        if importlib.util.find_spec(f"pyroute2.{name}") is not None:
            raise AttributeError(name)  # a subpackage: the import system loads it next
        del package.__getattr__  # from now on a plain module
        spec.loader.exec_module(package)  # the real __init__, into the same module
        return getattr(package, name)

    package.__getattr__ = __getattr__
    sys.modules["pyroute2"] = package


_rtnetlink_only()
from pyroute2.netlink import (  # noqa: E402
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
)
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402
from pyroute2.netlink.rtnl import (  # noqa: E402
    RTM_DELLINK,
    RTM_GETLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg  # noqa: E402
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg  # noqa: E402
from pyroute2.netlink.rtnl.rtmsg import rtmsg  # noqa: E402

__all__ = ["LOOPBACK_INDEX", "NLM_F_CREATE", "NLM_F_EXCL", "RTM_DELLINK", "RTM_GETLINK",
           "RTM_NEWLINK", "NetlinkError", "Rtnl", "address", "default_route", "link"]

SOL_NETLINK, NETLINK_EXT_ACK, NETLINK_CAP_ACK = 270, 11, 10  # <linux/netlink.h>
NLMSGERR_ATTR_MSG = 1  # the text of an extended ACK
HEADER = struct.Struct("=IHHII")  # struct nlmsghdr: length, type, flags, sequence, port id
LOOPBACK_INDEX = 1  # lo is link 1 of every network namespace (LOOPBACK_IFINDEX)
REQUEST_NAMES = {RTM_NEWLINK: "RTM_NEWLINK", RTM_DELLINK: "RTM_DELLINK",
                 RTM_GETLINK: "RTM_GETLINK", RTM_NEWADDR: "RTM_NEWADDR",
                 RTM_NEWROUTE: "RTM_NEWROUTE"}


# --- the messages ----------------------------------------------------------------------------

def link(request: int = RTM_NEWLINK, flags: int = 0, *, index: int = 0, up: bool = False,
         attrs: list | None = None) -> ifinfmsg:
    """An ``ifinfomsg`` request: ``RTM_NEWLINK`` makes or changes a link (by ``index``, or by
    ``IFLA_IFNAME`` when the index is 0), ``RTM_DELLINK`` deletes one; ``up`` sets IFF_UP."""
    message = ifinfmsg()
    message["header"]["type"], message["header"]["flags"] = request, flags
    message["index"] = index
    message["flags"] = message["change"] = IFF_UP if up else 0
    message["attrs"] = attrs or []
    return message


def address(index: int, ip: str, prefixlen: int) -> ifaddrmsg:
    """``ip addr add IP/PREFIXLEN dev INDEX``: an ``RTM_NEWADDR`` (IFA_LOCAL is our address,
    IFA_ADDRESS the same on a broadcast link)."""
    message = ifaddrmsg()
    message["header"]["type"] = RTM_NEWADDR
    message["header"]["flags"] = NLM_F_CREATE | NLM_F_EXCL
    message["family"], message["prefixlen"], message["index"] = socket.AF_INET, prefixlen, index
    message["attrs"] = [("IFA_LOCAL", ip), ("IFA_ADDRESS", ip)]
    return message


def default_route(gateway: str) -> rtmsg:
    """``ip route add default via GATEWAY``: an ``RTM_NEWROUTE`` in the main table."""
    message = rtmsg()
    message["header"]["type"] = RTM_NEWROUTE
    message["header"]["flags"] = NLM_F_CREATE | NLM_F_EXCL
    message["family"], message["dst_len"] = socket.AF_INET, 0
    message["table"], message["proto"], message["scope"], message["type"] = 254, 3, 0, 1
    message["attrs"] = [("RTA_GATEWAY", gateway)]  # main, boot, universe, unicast
    return message


# --- the socket -------------------------------------------------------------------------------

class Rtnl:
    """An rtnetlink socket of one network namespace (``with Rtnl() as host: ...``)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.sequence = 0

    @classmethod
    def here(cls) -> "Rtnl":
        """A socket in this process's network namespace."""
        return cls(_open_socket())

    @classmethod
    def inside(cls, pid: int) -> "Rtnl":
        """A socket in the network namespace of process ``pid``, opened by a thread that
        joins it (setns(2) moves only the calling thread) and then ends."""
        born: list = []

        def born_there() -> None:
            try:
                fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    kernel.setns(fd, kernel.CLONE_NEWNET)
                finally:
                    os.close(fd)
                born.append(_open_socket())
            except OSError as exc:
                born.append(exc)

        thread = threading.Thread(target=born_there, name=f"netns-{pid}")
        thread.start()
        thread.join()
        if isinstance(born[0], OSError):
            raise born[0]
        return cls(born[0])

    def __enter__(self) -> "Rtnl":
        return self

    def __exit__(self, *exc_info) -> None:
        self.sock.close()

    def request(self, *messages) -> list:
        """Send the requests in one buffer, each asking for an ACK; return the replies (for a
        ``RTM_GET*``). Every request is answered even after one fails; the first error is
        raised, as a ``NetlinkError`` naming the request and saying what the kernel said."""
        return self._exchange(messages, NLM_F_REQUEST | NLM_F_ACK)

    def dump(self, message) -> list:
        """A ``RTM_GET*`` of every object of its kind (``ip link show``): the replies."""
        return self._exchange([message], NLM_F_REQUEST | NLM_F_DUMP)

    def link_index(self, name: str) -> int | None:
        """The index of link ``name`` in this namespace (``None`` when there is none)."""
        try:
            replies = self.request(link(RTM_GETLINK, attrs=[("IFLA_IFNAME", name)]))
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return None
            raise
        return replies[0]["index"]

    def links(self) -> list[ifinfmsg]:
        return self.dump(link(RTM_GETLINK))

    def _exchange(self, messages, flags: int) -> list:
        pending = {}
        for message in messages:
            self.sequence += 1
            message["header"]["flags"] |= flags
            message["header"]["sequence_number"] = self.sequence
            message.encode()
            pending[self.sequence] = message
        self.sock.sendall(b"".join(bytes(message.data) for message in pending.values()))
        replies, errors = [], []
        while pending:
            for kind, sequence, body in _messages(self.sock.recv(1 << 16)):
                request = pending.get(sequence)
                if request is None:
                    continue  # not an answer to us (a stale one)
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", body)[0]
                    if code:
                        errors.append(_error(request, code, body))
                    del pending[sequence]  # an ACK (or an error) ends a request
                elif kind == NLMSG_DONE:
                    del pending[sequence]  # the end of a dump
                else:
                    reply = type(request)(body)
                    reply.decode()
                    replies.append(reply)
        if errors:
            raise errors[0]
        return replies


def _open_socket() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                         socket.NETLINK_ROUTE)
    sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)  # errors say why, in words
    sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)  # and do not echo our whole request
    sock.bind((0, 0))
    return sock


def _messages(buffer: bytes):
    """The ``(type, sequence, whole message)`` of each netlink message in ``buffer``."""
    offset = 0
    while offset + HEADER.size <= len(buffer):
        length, kind, _flags, sequence, _port = HEADER.unpack_from(buffer, offset)
        if length < HEADER.size:
            break
        yield kind, sequence, buffer[offset:offset + length] if kind != NLMSG_ERROR \
            else buffer[offset + HEADER.size:offset + length]
        offset += (length + 3) & ~3


def _error(request, code: int, body: bytes) -> NetlinkError:
    """The error of one request: its type and name, the errno's text, the kernel's own."""
    said = ""
    offset = 4 + HEADER.size  # the error code, then our request's header
    while offset + 4 <= len(body):
        length, kind = struct.unpack_from("=HH", body, offset)
        if length < 4:
            break
        if kind == NLMSGERR_ATTR_MSG:
            said = body[offset + 4:offset + length].rstrip(b"\0").decode(errors="replace")
        offset += (length + 3) & ~3
    name = request.get_attr("IFLA_IFNAME") if isinstance(request, ifinfmsg) else None
    what = REQUEST_NAMES.get(request["header"]["type"], "request") + (f" {name}" if name else "")
    return NetlinkError(code, f"{what}: {os.strerror(code)}" + (f" ({said})" if said else ""))
