"""The hijacked connection: how ``attach`` and ``exec start`` turn one HTTP request into a
two-way byte stream.

Docker's attach is not an ordinary HTTP exchange. The client sends ``POST .../attach`` with
``Connection: Upgrade`` and ``Upgrade: tcp``; the daemon answers ``HTTP/1.1 101 UPGRADED`` and
from then on the socket no longer speaks HTTP: what the container prints flows to the client,
what the client types flows to the container's stdin, until one side closes. Without a TTY,
stdout and stderr share the one socket as *frames*, each an 8-byte header
``[stream, 0, 0, 0, size as a big-endian uint32]`` and then ``size`` bytes (stream 1 stdout,
2 stderr); with a TTY there is only one stream, sent raw.

uvicorn speaks HTTP for us (with h11) and knows one upgrade, the WebSocket. ``EngineHTTP``
teaches it a second one: for ``Upgrade: tcp`` it hands the socket to ``HijackedConnection``,
which runs the same ASGI application over the raw bytes. So the attach handler stays an
ordinary starlette endpoint: it reads its request as usual and answers with a ``RawStream``,
a response whose body is the stream in both directions.

Spec: Docker Engine API v1.50, "ContainerAttach" (hijacking; stream format); RFC 9110 §7.8
(Upgrade). Model: moby ``api/server/router/container/container_routes.go``
(``postContainersAttach``) and ``api/server/httputils`` (the 101 answer).
Used by: daemon/containers.py (attach), daemon/execs.py (exec start); notebook 12.
"""

import asyncio
import contextlib
import logging
import struct

from starlette.responses import JSONResponse, Response
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
HIJACK = "minidocker.hijacked"  # the scope extension that says the socket is ours to keep

log = logging.getLogger("minidocker.daemon")
RUNNING: set[asyncio.Task] = set()  # the hijacked connections being served


def frame(stream: int, data: bytes) -> bytes:
    """One frame of the multiplexed stream: ``[stream, 0, 0, 0, size]`` then the bytes."""
    return struct.pack(">BxxxL", stream, len(data)) + data


class EngineHTTP(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, plus Docker's ``Upgrade: tcp``."""

    def _should_upgrade(self) -> bool:
        return self._get_upgrade() == b"tcp" or super()._should_upgrade()

    def handle_websocket_upgrade(self, event) -> None:
        if self._get_upgrade() != b"tcp":
            return super().handle_websocket_upgrade(event)
        self.connections.discard(self)  # uvicorn no longer owns this socket
        already = self.conn.trailing_data[0]  # the request's body, if any, still unparsed
        self.transport.set_protocol(HijackedConnection(self.app, self.scope, self.transport,
                                                       already))


class HijackedConnection(asyncio.Protocol):
    """One upgraded socket running the ASGI app: ``receive()`` gives the request's body
    (``Content-Length`` bytes), then whatever the client sends, as it comes; ``send()``
    writes the status line and headers once, then the body bytes as they are."""

    def __init__(self, app, scope: dict, transport: asyncio.Transport, already: bytes):
        self.transport = transport
        self.buffer = bytearray(already)
        self.arrived = asyncio.Event()
        self.eof = self.lost = self.upgraded = self.started = False
        headers = dict(scope["headers"])
        self.body_left = int(headers.get(b"content-length", b"0") or 0)
        scope = {**scope, "extensions": {**scope.get("extensions", {}), HIJACK: {}}}
        task = asyncio.get_running_loop().create_task(self.run(app, scope))
        RUNNING.add(task)  # the loop keeps only a weak reference to a task: without this one,
        task.add_done_callback(RUNNING.discard)  # a quiet stream is garbage-collected

    # --- the asyncio.Protocol side: bytes from the client --------------------------------------

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.arrived.set()

    def eof_received(self) -> bool:
        self.eof = True  # the client closed its writing half (stdin ended): keep writing
        self.arrived.set()
        return True

    def connection_lost(self, exc) -> None:
        self.lost = True
        self.arrived.set()

    # --- the ASGI side --------------------------------------------------------------------------

    async def receive(self) -> dict:
        if self.body_left >= 0:  # first the request's own body, whole
            while len(self.buffer) < self.body_left and not (self.eof or self.lost):
                await self._more()
            body, self.buffer = bytes(self.buffer[:self.body_left]), self.buffer[self.body_left:]
            self.body_left = -1
            if not self.upgraded:  # after the 101 a body nobody read is skipped, not streamed
                return {"type": "http.request", "body": body, "more_body": False}
        while not self.buffer:  # then the stream
            if self.lost:
                return {"type": "http.disconnect"}
            if self.eof:
                self.eof = False  # said once; afterwards wait for the end of the socket
                return {"type": "http.request", "body": b"", "more_body": False}
            await self._more()
        data, self.buffer = bytes(self.buffer), bytearray()
        return {"type": "http.request", "body": data, "more_body": True}

    async def _more(self) -> None:
        self.arrived.clear()
        await self.arrived.wait()

    async def send(self, message: dict) -> None:
        if self.lost:
            return
        if message["type"] == "http.response.start":
            status = message["status"]
            self.started, self.upgraded = True, status == 101
            reason = b"UPGRADED" if self.upgraded else STATUS_PHRASES[status]
            lines = [b"HTTP/1.1 %d %s" % (status, reason)]
            lines += [name + b": " + value for name, value in message.get("headers", [])]
            if not self.upgraded:
                lines.append(b"Connection: close")
            self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n")
        elif message["type"] == "http.response.body":
            self.transport.write(message.get("body", b""))
            if not message.get("more_body", False):
                self.transport.close()

    async def run(self, app, scope: dict) -> None:
        try:
            await app(scope, self.receive, self.send)
        except Exception:  # a bug: logged, the client sees a plain 500, never a traceback
            log.exception("error on a hijacked connection")
            if not self.started:
                await JSONResponse({"message": "internal error in the daemon (see its log)"},
                                   status_code=500)(scope, self.receive, self.send)
        finally:
            self.transport.close()


class RawStream(Response):
    """The answer of attach and exec start: ``101 UPGRADED`` (or, to a client that did not ask
    to upgrade, ``200`` with the stream as its body), then ``pump(receive, write)`` moves the
    bytes both ways until it returns."""

    def __init__(self, tty: bool, pump):
        super().__init__(media_type=RAW if tty else MULTIPLEXED)
        self.pump = pump

    async def __call__(self, scope, receive, send) -> None:
        hijacked = HIJACK in scope.get("extensions", {})
        headers = [(b"content-type", self.media_type.encode())]
        if hijacked:
            headers += [(b"connection", b"Upgrade"), (b"upgrade", b"tcp")]
        await send({"type": "http.response.start", "status": 101 if hijacked else 200,
                    "headers": headers})

        async def write(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        if not hijacked:  # no stdin from a plain request: never read it as such
            async def receive():  # noqa: F811 (the plain request's receive is not a stream)
                await asyncio.Event().wait()
        with contextlib.suppress(ConnectionError):
            await self.pump(receive, write)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
