"""One handler per exec endpoint of the Engine API: a second process in a running container.

    POST /containers/{id}/exec   container_exec   (ExecCreate: remember what to run)
    POST /exec/{id}/start        exec_start       (hijacked like attach, see hijack.py)
    POST /exec/{id}/resize       exec_resize      (TIOCSWINSZ on the exec's terminal)
    GET  /exec/{id}/json         exec_inspect     (ExitCode: the docker CLI's exit status)

``exec start`` runs ``exec_process`` (the engine's ``exec_in`` with pipes for stdio) and
copies its output to the client as frames (stdout 1, stderr 2; raw with a TTY) and the
client's bytes to its stdin. The instance and its exit code stay in the daemon's memory
(sessions.py) for ``exec inspect``, as dockerd keeps them.

Spec: Docker Engine API v1.50, section "Exec". Model: moby ``daemon/exec.go``.
"""

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import signal
import struct
import sys
import termios
import tty

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from minidocker.container import lifecycle
from minidocker.container.attach import window_size
from minidocker.container.exec import check_running, check_workdir
from minidocker.container.tty import write_all
from minidocker.daemon import shapes
from minidocker.daemon.containers import window
from minidocker.daemon.errors import ApiError
from minidocker.daemon.hijack import RawStream, frame
from minidocker.daemon.params import json_body
from minidocker.errors import Conflict, NotFound

EXEC_FIELDS = {"AttachStdin": bool, "AttachStdout": bool, "AttachStderr": bool,
               "DetachKeys": str, "Tty": bool, "Env": shapes.STRINGS, "Cmd": shapes.STRINGS,
               "Privileged": bool, "User": str, "WorkingDir": str,
               "ConsoleSize": shapes.ListOf(int)}


async def container_exec(request: Request) -> Response:
    body = await json_body(request)
    shapes.check("ExecConfig", body, EXEC_FIELDS)
    if not body.get("Cmd"):
        raise ApiError("No exec command specified")
    if body.get("Privileged"):
        raise ApiError("exec --privileged is not supported by minidocker: an exec gets no "
                       "more than the container's PID 1")
    record = lifecycle.find(request.path_params["id"])
    check_running(record, record.Id)  # a paused one says so, as moby's exec create
    check_workdir(body.get("WorkingDir"))  # a 400 now, as moby's exec create
    exec_id = secrets.token_hex(32)
    request.app.state.sessions.execs[exec_id] = {
        "ID": exec_id, "ContainerID": record.Id, "Running": False, "ExitCode": None,
        "Pid": 0, "OpenStdin": bool(body.get("AttachStdin")),
        "OpenStdout": bool(body.get("AttachStdout")),
        "OpenStderr": bool(body.get("AttachStderr")), "CanRemove": False,
        "DetachKeys": body.get("DetachKeys") or "",
        "ProcessConfig": {"tty": bool(body.get("Tty")), "entrypoint": body["Cmd"][0],
                          "arguments": body["Cmd"][1:], "privileged": False,
                          "user": body.get("User") or ""},
        "spec": {"command": list(body["Cmd"]), "interactive": bool(body.get("AttachStdin")),
                 "tty": bool(body.get("Tty")), "env": list(body.get("Env") or []),
                 "workdir": body.get("WorkingDir") or None, "user": body.get("User") or None},
    }
    record.event(f"exec_create: {' '.join(body['Cmd'])}", execID=exec_id)
    return JSONResponse({"Id": exec_id}, status_code=201)


def _instance(request: Request) -> dict:
    instance = request.app.state.sessions.execs.get(request.path_params["id"])
    if instance is None:
        raise NotFound(f"No such exec instance: {request.path_params['id']}")
    return instance


def exec_inspect(request: Request) -> Response:
    instance = _instance(request)
    return JSONResponse({k: v for k, v in instance.items() if k not in ("spec", "console")})


