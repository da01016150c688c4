"""One handler per container endpoint of the Engine API, named as the API names it.

Each handler reads its request, calls the engine — ``create`` and the verbs of
``container.lifecycle``, exactly what the CLI calls — and answers with Docker's status and
JSON. None of them starts, stops or tears down anything by itself: the container's monitor
runs it, and ``teardown`` ends it, whoever asked.

    POST   /containers/create                 container_create
    GET    /containers/json                   container_list
    GET    /containers/{id}/json              container_inspect
    POST   /containers/{id}/start             container_start
    POST   /containers/{id}/attach            container_attach   (hijacked, see hijack.py)
    POST   /containers/{id}/wait              container_wait
    GET    /containers/{id}/logs              container_logs
    POST   /containers/{id}/stop|kill|restart container_stop, container_kill, container_restart
    POST   /containers/{id}/pause|unpause     container_pause, container_unpause
    POST   /containers/{id}/rename            container_rename
    POST   /containers/{id}/resize            container_resize   (?h=&w=: TIOCSWINSZ)
    GET    /containers/{id}/top               container_top
    GET    /containers/{id}/changes           container_changes
    DELETE /containers/{id}                   container_delete
    POST   /containers/prune                  container_prune

``docker run --rm busybox echo hi`` is four of them in this order: create, attach (the client
holds the stream open before anything runs), wait (``condition=removed``), start. So start
looks for attach clients already waiting: if there are any, the monitor is told to wait for
them (``lifecycle.start(record, attach=True)``) and starts the container only once the first
has connected, so not a byte of output is lost.

Spec: Docker Engine API v1.50, section "Container". Model: moby
``api/server/router/container/container_routes.go``.
"""

import asyncio
import contextlib
import struct
import time
from datetime import datetime
from pathlib import Path

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from minidocker import humanize
from minidocker.container import attach, lifecycle
from minidocker.container import filters as container_filters
from minidocker.container.create import create
from minidocker.daemon.errors import ApiError
from minidocker.daemon.hijack import MULTIPLEXED, RAW, RawStream, frame
from minidocker.daemon.params import filter_items, flag, integer, json_body, prune_filters
from minidocker.daemon.translate import (
    container_request,
    docker_container,
    docker_endpoints,
    docker_host_config,
)
from minidocker.errors import Conflict, MinidockerError, NotFound
from minidocker.filters import PRUNE_FILTERS

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time, which dockerd shows for "never"
CHANGE_KINDS = {"C": 0, "A": 1, "D": 2}
WAIT_CONDITIONS = ("not-running", "next-exit", "removed")


def _find(request: Request):
    return lifecycle.find(request.path_params["id"])


def _sessions(request: Request):
    return request.app.state.sessions


async def _record(request: Request):
    return await run_in_threadpool(_find, request)


# --- create, list, inspect -------------------------------------------------------------------

async def container_create(request: Request) -> Response:
    """``POST /containers/create?name=``: the body's Config and HostConfig, the engine's
    ``create``; 404 "No such image" sends the docker CLI to pull and try again."""
    config, host, warnings = container_request(await json_body(request),
                                               request.app.state.settings.log_config())
    name = request.query_params.get("name") or None
    record = await run_in_threadpool(_create, config, host, name)
    return JSONResponse({"Id": record.Id, "Warnings": warnings}, status_code=201)


def _create(config, host, name):
    from minidocker.image.store import ImageStore

    try:
        ImageStore().get(config.Image)
    except NotFound:
        raise ApiError(f"No such image: {config.Image}", 404) from None
    return create(config, host, name)


def container_list(request: Request) -> Response:
    """``GET /containers/json?all=&filters=``: running containers (every one with ``all``),
    filtered by the same rules as ``minidocker ps --filter`` (container/filters.py)."""
    wanted = container_filters.parse(filter_items(request))
    everything = flag(request, "all") or container_filters.shows_all(wanted)
    records = container_filters.select([r for r in lifecycle.current_records()
                                        if everything or r.status in lifecycle.ACTIVE], wanted)
    limit = integer(request, "limit", -1)
    if limit > 0:
        records = records[:limit]
    return JSONResponse([summary(r) for r in records])


