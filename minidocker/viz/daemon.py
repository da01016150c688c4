"""The client and the daemon: the Engine API's conversation as a table and a sequence diagram,
its stream frames byte by byte, and who runs a container as a process tree.

``conversation(messages)`` lists what the wiretap (daemon/wiretap.py) heard, one row per
message: the connection it was on, who spoke, the request or status line, and what matters in
it (``Upgrade: tcp``, the stream's content type, a JSON body cut short). ``arrows(messages)``
is the same story for the sequence diagram of viz/sequence.py: requests in blue, answers dashed
and coloured by status, the ``101`` in purple, the stream's frames in green (stdout) and red
(stderr), stdin in grey. ``frame_table`` shows each frame's 8 header bytes as they were on the
wire beside what they mean.

``engine_tree(pid, roles)`` is the tree of processes under ``pid`` (``/proc/<pid>/task/*/
children``) with each one's role and its memory as ``smaps_rollup`` counts it (PSS: every
shared page divided among the processes that map it, so the figures add up).

Man pages: proc(5) (``/proc/<pid>/smaps_rollup``, ``children``). Spec: Docker Engine API v1.50
("ContainerAttach", stream format).
Used by: notebook 12-client-and-daemon; tests/test_viz_daemon.py.
"""

import json
import re
import time
from collections.abc import Iterable
from http import HTTPStatus
from pathlib import Path

from minidocker.container import records
from minidocker.daemon.wiretap import CLIENT, Message
from minidocker.viz.cli import patience
from minidocker.viz.lifecycle import children, status, tree_rows
from minidocker.viz.sequence import Arrow
from minidocker.viz.table import Table

ID = re.compile(r"\b[0-9a-f]{64}\b")
VERSION = re.compile(r"^/v1\.\d+")
SHOWN = 48  # bytes of a body or a stream shown in a label
COLOURS = {"request": "#1f5fa6", "1": "#6a1b9a", "2": "#2e7d32", "4": "#c62828",
           "5": "#c62828", "stdout": "#2e7d32", "stderr": "#c62828", "stdin": "#777777"}
STORY_HEADERS = ("upgrade", "connection", "content-type")


def short_ids(text: str) -> str:
    """Every 64-hex container id cut to 12 digits, as ``docker ps`` shows it."""
    return ID.sub(lambda m: m[0][:12], text)


def request_line(message: Message) -> str:
    """``POST /containers/3f2a1b9c0d4e/attach?stream=1…`` without ``HTTP/1.1`` and the
    version prefix (``/v1.50``), which every request of the CLI carries."""
    method, target = message.line.split(" ")[:2]
    return short_ids(f"{method} {VERSION.sub('', target)}")


def status_line(message: Message) -> str:
    code = message.status
    try:
        phrase = "UPGRADED" if code == 101 else HTTPStatus(code).phrase
    except ValueError:
        phrase = ""
    return f"{code} {phrase}".strip()


def shown(data: bytes) -> str:
    """Bytes as a Python literal, cut to ``SHOWN``: ``b'hello\\n'``."""
    cut = data[:SHOWN]
    return repr(cut) + ("…" if len(data) > SHOWN else "")


def notes(message: Message) -> str:
    """What matters in a message besides its first line."""
    if message.kind in ("request", "response"):
        found = [f"{name.title()}: {message.headers[name]}" for name in STORY_HEADERS
                 if name in message.headers and (message.kind == "response" or
                                                 name != "content-type")]
        if message.body:
            found.append(short_ids(_json_or_bytes(message.body)))
        return "; ".join(found)
    if message.kind == "frame":
        return f"header {message.header_bytes.hex(' ')}  payload {shown(message.body)}"
    return shown(message.body)


def _json_or_bytes(body: bytes) -> str:
    try:
        value = json.loads(body)
    except ValueError:
        return shown(body)
    if isinstance(value, dict) and len(body) > SHOWN:  # a big request: its keys tell enough
        keys = list(value)
        return "{" + ", ".join(keys[:4]) + (", …" if len(keys) > 4 else "") + "}"
    return body.decode().strip()


def what(message: Message) -> str:
    """The message's first line as the diagram and the table show it."""
    if message.kind == "request":
        return request_line(message)
    if message.kind == "response":
        return status_line(message)
    if message.kind == "chunk":
        return "the rest of the body"
    if message.kind == "frame":
        return f"frame: {message.line}"
    return f"{'stdin' if message.sender == CLIENT else 'tty'}: {message.line}"


