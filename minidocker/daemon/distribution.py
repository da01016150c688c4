"""The registry's side of the Engine API: pull, push, login — and search, which it refuses.

    POST /images/create?fromImage=NAME&tag=TAG   image_pull (image_create in images.py)
    POST /images/{name}/push?tag=TAG              image_push
    POST /auth                                    auth
    GET  /images/search?term=                     image_search

The daemon pulls and pushes with stage 11's client (registry/pull.py, push.py), so digests are
verified and sizes capped exactly as for ``minidocker pull``; only the progress is Docker's JSON
stream (progress.py). The client's credentials travel with each request, in the
``X-Registry-Auth`` header: base64url of ``{"username", "password", "serveraddress"}``. The
daemon never stores them: ``docker login`` asks ``POST /auth`` whether they are right (the
registry client's ``login``: ``GET /v2/`` with them, through the token dance if the registry
wants one), and the CLI keeps them in its own ``config.json``.

Spec: Docker Engine API v1.50, "ImageCreate", "ImagePush", "SystemAuth", "ImageSearch"
("Authentication"); distribution-spec. Model: moby ``api/server/router/image/image_routes.go``
(``postImagesCreate``, ``postImagesPush``), ``registry/auth.go``.
"""

import base64
import binascii
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from minidocker.daemon import shapes
from minidocker.daemon.errors import ApiError
from minidocker.daemon.params import json_body
from minidocker.daemon.progress import progress_response
from minidocker.errors import MinidockerError, NotFound

MAX_AUTH_HEADER = 16 << 10


def header_json(request: Request, name: str) -> dict | None:
    """A header holding base64url-encoded JSON (``X-Registry-Auth``, ``X-Registry-Config``):
    the object, or None when the header is absent."""
    header = request.headers.get(name, "").strip()
    if not header:
        return None
    if len(header) > MAX_AUTH_HEADER:
        raise ApiError(f"{name} is too long")
    try:
        data = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error):
        raise ApiError(f"invalid {name} header: expected base64url-encoded JSON") from None
    if not isinstance(data, dict):
        raise ApiError(f"invalid {name} header: expected a JSON object")
    return data


def registry_login(request: Request) -> tuple[str, str] | None:
    """The user and password of ``X-Registry-Auth`` (None when absent or anonymous)."""
    data = header_json(request, "X-Registry-Auth") or {}
    shapes.check("X-Registry-Auth", data, {"username": str, "password": str})
    if data.get("identitytoken") or data.get("registrytoken"):
        raise ApiError("identity and registry tokens are not supported by minidocker's "
                       "daemon: log in with a user name and password")
    if not data.get("username"):
        return None
    return data["username"], data.get("password") or ""


def registry_logins(request: Request) -> dict[str, tuple[str, str]]:
    """``X-Registry-Config`` (sent with a build): {registry: {"username", "password"}}, every
    login the CLI knows, since a build may pull from several registries."""
    configs = header_json(request, "X-Registry-Config") or {}
    return {host.removeprefix("https://").removeprefix("http://").split("/")[0]:
            (auth["username"], auth.get("password") or "")
            for host, auth in configs.items()
            if isinstance(auth, dict) and isinstance(auth.get("username"), str)
            and isinstance(auth.get("password", ""), str) and auth["username"]}


def registry_status(exc: MinidockerError) -> int:
    """dockerd's codes for a refused pull or push: what does not exist or may not be read is
    404 ("pull access denied"), an unreachable or failing registry 500."""
    from minidocker.registry.client import Unauthorized

    if isinstance(exc, NotFound | Unauthorized) or "manifest unknown" in str(exc):
        return 404
    if isinstance(exc, ApiError):
        return exc.status
    return 500


async def image_pull(request: Request, name: str) -> Response:
    """``docker pull NAME:TAG`` (also what ``docker run`` does for a missing image)."""
    from minidocker.registry.pull import pull

    tag = request.query_params.get("tag") or ""
    if tag and "@" not in name:
        name = f"{name}@{tag}" if tag.startswith("sha256:") else f"{name}:{tag}"
    platform = request.query_params.get("platform") or None
    login = registry_login(request)

    def work(report):
        pull(name, report, platform, login=login)

    return await progress_response(work, registry_status)


async def image_push(request: Request) -> Response:
    """``docker push NAME[:TAG]``: ``{"aux": {"Tag", "Digest", "Size"}}`` at the end, which
    the CLI shows as the digest line."""
    from minidocker.image.store import ImageStore
    from minidocker.registry.push import push

    name, tag = request.path_params["name"], request.query_params.get("tag") or ""
    if tag:
        name = f"{name}:{tag}"
    login = registry_login(request)
    try:
        ImageStore().get(name)
    except NotFound:
        raise ApiError(f"An image does not exist locally with the tag: {name}", 404) from None

    def work(report):
        digest = push(name, report, login=login)
        size = len(ImageStore().blobs.read(ImageStore().get(name).manifest_digest))
        return [{"progressDetail": {}, "aux": {"Tag": tag or "latest", "Digest": digest,
                                               "Size": size}}]

    return await progress_response(work, registry_status)


async def auth(request: Request) -> Response:
    """``docker login``: are these credentials right for that registry?"""
    from starlette.concurrency import run_in_threadpool

    from minidocker.registry import client

    body = await json_body(request)
    shapes.check("AuthConfig", body, {"username": str, "password": str, "serveraddress": str,
                                      "email": str, "auth": str, "identitytoken": str})
    user, password = body.get("username") or "", body.get("password") or ""
    if not user:
        raise ApiError("give a username and a password (identity tokens are not supported)")
    server = (body.get("serveraddress") or client.DOCKER_HUB)
    host = server.removeprefix("https://").removeprefix("http://").split("/")[0]
    if host in ("index.docker.io", "registry-1.docker.io"):
        host = client.DOCKER_HUB
    try:
        await run_in_threadpool(client.login, host, user, password)
    except client.Unauthorized as exc:
        raise ApiError(str(exc), 401) from None
    except client.RegistryClientError as exc:
        raise ApiError(str(exc), 500) from None
    return JSONResponse({"Status": "Login Succeeded", "IdentityToken": ""})


def image_search(request: Request) -> Response:
    """``docker search``: Docker Hub's search is a service of the Hub, not of the registry
    API (distribution has no search; ``/v2/_catalog`` lists a registry's repositories only to
    its admin), and minidocker's daemon works offline: refused with the reason."""
    term = request.query_params.get("term") or ""
    if not term:
        raise ApiError("give a search term: ?term=NAME")
    raise ApiError("search is not supported by minidocker's daemon: Docker Hub's search is "
                   "a service of hub.docker.com, not of the registry API; list a registry's "
                   "repositories with 'curl https://HOST/v2/_catalog' or browse "
                   "hub.docker.com", 501)
