"""One handler per volume endpoint of the Engine API, over the engine's volume store
(volumes.py, stage 7).

    GET    /volumes              volume_list
    POST   /volumes/create       volume_create
    GET    /volumes/{name}       volume_inspect
    DELETE /volumes/{name}       volume_delete   (?force=)
    POST   /volumes/prune        volume_prune

Which containers use a volume is stage 6's knowledge (their records' ``Mounts``); the store
is told, so that a used volume is not removed (409, as dockerd).

Spec: Docker Engine API v1.50, section "Volume".
"""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from minidocker import volumes
from minidocker.container import records
from minidocker.daemon import shapes
from minidocker.daemon.params import filter_items, flag, json_body, prune_filters


def volume_list(request: Request) -> Response:
    """``GET /volumes?filters=``: by the rules of ``minidocker volume ls --filter``."""
    from minidocker.filters import Filters

    wanted = Filters.parse(filter_items(request), volumes.VOLUME_FILTERS, "volume ls")
    in_use = set(records.volumes_in_use()) if "dangling" in wanted else set()
    found = [v.inspect() for v in volumes.select_volumes(volumes.list_volumes(), wanted, in_use)]
    return JSONResponse({"Volumes": found, "Warnings": []})


async def volume_create(request: Request) -> Response:
    body = await json_body(request)
    shapes.check("Volume", body, {"Name": str, "Driver": str, "DriverOpts": shapes.STRING_MAP,
                                  "Labels": shapes.STRING_MAP})
    if (body.get("Driver") or "local") != "local":
        from minidocker.daemon.errors import ApiError

        raise ApiError(f"volume driver {body['Driver']!r} not found: minidocker has 'local'",
                       404)
    volume = volumes.create_volume(body.get("Name") or None, labels=body.get("Labels") or {},
                                   options=body.get("DriverOpts"))
    return JSONResponse(volume.inspect(), status_code=201)


def volume_inspect(request: Request) -> Response:
    return JSONResponse(volumes.get_volume(request.path_params["name"]).inspect())


def volume_delete(request: Request) -> Response:
    with records.volume_users_held() as users:
        volumes.remove_volume(request.path_params["name"], users, force=flag(request, "force"))
    return Response(status_code=204)


def volume_prune(request: Request) -> Response:
    chosen = prune_filters(request, ("all", *volumes.VOLUME_PRUNE_FILTERS), "volume prune")
    everything = flag(request, "all") or not chosen.match_bool("all", False)  # prune -a
    with records.volume_users_held() as users:
        removed, reclaimed = volumes.prune_volumes(users, everything, chosen)
    return JSONResponse({"VolumesDeleted": removed, "SpaceReclaimed": reclaimed})
