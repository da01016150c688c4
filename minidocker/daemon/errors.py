"""The daemon's errors, as Docker's Engine API sends them: ``{"message": "..."}`` with the
status code that says whose fault it is.

The engine below already says what went wrong in one ``MinidockerError`` family; this module
only chooses the status, as moby's ``errdefs`` does: ``NotFound`` → 404, ``Conflict`` → 409,
a request the daemon refuses → 400 (or the ``ApiError``'s own status: 304 "already started",
413 "body too large"), anything else the engine raises → 400 as well (the message says what
to fix). A bug in the daemon is a 500 with one sentence; its traceback goes to the daemon's
log, never to the client.

Spec: Docker Engine API v1.50, "Errors" (ErrorResponse); moby ``errdefs/http_helpers.go``.
"""

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from minidocker.errors import Conflict, MinidockerError, NotFound

log = logging.getLogger("minidocker.daemon")


class ApiError(MinidockerError):
    """A request refused with a given HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def status_of(exc: MinidockerError) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    return 400


def error_response(message: str, status: int) -> Response:
    if status == 304:  # "not modified" carries no body
        return Response(status_code=304)
    return JSONResponse({"message": message}, status_code=status)


async def on_engine_error(request: Request, exc: MinidockerError) -> Response:
    return error_response(str(exc), status_of(exc))


async def on_http_error(request: Request, exc: HTTPException) -> Response:
    """Routing's own refusals: an unknown path is dockerd's "page not found"."""
    if exc.status_code == 404:
        return error_response("page not found", 404)
    if exc.status_code == 405:
        return error_response(f"{request.method} is not allowed on {request.url.path}", 405)
    return error_response(str(exc.detail), exc.status_code)


async def on_os_error(request: Request, exc: OSError) -> Response:
    log.exception("system error while serving %s %s", request.method, request.url.path)
    return error_response(f"the daemon's host failed: {exc.strerror or exc}", 500)


async def on_bug(request: Request, exc: Exception) -> Response:
    log.exception("error while serving %s %s", request.method, request.url.path)
    return error_response(f"internal error in the daemon ({type(exc).__name__}); see its log",
                          500)