def summary(record) -> dict:
    """One container as ``GET /containers/json`` lists it (Docker's ContainerSummary)."""
    networks = record.NetworkSettings.get("Networks") or {}
    return {
        "Id": record.Id, "Names": [f"/{record.Name}"], "Image": record.Config.Image,
        "ImageID": record.Image,
        "Command": " ".join(f"'{a}'" if " " in a else a for a in record.command),  # as dockerd
        "Created": _epoch(record.Created), "Ports": _ports(record),
        "Labels": record.Config.Labels, "State": record.status,
        "Status": humanize.status(record),
        "HostConfig": {"NetworkMode": str(record.HostConfig.NetworkMode)},
        "NetworkSettings": {"Networks": docker_endpoints(networks)}, "Mounts": record.Mounts,
    }


def _ports(record) -> list[dict]:
    return [{"PrivatePort": int(port.partition("/")[0]), "Type": port.partition("/")[2],
             "IP": b.get("HostIp") or "0.0.0.0", "PublicPort": int(b.get("HostPort") or 0)}
            for port, bindings in (record.NetworkSettings.get("Ports") or {}).items()
            for b in bindings or []]


def _epoch(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp()) if timestamp else 0


def container_inspect(request: Request) -> Response:
    """``GET /containers/{id}/json``: the record, as the CLI's ``inspect`` shows it, with
    Docker's leading slash on the name and Go's zero time for "never"."""
    record = _find(request)
    data = record.to_dict()
    state = {**record.State, **{k: record.State[k] or ZERO_TIME
                                for k in ("StartedAt", "FinishedAt")}}
    data.update(Name=f"/{record.Name}", State=state, Path=record.command[0],
                HostConfig=docker_host_config(record.HostConfig),
                Args=record.command[1:], Driver="overlay2", Platform="linux")
    return JSONResponse(docker_container(record, data))


# --- start, attach, wait, logs -----------------------------------------------------------------

async def container_start(request: Request) -> Response:
    """``POST /containers/{id}/start``: 204, or 304 when it already runs."""
    record = await _record(request)
    if record.status in lifecycle.ACTIVE:
        return Response(status_code=304)
    waiting = _sessions(request).take_waiting(record.Id)
    try:
        await run_in_threadpool(lifecycle.start, record, bool(waiting))
    except BaseException:
        for future in waiting:
            future.cancel()
        raise
    for future in waiting:
        future.set_result(None)
    return Response(status_code=204)


async def container_attach(request: Request) -> Response:
    """``POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1``: the hijacked
    connection bridged to the monitor's attach socket (container/attach.py). A container that
    does not run yet is waited for: its start wakes this stream."""
    record = await _record(request)
    streams = {n for n, name in ((1, "stdout"), (2, "stderr")) if flag(request, name)}
    with_stdin, tty = flag(request, "stdin"), record.Config.Tty
    sessions = _sessions(request)
    started = None if record.status in lifecycle.ACTIVE else sessions.wait_for_start(record.Id)
    keys = detach_keys(request.query_params.get("detachKeys"))
    record.event("attach")

    async def pump(receive, write) -> None:
        if started is not None:
            await started
        code = await bridge(record.directory / "attach.sock", with_stdin, tty, streams, keys,
                            receive, write)
        if code is not None:
            sessions.saw_exit(record.Id, code)

    return RawStream(tty, pump)


def detach_keys(text: str | None) -> bytes:
    """``ctrl-p,ctrl-q`` (Docker's default) as the bytes a terminal sends for them."""
    if not text:
        return attach.DETACH_KEYS
    keys = bytearray()
    for key in text.split(","):
        if key.startswith("ctrl-") and len(key) == 6 and key[5].isalpha():
            keys.append(ord(key[5].lower()) - ord("a") + 1)
        elif len(key) == 1:
            keys.append(ord(key))
        else:
            raise ApiError(f"invalid detach keys {text!r}: use e.g. ctrl-p,ctrl-q")
    return bytes(keys)


