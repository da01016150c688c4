"""A wiretap on the Engine API's socket: a recording proxy between a client and the daemon,
and the recording read back as HTTP messages and stream frames.

The docker CLI and the daemon talk HTTP/1.1 over a unix socket. ``Wiretap`` listens on a
socket of its own, connects each client that comes to the daemon's socket, and copies the bytes
both ways, writing down every piece it copies (a ``Chunk``: when, which connection, which way,
the bytes). It changes nothing: point ``DOCKER_HOST`` at the tap instead of the daemon and the
client cannot tell. Because it records bytes, not a server's own idea of them, it works the
same in front of minidocker's daemon and in front of dockerd.

``messages(chunks)`` reads the recording back as the protocol has it, one connection and one
direction at a time: a request line or a status line, headers, a body (``Content-Length``
bytes, or ``Transfer-Encoding: chunked`` chunks up to the empty one). After an answer
``101 UPGRADED`` the connection stops speaking HTTP: what the client sends is the container's
stdin, raw; what the daemon sends is the container's output — raw for a TTY, otherwise
*frames* of the multiplexed stream, each an 8-byte header ``[stream, 0, 0, 0, size (big
endian)]`` then ``size`` bytes (stream 0 stdin, 1 stdout, 2 stderr). Each ``Message`` keeps the
time its first byte passed the tap, so the messages of all connections sort into one story.

Spec: RFC 9112 (HTTP/1.1 message syntax, chunked transfer coding), RFC 9110 §7.8 (Upgrade);
Docker Engine API v1.50, "ContainerAttach" (hijacking, stream format). Man pages: unix(7),
select(2), shutdown(2).
Used by: notebook 12-client-and-daemon (viz/daemon.py); tests/test_daemon_wiretap.py.
"""

import contextlib
import json
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CLIENT, DAEMON = "client", "daemon"  # who sent a chunk
STREAMS = {0: "stdin", 1: "stdout", 2: "stderr"}
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
HEADER = struct.Struct(">BxxxL")  # a frame's header: stream, three zero bytes, size


@dataclass(frozen=True)
class Chunk:
    """Bytes the tap copied in one go."""

    at: float  # time.monotonic() when they arrived
    connection: int  # 1, 2, ... in the order the client connected
    sender: str  # CLIENT or DAEMON
    data: bytes


@dataclass(frozen=True)
class Message:
    """One thing said on a connection: an HTTP request or answer, a frame, raw stream bytes."""

    at: float
    connection: int
    sender: str  # CLIENT or DAEMON
    kind: str  # "request", "response", "chunk" (of a streamed body), "frame" or "raw"
    line: str  # the request or status line; for a frame "stdout 6 bytes"
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case
    body: bytes = b""  # the body (chunked coding removed), a frame's payload, raw bytes
    header_bytes: bytes = b""  # a frame's 8-byte header, as it was on the wire

    @property
    def status(self) -> int:
        """The status code of an answer (0 for anything else)."""
        if self.kind != "response":
            return 0
        return int(self.line.split(" ", 2)[1])


# --- the proxy ----------------------------------------------------------------------------------

