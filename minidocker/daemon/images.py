"""One handler per image endpoint of the Engine API, over the engine's image store and verbs.

    GET    /images/json              image_list
    GET    /images/{name}/json       image_inspect
    GET    /images/{name}/history    image_history
    POST   /images/{name}/tag        image_tag      (?repo=&tag=)
    DELETE /images/{name}            image_delete   (?force=)
    POST   /images/prune             image_prune
    POST   /images/create            image_create   (pull, or import with fromSrc=-)
    POST   /images/load              image_load     (docker load)
    GET    /images/{name}/get        image_get      (docker save)
    GET    /images/get?names=        images_get     (docker save A B)
    POST   /commit                   image_commit
    POST   /build                    builds.py; push, /auth, search: distribution.py

Removing an image must not race a create that is about to use it: like the CLI, the handlers
hold the containers lock (``records.all_locked``) while they find the images' users and
delete (the engine's lock order: containers lock, then the store's).

Spec: Docker Engine API v1.50, section "Image". Model: moby
``api/server/router/image/image_routes.go``; ``daemon/images/image_delete.go`` (done by
image/verbs.py).
"""

from datetime import datetime
from pathlib import Path

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from minidocker.container import records
from minidocker.daemon.containers import ZERO_TIME
from minidocker.daemon.errors import ApiError
from minidocker.daemon.params import filter_items, flag, json_body, prune_filters
from minidocker.daemon.progress import line
from minidocker.daemon.uploads import MAX_ARCHIVE, receive_file
from minidocker.errors import NotFound
from minidocker.filters import PRUNE_FILTERS
from minidocker.image import verbs
from minidocker.image.store import ImageStore


def _epoch(timestamp: str | None) -> int:
    try:
        return int(datetime.fromisoformat(timestamp).timestamp()) if timestamp else 0
    except ValueError:
        return 0


def image_list(request: Request) -> Response:
    """``GET /images/json?filters=``: filtered by the rules of ``minidocker images --filter``
    (image/filters.py)."""
    from minidocker.image import filters as by

    store = ImageStore()
    result = []
    for image in by.select(store.images(), by.parse(filter_items(request)), store):
        labels = (image.config.get("config") or {}).get("Labels") or {}
        result.append({"Id": image.id, "ParentId": "", "RepoTags": image.tags,
                       "RepoDigests": image.digests, "Created": _epoch(image.config.get("created")),
                       "Size": image.size, "SharedSize": -1, "VirtualSize": image.size,
                       "Labels": labels, "Containers": -1})
    return JSONResponse(result)


def _no_such_image(name: str) -> ApiError:
    return ApiError(f"No such image: {name}", 404)


# An image's Config as dockerd answers it: every field present, with Go's zero values.
IMAGE_CONFIG_ZERO = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
                     "AttachStdout": False, "AttachStderr": False, "Tty": False,
                     "OpenStdin": False, "StdinOnce": False, "Env": None, "Cmd": None,
                     "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
                     "OnBuild": None, "Labels": None}


def image_inspect(request: Request) -> Response:
    """``GET /images/{name}/json``: the engine's inspect completed with dockerd's keys (the
    unpacked layers as ``GraphDriver``, the zero values of what minidocker does not keep)."""
    name = request.path_params["name"]
    try:
        data = verbs.inspect_image(name)
        layers = ImageStore().get(name).layer_dirs()
    except NotFound:
        raise _no_such_image(name) from None
    config = {**IMAGE_CONFIG_ZERO, **(data.get("Config") or {})}
    return JSONResponse({  # Container, ContainerConfig, VirtualSize: gone from API 1.45, but
        # docker-compose 1.29 reads ContainerConfig.Volumes when it recreates a container
        "Parent": "", "Comment": "", "DockerVersion": "", "Container": "",
        "ContainerConfig": config, "VirtualSize": data.get("Size", 0), **data,
        "Config": config,
        "GraphDriver": {"Name": "overlay2", "Data": {"LowerDir": ":".join(layers[1:]),
                                                     "UpperDir": layers[0] if layers else ""}},
        "Metadata": {"LastTagTime": ZERO_TIME}})


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
            done = verbs.remove_image(name, flag(request, "force"), records.images_in_use(),
                                      prune_parents=not flag(request, "noprune"))
        except NotFound:
            raise _no_such_image(name) from None
    return JSONResponse([{line.split(": ", 1)[0]: line.split(": ", 1)[1]} for line in done])


