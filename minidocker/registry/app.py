"""The registry as an ASGI application: the spec's routes, its error body, its version header.

``create_app(root)`` maps each route of the spec to its handler; a repository name may hold
slashes, so it is matched as a path and the grammar check in ``paths`` decides whether it is
a name. Every response carries ``Docker-Distribution-API-Version: registry/2.0`` (clients use
it to recognise a v2 registry). Every refusal is the spec's JSON
``{"errors": [{"code", "message", "detail"}]}``: a ``RegistryError`` with its own code, an
unknown route or method with ``NAME_UNKNOWN``/``UNSUPPORTED``. With ``auth`` (``auth.py``) every
``/v2`` request is authorised first, and token auth adds its token endpoint. ``serve(addr,
root)`` runs it in the foreground with uvicorn, which also decodes HTTP chunked request bodies
and, with ``tls``, speaks HTTPS with the kit's certificate (``tls.py``).

Spec: distribution-spec spec.md, "API", "Endpoints", "Error Codes".
Model: distribution's ``registry/handlers/app.go`` (route registration).
Used by: ``minidocker registry serve``; notebook 11-registries; tests/test_registry*.py.
"""

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from minidocker.errors import MinidockerError
from minidocker.registry import handlers
from minidocker.registry.auth import RequireAuth, TokenAuth, token_endpoint
from minidocker.registry.errors import RegistryError
from minidocker.registry.storage import Storage

API_VERSION = (b"docker-distribution-api-version", b"registry/2.0")
NAME = "/v2/{name:path}"
ROUTES = [
    Route("/v2/", handlers.api_version_check, methods=["GET"]),
    Route("/v2", handlers.api_version_check, methods=["GET"]),
    Route("/v2/_catalog", handlers.list_repositories, methods=["GET"]),
    Route(NAME + "/tags/list", handlers.list_tags, methods=["GET"]),
    Route(NAME + "/referrers/{digest}", handlers.list_referrers, methods=["GET"]),
    Route(NAME + "/manifests/{reference}", handlers.pull_manifest, methods=["GET", "HEAD"]),
    Route(NAME + "/manifests/{reference}", handlers.push_manifest, methods=["PUT"]),
    Route(NAME + "/manifests/{reference}", handlers.delete_manifest, methods=["DELETE"]),
    Route(NAME + "/blobs/uploads/", handlers.start_blob_upload, methods=["POST"]),
    Route(NAME + "/blobs/uploads/{uuid}", handlers.get_blob_upload_status, methods=["GET"]),
    Route(NAME + "/blobs/uploads/{uuid}", handlers.push_blob_chunk, methods=["PATCH"]),
    Route(NAME + "/blobs/uploads/{uuid}", handlers.close_blob_upload, methods=["PUT"]),
    Route(NAME + "/blobs/uploads/{uuid}", handlers.cancel_blob_upload, methods=["DELETE"]),
    Route(NAME + "/blobs/{digest}", handlers.pull_blob, methods=["GET", "HEAD"]),
    Route(NAME + "/blobs/{digest}", handlers.delete_blob, methods=["DELETE"]),
]


def error_response(error: RegistryError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def on_registry_error(request: Request, exc: RegistryError) -> JSONResponse:
    return error_response(exc)


async def on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Routing's own refusals, in the spec's error body."""
    if exc.status_code == 405:
        error = RegistryError("UNSUPPORTED", f"{request.method} is not supported on "
                              f"{request.url.path}")
    elif exc.status_code == 404:
        error = RegistryError("NAME_UNKNOWN", f"no such endpoint {request.url.path}",
                              detail={"path": request.url.path})
    else:
        error = RegistryError("UNSUPPORTED", exc.detail, status=exc.status_code)
    return error_response(error)


async def on_disconnect(request: Request, exc: ClientDisconnect) -> JSONResponse:
    """The client went away mid-body: what arrived stays in the upload, which it can resume
    (nobody reads this answer; it only keeps a traceback out of the log)."""
    return error_response(RegistryError("BLOB_UPLOAD_INVALID", "the client disconnected"))


async def on_os_error(request: Request, exc: OSError) -> JSONResponse:
    """A disk that is full or read-only is the operator's to fix; say so, not a traceback."""
    error = RegistryError("UNSUPPORTED", f"the registry's storage failed: {exc.strerror}",
                          status=503)
    return error_response(error)


class APIVersionHeader:
    """ASGI middleware: ``Docker-Distribution-API-Version`` on every response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_header(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + [API_VERSION]
            await send(message)

        await self.app(scope, receive, send_with_header)


def create_app(root: Path, auth=None) -> Starlette:
    """The registry over ``root``; ``auth`` is a policy of ``auth.py`` (None: open to all)."""
    routes = ROUTES + ([Route("/token", token_endpoint, methods=["GET"])]
                       if isinstance(auth, TokenAuth) else [])
    app = Starlette(routes=routes, exception_handlers={
        RegistryError: on_registry_error, HTTPException: on_http_error,
        ClientDisconnect: on_disconnect, OSError: on_os_error})
    app.router.redirect_slashes = False  # a redirect would hide a bad name or digest
    app.state.storage = Storage(Path(root))
    app.state.auth = auth
    if auth is not None:
        app.add_middleware(RequireAuth, policy=auth)
    app.add_middleware(APIVersionHeader)  # added last: outermost, so a 401 carries it too
    return app


def parse_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise MinidockerError(f"invalid address {addr!r}: use HOST:PORT, e.g. 127.0.0.1:5000")
    return host.strip("[]"), int(port)


def serve(addr: str, root: Path, log_level: str = "info", auth=None,
          tls: tuple[Path, Path] | None = None) -> None:
    """Run the registry in the foreground until interrupted; ``tls`` is (cert, key)."""
    import uvicorn

    host, port = parse_addr(addr)
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MinidockerError(f"cannot make the registry's root {root}: {exc.strerror} (give "
                              "--root a directory you can write)") from None
    certfile, keyfile = tls or (None, None)
    uvicorn.run(create_app(root, auth), host=host, port=port, log_level=log_level,
                ssl_certfile=certfile, ssl_keyfile=keyfile)
