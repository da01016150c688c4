"""Stage 12: the Engine API on the wire — what the CLI never sends. Version prefixes,
Docker's error body and status codes, and hostile input: malformed JSON, unknown fields,
wrong types, huge bodies. Every refusal is a 4xx with ``{"message": ...}``, never a
traceback, and nothing is created."""

import socket

import pytest

from tests.conftest import minidocker
from tests.daemon_helpers import running_daemon

PREFIX = "dmnapi-"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    with running_daemon(tmp_path_factory.mktemp("daemon"), PREFIX) as running:
        yield running


@pytest.fixture
def http(daemon):
    with daemon.http() as client:
        yield client


def refused(response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    message = response.json()["message"]
    assert words in message and "Traceback" not in message


def test_ping_headers_and_versions(http):
    ping = http.head("/_ping")
    assert ping.status_code == 200
    assert ping.headers["api-version"] == "1.50" and ping.headers["ostype"] == "linux"
    assert http.get("/v1.24/_ping").text == "OK"
    assert http.get("/v1.50/version").json()["ApiVersion"] == "1.50"
    refused(http.get("/v1.23/version"), 400, "too old")
    refused(http.get("/v1.51/version"), 400, "too new")
    refused(http.get("/v1.50/no/such/endpoint"), 404, "page not found")


def test_container_list_filters(http, daemon):
    names = [f"{PREFIX}a", f"{PREFIX}b"]
    for name, label in zip(names, ("x", "y"), strict=True):
        created = http.post("/containers/create", params={"name": name},
                            json={"Image": "busybox", "Cmd": ["true"], "Labels": {"k": label}})
        assert created.status_code == 201, created.text
    listed = http.get("/containers/json", params={"all": "1", "filters":
                                                  '{"label":["k=y"]}'}).json()
    assert [c["Names"] for c in listed] == [[f"/{PREFIX}b"]]
    assert http.get("/containers/json").json() == []  # none runs
    by_status = http.get("/containers/json", params={"filters": '{"status":["created"]}'})
    assert {c["Names"][0] for c in by_status.json()} >= {f"/{n}" for n in names}
    refused(http.get("/containers/json", params={"filters": "{oops"}), 400, "invalid filters")
    for name in names:
        assert http.delete(f"/containers/{name}").status_code == 204


def test_create_refusals(http):
    before = minidocker("ps", "-aq").stdout
    create = "/v1.50/containers/create"
    refused(http.post(create, content=b"{not json"), 400, "invalid JSON")
    refused(http.post(create, content=b"[1, 2]"), 400, "JSON object")
    refused(http.post(create, json={"Image": "busybox", "Bogus": 1}), 400,
            "unknown field in Config: Bogus")
    refused(http.post(create, json={"Image": "busybox", "HostConfig": {"Nope": True}}), 400,
            "unknown field in HostConfig: Nope")
    refused(http.post(create, json={"Image": "busybox", "Tty": "yes"}), 400,
            "invalid Config.Tty: expected a boolean")
    refused(http.post(create, json={"Image": "busybox", "Env": [1]}), 400,
            "invalid Config.Env")
    refused(http.post(create, json={"Image": "busybox", "Labels": {"tier": 1}}), 400,
            "invalid Config.Labels[\"tier\"]: expected a string")
    refused(http.post(create, json={"Image": "busybox", "HostConfig": {"Memory": "lots"}}),
            400, "invalid HostConfig.Memory")
    refused(http.post(create, json={"Image": "busybox", "HostConfig": {"Memory": 1}}), 400,
            "Minimum memory limit")
    refused(http.post(create, json={"Image": "busybox", "HostConfig": {
        "RestartPolicy": {"Name": "sometimes"}}}), 400, "invalid restart policy")
    refused(http.post(create, content=b'{"Image": "' + b"a" * (2 << 20) + b'"}'), 413,
            "too large")
    refused(http.post(create, json={"Image": "nosuch:1", "Cmd": ["true"]}), 404,
            "No such image: nosuch:1")
    refused(http.post(create, params={"name": "bad name!"}, json={"Image": "busybox"}), 400,
            "name")
    assert minidocker("ps", "-aq").stdout == before  # nothing was made


def test_filters_of_the_old_form_keep_every_key():
    """``{"label": {"keep": false}}`` still filters on ``keep``, as moby reads it: a prune
    that dropped it would remove everything."""
    from urllib.parse import urlencode

    from starlette.requests import Request

    from minidocker.daemon.params import filters

    query = urlencode({"filters": '{"label": {"keep": false}, "until": {"1h": true}}'})
    request = Request({"type": "http", "query_string": query.encode(), "headers": []})
    assert filters(request) == {"label": ["keep"], "until": ["1h"]}


def test_volume_and_network_create_refusals(http):
    """A map of strings (moby's ``map[string]string``) with another value, a subnet that is
    no string: a 400, nothing made."""
    name = f"{PREFIX}v"
    refused(http.post("/volumes/create", json={"Name": name, "DriverOpts": {
        "type": "none", "o": "bind", "device": 3}}), 400,
        'invalid Volume.DriverOpts["device"]: expected a string')
    refused(http.post("/volumes/create", json={"Name": name, "Labels": {"tier": 1}}), 400,
            "invalid Volume.Labels")
    refused(http.get(f"/volumes/{name}"), 404, "No such volume")
    refused(http.post("/networks/create", json={"Name": f"{PREFIX}n", "IPAM": {
        "Config": [{"Subnet": 5}]}}), 400,
        "invalid Network.IPAM.Config[0].Subnet: expected a string")


def test_conflicts_and_missing(http):
    name = f"{PREFIX}c"
    assert http.post("/containers/create", params={"name": name},
                     json={"Image": "busybox", "Cmd": ["sleep", "60"]}).status_code == 201
    refused(http.post("/containers/create", params={"name": name},
                      json={"Image": "busybox"}), 409, "already in use")
    refused(http.post(f"/containers/{name}/rename", params={"name": name}), 400,
            "Renaming a container with the same name as its current name")  # moby: not a 409
    assert http.post(f"/containers/{name}/start").status_code == 204
    assert http.post(f"/containers/{name}/start").status_code == 304
    assert http.post(f"/containers/{name}/pause").status_code == 204
    refused(http.post(f"/containers/{name}/exec", json={"Cmd": ["true"]}), 409,
            "is paused, unpause the container before exec")
    assert http.post(f"/containers/{name}/unpause").status_code == 204
    refused(http.delete(f"/containers/{name}"), 409, "cannot remove a running container")
    refused(http.post(f"/containers/{name}/wait", params={"condition": "soon"}), 400,
            "invalid condition")
    assert http.post(f"/containers/{name}/kill").status_code == 204
    assert http.post(f"/containers/{name}/wait").json() == {"StatusCode": 137}
    refused(http.post(f"/containers/{name}/kill"), 409, "not running")
    assert http.delete(f"/containers/{name}", params={"v": "1"}).status_code == 204
    refused(http.get(f"/containers/{name}/json"), 404, "No such container")
    refused(http.post("/exec/nope/start", json={}), 404, "No such exec instance")
    refused(http.get("/images/nosuch/json"), 404, "No such image")


def test_attach_stream_frames_on_the_raw_socket(daemon, http):
    """The hijack by hand: 101 UPGRADED, then 8-byte frame headers, stdout 1 and stderr 2."""
    cid = http.post("/containers/create", json={
        "Image": "busybox", "Cmd": ["sh", "-c", "echo out; echo err >&2"],
        "HostConfig": {"AutoRemove": True}}).json()["Id"]
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(daemon.socket))
        raw.sendall(f"POST /v1.50/containers/{cid}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1"
                    "\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += raw.recv(1)
        assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
        assert b"application/vnd.docker.multiplexed-stream" in head
        assert http.post(f"/containers/{cid}/start").status_code == 204
        data = b""
        while chunk := raw.recv(65536):
            data += chunk
    frames = {}
    while data:
        stream, size = data[0], int.from_bytes(data[4:8], "big")
        assert data[1:4] == b"\0\0\0"
        frames[stream] = frames.get(stream, b"") + data[8:8 + size]
        data = data[8 + size:]
    assert frames == {1: b"out\n", 2: b"err\n"}
