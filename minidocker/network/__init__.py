"""Stage 8 — bridge networking: how a container in an empty network namespace reaches out,
is reached, and finds its neighbours by name.

A fresh network namespace has only a loopback, down. Docker's bridge networking, in the order
the notebook builds it: a *bridge* on the host (bridge.py), a *veth pair* from the container's
namespace to the bridge (veth.py), an *address* for each (ipam.py), ``ip_forward`` plus
*MASQUERADE* to go out, *DNAT* to come in on a published port, and *isolation* between
networks (firewall.py, ports.py), then the files that turn names into addresses (hosts.py).
User-defined networks (networks.py) are more bridges of the same kind; everything made is
recorded (store.py) so it can be removed exactly (endpoints.py).

The container lifecycle uses four calls: ``attach``, ``write_container_files``, ``release``
and ``prune`` — see endpoints.py for what each ``--network`` mode asks of the caller.

Man pages: network_namespaces(7), veth(4), ip-link(8), bridge(8), iptables(8).
Used by: notebook 08-networking, lab 08-networking.
"""

import importlib

# Each name and the module that holds it. They load on first use (PEP 562), so that a caller who
# only parses flags (``network.ports``, ``network.hosts``) never imports pyroute2: ``--network
# none`` and ``minidocker --help`` stay fast.
EXPORTS = {"Endpoint": "endpoints", "NetworkRequest": "endpoints", "attach": "endpoints",
           "endpoints_of": "endpoints", "port_lines": "endpoints", "prune": "endpoints",
           "release": "endpoints", "write_container_files": "hosts", "PortBinding": "ports",
           "connect": "networks"}
__all__ = sorted(EXPORTS)


def __getattr__(name: str):
    if name not in EXPORTS:
        raise AttributeError(f"module 'minidocker.network' has no attribute {name!r}")
    return getattr(importlib.import_module(f"minidocker.network.{EXPORTS[name]}"), name)
