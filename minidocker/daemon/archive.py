"""The container's files over the Engine API: ``docker cp`` and ``docker export``.

    HEAD /containers/{id}/archive?path=     container_archive  (the path's stat, as a header)
    GET  /containers/{id}/archive?path=     container_archive  (the tar of the path)
    PUT  /containers/{id}/archive?path=     container_archive  (a tar unpacked into the dir)
    GET  /containers/{id}/export            container_export   (the whole root as a tar)

The docker CLI does ``cp``'s rules on its side (which directory, which name) and asks the
daemon only these three things; the engine's container/archive.py does each one inside the
container's root, so an archive that names ``..`` or goes through a symlink the container
planted is refused, and nothing lands outside the container. A tar is streamed through a pipe
from the child that writes it; one that comes in is spooled to a temporary file first (capped
like a layer), so a slow client never holds the child inside the container.

Spec: Docker Engine API v1.50, "ContainerArchiveInfo", "ContainerArchive",
"PutContainerArchive", "ContainerExport". Model: moby ``api/server/router/container/copy.go``.
"""

import asyncio
import logging
import os
import tempfile

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from minidocker.container import archive, lifecycle
from minidocker.daemon.errors import ApiError
from minidocker.daemon.params import flag
from minidocker.image.layers import DEFAULT_MAX_BYTES

STAT_HEADER = "X-Docker-Container-Path-Stat"
TAR = "application/x-tar"
log = logging.getLogger("minidocker.daemon")


async def container_archive(request: Request) -> Response:
    path = request.query_params.get("path")
    if not path:
        raise ApiError("give the path in the container: ?path=/etc/hostname")
    record = await run_in_threadpool(lifecycle.find, request.path_params["id"])
    if request.method == "PUT":
        return await _put(request, record, path)
    found = await run_in_threadpool(archive.stat_path, record, path)
    headers = {STAT_HEADER: found.header()}
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers)
    return StreamingResponse(stream(archive.archive_path, record, path), media_type=TAR,
                             headers=headers)


async def _put(request: Request, record, path: str) -> Response:
    """Spool the body, then unpack it into ``path`` (a directory that exists)."""
    with tempfile.TemporaryFile() as spool:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > DEFAULT_MAX_BYTES:
                raise ApiError(f"archive too large: more than {DEFAULT_MAX_BYTES} bytes", 413)
            await run_in_threadpool(spool.write, chunk)
        spool.seek(0)
        await run_in_threadpool(archive.extract_archive, record, path, spool,
                                flag(request, "copyUIDGID"),
                                flag(request, "noOverwriteDirNonDir"))
    return Response(status_code=200)


async def container_export(request: Request) -> Response:
    """``GET /containers/{id}/export``: the container's root filesystem, flat."""
    from minidocker.container.commit import export

    record = await run_in_threadpool(lifecycle.find, request.path_params["id"])
    return StreamingResponse(stream(lambda r, out: export(r.Id, out), record), media_type=TAR)


async def stream(write, *args):
    """The bytes ``write(*args, output)`` writes, read from a pipe as they come. If the
    client goes, the pipe breaks and the writer (a child process) ends with it."""
    read_end, write_end = os.pipe()

    def writer() -> None:
        with os.fdopen(write_end, "wb") as output:
            write(*args, output)

    loop = asyncio.get_running_loop()
    done = loop.run_in_executor(None, writer)
    done.add_done_callback(lambda f: f.cancelled() or f.exception())  # logged below, or moot
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                os.fdopen(read_end, "rb", buffering=0))
    try:
        while chunk := await reader.read(65536):
            yield chunk
    finally:  # also when the client went: the writer's next write fails, and it ends
        transport.close()
    try:
        await done
    except Exception as exc:  # the headers are sent: the truncated tar says it, the log why
        log.warning("streaming a container's files failed: %s", exc)
