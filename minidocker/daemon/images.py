"""One handler per image endpoint of the Engine API, over the engine's image store and verbs.

    GET    /images/json              image_list
    GET    /images/{name}/json       image_inspect
    GET    /images/{name}/history    image_history
    POST   /images/{name}/tag        image_tag      (?repo=&tag=)
    DELETE /images/{name}            image_delete   (?force=)
    POST   /images/prune             image_prune
    POST   /images/create            image_create   (pull: not served yet, a clear 404)

Removing an image must not race a create that is about to use it: like the CLI, the handlers
hold the containers lock (``records.all_locked``) while they find the images' users and
delete (the engine's lock order: containers lock, then the store's).

Spec: Docker Engine API v1.50, section "Image". Model: moby
``api/server/router/image/image_routes.go``; ``daemon/images/image_delete.go`` (done by
image/verbs.py).
"""

from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from minidocker.container import records
from minidocker.daemon.errors import ApiError
from minidocker.daemon.params import filters, flag
from minidocker.errors import NotFound
from minidocker.image import verbs
from minidocker.image.store import ImageStore


def _epoch(timestamp: str | None) -> int:
    try:
        return int(datetime.fromisoformat(timestamp).timestamp()) if timestamp else 0
    except ValueError:
        return 0


def image_list(request: Request) -> Response:
    wanted = filters(request)
    result = []
    for image in ImageStore().images():
        labels = (image.config.get("config") or {}).get("Labels") or {}
        if "dangling" in wanted and (wanted["dangling"][0] == "true") != (not image.tags):
            continue
        if "label" in wanted and not all(
                label.partition("=")[0] in labels and (not label.partition("=")[1] or
                                                       labels[label.partition("=")[0]] ==
                                                       label.partition("=")[2])
                for label in wanted["label"]):
            continue
        if "reference" in wanted and not any(t.split(":")[0] in wanted["reference"] or t in
                                             wanted["reference"] for t in image.tags):
            continue
        result.append({"Id": image.id, "ParentId": "", "RepoTags": image.tags,
                       "RepoDigests": image.digests, "Created": _epoch(image.config.get("created")),
                       "Size": image.size, "SharedSize": -1, "VirtualSize": image.size,
                       "Labels": labels, "Containers": -1})
    return JSONResponse(result)


def _no_such_image(name: str) -> ApiError:
    return ApiError(f"No such image: {name}", 404)


def image_inspect(request: Request) -> Response:
    name = request.path_params["name"]
    try:
        return JSONResponse(verbs.inspect_image(name))
    except NotFound:
        raise _no_such_image(name) from None


def image_history(request: Request) -> Response:
    name = request.path_params["name"]
    try:
        rows = verbs.history(name)
    except NotFound:
        raise _no_such_image(name) from None
    return JSONResponse([{"Id": shown if shown == "<missing>" else ImageStore().get(name).id,
                          "Created": _epoch(entry.get("created")),
                          "CreatedBy": entry.get("created_by", ""), "Tags": None,
                          "Size": size, "Comment": entry.get("comment", "")}
                         for shown, entry, size in rows])


def image_tag(request: Request) -> Response:
    name, repo = request.path_params["name"], request.query_params.get("repo")
    if not repo:
        raise ApiError("give the new name: ?repo=NAME&tag=TAG")
    tag = request.query_params.get("tag")
    store = ImageStore()
    try:
        image = store.get(name)
    except NotFound:
        raise _no_such_image(name) from None
    store.tag(image, f"{repo}:{tag}" if tag else repo)
    return Response(status_code=201)


def image_delete(request: Request) -> Response:
    name = request.path_params["name"]
    with records.all_locked():
        try:
            done = verbs.remove_image(name, flag(request, "force"), records.images_in_use())
        except NotFound:
            raise _no_such_image(name) from None
    return JSONResponse([{line.split(": ", 1)[0]: line.split(": ", 1)[1]} for line in done])


def image_prune(request: Request) -> Response:
    wanted = filters(request)
    everything = wanted.get("dangling", ["true"])[0] in ("false", "0")
    with records.all_locked():
        done = verbs.prune_images(everything, records.images_in_use())
    deleted = [{line.split(": ", 1)[0]: line.split(": ", 1)[1]} for line in done]
    return JSONResponse({"ImagesDeleted": deleted or None, "SpaceReclaimed": 0})


def image_create(request: Request) -> Response:
    """``docker pull`` (and the pull ``docker run`` tries for a missing image)."""
    name = request.query_params.get("fromImage") or request.query_params.get("fromSrc") or ""
    raise ApiError(f"pull access denied for {name}: minidocker's daemon does not pull yet; "
                   "load the image with 'minidocker load' or 'minidocker pull'", 404)