async def bridge(socket_path: Path, with_stdin: bool, tty: bool, streams: set[int],
                 keys: bytes, receive, write) -> int | None:
    """Copy the monitor's frames to Docker's stream (8-byte frames, or raw with a TTY) and the
    client's bytes to the container's stdin, until the container ends (returns its exit
    code) or the client detaches with ``keys`` or goes (returns None)."""
    sock = await run_in_threadpool(attach.connect, socket_path, with_stdin)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    feeder = asyncio.create_task(feed(receive, writer, keys)) if with_stdin else None
    buffer, code = b"", None
    try:
        while data := await reader.read(65536):
            frames, buffer = attach.read_frames(buffer + data)
            for stream, payload in frames:
                if stream == attach.EXIT:
                    code = struct.unpack(">i", payload)[0]
                elif stream in streams:
                    await write(payload if tty else frame(stream, payload))
    except ConnectionError:
        pass  # we closed it: the client detached
    finally:
        if feeder:
            feeder.cancel()
        writer.close()
    return code


async def feed(receive, writer: asyncio.StreamWriter, keys: bytes) -> None:
    """The client's bytes to the container's stdin; at the detach keys, hang up. A human
    types the keys one at a time: the start of them is held back until the next bytes say
    whether they are the keys (then dropped) or input (then sent)."""
    held = b""
    while True:
        message = await receive()
        data = held + message.get("body", b"")
        if keys in data:
            writer.write(data[:data.index(keys)])
            writer.close()  # the bridge ends; the container runs on
            return
        held = keys_begun(data, keys)
        data = data[:len(data) - len(held)]
        if data:
            writer.write(data)
            await writer.drain()
        if message["type"] == "http.disconnect":
            writer.close()
            return
        if not message.get("more_body", True):
            writer.write(held)  # not the keys after all
            held = b""
            writer.write_eof()  # the client's stdin ended


def keys_begun(data: bytes, keys: bytes) -> bytes:
    """The end of ``data`` that could be the start of the detach ``keys`` (the longest such
    end, b"" if none): ``ctrl-p`` alone may be followed by ``ctrl-q``."""
    for n in range(min(len(keys) - 1, len(data)), 0, -1):
        if data.endswith(keys[:n]):
            return data[-n:]
    return b""


async def container_wait(request: Request) -> Response:
    """``POST /containers/{id}/wait?condition=``: the headers go at once (the docker CLI waits
    for them before it starts the container), the ``StatusCode`` when the condition holds."""
    condition = request.query_params.get("condition") or "not-running"
    if condition not in WAIT_CONDITIONS:
        raise ApiError(f"invalid condition {condition!r}: use {', '.join(WAIT_CONDITIONS)}")
    record = await _record(request)
    sessions = _sessions(request)

    async def answer():
        try:
            code = await wait_for(record, condition, sessions)
        finally:
            sessions.forget_exit(record.Id)
        yield f'{{"StatusCode":{code}}}\n'.encode()

    return StreamingResponse(answer(), media_type="application/json")


async def wait_for(record, condition: str, sessions) -> int:
    """Look at the record every 0.1 s until the condition holds; an attach stream that sees the
    exit wakes us at once, and then we look every 10 ms for a second (the monitor records the
    exit, and removes a ``--rm`` container, within milliseconds)."""
    finished_before, code = record.State["FinishedAt"], record.State["ExitCode"]
    exit_codes, hurry_until = sessions.exit_codes, 0.0
    while True:
        try:
            record = await run_in_threadpool(lifecycle.find, record.Id)
        except NotFound:  # removed: its attach stream saw the code, or the record did
            for _ in range(20):
                if record.Id in exit_codes:
                    return exit_codes.pop(record.Id)
                await asyncio.sleep(0.05)
            return code
        stopped = record.status not in lifecycle.ACTIVE and record.status != "created"
        code = record.State["ExitCode"]
        if condition == "not-running" and record.status not in lifecycle.ACTIVE:
            return code
        if condition == "next-exit" and stopped and record.State["FinishedAt"] != finished_before:
            return code
        if time.monotonic() < hurry_until:
            await asyncio.sleep(0.01)
        elif await sessions.exit_seen(record.Id, 0.1):
            hurry_until = time.monotonic() + 1


