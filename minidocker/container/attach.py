"""Talking to a running container's stdio through its monitor: ``attach`` and ``start -a``.

The monitor owns the container's stdin, stdout and stderr (pipes, or one pty with ``-t``) and
listens on a unix socket, ``<container>/attach.sock``. A client connects and says whether it
brings stdin (one byte: ``i`` or ``o``); then the monitor sends it every piece of output as a
*frame* — one byte for the stream (1 stdout, 2 stderr), four bytes of length, the bytes, the
same multiplexing Docker's attach API uses — and copies whatever the client sends to the
container's stdin. The client detaches with Ctrl-P Ctrl-Q (or the keys of ``--detach-keys``);
the container keeps running. A client that brought stdin and closes its
writing half (shutdown(2), its stdin ended) closes the container's stdin too when the container
was made with ``StdinOnce`` (``docker run -i``), so ``echo x | docker run -i busybox cat``
ends. A third kind of client, ``r``, only resizes the container's terminal (``resize``).

``attach`` is not ``exec``: attach joins the container's *existing* PID 1 conversation (you see
what it prints, you type to it; Ctrl-C goes to it), exec starts a *new* process beside it.

Man pages: unix(7), socket(2), select(2), tty_ioctl(4) (TIOCSWINSZ).
"""

import contextlib
import fcntl
import os
import select
import signal
import socket
import struct
import termios

from minidocker.container.tty import raw_terminal, write_all
from minidocker.errors import MinidockerError

STREAMS = {"stdout": 1, "stderr": 2}
EXIT = 3  # the last frame: the container's exit code, four bytes
RESIZE = b"r"  # a connection that only brings a terminal's new size (struct winsize)
DETACH_KEYS = b"\x10\x11"  # Ctrl-P Ctrl-Q, Docker's default --detach-keys
CTRL_KEYS = "@abcdefghijklmnopqrstuvwxyz[\\]^_"  # ctrl-@ is byte 0, ctrl-a 1, ... ctrl-_ 31


def parse_detach_keys(text: str) -> bytes:
    """Docker's ``--detach-keys`` format: comma-separated keys, each a single character or
    ``ctrl-<c>`` (a letter or one of @ [ \\ ] ^ _), e.g. ``ctrl-x,x`` or ``ctrl-p,ctrl-q``."""
    keys = b""
    for key in text.split(","):
        name = key.lower().removeprefix("ctrl-")
        if key.lower().startswith("ctrl-") and len(name) == 1 and name in CTRL_KEYS:
            keys += bytes([CTRL_KEYS.index(name)])
        elif len(key) == 1 and key.isascii():
            keys += key.encode()
        else:
            raise MinidockerError(f"invalid --detach-keys '{text}': give keys separated by "
                                  "commas, each a character or ctrl-<letter> (e.g. "
                                  "ctrl-p,ctrl-q)")
    return keys


def frame(stream: str, data: bytes) -> bytes:
    return struct.pack(">BI", STREAMS[stream], len(data)) + data


def exit_frame(code: int) -> bytes:
    return struct.pack(">BI", EXIT, 4) + struct.pack(">i", code)


def read_frames(buffer: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Complete frames at the start of ``buffer``, and the rest."""
    frames = []
    while len(buffer) >= 5:
        stream, size = struct.unpack(">BI", buffer[:5])
        if len(buffer) < 5 + size:
            break
        frames.append((stream, buffer[5:5 + size]))
        buffer = buffer[5 + size:]
    return frames, buffer


@contextlib.contextmanager
def short_address(path: "str | os.PathLike"):
    """A unix socket's address may be at most 107 bytes (unix(7)); a deep state root is
    longer. ``/proc/self/fd/N/name``, with N an open fd of the directory, names the same
    place in a few bytes."""
    parent, name = os.path.split(os.fspath(path))
    directory = os.open(parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{directory}/{name}"
    finally:
        os.close(directory)


def connect(socket_path: "str | os.PathLike", with_stdin: bool) -> socket.socket:
    return _connect(socket_path, b"i" if with_stdin else b"o")


def window_size(height: int, width: int) -> bytes:
    return struct.pack("HHHH", height, width, 0, 0)


def _connect(socket_path: "str | os.PathLike", hello: bytes) -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with short_address(socket_path) as address:
            client.connect(address)
    except OSError as exc:
        client.close()
        raise MinidockerError("cannot attach: the container's monitor is not listening "
                              f"({exc.strerror}); is the container running?") from exc
    client.sendall(hello)
    return client


def resize(socket_path: "str | os.PathLike", window: bytes) -> None:
    """Tell the monitor a terminal's size (a struct winsize, as TIOCGWINSZ gives it, or
    ``window_size(rows, columns)``) on a short connection of its own: the monitor holds the
    pty's master and sets it (TIOCSWINSZ, tty_ioctl(4)); the kernel then sends SIGWINCH to the
    container's foreground process. Docker's CLI calls ``/containers/{id}/resize``."""
    _connect(socket_path, RESIZE + window).close()


def follow_window_size(socket_path: "str | os.PathLike", fd: int = 0) -> None:
    """Keep the container's pty the size of our terminal ``fd``: now, and at each SIGWINCH
    (the kernel's word that our window changed)."""
    def send_size(*_):
        with contextlib.suppress(OSError, MinidockerError):
            resize(socket_path, fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))

    if os.isatty(fd):
        send_size()
        signal.signal(signal.SIGWINCH, send_size)


def relay(client: socket.socket, with_stdin: bool, tty: bool,
          detach_keys: bytes = DETACH_KEYS) -> tuple[bool, int | None]:
    """Copy frames to our stdout/stderr and our stdin to the container, until we detach with
    the detach keys (returns ``(True, None)``) or the container ends (``(False, code)``, the
    code from the monitor's last frame: still known when ``--rm`` removed the record)."""
    inputs = [client, 0] if with_stdin else [client]
    buffer, held, code = b"", b"", None  # held: typed keys that may start the detach keys
    with raw_terminal(0, keep_typed_ahead=True) if (tty and with_stdin) else contextlib.nullcontext():
        while True:
            ready, _, _ = select.select(inputs, [], [])
            if client in ready:
                data = client.recv(65536)
                if not data:
                    return False, code
                frames, buffer = read_frames(buffer + data)
                for stream, payload in frames:
                    if stream == EXIT:
                        code = struct.unpack(">i", payload)[0]
                    else:
                        write_all(stream, payload)
            if 0 in ready:
                data = os.read(0, 4096)
                if not data:  # our stdin ended: tell the monitor, keep reading output
                    client.sendall(held)
                    client.shutdown(socket.SHUT_WR)
                    inputs.remove(0)
                    continue
                data, held = held + data, b""
                if detach_keys in data:  # what came before the keys still goes in
                    client.sendall(data[:data.index(detach_keys)])
                    return True, None
                data, held = hold_key_prefix(data, detach_keys)  # wait for the next keys
                if data:
                    client.sendall(data)


def hold_key_prefix(data: bytes, keys: bytes) -> tuple[bytes, bytes]:
    """Split ``data`` into what can go to the container now and its end that may be the
    beginning of ``keys`` (the next read decides)."""
    for size in range(min(len(keys) - 1, len(data)), 0, -1):
        if data.endswith(keys[:size]):
            return data[:-size], data[-size:]
    return data, b""
