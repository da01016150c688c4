"""Long image operations as Docker streams them: one JSON object a line, as they happen.

``docker pull``, ``push``, ``load``, ``import`` and ``build`` do not answer once at the end:
the daemon sends ``{"status": "Pulling fs layer", "id": "3f4d90098f5b"}``,
``{"stream": "Step 1/2 : FROM busybox\\n"}``... as the work goes, and the client draws them.
An error after the first line can no longer change the HTTP status, so it travels in the
stream too: ``{"errorDetail": {"message": M}, "error": M}`` (the CLI prints M, exits 1).

The work itself is the engine's (registry/pull.py, push.py, image/archive.py), blocking code
that runs in a worker thread and reports through a ``Report``; ``JSONReport`` turns each of
its calls into a message on an asyncio queue. ``progress_response`` waits for the first
message before it answers: if the work fails before saying anything (no such image, a
registry that refuses), the client gets Docker's ordinary ``{"message": ...}`` with a status
code instead of a 200 with an error inside.

Spec: Docker Engine API v1.50, "ImageCreate", "ImagePush", "ImageBuild" (the JSON messages);
moby ``pkg/jsonmessage/jsonmessage.go`` (JSONMessage, JSONProgress),
``pkg/streamformatter``.
"""

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Callable

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from minidocker.daemon.errors import ApiError, status_of
from minidocker.errors import MinidockerError
from minidocker.registry.progress import Report

log = logging.getLogger("minidocker.daemon")
DONE = object()  # the end of the stream
HEADED_LINE = re.compile(r"^(\S+): (Pulling from .*)$")  # "latest: Pulling from library/x"


def line(message: dict) -> bytes:
    return json.dumps(message).encode() + b"\r\n"


def error_message(text: str) -> dict:
    return {"errorDetail": {"message": text}, "error": text}


class JSONReport(Report):
    """A pull's or push's statuses as Docker's JSON messages, put on ``queue`` from the
    worker thread (``call_soon_threadsafe``: the queue belongs to the event loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue):
        self.loop, self.queue = loop, queue
        self.totals: dict[str, tuple[int, int]] = {}  # layer -> (done, total)
        self.verbs: dict[str, str] = {}  # layer -> "Downloading" or "Pushing"

    def send(self, message) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, message)

    def line(self, text: str) -> None:
        headed = HEADED_LINE.match(text)
        self.send({"status": headed[2], "id": headed[1]} if headed else {"status": text})

    def status(self, layer: str, text: str) -> None:
        self.send({"status": text, "progressDetail": {}, "id": layer})

    def transfer(self, layer: str, verb: str, total: int) -> None:
        self.totals[layer], self.verbs[layer] = (0, total), verb
        self.advance(layer, 0)

    def advance(self, layer: str, size: int) -> None:
        done, total = self.totals.get(layer, (0, 0))
        done += size
        self.totals[layer] = (done, total)
        self.send({"status": self.verbs.get(layer, "Downloading"), "id": layer,
                   "progressDetail": {"current": done, "total": total},
                   "progress": bar(done, total)})


def bar(done: int, total: int, width: int = 50) -> str:
    """Docker's ``[=====>      ]  1.2MB/3.4MB`` text of a transfer."""
    filled = width * done // total if total else 0
    arrow = "=" * filled + (">" if filled < width else "") + " " * max(0, width - filled - 1)
    return f"[{arrow}] {human(done)}/{human(total)}"


def human(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.4g}{unit}"
        size /= 1000
    return ""


async def progress_response(work: Callable[[JSONReport], list[dict] | None],
                            http_status: Callable[[MinidockerError], int] = status_of
                            ) -> Response:
    """Run ``work(report)`` in a thread and stream its messages (and the list of final
    messages it returns); a failure before its first message is an ordinary error answer."""
    loop, queue = asyncio.get_running_loop(), asyncio.Queue()
    report = JSONReport(loop, queue)

    async def run() -> None:
        try:
            for message in await run_in_threadpool(work, report) or []:
                queue.put_nowait(message)
            queue.put_nowait(DONE)
        except Exception as exc:  # noqa: BLE001 (a bug too must end the stream)
            queue.put_nowait(exc)

    task = asyncio.create_task(run())
    first = await queue.get()
    if isinstance(first, MinidockerError):
        raise ApiError(str(first), http_status(first))
    if isinstance(first, Exception):
        raise first  # a bug: the app's handler logs it and answers 500
    return StreamingResponse(rest(first, queue, task), media_type="application/json")


async def rest(first, queue: asyncio.Queue, task: asyncio.Task) -> AsyncIterator[bytes]:
    message = first
    while message is not DONE:
        if isinstance(message, Exception):
            if not isinstance(message, MinidockerError):
                log.error("error in a streamed operation", exc_info=message)
                message = "internal error in the daemon (see its log)"
            yield line(error_message(str(message)))
            break
        yield line(message)
        message = await queue.get()
    await task  # a client that went away leaves the work to finish in its thread
