"""Lab 12 — the Engine API by hand: a reference solution (spoilers; see labs/12-engine-api)."""

import json
import socket
import struct

from minidocker.labs.given import Reader

STDIN, STDOUT, STDERR = 0, 1, 2
HEADER_SIZE = 8  # [stream, 0, 0, 0, size as a big-endian uint32]


# --- step 1 ---------------------------------------------------------------------------------------

def demultiplex(pieces) -> list[tuple[int, bytes]]:
    """Step 1."""
    frames, buffer = [], b""
    for piece in pieces:
        buffer += piece
        while len(buffer) >= HEADER_SIZE:
            stream, size = struct.unpack(">BxxxL", buffer[:HEADER_SIZE])
            if len(buffer) < HEADER_SIZE + size:
                break  # the rest of this frame is in a later piece
            frames.append((stream, buffer[HEADER_SIZE:HEADER_SIZE + size]))
            buffer = buffer[HEADER_SIZE + size:]
    if buffer:
        raise ValueError(f"the stream ended in the middle of a frame ({len(buffer)} bytes "
                         "left over)")
    return frames


# --- step 2 ---------------------------------------------------------------------------------------

def send_request(sock: socket.socket, method: str, path: str, body: bytes = b"",
                 headers: dict | None = None) -> None:
    lines = [f"{method} {path} HTTP/1.1", "Host: docker"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines.append(f"Content-Length: {len(body)}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def read_head(reader: Reader) -> tuple[int, dict]:
    status = int(reader.line().split(b" ", 2)[1])
    headers = {}
    while line := reader.line():
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def read_body(reader: Reader, status: int, headers: dict) -> bytes:
    if status in (204, 304) or status < 200:
        return b""  # these answers never have a body
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size = int(reader.line().split(b";")[0], 16)
            if size == 0:
                reader.line()  # the empty line that ends the body
                return body
            body += reader.exactly(size)
            reader.line()  # the CRLF after the chunk
    if "content-length" in headers:
        return reader.exactly(int(headers["content-length"]))
    return b"".join(reader.pieces())  # neither: the body runs to the end of the connection


def request(socket_path: str, method: str, path: str, body: bytes = b"",
            headers: dict | None = None) -> tuple[int, dict, bytes]:
    """Step 2."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(socket_path)
        send_request(sock, method, path, body, headers)
        reader = Reader(sock)
        status, answer_headers = read_head(reader)
        return status, answer_headers, read_body(reader, status, answer_headers)


# --- step 3 ---------------------------------------------------------------------------------------

def call(socket_path: str, method: str, path: str, document: dict | None = None,
         expected: int = 200) -> dict:
    body = json.dumps(document).encode() if document is not None else b""
    headers = {"Content-Type": "application/json"} if document is not None else {}
    status, _, answer = request(socket_path, method, path, body, headers)
    if status != expected:
        raise RuntimeError(f"{method} {path}: {status} {answer.decode(errors='replace')}")
    return json.loads(answer) if answer.strip() else {}


def run(socket_path: str, image: str, command: list[str]) -> tuple[int, bytes, bytes]:
    """Step 3."""
    created = call(socket_path, "POST", "/containers/create", {
        "Image": image, "Cmd": command, "AttachStdout": True, "AttachStderr": True,
        "HostConfig": {"NetworkMode": "none"}}, expected=201)
    container = created["Id"]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as attached:
            attached.connect(socket_path)
            send_request(attached, "POST",
                         f"/containers/{container}/attach?stream=1&stdout=1&stderr=1",
                         headers={"Connection": "Upgrade", "Upgrade": "tcp"})
            reader = Reader(attached)
            status, _ = read_head(reader)
            if status != 101:
                raise RuntimeError(f"attach answered {status}, not 101")
            call(socket_path, "POST", f"/containers/{container}/start", expected=204)
            frames = demultiplex(reader.pieces())
        code = call(socket_path, "POST", f"/containers/{container}/wait")["StatusCode"]
    finally:
        call(socket_path, "DELETE", f"/containers/{container}?force=1", expected=204)
    stdout = b"".join(data for stream, data in frames if stream == STDOUT)
    stderr = b"".join(data for stream, data in frames if stream == STDERR)
    return code, stdout, stderr