def container_logs(request: Request) -> Response:
    """``GET /containers/{id}/logs?stdout=&stderr=&follow=&tail=&timestamps=``: the json-file
    log as Docker's stream (frames, or raw with a TTY)."""
    record = _find(request)
    streams = {name for name in ("stdout", "stderr") if flag(request, name)}
    if not streams:
        raise ApiError("you must choose at least one stream (stdout=1 or stderr=1)")
    tail = request.query_params.get("tail") or "all"
    stamps, tty = flag(request, "timestamps"), record.Config.Tty
    entries = lifecycle.logs(record, follow_output=flag(request, "follow"), tail=tail)

    def encode(entry) -> bytes:
        text = (f"{entry.time} " if stamps else "") + entry.text
        data = text.encode()
        return data if tty else frame(1 if entry.stream == "stdout" else 2, data)

    async def body():
        async for entry in iterate_in_threadpool(entries):
            if entry.stream in streams:
                yield encode(entry)

    return StreamingResponse(body(), media_type=RAW if tty else MULTIPLEXED)


# --- the user's moves ----------------------------------------------------------------------------

def container_stop(request: Request) -> Response:
    record = _find(request)
    if record.status not in lifecycle.ACTIVE:
        return Response(status_code=304)
    lifecycle.stop(record, integer(request, "t"))
    return Response(status_code=204)


def container_kill(request: Request) -> Response:
    lifecycle.kill(_find(request), request.query_params.get("signal") or "KILL")
    return Response(status_code=204)


def container_restart(request: Request) -> Response:
    lifecycle.restart(_find(request), integer(request, "t"))
    return Response(status_code=204)


def container_pause(request: Request) -> Response:
    lifecycle.pause(_find(request))
    return Response(status_code=204)


def container_unpause(request: Request) -> Response:
    lifecycle.unpause(_find(request))
    return Response(status_code=204)


def container_rename(request: Request) -> Response:
    name = request.query_params.get("name")
    if not name:
        raise ApiError("give the new name: ?name=NEW")
    lifecycle.rename(_find(request), name)
    return Response(status_code=204)


def container_resize(request: Request) -> Response:
    """``POST /containers/{id}/resize?h=&w=``: the client's window size, passed to the
    monitor, which sets it on the container's pty (TIOCSWINSZ)."""
    height, width = window(request)
    record = _find(request)
    try:  # the monitor listens from before the start (run -it resizes at once) to the end
        attach.resize(record.directory / "attach.sock", attach.window_size(height, width))
    except MinidockerError:
        raise Conflict(f"Container {record.Id} is not running") from None
    return Response(status_code=200)


def window(request: Request) -> tuple[int, int]:
    """``?h=ROWS&w=COLUMNS`` as a terminal size (0-65535 each, as ``struct winsize``)."""
    height, width = integer(request, "h", 0), integer(request, "w", 0)
    if not (0 <= height <= 0xFFFF and 0 <= width <= 0xFFFF):
        raise ApiError(f"invalid terminal size {height}x{width}: give h and w from 0 to 65535")
    return height, width


async def container_delete(request: Request) -> Response:
    """``DELETE /containers/{id}?force=&v=``: the engine's ``rm`` (the one teardown); the
    sessions forget the container (on the event loop, where they live)."""
    record = await _record(request)
    await run_in_threadpool(lifecycle.rm, record, force=flag(request, "force"),
                            volumes_too=flag(request, "v"))
    _sessions(request).forget([record.Id])
    return Response(status_code=204)


async def container_prune(request: Request) -> Response:
    """``POST /containers/prune``: every container that does not run, gone."""
    chosen = prune_filters(request, PRUNE_FILTERS, "container prune")
    removed, reclaimed = await run_in_threadpool(lifecycle.prune, chosen)
    _sessions(request).forget(removed)
    return JSONResponse({"ContainersDeleted": removed, "SpaceReclaimed": reclaimed})


def container_top(request: Request) -> Response:
    """``GET /containers/{id}/top?ps_args=``: ``ps`` output as Titles and Processes."""
    args = (request.query_params.get("ps_args") or "-f").split()
    lines = lifecycle.top(_find(request), args).splitlines()
    if not lines:
        return JSONResponse({"Titles": [], "Processes": []})
    titles = lines[0].split()
    return JSONResponse({"Titles": titles,
                         "Processes": [line.split(None, len(titles) - 1) for line in lines[1:]]})


def container_changes(request: Request) -> Response:
    """``GET /containers/{id}/changes``: the upper dir read as a change set (docker diff)."""
    from minidocker.container.commit import diff

    record = _find(request)
    with contextlib.suppress(FileNotFoundError):
        return JSONResponse([{"Path": c.path, "Kind": CHANGE_KINDS[c.kind]}
                             for c in diff(record.Id)])
    return JSONResponse([])