class Wiretap:
    """Listen on ``listen`` (a unix socket path), relay every connection to ``upstream`` and
    record what passes in ``chunks``. A context manager; ``stop()`` closes the listener,
    ``forget()`` starts a new recording."""

    def __init__(self, listen: str | Path, upstream: str | Path):
        self.listen, self.upstream = Path(listen), str(upstream)
        self.chunks: list[Chunk] = []
        self._lock = threading.Lock()
        self._count = 0
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()  # the connections being relayed

    def start(self) -> "Wiretap":
        with contextlib.suppress(FileNotFoundError):
            self.listen.unlink()
        self._listener.bind(str(self.listen))
        os.chmod(self.listen, 0o600)  # the Engine API is root's: so is its tap
        self._listener.listen(16)
        accepting = threading.Thread(target=self._accept, name="wiretap", daemon=True)
        accepting.start()
        self._threads.append(accepting)
        return self

    def stop(self) -> None:
        """Close the listener and every connection still open (a client that never hangs up
        does not keep the tap), then wait for the relays to end."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            still_open = list(self._open)
        for sock in still_open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=10)
        with contextlib.suppress(FileNotFoundError):
            self.listen.unlink()

    def forget(self) -> None:
        with self._lock:
            self.chunks.clear()
            self._count = 0

    def messages(self) -> list["Message"]:
        with self._lock:
            return messages(list(self.chunks))

    def __enter__(self) -> "Wiretap":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # the listener was closed
                return
            with self._lock:
                self._count += 1
                number = self._count
            relaying = threading.Thread(target=self._serve, args=(client, number), daemon=True)
            relaying.start()
            self._threads.append(relaying)

    def _serve(self, client: socket.socket, number: int) -> None:
        daemon = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with self._lock:
            self._open.update((client, daemon))
        try:
            daemon.connect(self.upstream)
            self._relay(client, daemon, number)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.difference_update((client, daemon))
            daemon.close()
            client.close()

    def _relay(self, client: socket.socket, daemon: socket.socket, number: int) -> None:
        """Copy both ways, recording each piece; an end that stops sending is passed on as a
        half-close (``shutdown(SHUT_WR)``), and the relay ends when both have."""
        other = {client: daemon, daemon: client}
        sender = {client: CLIENT, daemon: DAEMON}
        reading = [client, daemon]
        while reading:
            ready, _, _ = select.select(reading, [], [])
            for source in ready:
                try:
                    data = source.recv(65536)
                except OSError:
                    data = b""
                if data:
                    with self._lock:
                        self.chunks.append(Chunk(time.monotonic(), number, sender[source], data))
                    other[source].sendall(data)
                    continue
                reading.remove(source)
                with contextlib.suppress(OSError):
                    other[source].shutdown(socket.SHUT_WR)


# --- reading the recording back ------------------------------------------------------------------

class _Stream:
    """The bytes one side sent on one connection, with the time each byte arrived."""

    def __init__(self, chunks: list[Chunk]):
        self.data = b"".join(c.data for c in chunks)
        self.starts, self.times, offset = [], [], 0
        for chunk in chunks:
            self.starts.append(offset)
            self.times.append(chunk.at)
            offset += len(chunk.data)
        self.position = 0

    def time_at(self, offset: int) -> float:
        """When the byte at ``offset`` arrived: the time of the chunk that held it."""
        index = 0
        for i, start in enumerate(self.starts):
            if start <= offset:
                index = i
        return self.times[index] if self.times else 0.0

    def left(self) -> int:
        return len(self.data) - self.position

    def take(self, size: int) -> bytes:
        piece = self.data[self.position:self.position + size]
        self.position += len(piece)
        return piece

    def line(self) -> bytes | None:
        end = self.data.find(b"\r\n", self.position)
        if end < 0:
            return None
        piece = self.data[self.position:end]
        self.position = end + 2
        return piece


def _head(stream: _Stream) -> tuple[str, dict[str, str]] | None:
    """A start line and its headers, up to the empty line (None if the bytes end first)."""
    start = stream.line()
    if start is None:
        return None
    headers = {}
    while (line := stream.line()) not in (b"", None):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return start.decode("latin-1"), headers


def _body(stream: _Stream, headers: dict[str, str],
          to_the_end: bool) -> tuple[bytes, list[tuple[float, bytes]]]:
    """The body after a head, and its chunks with the time each arrived: ``Content-Length``
    bytes, or the chunks of ``chunked`` coding up to the empty one; with neither, nothing for a
    request and everything to the end of the connection for an answer (``to_the_end``)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks = []
        while (at := stream.time_at(stream.position)) and (size_line := stream.line()):
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                stream.line()  # the empty line after the last chunk (no trailers here)
                break
            chunks.append((at, stream.take(size)))
            stream.line()  # the CRLF after each chunk
        return b"".join(data for _, data in chunks), chunks
    if "content-length" in headers:
        return stream.take(int(headers["content-length"])), []
    return (stream.take(stream.left()) if to_the_end else b""), []


