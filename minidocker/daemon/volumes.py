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
from minidocker.daemon.params import expect, filters, flag, json_body


def volume_list(request: Request) -> Response:
    wanted = filters(request)
    found = [v.inspect() for v in volumes.list_volumes()
             if not wanted.get("name") or any(n in v.Name for n in wanted["name"])]
    return JSONResponse({"Volumes": found, "Warnings": []})


async def volume_create(request: Request) -> Response:
    body = await json_body(request)
    expect("Volume", body, {"Name": str, "Driver": str, "DriverOpts": dict, "Labels": dict})
    if (body.get("Driver") or "local") != "local":
        from minidocker.daemon.errors import ApiError

        raise ApiError(f"volume driver {body['Driver']!r} not found: minidocker has 'local'",
                       404)
    volume = volumes.create_volume(body.get("Name") or None, labels=body.get("Labels") or {})
    return JSONResponse(volume.inspect(), status_code=201)


def volume_inspect(request: Request) -> Response:
    return JSONResponse(volumes.get_volume(request.path_params["name"]).inspect())


def volume_delete(request: Request) -> Response:
    volumes.remove_volume(request.path_params["name"], records.volumes_in_use(),
                          force=flag(request, "force"))
    return Response(status_code=204)


def volume_prune(request: Request) -> Response:
    everything = flag(request, "all") or "all=true" in filters(request).get("all", [])
    removed, reclaimed = volumes.prune_volumes(records.volumes_in_use(), everything)
    return JSONResponse({"VolumesDeleted": removed, "SpaceReclaimed": reclaimed})
