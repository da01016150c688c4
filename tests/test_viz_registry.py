"""Notebook 11's helpers: the server's record of a conversation (a real server, on the test
session's loopback), the table and the sequence diagram drawn from it, and the layout tree."""

import hashlib

import httpx

from minidocker.registry.recording import Exchange, LocalRegistry
from minidocker.viz.registry import (
    conversation,
    draw_sequence,
    layout_tree,
    sequence_graph,
    side_by_side,
)

LAYER = "sha256:" + "ab" * 32
CONFIG = "sha256:" + "cd" * 32


def exchange(method, path, status, query="", request=None, response=None) -> Exchange:
    return Exchange(method, path, query, status, request or {}, response or {}, 0)


PUSH = [
    exchange("GET", "/v2/", 401, response={"www-authenticate": 'Bearer realm="http://r/token"'}),
    exchange("GET", "/token", 200, query="scope=repository:app:pull,push",
             request={"authorization": "Basic c3R1ZGVudDpzM2NyZXQ="}),
    exchange("PUT", "/v2/app/blobs/uploads/u1", 201, query=f"digest={LAYER.replace(':', '%3A')}",
             request={"authorization": "Bearer eyJsecret"},
             response={"docker-content-digest": LAYER, "content-length": "0"}),
]


def test_the_server_records_each_request_and_its_answer(tmp_path):
    body = b"a layer, as bytes"
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    with LocalRegistry(tmp_path / "registry") as registry:
        assert registry.address.startswith("127.0.0.1:") and registry.port > 0
        opened = httpx.post(f"{registry.url}/v2/app/blobs/uploads/")
        httpx.put(registry.url + opened.headers["location"], params={"digest": digest},
                  content=body, headers={"Content-Type": "application/octet-stream"})
        httpx.get(f"{registry.url}/v2/app/blobs/{digest}", headers={"Authorization": "Bearer x"})
        recorded = list(registry.exchanges)
    assert not registry._thread.is_alive()  # stopped: its thread is gone
    assert [(e.method, e.status) for e in recorded] == [("POST", 202), ("PUT", 201), ("GET", 200)]
    post, put, get = recorded
    assert post.response_headers["range"] == "0-0"
    assert post.response_headers["location"].endswith(post.response_headers["docker-upload-uuid"])
    assert put.query.startswith("digest=sha256") and put.received == len(body)
    assert put.response_headers["docker-content-digest"] == digest
    assert get.request_headers["authorization"] == "Bearer x"
    assert (tmp_path / "registry/docker/registry/v2/blobs/sha256").is_dir()


def test_forget_starts_a_new_recording(tmp_path):
    with LocalRegistry(tmp_path) as registry:
        httpx.get(registry.url + "/v2/")
        registry.forget()
        httpx.get(registry.url + "/v2/_catalog")
        assert [e.path for e in registry.exchanges] == ["/v2/_catalog"]


def test_the_conversation_table_cuts_digests_and_never_shows_a_secret():
    table = conversation(PUSH)
    assert table.header[:4] == ("#", "request", "auth", "answer")
    first, token, put = table.rows
    assert first[3] == "401 Unauthorized" and "WWW-Authenticate: Bearer" in first[4]
    assert token[2] == "Basic" and put[2] == "Bearer"
    assert put[1] == f"PUT /v2/app/blobs/uploads/u1?digest={LAYER[:19]}…"  # unquoted, cut
    assert put[4] == f"Docker-Content-Digest: {LAYER[:19]}…"
    assert "c3R1ZGVudDpzM2NyZXQ=" not in table.text() and "eyJsecret" not in table.text()


def test_the_sequence_graph_alternates_requests_and_answers():
    graph = sequence_graph(PUSH, client="minidocker push")
    assert graph.node("client:head").label == "minidocker push"
    messages = [(source.split(":")[0], label) for source, _, label in graph.edges if label]
    assert [side for side, _ in messages] == ["client", "server"] * 3
    assert messages[0][1] == "GET /v2/"
    assert messages[1][1].startswith("401 Unauthorized\nWWW-Authenticate: Bearer")
    assert messages[2][1].endswith("[Basic]") and messages[4][1].endswith("[Bearer]")
    assert messages[5][1] == f"201 Created\nDocker-Content-Digest: {LAYER[:19]}…"
    # each lifeline is one unbroken chain from its head down
    for lifeline in ("client", "server"):
        chain = [(s, t) for s, t, label in graph.edges if not label and s.startswith(lifeline)]
        assert len(chain) == 6 and chain[0][0] == f"{lifeline}:head"
        assert all(a[1] == b[0] for a, b in zip(chain, chain[1:], strict=False))


def test_the_drawing_has_every_message():
    source = draw_sequence(PUSH).source
    assert "GET /v2/" in source and "401 Unauthorized" in source and "201 Created" in source


def distribution_layout(root, layer=LAYER, config=CONFIG):
    v2 = root / "docker/registry/v2"
    for digest in (layer, config):
        hex_digest = digest.split(":")[1]
        (v2 / "blobs/sha256" / hex_digest[:2] / hex_digest).mkdir(parents=True)
        (v2 / "blobs/sha256" / hex_digest[:2] / hex_digest / "data").write_bytes(b"x")
        link = v2 / "repositories/app/_layers/sha256" / hex_digest / "link"
        link.parent.mkdir(parents=True)
        link.write_text(digest)
    (v2 / "repositories/app/_uploads").mkdir()
    return v2


def test_the_layout_tree_names_blobs_by_role_and_keeps_its_order(tmp_path):
    roles = {LAYER: "the layer", CONFIG: "the config"}
    tree = layout_tree(distribution_layout(tmp_path / "a"), roles, "docker/registry/v2")
    lines = tree.splitlines()
    assert lines[0] == "docker/registry/v2/"
    assert "│       ├── cd/cdcdcdcdcdcd…/" in lines  # the fan-out drawn in one line
    assert "│       │   └── data  the config" in lines
    assert any(line.endswith("link  -> sha256:abababababab…") for line in lines)
    assert lines[-1].endswith("└── _uploads/")
    # other digests, same roles: the same shape, config first either way
    other = {"sha256:" + "01" * 32: "the layer", "sha256:" + "fe" * 32: "the config"}
    again = layout_tree(distribution_layout(tmp_path / "b", *other), other)
    assert [line.split("──")[0] for line in again.splitlines()[1:]] == \
        [line.split("──")[0] for line in lines[1:]]
    assert again.index("the config") < again.index("the layer")


def test_side_by_side_pads_the_left_column():
    assert side_by_side("a\nbb", "x", ("L", "R"), gap=2) == "L   R\n\na   x\nbb"