def conversation(messages: Iterable[Message], title: str = "") -> Table:
    """One row per message, in the order they passed the tap."""
    rows = [(f"#{m.connection}", "client → daemon" if m.sender == CLIENT else "daemon → client",
             what(m), notes(m)) for m in messages]
    return Table(("conn", "who", "what", "details"), rows, title)


def arrows(messages: Iterable[Message]) -> list[Arrow]:
    """The messages as arrows of a sequence diagram, each label starting with its connection
    (``#2``), so that a request and its answer can be paired."""
    found = []
    for m in messages:
        label = f"#{m.connection} {what(m)}"
        if m.kind == "request":
            upgrade = m.headers.get("upgrade")
            found.append(Arrow("client", label + (f"\nUpgrade: {upgrade}" if upgrade else ""),
                               COLOURS["request"]))
        elif m.kind in ("response", "chunk"):
            extra = notes(m) if m.status == 101 or m.kind == "chunk" else \
                short_ids(_json_or_bytes(m.body)) if m.body else ""
            found.append(Arrow("server", f"{label}\n{extra}" if extra else label,
                               COLOURS.get(str(m.status)[:1], "#2e7d32"), dashed=True))
        elif m.kind == "frame":
            stream = m.line.split()[0]
            found.append(Arrow("server", f"{label}\n[{m.header_bytes.hex(' ')}] "
                               f"{shown(m.body)}", COLOURS.get(stream, "black"), dashed=True))
        else:
            stream = "stdin" if m.sender == CLIENT else "stdout"
            found.append(Arrow("client" if m.sender == CLIENT else "server",
                               f"{label}\n{shown(m.body)}", COLOURS[stream],
                               dashed=m.sender != CLIENT))
    return found


def frame_table(messages: Iterable[Message]) -> Table:
    """Each frame of the multiplexed stream: its 8 header bytes, what they say, its payload."""
    rows = []
    for m in messages:
        if m.kind != "frame":
            continue
        header = m.header_bytes
        rows.append((header.hex(" "), f"{header[0]} = {m.line.split()[0]}",
                     header[1:4].hex(" "), f"{header[4:].hex(' ')} = {len(m.body)}",
                     shown(m.body)))
    return Table(("8 header bytes", "byte 0: stream", "bytes 1-3", "bytes 4-7: size (BE)",
                  "payload"), rows)


# --- who runs the container: process trees and their memory -------------------------------------

def pss_kib(pid: int) -> int:
    """The process's proportional set size in KiB (``Pss:`` of ``/proc/<pid>/smaps_rollup``),
    0 if it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    match = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
    return int(match[1]) if match else 0


def tree_pids(pid: int) -> list[int]:
    """``pid`` and every process under it, parents first."""
    found = [pid]
    for child in children(pid):
        found += tree_pids(child)
    return found


def settled(pid: int, timeout: float = 10) -> None:
    """Wait until no process under ``pid`` is still runc's ``runc:[2:INIT]`` (the container's
    PID 1 before its exec): ``docker run -d`` may return before runc's init has become the
    container's command."""
    deadline = time.monotonic() + patience(timeout)
    while time.monotonic() < deadline and any(
            status(p).get("Name", "").startswith("runc") for p in tree_pids(pid)):
        time.sleep(0.02)


def monitor_roles(name: str) -> dict[int, str]:
    """The processes of a running minidocker container, named: its monitor (first), the shim
    (the monitor's child whose child is PID 1), PID 1."""
    record = records.find(name)
    monitor, pid1 = record.State["MonitorPid"], record.State["Pid"]
    shim = next((c for c in children(monitor) if pid1 in children(c)), None)
    return {monitor: "monitor", shim: "shim", pid1: "PID 1"}


def engine_tree(pid: int, roles: dict[int, str] | None = None, title: str = "",
                memory: bool = True) -> Table:
    """The processes under ``pid``: name, role (``roles`` names some), and PSS (unless
    ``memory`` is False: a tree that is the same from run to run)."""
    roles = roles or {}

    def row(process: int, _info: dict, name: str) -> tuple:
        found = (name, roles.get(process, ""))
        return (*found, f"{pss_kib(process) / 1024:.1f} MiB") if memory else found

    rows = tree_rows(pid, row)
    return Table(("process", "role", "PSS") if memory else ("process", "role"), rows, title)
