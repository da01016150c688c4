"""The engine's news over the Engine API: ``docker events`` and ``docker system df``.

    GET /events?since=&until=&filters=     system_events  (JSON objects, one per line)
    GET /system/df                         system_data_usage

``/events`` sends what the engine's event log (minidocker/events.py) holds since ``since``,
then each event as it is written, until ``until`` or until the client goes — polling the log
file without a thread, so a client that leaves costs nothing. Each event also carries the old
fields (``status``, ``id``, ``from``) that clients before API 1.22 read.

Spec: Docker Engine API v1.50, "SystemEvents", "SystemDataUsage".
"""

import asyncio
import json
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from minidocker import events
from minidocker.daemon.errors import ApiError
from minidocker.daemon.params import filters


def _time(request: Request, name: str) -> int | None:
    text = request.query_params.get(name)
    return events.parse_time(text) if text else None


async def system_events(request: Request) -> Response:
    wanted = filters(request)
    for key in wanted:
        if key not in events.FILTER_KEYS:
            raise ApiError(f"invalid filter '{key}'")
    since, until = _time(request, "since"), _time(request, "until")

    async def body():
        tail = events.Tail()
        if since is not None:
            for event in await run_in_threadpool(events.read, since, until):
                if events.matches(event, wanted):
                    yield _line(event)
        while until is None or time.time_ns() <= until:
            news = tail.poll()
            for event in news:
                if (until is None or event["timeNano"] <= until) and events.matches(event,
                                                                                     wanted):
                    yield _line(event)
            if not news:
                await asyncio.sleep(events.POLL_SECONDS)

    return StreamingResponse(body(), media_type="application/json")


def _line(event: dict) -> bytes:
    legacy = {}
    if event["Type"] in ("container", "image"):
        legacy = {"status": event["Action"], "id": event["Actor"]["ID"],
                  "from": event["Actor"]["Attributes"].get("image", "")}
    return (json.dumps({**legacy, **event}) + "\n").encode()


def system_data_usage(request: Request) -> Response:
    from minidocker.container.system import disk_usage

    return JSONResponse(disk_usage())
