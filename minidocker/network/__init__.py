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

from minidocker.network.endpoints import (
    Endpoint,
    NetworkRequest,
    attach,
    endpoints_of,
    port_lines,
    prune,
    release,
)
from minidocker.network.hosts import write_container_files
from minidocker.network.ports import PortBinding

__all__ = ["Endpoint", "NetworkRequest", "PortBinding", "attach", "endpoints_of", "port_lines",
           "prune", "release", "write_container_files"]
