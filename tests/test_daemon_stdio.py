"""Stage 12: a container's stdio through the daemon with the real docker CLI — stdin that ends
(``echo x | docker run -i``: the half-closed hijacked connection closes the container's stdin),
the terminal's size (``resize`` → TIOCSWINSZ on the container's pty, seen by ``stty size``), and
the API versions a client may ask for (``/v1.24/`` up to the daemon's own)."""

import shutil
import time

import pytest

from tests.daemon_helpers import DOCKER, Terminal, running_daemon

pytestmark = pytest.mark.skipif(not shutil.which(DOCKER), reason="needs the docker CLI")

PREFIX = "dmnio-"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    with running_daemon(tmp_path_factory.mktemp("daemon"), PREFIX) as running:
        yield running


def test_stdin_eof_ends_run_i(daemon):
    result = daemon.docker("run", "-i", "--rm", "busybox", "cat", input="x\ny\n", timeout=30)
    assert (result.returncode, result.stdout) == (0, "x\ny\n")
    counted = daemon.docker("run", "-i", "--rm", "busybox", "wc", "-l", input="1\n2\n3\n",
                            timeout=30)
    assert counted.stdout.strip() == "3"
    name = f"{PREFIX}exec-i"
    assert daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "300").returncode == 0
    try:
        execed = daemon.docker("exec", "-i", name, "cat", input="through exec\n", timeout=30)
        assert (execed.returncode, execed.stdout) == (0, "through exec\n")
    finally:
        daemon.docker("rm", "-f", name)


def ask_size(term: Terminal, tag: str) -> None:
    term.type(f"echo {tag}-$(stty size | tr ' ' x)-\r")


def follows_sizes(daemon, argv: list[str], first: tuple[int, int],
                  second: tuple[int, int], code: int, name: str) -> None:
    """``stty size`` inside sees our window's size, and again after we resize it."""
    term = Terminal(daemon, argv, *first)
    try:
        assert b"# " in term.read_until(b"# ", timeout=60)
        for tag, (rows, columns) in (("first", first), ("second", second)):
            if tag == "second":
                term.resize(rows, columns)  # the CLI's SIGWINCH handler POSTs the resize
            expected = f"{tag}-{rows}x{columns}-".encode()
            deadline = time.monotonic() + 60
            while expected not in term.seen:  # ask again until the resize has landed
                assert time.monotonic() < deadline, term.seen[-400:]
                ask_size(term, tag)
                term.read_until(expected, timeout=3)
        term.type(f"exit {code}\r")
    finally:
        status = term.finish()
        daemon.docker("rm", "-f", name)
    assert status == code


def test_run_it_follows_the_window_size(daemon):
    name = f"{PREFIX}tty"
    follows_sizes(daemon, ["run", "--rm", "-it", "--name", name, "busybox", "sh"], (33, 77),
                  (41, 101), 3, name)


def test_exec_it_follows_the_window_size(daemon):
    name = f"{PREFIX}exec-tty"
    assert daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "300").returncode == 0
    follows_sizes(daemon, ["exec", "-it", name, "sh"], (25, 90), (50, 132), 4, name)


def test_resize_of_a_container_without_monitor_is_a_conflict(daemon):
    name = f"{PREFIX}stopped"
    assert daemon.docker("create", "--name", name, "busybox", "true").returncode == 0
    with daemon.http() as http:
        answer = http.post(f"/containers/{name}/resize", params={"h": 10, "w": 10})
        assert answer.status_code == 409 and "is not running" in answer.json()["message"]
        bad = http.post(f"/containers/{name}/resize", params={"h": -1, "w": 99999})
        assert bad.status_code == 400 and "terminal size" in bad.json()["message"]
    daemon.docker("rm", name)


# --- versions ------------------------------------------------------------------------------------

def test_the_oldest_api_version_through_the_docker_cli(daemon):
    result = daemon.docker("ps", "-a", env={"DOCKER_API_VERSION": "1.24"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("CONTAINER ID")
    version = daemon.docker("version", "--format", "{{.Client.APIVersion}} "
                            "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}",
                            env={"DOCKER_API_VERSION": "1.24"})
    assert version.stdout.split() == ["1.24", "1.50", "1.24"]


def test_versions_outside_the_range_are_refused(daemon):
    with daemon.http() as http:
        assert http.get("/v1.24/containers/json").status_code == 200
        assert http.get("/v1.50/_ping").text == "OK"
        old = http.get("/v1.23/containers/json")
        assert old.status_code == 400 and old.json()["message"] == (
            "client version 1.23 is too old. Minimum supported API version is 1.24, please "
            "upgrade your client to a newer version")
        new = http.get("/v1.51/version")
        assert new.status_code == 400 and "1.51 is too new" in new.json()["message"]
        assert http.get("/version").json()["MinAPIVersion"] == "1.24"


def test_docker_py_pinned_to_an_old_version(daemon):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=f"unix://{daemon.socket}", version="1.30",
                                 timeout=60)
    try:
        assert client.api.api_version == "1.30"
        out = client.containers.run("busybox", ["echo", "via-1.30"], remove=True)
        assert out == b"via-1.30\n"
        assert any("busybox:latest" in image.tags for image in client.images.list())
    finally:
        client.close()
