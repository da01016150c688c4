"""Checker of lab 12 — the Engine API by hand: the stream's frames, HTTP over a unix socket, a
tiny ``docker run``.

For every step the sandbox (sandbox.py) gets a network namespace of its own, with only ``lo``,
and a tmpfs on the scratch directory; there the checker makes a state root holding busybox,
starts ``minidocker daemon`` on a unix socket, and puts a wiretap (daemon/wiretap.py) in front
of it: the student's code talks to the tap, so the checker reads every byte the student sent
and the daemon answered. The checker's own requests go to the daemon's socket with httpx.

Step 1 feeds the student's demultiplexer a real multiplexed stream (the logs of a container
that wrote to stdout and stderr), cut into pieces at every awkward place, then cut short. Step 2
sends requests with the student's HTTP client: an answer with ``Content-Length``, one in
``chunked`` pieces (``docker save``'s tar, a megabyte), a ``204`` that has no body at all. Step
3 runs a container with the student's client and checks the conversation the tap heard and the
output that came back.

Whatever the student's code does, the containers go: after each step the checker removes every
container the daemon knows (``DELETE ?force=1``: the container's processes, mounts and cgroup),
then stops the daemon; the sandbox's namespaces and tmpfs go with the sandbox. A student's call
that hangs is interrupted (``SIGALRM``) before the sandbox's own time limit, so that this
cleanup always runs.

Spec: Docker Engine API v1.50 ("ContainerCreate", "ContainerAttach", "ContainerWait",
"ContainerDelete", "ContainerLogs"); RFC 9112 (message syntax, chunked coding).
Used by: ``minidocker lab check 12``; the lab is labs/12-engine-api/.
"""

import contextlib
import functools
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from minidocker import kernel
from minidocker.daemon.wiretap import Message, Wiretap, parse_frames
from minidocker.labs.framework import Lab, Step, function, scratch_workspace
from minidocker.labs.sandbox import CheckFailed, call_student, describe_error, mount_scratch

STUDENT_TIME = 8  # seconds a call of the student's may take (the step's own limit is longer)
FORBIDDEN = ("httpx", "requests", "http.client", "urllib3", "docker", "aiohttp")
SCRIPT = "echo one; echo two >&2; echo three; head -c 70000 /dev/zero | tr '\\0' x; echo; " \
         "echo four >&2"


@dataclass
class Engine:
    """The daemon the step talks to, and the tap in front of it."""

    daemon: subprocess.Popen
    socket: str  # the daemon's own socket (the checker's requests)
    tap: Wiretap  # the student's requests go to tap.listen

    @property
    def student_socket(self) -> str:
        return str(self.tap.listen)

    def http(self) -> httpx.Client:
        return httpx.Client(transport=httpx.HTTPTransport(uds=self.socket),
                            base_url="http://docker", timeout=20)

    def heard(self) -> list[Message]:
        return self.tap.messages()


