"""A registry you can watch: served from a thread of this process, recording what it hears.

Everything a registry client does is a short HTTP conversation, and the spec is a list of its
lines: ``POST .../blobs/uploads/`` answered ``202`` with a ``Location``, ``PUT ...?digest=``
answered ``201``, ``HEAD`` to ask whether a blob is there. ``RecordExchanges`` is ASGI
middleware that writes down each request the server receives and the status and headers it
answers (an ``Exchange``), in order, so that a notebook can print a ``push`` as the server
saw it and draw it as a sequence diagram (``viz/registry.py``).

``LocalRegistry`` serves ``create_app(root, auth)`` with uvicorn from a thread of the calling
process, on a port of 127.0.0.1 that the kernel picks (bind to port 0), and stops it when
asked: nothing outlives it but the files under ``root``. A lab checker runs it in its sandbox
(a network namespace of its own); a notebook runs it on loopback.

Spec: the ASGI specification (HTTP connection scope, ``http.request`` and
``http.response.start`` messages); distribution-spec spec.md for what the lines mean.
Used by: notebook 11-registries; the checker of lab 11 (minidocker/labs/lab11_registry.py).
"""

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from minidocker.errors import MinidockerError

# the headers that tell the protocol's story (the rest is HTTP's own bookkeeping)
STORY_REQUEST_HEADERS = ("authorization", "accept", "content-type", "content-range", "range")
STORY_RESPONSE_HEADERS = ("www-authenticate", "location", "docker-upload-uuid", "range",
                          "docker-content-digest", "content-type", "content-length")
START_TIMEOUT = 10  # seconds for uvicorn to bind its socket


@dataclass(frozen=True)
class Exchange:
    """One request the server received, and what it answered."""

    method: str
    path: str
    query: str
    status: int
    request_headers: dict[str, str]
    response_headers: dict[str, str]
    received: int  # bytes of request body

    @property
    def target(self) -> str:
        """The request's path, with its query string if it had one."""
        return f"{self.path}?{self.query}" if self.query else self.path


class RecordExchanges:
    """ASGI middleware: every HTTP request and its answer, appended to ``exchanges``."""

    def __init__(self, app, exchanges: list[Exchange]):
        self.app, self.exchanges = app, exchanges

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        received, answer, recorded = 0, {"status": 0, "headers": []}, []

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        def record() -> None:
            if not recorded:  # written down before the answer's last byte leaves, so that a
                recorded.append(True)  # client that has its answer finds it in the record
                self.exchanges.append(Exchange(
                    method=scope["method"], path=scope["path"],
                    query=scope["query_string"].decode("latin-1"), status=answer["status"],
                    request_headers=_story(scope["headers"], STORY_REQUEST_HEADERS),
                    response_headers=_story(answer["headers"], STORY_RESPONSE_HEADERS),
                    received=received))

        async def watching_send(message):
            if message["type"] == "http.response.start":
                answer.update(status=message["status"], headers=message.get("headers", []))
                length = _story(answer["headers"], ("content-length",)).get("content-length")
                answer["left"] = int(length) if length and length.isdigit() else None
                if answer["left"] == 0 or scope["method"] == "HEAD" or \
                        answer["status"] in (204, 304):
                    record()  # no body follows: the headers are the whole answer
            elif message["type"] == "http.response.body":
                if answer.get("left") is not None:
                    answer["left"] -= len(message.get("body", b""))
                if not message.get("more_body") or answer.get("left") == 0:
                    record()  # the last byte: the body's end, or all Content-Length promised
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        finally:
            record()


def _story(headers: list[tuple[bytes, bytes]], wanted: tuple[str, ...]) -> dict[str, str]:
    found = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
    return {name: found[name] for name in wanted if name in found}


class LocalRegistry:
    """``minidocker registry serve`` inside this process, on 127.0.0.1:<a free port>, with
    every exchange recorded in ``exchanges``. Use it as a context manager, or call
    ``start()`` and ``stop()``."""

    def __init__(self, root: Path, auth=None, host: str = "127.0.0.1"):
        import uvicorn

        from minidocker.registry.app import create_app

        Path(root).mkdir(parents=True, exist_ok=True)
        self.root, self.host, self.port = Path(root), host, 0
        self.exchanges: list[Exchange] = []
        app = RecordExchanges(create_app(self.root, auth), self.exchanges)
        config = uvicorn.Config(app, host=host, port=0, log_level="error", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="registry", daemon=True)

    @property
    def address(self) -> str:
        """HOST:PORT, as an image reference names the registry."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> "LocalRegistry":
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise MinidockerError(f"the registry did not start on {self.host}: is the "
                                      "address available in this network namespace?")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join()

    def forget(self) -> None:
        """Start a new recording (what was recorded so far is dropped)."""
        self.exchanges.clear()

    def __enter__(self) -> "LocalRegistry":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
