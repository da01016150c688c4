"""Lab 12 — the Engine API by hand: what ``docker run`` says to the daemon, with socket alone.

The docker CLI is an HTTP client of the daemon's unix socket. ``docker run`` is five requests:

    POST /containers/create             the configuration as JSON      -> 201 {"Id": ...}
    POST /containers/ID/attach?stream=1&stdout=1&stderr=1
         Connection: Upgrade, Upgrade: tcp                             -> 101 UPGRADED, then
                                        the container's output as frames: [stream, 0, 0, 0,
                                        size (4 bytes, big endian)] + size bytes
    POST /containers/ID/start                                          -> 204
    POST /containers/ID/wait                                           -> 200 {"StatusCode": N}
    DELETE /containers/ID?force=1                                      -> 204

You write the three layers under it: the demultiplexer of the frames (step 1), an HTTP/1.1
client over a unix socket (step 2), and a tiny ``docker run`` (step 3).

Use socket, struct and json. Not httpx, http.client or docker-py: the lesson is the bytes.

Check your work (the checker starts minidocker's daemon in a sandbox with a network of its own,
listens between your code and the daemon, and calls your functions):

    sudo minidocker lab check 12                # this file
    sudo minidocker lab check 12 PATH           # a copy of it

Steps and hints: labs/12-engine-api/README.md. Spec: Docker Engine API v1.50 (ContainerCreate,
ContainerAttach "Hijacking" and "Stream format", ContainerWait, ContainerDelete); RFC 9112
(HTTP/1.1 messages, chunked coding).
"""

import json  # json.dumps(document).encode(), json.loads(body)
import socket  # socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), .connect, .sendall, .recv
import struct  # struct.unpack(">BxxxL", header) -> (stream, size)

from minidocker.labs.given import Reader  # given: lines and exact sizes read from a socket

STDIN, STDOUT, STDERR = 0, 1, 2
HEADER_SIZE = 8  # [stream, 0, 0, 0, size as a big-endian uint32]


# --- yours ---------------------------------------------------------------------------------------

def demultiplex(pieces) -> list[tuple[int, bytes]]:
    """Step 1: the frames of a multiplexed stream, as ``[(stream, payload), ...]``.

    ``pieces`` yields the bytes as they came from the socket: a frame may be cut anywhere, in
    its header too, and one piece may hold several frames. Each frame is an 8-byte header
    (byte 0 the stream: 1 stdout, 2 stderr; bytes 1-3 zero; bytes 4-7 the payload's size, big
    endian) and then that many bytes. When the pieces end in the middle of a frame, raise
    (ValueError): the stream was cut short."""
    raise NotImplementedError("Step 1: demultiplex() is not written yet: 8-byte headers, "
                              "then size bytes, across pieces; refuse a frame cut short")


def request(socket_path: str, method: str, path: str, body: bytes = b"",
            headers: dict | None = None) -> tuple[int, dict, bytes]:
    """Step 2: one HTTP/1.1 request on the unix socket ``socket_path``; return the answer's
    status (an int), its headers (a dict, names in lower case) and its body (bytes).

    Send the request line (``GET /_ping HTTP/1.1``), a ``Host`` header, ``headers``, a
    ``Content-Length`` with the body's size, an empty line, and the body. Read the status line,
    the headers up to the empty line, then the body: ``Content-Length`` bytes, or with
    ``Transfer-Encoding: chunked`` each chunk (its size in hex on a line, the bytes, CRLF) up
    to the chunk of size 0. A 204 has no body at all. ``Reader`` (given) reads lines and exact
    sizes from a socket."""
    raise NotImplementedError("Step 2: request() is not written yet: the request line, "
                              "headers, body; then status, headers, body (Content-Length or "
                              "chunked)")


def run(socket_path: str, image: str, command: list[str]) -> tuple[int, bytes, bytes]:
    """Step 3: run ``command`` in a new container of ``image`` through the daemon at
    ``socket_path``; return (its exit code, what it wrote to stdout, what it wrote to stderr).

    Create it (``HostConfig``: ``NetworkMode`` ``none``), attach to it on a connection of its
    own with ``Connection: Upgrade`` and ``Upgrade: tcp`` (the answer is ``101``, then the
    frames), start it, read the frames to the end of the connection (``demultiplex``), wait for
    its exit code, and remove it, also when something failed."""
    raise NotImplementedError("Step 3: run() is not written yet: create, attach (101), start, "
                              "the frames, wait, remove")