@contextmanager
def engine(scratch: str) -> Iterator[Engine]:
    """In the sandbox: loopback of its own, a state root on a tmpfs with busybox, the daemon
    and its tap. At the end every container is removed, then the daemon stops."""
    kernel.unshare(kernel.CLONE_NEWNET)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    mount_scratch(scratch)
    root = os.path.join(scratch, "state")
    os.makedirs(root, mode=0o700)
    os.environ["MINIDOCKER_ROOT"] = root
    from minidocker.image.busybox import create_busybox_image

    create_busybox_image()
    sock = os.path.join(scratch, "minidocker.sock")
    with open(os.path.join(scratch, "daemon.log"), "wb") as log:
        daemon = subprocess.Popen([sys.executable, "-m", "minidocker.cli", "daemon", "--host",
                                   f"unix://{sock}", "--log-level", "warning"],
                                  stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60  # a few seconds here; far more on an emulated VM
    while not os.path.exists(sock):
        if daemon.poll() is not None or time.monotonic() > deadline:
            raise CheckFailed("minidocker's daemon did not start (this is the checker's "
                              "problem, not yours): "
                              + Path(scratch, "daemon.log").read_text()[-300:])
        time.sleep(0.05)
    running = Engine(daemon, sock, Wiretap(os.path.join(scratch, "engine.sock"), sock).start())
    try:
        yield running
    finally:
        remove_every_container(running)  # first: whatever the student's code left open
        running.tap.stop()
        daemon.terminate()
        daemon.wait(60)


def remove_every_container(running: Engine) -> None:
    """``DELETE /containers/{id}?force=1`` for every container: its processes, mounts and
    cgroup go (and, should the daemon be gone, minidocker's own ``rm -f``)."""
    try:
        with running.http() as client:
            for container in client.get("/containers/json", params={"all": 1}).json():
                client.delete(f"/containers/{container['Id']}", params={"force": 1})
    except httpx.HTTPError:
        cli = [sys.executable, "-m", "minidocker.cli"]
        ids = subprocess.run([*cli, "ps", "-aq"], capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run([*cli, "rm", "-f", *ids], capture_output=True)


class TookTooLong(Exception):
    pass


def in_time(call, *args):
    """The student's function, interrupted after ``STUDENT_TIME`` seconds (SIGALRM)."""
    def on_alarm(_signum, _frame):
        raise TookTooLong(f"your code was still running after {STUDENT_TIME} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(STUDENT_TIME)
    try:
        return call_student(call, *args)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def no_http_library(student) -> None:
    """The lesson is the bytes: a student's file may not bring an HTTP client of its own."""
    used = sorted({value.__name__ for value in vars(student).values()
                   if type(value) is type(os) and value.__name__.split(".")[0] in
                   {name.split(".")[0] for name in FORBIDDEN}} |
                  {name for name in FORBIDDEN if name in vars(student)})
    if used:
        raise CheckFailed(f"your file imports {', '.join(used)}: this lab is HTTP by hand, "
                          "with socket alone")


def run_to_the_end(running: Engine, command: list[str]) -> str:
    """Create and start a container with the checker's own client; wait for its end."""
    with running.http() as client:
        created = client.post("/containers/create", json={
            "Image": "busybox", "Cmd": command, "HostConfig": {"NetworkMode": "none"}})
        container = created.json()["Id"]
        client.post(f"/containers/{container}/start")
        client.post(f"/containers/{container}/wait", timeout=30)
    return container


def shown(frames) -> str:
    return ", ".join(f"({stream}, {len(data)} bytes)" for stream, data in frames[:6]) + \
        (", …" if len(frames) > 6 else "")


# --- step 1 ---------------------------------------------------------------------------------------

def check_demultiplex(student, scratch: str) -> str:
    demultiplex = function(student, "demultiplex")
    with engine(scratch) as running:
        container = run_to_the_end(running, ["sh", "-c", SCRIPT])
        with running.http() as client:
            stream = client.get(f"/containers/{container}/logs",
                                params={"stdout": 1, "stderr": 1}).content
    expected = parse_frames(stream)
    cuts = {"the whole stream in one piece": [stream],
            "one byte at a time": [stream[i:i + 1] for i in range(min(len(stream), 400))]
            + [stream[400:]],
            "a header cut after 3 bytes": [stream[:3], stream[3:]],
            "pieces of 1000 bytes": [stream[i:i + 1000] for i in range(0, len(stream), 1000)]}
    for how, pieces in cuts.items():
        got = in_time(demultiplex, iter(pieces))
        if not isinstance(got, list) or [tuple(f) for f in got] != expected:
            what = shown(got) if isinstance(got, list) else repr(got)[:80]
            raise CheckFailed(f"with {how}, demultiplex() returned [{what}]; the daemon sent "
                              f"{len(expected)} frames: [{shown(expected)}]. Keep what is left "
                              "of a piece and read on: a frame may span several reads")
    try:
        got = in_time(demultiplex, iter([stream[:-3]]))
    except (NotImplementedError, TookTooLong):
        raise
    except Exception as exc:  # noqa: BLE001 - any refusal will do
        refusal = describe_error(exc)
    else:
        raise CheckFailed(f"a stream cut 3 bytes short was accepted ({len(got)} frames): the "
                          "last frame's header promises more bytes than came; raise")
    return (f"the logs of a container, {len(stream)} bytes, {len(expected)} frames "
            f"(stdout and stderr, one of 70001 bytes), read whole, byte by byte and cut in "
            f"headers; the stream cut short refused ({refusal})")


# --- step 2 ---------------------------------------------------------------------------------------

def answer_of(result, what: str) -> tuple[int, dict, bytes]:
    if not (isinstance(result, tuple) and len(result) == 3 and isinstance(result[0], int)
            and isinstance(result[1], dict) and isinstance(result[2], bytes)):
        raise CheckFailed(f"request() returned {repr(result)[:80]} for {what}: return "
                          "(status as an int, headers as a dict, body as bytes)")
    return result


def check_request(student, scratch: str) -> str:
    request = function(student, "request")
    no_http_library(student)
    with engine(scratch) as running:
        status, headers, body = answer_of(in_time(request, running.student_socket, "GET",
                                                  "/_ping"), "GET /_ping")
        heard = [m for m in running.heard() if m.kind == "request"]
        if not heard or not heard[0].line.startswith("GET /_ping HTTP/1.1") or \
                "host" not in heard[0].headers:
            line = heard[0].line if heard else "nothing"
            raise CheckFailed(f"the daemon heard {line!r}: send 'GET /_ping HTTP/1.1', a Host "
                              "header (HTTP/1.1 requires one), and an empty line")
        lower = {name.lower(): value for name, value in headers.items()}
        if (status, body) != (200, b"OK") or lower.get("api-version") != "1.50":
            raise CheckFailed(f"GET /_ping gave ({status}, {body!r}) and Api-Version "
                              f"{lower.get('api-version')!r}; the daemon sent (200, b'OK') and "
                              "Api-Version '1.50': read the status line, each header up to the "
                              "empty line, then Content-Length bytes")
        document = json.dumps({"Image": "busybox", "Cmd": ["true"],
                               "HostConfig": {"NetworkMode": "none"}}).encode()
        status, _, body = answer_of(in_time(request, running.student_socket, "POST",
                                            "/containers/create", document,
                                            {"Content-Type": "application/json"}),
                                    "POST /containers/create")
        if status != 201 or b'"Id"' not in body:
            raise CheckFailed(f"POST /containers/create gave {status} {body[:120]!r}: send the "
                              "JSON as the body, with Content-Length (its size in bytes)")
        container = json.loads(body)["Id"]
        status, headers, tar = answer_of(in_time(request, running.student_socket, "GET",
                                                 "/images/busybox/get"), "GET /images/.../get")
        with running.http() as client:
            expected = client.get("/images/busybox/get").content
        if status != 200 or len(tar) != len(expected) or not _a_tar(tar):
            raise CheckFailed(f"GET /images/busybox/get gave {status} and {len(tar)} bytes; the "
                              f"daemon sent a tar of {len(expected)} bytes with "
                              "'Transfer-Encoding: chunked': read each chunk's size (hex) line, "
                              "that many bytes and a CRLF, up to the chunk of size 0")
        started = time.monotonic()
        status, _, body = answer_of(in_time(request, running.student_socket, "DELETE",
                                            f"/containers/{container}"), "DELETE")
        took = time.monotonic() - started
        if status != 204 or body:
            raise CheckFailed(f"DELETE /containers/<id> gave ({status}, {body[:60]!r}), not "
                              "(204, b'')")
        if took > 2:
            raise CheckFailed(f"DELETE /containers/<id> took {took:.1f} s: a 204 answer has no "
                              "body (and no Content-Length); your code waited for the end of "
                              "the connection, which the daemon keeps open")
    return (f"GET /_ping → 200 b'OK'; POST /containers/create → 201 with its Id; GET "
            f"/images/busybox/get → 200, {len(tar)} bytes in chunks, a tar; DELETE → 204 in "
            f"{took * 1000:.0f} ms")


def _a_tar(data: bytes) -> bool:
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            return "manifest.json" in tar.getnames()
    except tarfile.TarError:
        return False


# --- step 3 ---------------------------------------------------------------------------------------

def check_run(student, scratch: str) -> str:
    run = function(student, "run")
    no_http_library(student)
    command = ["sh", "-c", "echo to stdout; echo to stderr >&2; echo more; exit 3"]
    with engine(scratch) as running:
        try:
            result, failed = in_time(run, running.student_socket, "busybox", command), None
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001 - said below, with what the daemon heard
            result, failed = None, describe_error(exc)
        heard = running.heard()
        with running.http() as client:
            left = client.get("/containers/json", params={"all": 1}).json()
        said = story(heard)
        requests = [m for m in heard if m.kind == "request"]
        attach = next((m for m in requests if "/attach" in m.line), None)
        start = next((m for m in requests if m.line.split()[1].endswith("/start")), None)
        if start is not None and (attach is None or start.at < attach.at):
            raise CheckFailed(f"the container was started before it was attached (the daemon "
                              f"heard: {said}): attach first, or its first lines are lost")
        if failed:
            raise CheckFailed(f"{failed}; the daemon heard: {said}")
        if not (isinstance(result, tuple) and len(result) == 3):
            raise CheckFailed(f"run() returned {repr(result)[:80]}: return (exit code, stdout "
                              f"bytes, stderr bytes); the daemon heard: {said}")
        created = next((m for m in requests if "/containers/create" in m.line), None)
        if created is None:
            raise CheckFailed(f"the daemon heard no POST /containers/create: {said}")
        mode = _json(created.body).get("HostConfig", {}).get("NetworkMode")
        if mode != "none":
            raise CheckFailed(f"the container was created with NetworkMode {mode!r}: ask for "
                              "\"HostConfig\": {\"NetworkMode\": \"none\"}")
        upgraded = any(m.status == 101 for m in heard)
        if attach is None or attach.headers.get("upgrade", "").lower() != "tcp" or not upgraded:
            raise CheckFailed(f"no attach was upgraded (the daemon heard: {said}): send POST "
                              "/containers/<id>/attach?stream=1&stdout=1&stderr=1 with "
                              "'Connection: Upgrade' and 'Upgrade: tcp', and read its 101")
        if start is None:
            raise CheckFailed(f"the container was never started (the daemon heard: {said})")
        for needed in ("/wait", "DELETE "):
            if not any(needed in m.line for m in requests):
                raise CheckFailed(f"the daemon heard no {needed.strip()} (it heard: {said})")
        if left:
            raise CheckFailed(f"{len(left)} container(s) were left behind: remove the "
                              "container (DELETE /containers/<id>) even when something fails")
        code, out, err = result
        if (code, out, err) != (3, b"to stdout\nmore\n", b"to stderr\n"):
            raise CheckFailed(f"run() returned ({code!r}, {out!r}, {err!r}); the container "
                              "exited 3 after writing b'to stdout\\nmore\\n' to stdout and "
                              "b'to stderr\\n' to stderr")
    return f"the daemon heard: {said}; run() returned (3, b'to stdout\\nmore\\n', b'to stderr\\n')"


def story(heard: list[Message]) -> str:
    """``create → 201, attach → 101, start → 204, ...``: what the daemon heard, in order."""
    said, asked = [], {}
    for m in heard:
        if m.kind == "request":
            method, target = m.line.split()[:2]
            name = target.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
            asked[m.connection] = "DELETE" if method == "DELETE" else name
        elif m.kind == "response" and m.connection in asked:
            said.append(f"{asked.pop(m.connection)} → {m.status}")
    return ", ".join(said) or "nothing"


def _json(body: bytes) -> dict:
    with contextlib.suppress(ValueError):
        value = json.loads(body)
        if isinstance(value, dict):
            return value
    return {}


LAB = Lab(
    directory="12-engine-api",
    steps=(
        Step(1, "the attach stream's frames, demultiplexed", check_demultiplex),
        Step(2, "HTTP/1.1 over a unix socket, with socket alone", check_request),
        Step(3, "a tiny docker run: create, attach (101), start, wait, remove", check_run),
    ),
    workspace=functools.partial(scratch_workspace, "12"),
)
