"""One handler per network endpoint of the Engine API, over stage 8's ``network.networks``.

    GET    /networks                  network_list
    POST   /networks/create           network_create
    GET    /networks/{id}             network_inspect
    DELETE /networks/{id}             network_delete
    POST   /networks/{id}/connect     network_connect
    POST   /networks/{id}/disconnect  network_disconnect
    POST   /networks/prune            network_prune

Spec: Docker Engine API v1.50, section "Network" (NetworkCreateRequest, IPAM).
"""

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from minidocker.container import lifecycle, networking
from minidocker.daemon import shapes
from minidocker.daemon.errors import ApiError
from minidocker.daemon.params import filter_items, json_body, prune_filters
from minidocker.daemon.translate import endpoint_ipam, refuse_unsupported
from minidocker.network.records import BRIDGE_NAME_OPTION, ICC_OPTION


def _networks():
    from minidocker.network import networks  # pyroute2 only when a network is touched

    return networks


def network_list(request: Request) -> Response:
    """``GET /networks?filters=``: by the rules of ``minidocker network ls --filter``."""
    from minidocker.filters import Filters

    networks = _networks()
    wanted = Filters.parse(filter_items(request), networks.NETWORK_FILTERS, "network ls")
    return JSONResponse([docker_network(networks.inspect(network.id))
                         for network in networks.ls(wanted)])


# moby api/types/network CreateRequest, and its IPAM
NETWORK_CREATE = {
    "Name": str, "Driver": str, "Internal": bool, "Options": shapes.STRING_MAP,
    "IPAM": {"Driver": str, "Options": shapes.STRING_MAP,
             "Config": shapes.ListOf({"Subnet": str, "IPRange": str, "Gateway": str,
                                      "AuxiliaryAddresses": shapes.STRING_MAP})},
    "Labels": shapes.STRING_MAP, "CheckDuplicate": bool, "Attachable": bool,
    "EnableIPv6": bool, "EnableIPv4": bool, "Scope": str, "Ingress": bool, "ConfigOnly": bool}


async def network_create(request: Request) -> Response:
    body = await json_body(request)
    shapes.check("Network", body, NETWORK_CREATE)
    if not body.get("Name"):
        raise ApiError("give the network a Name")
    ipam = ipam_request(body)
    network = await run_in_threadpool(
        _networks().create, body["Name"], driver=body.get("Driver") or "bridge",
        subnet=ipam.get("Subnet") or None, gateway=ipam.get("Gateway") or None,
        internal=bool(body.get("Internal")),
        options={str(k): str(v) for k, v in (body.get("Options") or {}).items()},
        labels={str(k): str(v) for k, v in (body.get("Labels") or {}).items()})
    return JSONResponse({"Id": network.id, "Warning": ""}, status_code=201)


# What a network's IPAM asks that minidocker's does not do: refused, never dropped.
IPAM_REFUSED = {
    "IPRange": "a container gets any free address of the Subnet",
    "AuxiliaryAddresses": "only the Gateway is kept out of the containers' addresses"}


def ipam_request(body: dict) -> dict:
    """The one IPAM.Config a minidocker network has (``Subnet``, ``Gateway``), or {}. What it
    cannot honour (IPv6, a second subnet, ``--ip-range``, ``--aux-address``) is a 400."""
    if body.get("EnableIPv6"):
        raise ApiError("EnableIPv6: minidocker's networks are IPv4 only")
    configs = (body.get("IPAM") or {}).get("Config") or []
    if len(configs) > 1:
        raise ApiError("IPAM.Config: minidocker's networks have one IPv4 subnet")
    ipam = configs[0] if configs else {}
    refuse_unsupported("IPAM.Config[0]", ipam, IPAM_REFUSED)
    return ipam


def docker_network(data: dict) -> dict:
    """The engine's inspect as dockerd answers it: the keys of config-only networks (which
    minidocker does not have), and a user network's ``Options`` as they were given —
    without the defaults minidocker writes down (ICC on, the ``md-<id>`` bridge name):
    docker-compose compares them with its own and would recreate the network."""
    options = dict(data.get("Options") or {})
    if data.get("Name") != "bridge":
        if options.get(ICC_OPTION) == "true":
            del options[ICC_OPTION]
        if options.get(BRIDGE_NAME_OPTION) == f"md-{data['Id'][:12]}":
            del options[BRIDGE_NAME_OPTION]
    return {"ConfigFrom": {"Network": ""}, "ConfigOnly": False, **data, "Options": options}


def network_inspect(request: Request) -> Response:
    return JSONResponse(docker_network(_networks().inspect(request.path_params["id"])))


def network_delete(request: Request) -> Response:
    _networks().remove(request.path_params["id"])
    return Response(status_code=204)


def network_prune(request: Request) -> Response:
    from minidocker.filters import PRUNE_FILTERS

    chosen = prune_filters(request, PRUNE_FILTERS, "network prune")
    return JSONResponse({"NetworksDeleted": _networks().prune(chosen)})


async def _container_of(request: Request) -> tuple[str, dict]:
    body = await json_body(request)
    shapes.check("Network", body, {"Container": str, "Force": bool,
                                   "EndpointConfig": shapes.ENDPOINT_SETTINGS})
    if not body.get("Container"):
        raise ApiError("name the Container to connect or disconnect")
    return lifecycle.find(body["Container"]).Id, body


async def network_connect(request: Request) -> Response:
    """A container joins the network: now if it runs, and at each later start (docker-compose
    connects each container before it starts it), at ``EndpointConfig.IPAMConfig.IPv4Address``
    if given (``docker network connect --ip``). container/networking.py does both."""
    container_id, body = await _container_of(request)
    endpoint = body.get("EndpointConfig") or {}
    ip = endpoint_ipam(endpoint).get("IPv4Address", "")
    aliases = [str(a) for a in endpoint.get("Aliases") or []]
    await run_in_threadpool(networking.connect, lifecycle.find(container_id),
                            request.path_params["id"], aliases, ip)
    return Response(status_code=200)


async def network_disconnect(request: Request) -> Response:
    container_id, _ = await _container_of(request)
    await run_in_threadpool(networking.disconnect, lifecycle.find(container_id),
                            request.path_params["id"])
    return Response(status_code=200)
