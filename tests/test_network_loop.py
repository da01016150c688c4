"""The network API from inside a running asyncio loop, as a Jupyter cell calls it: its netlink
socket is synchronous (network/netlink.py), so a running loop is no obstacle."""

import asyncio

from minidocker import network
from minidocker.network import networks


async def from_a_notebook_cell() -> list[str]:
    networks.create("loopy")
    networks.remove("loopy")
    return network.prune()  # lists the host's links through netlink


def test_network_calls_work_inside_a_running_event_loop():
    assert isinstance(asyncio.run(from_a_notebook_cell()), list)
