"""Stage 12: docker-compose 1.29.2 (the Python one, over docker-py) drives minidocker's daemon.

The project in tests/compose-daemon/: ``db`` (busybox serving rows from a named volume), ``app``
(built from a Dockerfile, reads the rows from ``http://db:5432`` by the service's name on the
user network) and ``web`` (published on the host, and on a second network at a fixed address);
``depends_on`` orders them. Compose asks the daemon for label-filtered lists, creates the
networks and the volume, builds, creates each container with a NetworkingConfig, connects it
with its aliases (and ``ipv4_address``) before starting it, attaches its logs. Checked:
compose's own output and minidocker's state (``ps --filter label=``, ``network ls``, ``volume
ls``, the kernel's answer on the published port, what web's process saw at its start).
"""

import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import TIMEOUT_SCALE, minidocker
from tests.daemon_helpers import running_daemon

COMPOSE = shutil.which("docker-compose") or "/usr/bin/docker-compose"
pytestmark = pytest.mark.skipif(not os.path.exists(COMPOSE), reason="needs docker-compose")

PROJECT = "dmncompose"
LABEL = f"label=com.docker.compose.project={PROJECT}"
DIRECTORY = Path(__file__).parent / "compose-daemon"
WEB_PORT = "18493"


class Compose:
    """docker-compose for the project, talking to one daemon."""

    def __init__(self, env: dict):
        self.env = env

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([COMPOSE, "-p", PROJECT, *args], cwd=DIRECTORY, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def on_a_terminal(self, *args: str) -> subprocess.CompletedProcess:
        """The command with a terminal on its stdin, as a user types it (script(1) gives it a
        pty): ``exec`` then asks the daemon for a TTY."""
        typed = " ".join([COMPOSE, "-p", PROJECT, *args])
        return subprocess.run(["script", "-qec", typed, "/dev/null"], cwd=DIRECTORY,
                              env=self.env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def compose(tmp_path_factory):
    with running_daemon(tmp_path_factory.mktemp("daemon"), f"{PROJECT}_") as daemon:
        run = Compose({**daemon.env, "WEB_PORT": WEB_PORT, "DOCKER_BUILDKIT": "0"})
        up = run("up", "-d")
        try:
            yield run, up
        finally:
            run("down", "-v", "--rmi", "local")


def ok(result) -> str:
    assert result.returncode == 0, f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def project_containers(*args: str) -> list[str]:
    return minidocker("ps", *args, "--filter", LABEL, "--format", "{{.Names}}").stdout.split()


def eventually(check, timeout: float = 20):
    deadline = time.monotonic() + timeout * TIMEOUT_SCALE
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return result


def test_up_ps_logs_exec_and_the_published_port(compose):
    run, up = compose
    said = ok(up)
    assert f'Creating network "{PROJECT}_back" with the default driver' in said
    assert f'Creating volume "{PROJECT}_dbdata" with default driver' in said
    assert f"Successfully tagged {PROJECT}_app:latest" in said
    order = [said.index(f"Creating {PROJECT}_{s}_1 ... done") for s in ("db", "app", "web")]
    assert order == sorted(order)  # depends_on: db, then app, then web
    assert sorted(project_containers()) == [f"{PROJECT}_{s}_1" for s in ("app", "db", "web")]
    ps = ok(run("ps"))
    assert f"{PROJECT}_web_1" in ps and f"0.0.0.0:{WEB_PORT}->80/tcp" in ps

    def all_up() -> bool:  # app may still be starting on a loaded machine
        rows = [line for line in ok(run("ps")).splitlines()[2:]  # a long command wraps
                if line.split() and line.split()[0].startswith(PROJECT)]  # onto "..." lines
        return len(rows) == 3 and all(" Up " in row for row in rows)
    assert eventually(all_up), ok(run("ps"))
    assert eventually(lambda: "app got row-1" in run("logs", "app").stdout)
    web_saw = ok(run("logs", "web"))  # connected to front between create and start
    assert "web-up" in web_saw and " eth1    inet 10.252.9.40/24 " in web_saw, web_saw
    # exec, and the service names resolve on the project's network
    assert ok(run("exec", "-T", "web", "wget", "-qO-", "http://app:8000/")) == "row-1\n"
    assert ok(run("exec", "-T", "db", "cat", "/data/www/rows")) == "row-1\n"
    on_a_terminal = ok(run.on_a_terminal("exec", "web", "tty"))  # compose's default: a TTY
    assert on_a_terminal.replace("\x00", "").strip() == "/dev/pts/0"
    page = eventually(lambda: _get(f"http://127.0.0.1:{WEB_PORT}/"))
    assert page == "hello-from-web\n"
    assert f"{PROJECT}_back" in minidocker("network", "ls", "--format", "{{.Name}}").stdout
    assert f"{PROJECT}_dbdata" in minidocker("volume", "ls", "--format", "{{.Name}}").stdout


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.read().decode()
    except OSError:
        return ""


def test_scale_app_to_two(compose):
    run, _ = compose
    said = ok(run("up", "-d", "--scale", "app=2"))
    assert f"{PROJECT}_db_1 is up-to-date" in said  # nothing recreated: config and network
    assert f"Creating {PROJECT}_app_2 ... done" in said
    assert sorted(project_containers("--filter", "label=com.docker.compose.service=app")) \
        == [f"{PROJECT}_app_1", f"{PROJECT}_app_2"]
    assert eventually(lambda: run("logs", "app").stdout.count("app got row-1") == 2)


def test_recreate_keeps_the_named_volume(compose):
    """A recreated container gets the old one's volumes (compose reads the image's
    ContainerConfig and the old container's Mounts for that)."""
    run, _ = compose
    before = minidocker("inspect", "-f", "{{.Id}}", f"{PROJECT}_db_1").stdout
    said = ok(run("up", "-d", "--force-recreate", "--no-deps", "db"))
    assert f"Recreating {PROJECT}_db_1 ... done" in said
    assert minidocker("inspect", "-f", "{{.Id}}", f"{PROJECT}_db_1").stdout != before
    assert eventually(lambda: run("exec", "-T", "db", "cat", "/data/www/rows").stdout
                      == "row-1\nrow-1\n")


def test_down_v_leaves_nothing_of_the_project(compose):
    run, _ = compose
    said = ok(run("down", "-v", "--rmi", "local"))
    assert f"Removing network {PROJECT}_back" in said
    assert f"Removing network {PROJECT}_front" in said
    assert f"Removing volume {PROJECT}_dbdata" in said
    assert project_containers("-a") == []
    assert PROJECT not in minidocker("network", "ls", "--format", "{{.Name}}").stdout
    assert PROJECT not in minidocker("volume", "ls", "--format", "{{.Name}}").stdout
    assert PROJECT not in minidocker("images", "--format", "{{.Repository}}").stdout