def exec_resize(request: Request) -> Response:
    """``POST /exec/{id}/resize?h=&w=``: the size goes on the terminal the daemon gave the
    exec (TIOCSWINSZ); SIGWINCH tells ``exec_process``, which copies it to the container's
    pty as a terminal emulator's resize would reach ``minidocker exec -t``."""
    height, width = window(request)
    instance = _instance(request)
    console = instance.get("console")
    if console is None:
        if not instance["Running"]:
            raise Conflict(f"exec instance {instance['ID']} is not running")
        return Response(status_code=200)  # no terminal: nothing to size
    with contextlib.suppress(OSError):
        fcntl.ioctl(console, termios.TIOCSWINSZ, window_size(height, width))
        os.kill(instance["Pid"], signal.SIGWINCH)
    return Response(status_code=200)


async def exec_start(request: Request) -> Response:
    """``POST /exec/{id}/start``: run it, streamed over the hijacked connection (or in the
    background with ``Detach``). With a TTY its stdio is a pty of the daemon's (``console``),
    which ``exec resize`` sizes; without, pipes."""
    instance = _instance(request)
    body = await json_body(request)
    shapes.check("ExecStartConfig", body, {"Detach": bool, "Tty": bool,
                                           "ConsoleSize": shapes.ListOf(int)})
    if instance["Running"] or instance["ExitCode"] is not None:
        raise Conflict(f"exec instance {instance['ID']} has already been started")
    spec = instance["spec"]
    argv = [sys.executable, "-m", "minidocker.daemon.exec_process", instance["ContainerID"],
            json.dumps(spec)]
    if spec["tty"]:
        process, console = await _spawn_with_console(argv, body.get("ConsoleSize"))
        instance["console"] = console
    else:
        process, console = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if spec["interactive"]
            else asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE), None
    instance.update(Running=True, Pid=process.pid)
    if body.get("Detach"):
        asyncio.create_task(_finish(instance, process))
        return Response(status_code=200)

    async def pump(receive, write) -> None:
        if console is not None:
            outputs = [(1, await _reader(console))]
            stdin = ConsoleInput(console) if spec["interactive"] else None
        else:
            outputs = [(1, process.stdout), (2, process.stderr)]
            stdin = process.stdin
        feeder = asyncio.create_task(_feed(receive, stdin)) if stdin else None
        try:
            await asyncio.gather(*(_copy(stream, pipe, spec["tty"], write)
                                   for stream, pipe in outputs))
        finally:
            if feeder:
                feeder.cancel()
            await _finish(instance, process)

    return RawStream(spec["tty"], pump)


async def _spawn_with_console(argv: list[str], size) -> tuple[asyncio.subprocess.Process, int]:
    """``exec_process`` with a new pty's slave end as its stdio (raw: the container's own pty
    does the line discipline); the daemon keeps the master end."""
    console, slave = os.openpty()
    tty.setraw(slave)
    if isinstance(size, list) and len(size) == 2 and all(isinstance(n, int) for n in size):
        with contextlib.suppress(OSError, struct.error):
            fcntl.ioctl(console, termios.TIOCSWINSZ, window_size(*size))
    try:
        process = await asyncio.create_subprocess_exec(*argv, stdin=slave, stdout=slave,
                                                       stderr=slave)
    finally:
        os.close(slave)
    return process, console


async def _reader(console: int) -> asyncio.StreamReader:
    """The pty's master as a stream (a dup: the transport closes what it reads)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                 os.fdopen(os.dup(console), "rb", buffering=0))
    return reader


class ConsoleInput:
    """What the client types, written to the pty's master (the exec's terminal input)."""

    def __init__(self, console: int):
        self.console = console

    def write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            write_all(self.console, data)

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        pass  # a terminal has no end of input: the shell exits when told to


async def _copy(stream: int, pipe: asyncio.StreamReader, tty: bool, write) -> None:
    with contextlib.suppress(OSError):  # EIO from a pty: the exec's side has closed
        while data := await pipe.read(65536):
            await write(data if tty else frame(stream, data))


async def _feed(receive, stdin) -> None:
    while True:
        message = await receive()
        data = message.get("body", b"")
        try:
            if data:
                stdin.write(data)
                await stdin.drain()
            if message["type"] == "http.disconnect" or not message.get("more_body", True):
                stdin.close()
                return
        except ConnectionError:
            return


async def _finish(instance: dict, process: asyncio.subprocess.Process) -> None:
    code = await process.wait()
    instance.update(Running=False, ExitCode=code, Pid=0)
    console = instance.pop("console", None)
    if console is not None:
        os.close(console)