def image_prune(request: Request) -> Response:
    chosen = prune_filters(request, ("dangling", *PRUNE_FILTERS), "image prune")
    everything = not chosen.match_bool("dangling", True)  # docker image prune -a: false
    with records.all_locked():
        done, reclaimed = verbs.prune_images(everything, records.images_in_use(), chosen)
    deleted = [{line.split(": ", 1)[0]: line.split(": ", 1)[1]} for line in done]
    return JSONResponse({"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed})


async def image_create(request: Request) -> Response:
    """``docker pull`` (``?fromImage=NAME&tag=``, distribution.py) or ``docker import``
    (``?fromSrc=-&repo=&tag=&changes=&message=``: the body is a root filesystem tar)."""
    from minidocker.daemon.distribution import image_pull

    name = request.query_params.get("fromImage")
    if name:
        return await image_pull(request, name)
    if request.query_params.get("fromSrc") == "-":
        return await image_import(request)
    if request.query_params.get("fromSrc"):
        raise ApiError("import from a URL is not supported by minidocker's daemon: download "
                       "the tarball and send it (docker import FILE, or fromSrc=-)")
    raise ApiError("give fromImage=NAME (pull) or fromSrc=- (import)")


async def image_import(request: Request) -> Response:
    """A flat root filesystem tar becomes a one-layer image (image/archive.import_tarball)."""
    from minidocker.image.archive import import_tarball
    from minidocker.image.config import apply_changes

    repo, tag = request.query_params.get("repo") or "", request.query_params.get("tag") or ""
    name = (f"{repo}:{tag}" if tag else repo) or None
    changes = request.query_params.getlist("changes")
    message = request.query_params.get("message") or ""
    with ImageStore().scratch() as scratch:
        path = Path(scratch) / "rootfs.tar"
        await receive_file(request, path, MAX_ARCHIVE, "root filesystem tar")
        image = await run_in_threadpool(import_tarball, path, name,
                                        apply_changes({}, changes), message)
    return JSONResponse({"status": image.id})


async def image_load(request: Request) -> Response:
    """``docker load``: an OCI or docker archive in the body (image/archive.load)."""
    from minidocker.image.archive import ArchiveError, load

    with ImageStore().scratch() as scratch:
        path = Path(scratch) / "images.tar"
        await receive_file(request, path, MAX_ARCHIVE, "image archive")
        try:
            names = await run_in_threadpool(load, path)
        except ArchiveError as exc:  # its message names our scratch file: name the upload
            raise ApiError(str(exc).replace(str(path), "the uploaded archive")) from None
    lines = b"".join(line({"stream": f"Loaded image: {name}\n"}) for name in names)
    return Response(lines, media_type="application/json")


def image_get(request: Request) -> Response:
    """``docker save NAME``: the image as a tar (OCI layout + docker ``manifest.json``)."""
    return _save([request.path_params["name"]])


def images_get(request: Request) -> Response:
    """``docker save A B ...``: ``GET /images/get?names=A&names=B``."""
    names = request.query_params.getlist("names")
    if not names:
        raise ApiError("give the images to save: ?names=NAME (repeatable)")
    return _save(names)


def _save(names: list[str]) -> Response:
    """The archive is written to a scratch file first (image/archive.save), then streamed:
    a missing image is a 404 before any byte of the tar is sent."""
    from minidocker.image.archive import save
    from minidocker.image.store import tag_named

    store = ImageStore()
    chosen = []
    for name in names:
        try:
            image = store.get(name)
        except NotFound:
            raise _no_such_image(name) from None
        chosen.append((image, tag_named(name, image)))
    scratch = store.scratch()
    path = Path(scratch.name) / "images.tar"
    try:
        with open(path, "wb") as out:
            save(chosen, out)
    except BaseException:
        scratch.cleanup()
        raise

    def chunks():
        try:
            with open(path, "rb") as tar:
                while chunk := tar.read(1 << 20):
                    yield chunk
        finally:
            scratch.cleanup()

    return StreamingResponse(iterate_in_threadpool(chunks()), media_type="application/x-tar")


async def image_commit(request: Request) -> Response:
    """``docker commit``: ``POST /commit?container=&repo=&tag=&comment=&author=&changes=``
    (container/commit.py). The body's ContainerConfig may only be empty: the image's config
    changes are given as ``changes`` (Dockerfile instructions), as the CLI's ``-c`` sends."""
    from minidocker.container.commit import commit

    container = request.query_params.get("container")
    if not container:
        raise ApiError("give the container to commit: ?container=NAME")
    body = await json_body(request, allow_null=True)
    if any(value not in (None, "", [], {}, False, 0) for value in body.values()):
        raise ApiError("a config in the body of commit is not supported by minidocker: give "
                       "the changes as Dockerfile instructions (?changes=CMD [...], the CLI's "
                       "-c)")
    repo, tag = request.query_params.get("repo") or "", request.query_params.get("tag") or ""
    name = (f"{repo}:{tag}" if tag else repo) or None
    image = await run_in_threadpool(
        commit, container, name, request.query_params.get("author") or "",
        request.query_params.get("comment") or "", request.query_params.getlist("changes"))
    return JSONResponse({"Id": image.id}, status_code=201)