def frames(stream: _Stream, connection: int) -> list[Message]:
    """The multiplexed stream: 8-byte headers and their payloads, to the end of the bytes. A
    frame cut short by the end of the connection is kept as it is (its payload shorter than
    its header says)."""
    found = []
    while stream.left() >= HEADER.size:
        at = stream.time_at(stream.position)
        header = stream.take(HEADER.size)
        kind, size = HEADER.unpack(header)
        payload = stream.take(size)
        found.append(Message(at, connection, DAEMON, "frame",
                             f"{STREAMS.get(kind, kind)} {size} bytes", body=payload,
                             header_bytes=header))
    return found


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """A whole multiplexed stream (a ``logs`` body, say) as (stream, payload) pairs."""
    return [(m.header_bytes[0], m.body) for m in frames(_Stream([Chunk(0.0, 0, DAEMON, data)]), 0)]


def _raw(stream: _Stream, connection: int, sender: str) -> list[Message]:
    """The rest of the bytes, raw: one message per piece as it passed the tap."""
    ends = [*stream.starts[1:], len(stream.data)]
    found = []
    for start, end, at in zip(stream.starts, ends, stream.times, strict=True):
        piece = stream.data[max(start, stream.position):end]
        if piece:
            found.append(Message(at, connection, sender, "raw", f"{len(piece)} bytes",
                                 body=piece))
    stream.position = len(stream.data)
    return found


def _connection(number: int, sent: list[Chunk], answered: list[Chunk],
                ttys: dict[str, bool] | None = None) -> list[Message]:
    """Requests and answers in turn on one connection, then the stream after a 101: frames
    unless the container has a TTY (``ttys``, from its create request), or, for a container
    not created on the tap, unless the answer's content type says raw."""
    client, daemon = _Stream(sent), _Stream(answered)
    found = []
    while client.left():
        at = client.time_at(client.position)
        head = _head(client)
        if head is None:
            break
        line, headers = head
        found.append(Message(at, number, CLIENT, "request", line, headers,
                             _body(client, headers, to_the_end=False)[0]))
        if not daemon.left():
            break
        at = daemon.time_at(daemon.position)
        head = _head(daemon)
        if head is None:
            break
        line, headers = head
        if line.split(" ", 2)[1] == "101":  # the hijack: from here on, a stream each way
            found.append(Message(at, number, DAEMON, "response", line, headers))
            tty = next((t for c, t in (ttys or {}).items() if f"/{c}/" in found[-2].line), None)
            if tty is False or (tty is None and headers.get("content-type") == MULTIPLEXED):
                found += frames(daemon, number)
            else:
                found += _raw(daemon, number, DAEMON)
            found += _raw(client, number, CLIENT)
            break
        no_body = line.split(" ", 2)[1] in ("204", "304") or found[-1].line.startswith("HEAD")
        body, chunks = _body(daemon, headers, to_the_end=not no_body)
        later = [(when, data) for when, data in chunks if when > at]  # streamed, after the head
        if later:
            body = b"".join(data for when, data in chunks if when <= at)
        found.append(Message(at, number, DAEMON, "response", line, headers, body))
        found += [Message(when, number, DAEMON, "chunk", f"chunk {len(data)} bytes", body=data)
                  for when, data in later]
    return found


def messages(chunks: list[Chunk]) -> list[Message]:
    """Every connection's messages, all sorted by the time their first byte passed the tap.

    Read twice: the first reading finds each container created on the tap and whether it has
    a TTY (``Tty`` in the create request, the ``Id`` in its answer); the second reads each
    attach stream by that. The content type of the ``101`` is not enough: dockerd before API
    1.42 calls a multiplexed stream ``raw-stream`` too."""
    connections = {}
    for number in sorted({c.connection for c in chunks}):
        connections[number] = ([c for c in chunks if c.connection == number and c.sender == CLIENT],
                               [c for c in chunks if c.connection == number and c.sender == DAEMON])
    first = [m for number, (sent, answered) in connections.items()
             for m in _connection(number, sent, answered)]
    ttys = _ttys(first)
    found = [m for number, (sent, answered) in connections.items()
             for m in _connection(number, sent, answered, ttys)]
    return sorted(found, key=lambda m: m.at)


def _ttys(said: list[Message]) -> dict[str, bool]:
    """Container ID -> whether it has a TTY, from each create request and its answer."""
    found = {}
    for request, answer in zip(said, said[1:], strict=False):
        if request.kind == "request" and "/containers/create" in request.line and \
                answer.kind == "response" and answer.connection == request.connection:
            with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                found[json.loads(answer.body)["Id"]] = bool(json.loads(request.body).get("Tty"))
    return found
