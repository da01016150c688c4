"""A request body that is a file — a build context, an image archive, a root filesystem —
received into the store's scratch space, never into memory, and capped in size.

The body is untrusted: it is written as it arrives to a file in a temporary directory of the
store (``ImageStore().scratch()``, removed with everything in it when the request ends), and a
body longer than the cap is refused with 413 as soon as it passes it. What the file *holds* is
checked by whoever reads it (the layer extractor, the archive loader).

Spec: RFC 9110 §15.5.14 (413 Content Too Large).
"""

import os
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from minidocker.daemon.errors import ApiError

MAX_ARCHIVE = 8 << 30  # an image archive (load) or a root filesystem (import): 8 GiB
MAX_CONTEXT = 2 << 30  # a build context, as the builder caps it unpacked: 2 GiB


async def receive_file(request: Request, path: Path, cap: int, what: str) -> int:
    """Write the request's body to ``path``; its size. Over ``cap`` bytes: 413."""
    size = 0
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise ApiError(f"{what} too large: {declared} bytes, the limit is {cap}", 413)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise ApiError(f"{what} too large: more than {cap} bytes", 413)
            await run_in_threadpool(out.write, chunk)
    return size
