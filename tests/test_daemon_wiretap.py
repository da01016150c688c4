"""Stage 12: the wiretap (daemon/wiretap.py) — a recording read back as HTTP messages and
stream frames, from bytes made here (split where a socket may split them), and the proxy itself
between the real docker CLI and minidocker's daemon."""

import shutil
import struct

import pytest

from minidocker.daemon.wiretap import CLIENT, DAEMON, Chunk, Wiretap, messages
from tests.daemon_helpers import DOCKER, running_daemon

ID = "3770a5ab58d1" + "0" * 52
CREATE = b'{"Image":"busybox","Cmd":["true"]}'


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def run_i_recording() -> list[Chunk]:
    """``docker run -i`` as the tap hears it: create, attach + 101, wait, start, the frames."""
    created = b'{"Id":"%s","Warnings":[]}' % ID.encode()
    said = [
        (1, CLIENT, b"POST /v1.50/containers/create HTTP/1.1\r\nHost: api.moby.localhost\r\n"
                    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(CREATE), CREATE)),
        (1, DAEMON, b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(created), created)),
        (2, CLIENT, b"POST /v1.50/containers/%s/attach?stream=1&stdin=1&stdout=1&stderr=1 "
                    b"HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n" % ID.encode()),
        (2, DAEMON, b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker."
                    b"multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"),
        (1, CLIENT, b"POST /v1.50/containers/%s/wait?condition=removed HTTP/1.1\r\n"
                    b"Content-Length: 0\r\n\r\n" % ID.encode()),
        (1, DAEMON, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"),
        (2, CLIENT, b"student\n"),
        (3, CLIENT, b"POST /v1.50/containers/%s/start HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
                    % ID.encode()),
        (3, DAEMON, b"HTTP/1.1 204 No Content\r\n\r\n"),
        (2, DAEMON, frame(1, b"hello student\n")[:5]),  # a header split across two reads
        (2, DAEMON, frame(1, b"hello student\n")[5:] + frame(2, b"oops\n")),
        (1, DAEMON, chunked(b'{"StatusCode":0}\n')),
    ]
    return [Chunk(float(at), connection, sender, data)
            for at, (connection, sender, data) in enumerate(said, 1)]


def test_the_recording_reads_back_as_requests_answers_and_frames():
    said = messages(run_i_recording())
    story = [(m.connection, m.kind, m.line) for m in said]
    assert story == [
        (1, "request", "POST /v1.50/containers/create HTTP/1.1"),
        (1, "response", "HTTP/1.1 201 Created"),
        (2, "request", f"POST /v1.50/containers/{ID}/attach?stream=1&stdin=1&stdout=1&stderr=1"
                       " HTTP/1.1"),
        (2, "response", "HTTP/1.1 101 UPGRADED"),
        (1, "request", f"POST /v1.50/containers/{ID}/wait?condition=removed HTTP/1.1"),
        (1, "response", "HTTP/1.1 200 OK"),
        (2, "raw", "8 bytes"),
        (3, "request", f"POST /v1.50/containers/{ID}/start HTTP/1.1"),
        (3, "response", "HTTP/1.1 204 No Content"),
        (2, "frame", "stdout 14 bytes"),  # its header came in two pieces: dated by the first
        (2, "frame", "stderr 5 bytes"),
        (1, "chunk", "chunk 17 bytes"),
    ]
    create, created = said[0], said[1]
    assert create.body == CREATE and create.headers["content-type"] == "application/json"
    assert created.status == 201 and ID.encode() in created.body
    assert said[3].status == 101 and said[6].body == b"student\n" and said[6].sender == CLIENT
    out, err = said[9], said[10]
    assert (out.header_bytes, out.body) == (bytes([1, 0, 0, 0, 0, 0, 0, 14]), b"hello student\n")
    assert (err.header_bytes, err.body) == (bytes([2, 0, 0, 0, 0, 0, 0, 5]), b"oops\n")
    assert said[5].body == b"" and said[11].body == b'{"StatusCode":0}\n'  # came later


def test_a_tty_stream_is_raw_and_a_cut_frame_is_kept_short():
    tty = [Chunk(1.0, 1, CLIENT, b"POST /v1.50/containers/x/attach HTTP/1.1\r\n"
                                 b"Upgrade: tcp\r\nConnection: Upgrade\r\n\r\n"),
           Chunk(2.0, 1, DAEMON, b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd."
                                 b"docker.raw-stream\r\n\r\n/dev/pts/0\r\n"),
           Chunk(3.0, 1, DAEMON, b"24 80\r\n")]
    said = messages(tty)
    assert [(m.kind, m.body) for m in said[2:]] == [("raw", b"/dev/pts/0\r\n"),
                                                  ("raw", b"24 80\r\n")]
    cut = [tty[0], Chunk(2.0, 1, DAEMON, b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/"
                                         b"vnd.docker.multiplexed-stream\r\n\r\n"
                                         + frame(1, b"whole") + frame(2, b"cut short")[:12])]
    frames = [m for m in messages(cut) if m.kind == "frame"]
    assert [(m.line, m.body) for m in frames] == [("stdout 5 bytes", b"whole"),
                                                 ("stderr 9 bytes", b"cut ")]


@pytest.mark.skipif(not shutil.which(DOCKER), reason="needs the docker CLI")
def test_the_tap_between_the_docker_cli_and_the_daemon(tmp_path):
    with running_daemon(tmp_path, "tap-") as daemon, \
            Wiretap(tmp_path / "tap.sock", daemon.socket) as tap:
        env = {"DOCKER_HOST": f"unix://{tmp_path / 'tap.sock'}"}
        run = daemon.docker("run", "-i", "--rm", "--network", "none", "busybox", "sh", "-c",
                            "read x; echo out $x; echo err >&2", input="in\n", env=env)
        assert (run.returncode, run.stdout, run.stderr) == (0, "out in\n", "err\n")
        said = tap.messages()
    paths = [m.line.split()[1].split("?")[0].rsplit("/", 1)[-1] for m in said
             if m.kind == "request"]
    assert [p for p in paths if p != "_ping"] == ["create", "attach", "wait", "start"]
    assert any(m.status == 101 for m in said)
    assert sorted((m.header_bytes[0], m.body) for m in said if m.kind == "frame") == \
        [(1, b"out in\n"), (2, b"err\n")]  # two pipes: either may be read first
    assert not (tmp_path / "tap.sock").exists()


def test_a_stream_dockerd_20_calls_raw_is_read_as_frames_when_the_container_has_no_tty():
    """dockerd before API 1.42 answers every attach with ``raw-stream``: the create request
    (``Tty`` false) says the stream is multiplexed all the same."""
    recording = run_i_recording()
    upgraded = recording[3]
    recording[3] = Chunk(upgraded.at, upgraded.connection, upgraded.sender, upgraded.data
                         .replace(b"multiplexed-stream", b"raw-stream"))
    frames = [m.body for m in messages(recording) if m.kind == "frame"]
    assert frames == [b"hello student\n", b"oops\n"]
