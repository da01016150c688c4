"""The network record: what one network is, as ``network inspect`` shows it, plus its IPAM state.

A plain dataclass and the names Docker gives a bridge network's options. It imports nothing of
the network package, so every other module can use it: ipam.py computes addresses on it,
store.py writes it to disk and reads it back, the drivers build bridges from it. The
dependency goes one way, store -> ipam -> records, and an import-linter contract in
pyproject.toml keeps it so.

Specs: Docker Engine API, ``NetworkInspect`` (``Name``, ``Id``, ``Driver``, ``IPAM.Config``,
``Internal``, ``Options``, ``Labels``); Docker docs, "Bridge network driver" (its options).
Used by: notebook 08-networking, lab 08-networking.
"""

from dataclasses import dataclass, field

from minidocker.state import now

DEFAULT_BRIDGE = "minidocker0"  # Docker's docker0
DEFAULT_SUBNET = "172.18.0.0/16"  # Docker's 172.17.0.0/16, moved one up to live beside it
ICC_OPTION = "com.docker.network.bridge.enable_icc"
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
MTU_OPTION = "com.docker.network.driver.mtu"  # the bridge's and the veths' MTU (1500)
PREDEFINED = ("bridge", "host", "none")


@dataclass
class Network:
    """One network, as ``network inspect`` shows it (plus the IPAM state)."""

    id: str
    name: str
    driver: str  # "bridge", "host" or "null"
    subnet: str | None = None
    gateway: str | None = None
    bridge: str | None = None  # the Linux bridge device of a "bridge" network
    internal: bool = False
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    created: str = field(default_factory=now)
    allocations: dict[str, str] = field(default_factory=dict)  # container id -> IPv4 address

    @property
    def icc(self) -> bool:
        """May containers on this network talk to each other? (``--opt enable_icc=false``)"""
        return self.options.get(ICC_OPTION, "true").lower() != "false"

    @property
    def mtu(self) -> int:
        """The MTU of the bridge and of every veth on it (``--opt ...driver.mtu=1450``: an
        overlay's bridge leaves room for the VXLAN header)."""
        return int(self.options.get(MTU_OPTION, "1500"))

    @property
    def predefined(self) -> bool:
        return self.name in PREDEFINED
