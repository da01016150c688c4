"""The network API from inside a running asyncio loop, as a Jupyter cell calls it: pyroute2's
IPRoute would refuse to start its own loop there (netlink.outside_event_loop)."""

import asyncio

from minidocker import network
from minidocker.network import networks


async def from_a_notebook_cell() -> list[str]:
    networks.create("loopy")
    networks.remove("loopy")
    return network.prune()  # lists the host's links through pyroute2


def test_network_calls_work_inside_a_running_event_loop():
    assert isinstance(asyncio.run(from_a_notebook_cell()), list)
