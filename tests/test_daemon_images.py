"""Stage 12: images over the Engine API, driven by the real docker CLI (28.2, the classic
builder with ``DOCKER_BUILDKIT=0``) and docker-py — build from a tar context, import, pull and
push with login against minidocker's own registry (on loopback in the test session's private
network namespace), save/load, commit, search — and the bad input each endpoint must refuse
with a 4xx ``{"message": ...}`` and no file written outside the store."""

import gzip
import io
import json
import shutil
import socket
import tarfile
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import minidocker
from tests.daemon_helpers import DOCKER, running_daemon
from tests.registry_helpers import minidocker_registry

pytestmark = pytest.mark.skipif(not shutil.which(DOCKER), reason="needs the docker CLI")

PREFIX = "dmnimg-"
CLASSIC = {"DOCKER_BUILDKIT": "0"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    with running_daemon(tmp_path_factory.mktemp("daemon"), PREFIX) as running:
        yield running
        assert "Traceback" not in running.log_text()
    names = minidocker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    ours = [n for n in names if PREFIX in n]
    if ours:
        minidocker("rmi", "-f", *ours)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """minidocker's registry with one user, alice, on a loopback port."""
    work = tmp_path_factory.mktemp("registry")
    minidocker("registry", "htpasswd", str(work / "htpasswd"), "alice", input="wonderland\n")
    server = minidocker_registry(work / "root", work / "serve.log", "--auth",
                                 f"htpasswd:{work / 'htpasswd'}")
    yield server
    server.stop()


def ok(result) -> str:
    assert result.returncode == 0, f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def tar_of(files: dict[str, bytes | str], links: dict[str, str] = (),
           after: dict[str, str] = ()) -> bytes:
    """A tar with these files, then symlinks (name -> target), then the files of ``after``,
    as a client (or an attacker) would send it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, target in dict(links).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for name, data in {**files, **dict(after)}.items():
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# --- build ---------------------------------------------------------------------------------------

DOCKERFILE = """FROM busybox
ARG GREETING=none
RUN echo "greeting=$GREETING" > /greeting
COPY note.txt /note.txt
CMD ["cat", "/greeting", "/note.txt"]
"""
STAGES = """FROM busybox AS one
RUN echo one > /f
FROM busybox AS two
RUN echo two > /f
"""


def test_docker_build_classic(daemon, tmp_path):
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE)
    (context / "stages.Dockerfile").write_text(STAGES)
    (context / "note.txt").write_text("from the context\n")
    (context / ".dockerignore").write_text("secret\n")
    (context / "secret").write_text("never sent\n")
    tag = f"{PREFIX}app:1"
    first = daemon.docker("build", "-t", tag, "--build-arg", "GREETING=hi", "--label",
                          "team=course", str(context), env=CLASSIC, timeout=120)
    out = ok(first)
    assert "Sending build context to Docker daemon" in out
    for expected in ("Step 1/6 : FROM busybox", "Step 3/6 : RUN echo", " ---> Running in",
                     "Successfully built ", f"Successfully tagged {tag}"):
        assert expected in out, out
    assert ok(daemon.docker("run", "--rm", tag)) == "greeting=hi\nfrom the context\n"
    assert ok(daemon.docker("inspect", "-f", '{{index .Config.Labels "team"}}', tag)) \
        == "course\n"
    again = ok(daemon.docker("build", "-q", "--iidfile", str(tmp_path / "iid"), "-t", tag,
                             "--build-arg", "GREETING=hi", "--label", "team=course",
                             str(context), env=CLASSIC, timeout=120))
    image_id = (tmp_path / "iid").read_text().strip()  # -q: the CLI writes what it printed
    assert image_id.startswith("sha256:") and again.strip() == image_id  # all from the cache
    cached = ok(daemon.docker("build", "-t", tag, "--build-arg", "GREETING=hi", "--label",
                              "team=course", str(context), env=CLASSIC, timeout=120))
    assert " ---> Using cache" in cached
    target = f"{PREFIX}stage:1"
    ok(daemon.docker("build", "-f", str(context / "stages.Dockerfile"), "--target", "one",
                     "--no-cache", "-t", target, str(context), env=CLASSIC, timeout=120))
    assert ok(daemon.docker("run", "--rm", target, "cat", "/f")) == "one\n"


def test_docker_build_failures(daemon, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    failed = daemon.docker("build", str(tmp_path), env=CLASSIC, timeout=120)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "non-zero code: 3" in failed.stderr + failed.stdout
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUNN true\n")
    bad = daemon.docker("build", str(tmp_path), env=CLASSIC, timeout=60)
    assert bad.returncode == 1 and "unknown instruction" in bad.stderr.lower()
    buildkit = daemon.docker("build", str(tmp_path), env={"DOCKER_BUILDKIT": "1"}, timeout=60)
    assert buildkit.returncode != 0
    outside = tmp_path / "elsewhere.Dockerfile"  # -f out of the context: the CLI's tar lacks
    outside.write_text("FROM busybox\nRUN\n")    # its last padding, taken as Go's reader does
    empty = daemon.docker("build", "-f", str(outside), str(tmp_path), env=CLASSIC, timeout=60)
    assert empty.returncode == 1 and "RUN requires at least one argument" in empty.stderr, empty


def ustar(name: str, size: int, size_field: bytes | None = None) -> bytes:
    """A ustar header; ``size_field`` (12 bytes) replaces its size as written."""
    info = tarfile.TarInfo(name)
    info.size = size
    block = bytearray(info.tobuf(tarfile.USTAR_FORMAT))
    block[124:136] = size_field or block[124:136]
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def test_a_context_cut_after_its_last_file_is_completed_and_no_header_loops(tmp_path):
    """The docker CLI's context with ``-f`` outside it ends right after the Dockerfile's
    bytes: the padding and the end are added. A header whose base-256 size is negative (the
    walk would go back to the header before it, forever) leaves the file as it is."""
    from minidocker.daemon.builds import complete_last_block

    cut = tmp_path / "cut.tar"
    cut.write_bytes(ustar("Dockerfile", 13) + b"FROM busybox\n")
    complete_last_block(cut)
    with tarfile.open(cut) as tar:
        assert tar.extractfile("Dockerfile").read() == b"FROM busybox\n"
    looping = tmp_path / "negative.tar"
    minus_1024 = b"\xff" + (256 ** 11 - 1024).to_bytes(11, "big")
    looping.write_bytes(ustar("a", 0) + ustar("b", 0, minus_1024) + b"x" * 7)
    walk = threading.Thread(target=complete_last_block, args=(looping,), daemon=True)
    walk.start()
    walk.join(timeout=10)
    assert not walk.is_alive(), "complete_last_block walks back and forth between two headers"
    assert looping.stat().st_size == 2 * 512 + 7


def test_docker_py_build(daemon):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=f"unix://{daemon.socket}", version="auto", timeout=120)
    try:
        context = tar_of({"Dockerfile": "FROM busybox\nARG WORD\nRUN echo $WORD > /word\n"})
        image, logs = client.images.build(fileobj=io.BytesIO(gzip.compress(context)),
                                          custom_context=True, encoding="gzip",
                                          tag=f"{PREFIX}py:1", buildargs={"WORD": "pyword"},
                                          rm=True, nocache=True)
        logs = list(logs)  # an iterator: read it once
        streamed = "".join(entry.get("stream", "") for entry in logs)
        assert "Step 3/3 : RUN echo $WORD > /word" in streamed
        assert any("aux" in entry for entry in logs)
        assert f"{PREFIX}py:1" in image.tags
        assert client.containers.run(image.id, ["cat", "/word"], remove=True) == b"pyword\n"
    finally:
        client.close()


# --- import, push, login, pull ------------------------------------------------------------------

def test_import_push_login_pull(daemon, registry, tmp_path):
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(tar_of({"hello.txt": f"made at {time.time()}\n"}))  # a layer of its own
    local = f"{PREFIX}imported:1"
    image_id = ok(daemon.docker("import", "-c", 'CMD ["/hello.txt"]', str(rootfs),
                                local)).strip()
    assert image_id.startswith("sha256:")
    remote = f"{registry.host}/{PREFIX}course/imported:1"
    ok(daemon.docker("tag", local, remote))

    denied = daemon.docker("push", remote)
    assert denied.returncode == 1 and "unauthorized" in denied.stderr.lower()
    wrong = daemon.docker("login", registry.host, "-u", "alice", "--password-stdin",
                          input="bad\n")
    assert wrong.returncode == 1 and "401" in wrong.stderr + wrong.stdout
    assert "Login Succeeded" in ok(daemon.docker("login", registry.host, "-u", "alice",
                                                 "--password-stdin", input="wonderland\n"))
    pushed = ok(daemon.docker("push", remote))
    assert "Pushed" in pushed and "1: digest: sha256:" in pushed

    ok(daemon.docker("rmi", local, remote))
    pulled = daemon.docker("pull", remote)
    out = ok(pulled)
    for word in ("Pulling from", "Pull complete", "Digest: sha256:",
                 f"Status: Downloaded newer image for {remote}"):
        assert word in out, out
    assert ok(daemon.docker("image", "inspect", "-f", "{{.Id}}", remote)).strip() == image_id
    (tmp_path / "Dockerfile").write_text(f"FROM {remote}\n")  # --pull: with the CLI's login
    built = ok(daemon.docker("build", "--pull", "-t", f"{PREFIX}pulled:1", str(tmp_path),
                             env=CLASSIC, timeout=120))
    assert f"Status: Image is up to date for {remote}" in built, built
    missing = daemon.docker("pull", f"{registry.host}/{PREFIX}course/nothing:1")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr


def test_docker_py_import_push_pull_progress(daemon, registry):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=f"unix://{daemon.socket}", version="auto", timeout=120)
    auth = {"username": "alice", "password": "wonderland"}
    repository = f"{registry.host}/{PREFIX}py/box"
    try:
        assert client.login("alice", "wonderland", registry=registry.host)["Status"] \
            == "Login Succeeded"
        rootfs = tar_of({"py.txt": f"docker-py at {time.time()}\n" + "x" * 100_000})
        imported = json.loads(client.api.import_image_from_data(rootfs, repository, "2"))
        pushed = list(client.api.push(repository, "2", auth_config=auth, stream=True,
                                      decode=True))
        assert any(m.get("aux", {}).get("Tag") == "2" for m in pushed), pushed
        assert {"status": "Pushed", "progressDetail": {}, "id": pushed[-3]["id"]} in pushed
        client.images.remove(f"{repository}:2")
        messages = list(client.api.pull(repository, "2", auth_config=auth, stream=True,
                                        decode=True))
        assert messages[0] == {"status": f"Pulling from {PREFIX}py/box", "id": "2"}
        statuses = [m["status"] for m in messages]
        for status in ("Pulling fs layer", "Downloading", "Download complete",
                       "Pull complete"):
            assert status in statuses, statuses
        downloading = next(m for m in messages if m["status"] == "Downloading")
        assert set(downloading["progressDetail"]) == {"current", "total"}
        assert statuses[-1] == f"Status: Downloaded newer image for {repository}:2"
        assert client.images.get(f"{repository}:2").id == imported["status"]
        client.images.remove(f"{repository}:2")
    finally:
        client.close()


# --- save, load, commit, search -------------------------------------------------------------------

def test_save_load_commit_search(daemon, tmp_path):
    saved = f"{PREFIX}saved:1"
    ok(daemon.docker("tag", "busybox", saved))
    archive = tmp_path / "saved.tar"
    ok(daemon.docker("save", "-o", str(archive), saved))
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == [saved]
    ok(daemon.docker("rmi", saved))
    assert ok(daemon.docker("load", "-i", str(archive))) == f"Loaded image: {saved}\n"
    assert saved in ok(daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}"))

    box, made = f"{PREFIX}tocommit", f"{PREFIX}committed:1"
    ok(daemon.docker("run", "-d", "--name", box, "busybox", "sh", "-c",
                     "echo committed > /mark; sleep 300"))
    try:
        deadline = time.monotonic() + 10
        while "/mark" not in daemon.docker("diff", box).stdout:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        new_id = ok(daemon.docker("commit", "-c", 'CMD ["cat", "/mark"]', "-m", "marked",
                                  box, made)).strip()
        assert new_id.startswith("sha256:")
        assert ok(daemon.docker("run", "--rm", made)) == "committed\n"
    finally:
        daemon.docker("rm", "-f", box)

    search = daemon.docker("search", "busybox")
    assert search.returncode == 1 and "search is not supported" in search.stderr


# --- bad input ----------------------------------------------------------------------------------

def raw_request(daemon, head: str) -> tuple[int, dict]:
    """A request as raw bytes (a Content-Length that no HTTP library would send)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(daemon.socket))
        sock.sendall(head.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize("context, message", [
    (tar_of({"Dockerfile": "FROM busybox\n", "../escaped": "x"}), "invalid build context"),
    (tar_of({"Dockerfile": "FROM busybox\n", "/abs-escaped": "x"}), "invalid build context"),
    (tar_of({"Dockerfile": "FROM busybox\n"}, {"out": "/tmp"}, {"out/escaped": "x"}),
     "invalid build context"),
    (tar_of({}, {"Dockerfile": "/etc/hostname"}), "Cannot locate specified Dockerfile"),
    (tar_of({"Dockerfile": "FROM busybox\nRUNN x\n"}), "unknown instruction"),
    (b"not a tar at all" * 100, "invalid build context"),
], ids=["dotdot", "absolute", "through-symlink", "dockerfile-symlink-out", "bad-dockerfile",
        "not-a-tar"])
def test_build_refuses_a_bad_context(daemon, context, message):
    from minidocker.state import state_root

    scratch = state_root() / "tmp"
    before = set(scratch.iterdir())
    with daemon.http() as http:
        answer = http.post("/build", content=context,
                           headers={"Content-Type": "application/x-tar"})
    assert answer.status_code == 400 and message in answer.json()["message"], answer.text
    assert set(scratch.iterdir()) == before  # the received context is gone too
    assert not list(Path("/").glob("*escaped")) and not list(Path("/tmp").glob("*escaped"))


def test_bad_queries_and_bodies(daemon):
    with daemon.http() as http:
        context = tar_of({"Dockerfile": "FROM busybox\n"})
        for query, message in [({"dockerfile": "../Dockerfile"}, "invalid dockerfile"),
                               ({"dockerfile": "/etc/passwd"}, "invalid dockerfile"),
                               ({"buildargs": "{not json"}, "invalid buildargs"),
                               ({"labels": '{"a": 1}'}, "invalid labels"),
                               ({"t": "UPPER/Case:tag"}, "invalid tag"),
                               ({"version": "2"}, "DOCKER_BUILDKIT=0"),
                               ({"remote": "https://example.com/x.git"}, "remote")]:
            answer = http.post("/build", params=query, content=context)
            assert answer.status_code == 400 and message in answer.json()["message"], query
        for body in ["{", "[1]", '{"username": 5}', '{"password": "x"}']:
            answer = http.post("/auth", content=body)
            assert answer.status_code == 400, body
            assert "message" in answer.json()
        garbage = http.post("/images/busybox/push", headers={"X-Registry-Auth": "%%%"})
        assert garbage.status_code == 400 and "X-Registry-Auth" in garbage.json()["message"]
        assert http.post("/images/create").status_code == 400
        assert http.post("/images/create", params={"fromSrc": "http://example.com/r.tar"}) \
            .status_code == 400
        for rootfs in (b"garbage" * 999, tar_of({"../escaped": "x"}),
                       tar_of({}, {"out": "/tmp"}, {"out/escaped": "x"})):
            imported = http.post("/images/create", params={"fromSrc": "-", "repo": "x"},
                                 content=rootfs)
            assert imported.status_code == 400, imported.text
        assert not list(Path("/tmp").glob("*escaped")) and not list(Path("/").glob("*escaped"))
        load = http.post("/images/load", content=b"\x00" * 4096)
        assert load.status_code == 400 and "archive" in load.json()["message"]
        assert http.get("/images/get", params={"names": "nosuch:1"}).status_code == 404
        assert http.post("/commit", params={"container": "nosuch"}).status_code == 404
        assert http.post("/commit", params={"container": "nosuch"},
                         content='{"Cmd": 5}').status_code == 400
        assert http.post("/images/nosuch:1/push").status_code == 404
        search = http.get("/images/search", params={"term": "busybox"})
        assert search.status_code == 501 and "not supported" in search.json()["message"]
    huge = http_post_auth(daemon, b'{"username": "' + b"x" * (2 << 20) + b'"}')
    assert huge.status_code == 413 and "too large" in huge.json()["message"]
    status, body = raw_request(daemon, "POST /build HTTP/1.1\r\nHost: d\r\n"
                                       "Connection: close\r\nContent-Length: 99999999999\r\n\r\n")
    assert status == 413 and "too large" in body["message"]


def http_post_auth(daemon, body: bytes):
    with daemon.http() as http:
        return http.post("/auth", content=body)


def test_a_client_that_hangs_up_stops_its_build(daemon):
    """The build's process gets SIGINT, as Ctrl-C: its RUN container goes, nothing is left."""
    import subprocess

    context = tar_of({"Dockerfile": "FROM busybox\nRUN echo started; sleep 60\n"})
    with daemon.http() as http, http.stream("POST", "/build", content=context,
                                            params={"nocache": "1"}) as answer:
        for chunk in answer.iter_lines():
            if "started" in chunk:
                break  # hang up in the middle of the RUN
    from minidocker.state import state_root

    ours = f"minidocker.daemon.build_process {state_root()}"  # this session's builds only
    deadline = time.monotonic() + 20
    while subprocess.run(["pgrep", "-f", ours], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "the build went on without its client"
        time.sleep(0.2)
    assert minidocker("ps", "-a", "-q").stdout.split() == []


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_a_context_over_the_cap_is_refused_as_it_streams(monkeypatch):
    """A chunked body (no Content-Length) is cut at the cap, not read to its end."""
    from starlette.testclient import TestClient

    from minidocker.daemon import app, builds

    monkeypatch.setattr(builds, "MAX_CONTEXT", 4096)

    def body():
        for _ in range(64):
            yield b"\0" * 1024

    with TestClient(app.create_app()) as client:
        answer = client.post("/build", content=body())
    assert answer.status_code == 413 and "build context too large" in answer.json()["message"]


def test_build_network_none_and_rm_false(daemon, tmp_path):
    """``--network none``: the RUN step sees only lo; ``--rm=false``: its container stays."""
    (tmp_path / "Dockerfile").write_text(f"FROM busybox\nRUN ls /sys/class/net # {time.time()}\n")
    before = set(minidocker("ps", "-a", "-q").stdout.split())
    out = ok(daemon.docker("build", "--network", "none", "--rm=false", str(tmp_path),
                           env=CLASSIC, timeout=120))
    assert "\nlo\n" in out and "eth0" not in out
    left = set(minidocker("ps", "-a", "-q").stdout.split()) - before
    assert len(left) == 1 and "Removing intermediate container" not in out
    minidocker("rm", "-f", *left)
