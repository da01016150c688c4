"""Stage 12: one monitor for many — the containers the daemon starts are all watched by one
monitor host (container/monitor.py ``serve_host``), a process apart from the API server: 50
detached containers cost that one process (each PID 1 is its child, no shim stays); the
daemon stops and starts again and finds them (logs, attach, exec, stop, rm still work); restart
policies and health checks run in the host's loop. A daemon and a compose started with
other settings on one state root get a host each, and each its own settings applied."""

import glob
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minidocker.container import monitor
from tests.conftest import minidocker
from tests.daemon_helpers import DOCKER, Daemon, running_daemon

pytestmark = pytest.mark.skipif(not shutil.which(DOCKER), reason="needs the docker CLI")

PREFIX = "mhost-"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    with running_daemon(tmp_path_factory.mktemp("daemon"), PREFIX) as running:
        yield running


def host_pids() -> list[int]:
    """The monitor hosts of this test session's state root (and settings: the daemon's)."""
    sock = str(monitor.host_socket())
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--host" in argv and sock.encode() in argv:
                found.append(int(entry.name))
    return found


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def children_of(pid: int) -> set[int]:
    return {int(child) for child in
            Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def test_fifty_detached_containers_cost_one_monitor_host(daemon):
    ids = []
    try:
        with daemon.http() as api:
            for n in range(50):
                created = api.post("/containers/create", params={"name": f"{PREFIX}many{n}"},
                                   json={"Image": "busybox", "Cmd": ["sleep", "300"],
                                         "HostConfig": {"NetworkMode": "none"}})
                assert created.status_code == 201, created.text
                ids.append(created.json()["Id"])
                assert api.post(f"/containers/{ids[-1]}/start").status_code == 204
            pids = [api.get(f"/containers/{i}/json").json()["State"]["Pid"] for i in ids]
        hosts = host_pids()
        assert len(hosts) == 1
        assert {parent_of(pid) for pid in pids} == set(hosts)  # no monitor, no shim each
        assert children_of(hosts[0]) == set(pids)  # and nothing else below the host
    finally:
        daemon.docker("rm", "-f", *ids, timeout=300)


def test_a_restarted_daemon_finds_its_containers(daemon):
    waiter, plain = f"{PREFIX}waiter", f"{PREFIX}plain"
    script = "echo started; while [ ! -f /tmp/go ]; do sleep 0.1; done; echo late; exit 4"
    assert daemon.docker("run", "-d", "--network", "none", "--name", waiter, "busybox", "sh",
                         "-c", script).returncode == 0
    assert daemon.docker("run", "-d", "--network", "none", "--name", plain, "busybox",
                         "sleep", "300").returncode == 0
    host = host_pids()
    daemon.stop()
    assert host_pids() == host  # the containers stay with the host
    daemon.start()
    listed = daemon.docker("ps", "--format", "{{.Names}} {{.State}}").stdout.split("\n")
    assert f"{waiter} running" in listed and f"{plain} running" in listed
    assert daemon.docker("logs", waiter).stdout == "started\n"
    attach = subprocess.Popen([DOCKER, "attach", "--no-stdin", waiter], env=daemon.env,
                              stdout=subprocess.PIPE, text=True)
    time.sleep(1)  # attached before the container goes on
    assert daemon.docker("exec", waiter, "touch", "/tmp/go").returncode == 0
    out, _ = attach.communicate(timeout=30)
    assert ("late" in out, attach.returncode) == (True, 4)
    assert daemon.docker("stop", "-t", "1", plain).returncode == 0
    assert daemon.docker("rm", waiter, plain).returncode == 0


def test_restart_policy_and_healthcheck_in_the_host(daemon):
    failing, checked = f"{PREFIX}failing", f"{PREFIX}checked"
    assert daemon.docker("run", "-d", "--network", "none", "--name", failing, "--restart",
                         "on-failure:2", "busybox", "sh", "-c", "exit 3").returncode == 0
    assert daemon.docker("run", "-d", "--network", "none", "--name", checked,
                         "--health-cmd", "true", "--health-interval", "1s", "busybox",
                         "sleep", "300").returncode == 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = daemon.docker("inspect", "-f", "{{.RestartCount}} {{.State.Status}} "
                              "{{.State.ExitCode}}", failing).stdout.split()
        health = daemon.docker("inspect", "-f", "{{.State.Health.Status}}", checked).stdout
        if state == ["2", "exited", "3"] and health.strip() == "healthy":
            break
        time.sleep(0.3)
    assert (state, health.strip()) == (["2", "exited", "3"], "healthy")
    assert daemon.docker("rm", "-f", failing, checked).returncode == 0


def test_a_command_that_cannot_start_says_why_through_the_host(daemon):
    result = daemon.docker("run", "--rm", "--network", "none", "busybox", "nosuchcmd")
    assert result.returncode == 127
    assert 'exec: "nosuchcmd": executable file not found' in result.stderr


def ok(result) -> str:
    assert result.returncode == 0, f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def cgroup_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cgroup").read_text()


def test_a_daemon_and_a_compose_with_other_settings_each_get_their_own(tmp_path):
    """The daemon (bip, icc=false) and a compose up (a cgroup parent of its own) on one state
    root, in a network namespace of their own: compose comes first and starts a host, yet the
    daemon's container gets the daemon's bridge and cgroup parent, compose's its own."""
    root, project = tmp_path / "root", tmp_path / "compose.yaml"
    project.write_text("services:\n  a:\n    image: busybox\n    command: sleep 300\n")
    session_parent = os.environ["MINIDOCKER_CGROUP_PARENT"]
    env = {**os.environ, "MINIDOCKER_ROOT": str(root),
           "MINIDOCKER_CGROUP_PARENT": f"{session_parent}-compose"}
    daemon = Daemon(tmp_path, "--bip", "10.66.0.1/24", "--icc=false", "--data-root", str(root))
    daemon.argv = ["unshare", "--net", "--", *daemon.argv]
    daemon.start()

    def md(*args: str) -> subprocess.CompletedProcess:  # in the daemon's network namespace
        return subprocess.run(["nsenter", f"--net=/proc/{daemon.proc.pid}/ns/net", "--",
                               sys.executable, "-m", "minidocker.cli", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    compose = ["compose", "-p", "own", "-f", str(project)]
    try:
        ok(minidocker("save", "-o", str(tmp_path / "busybox.tar"), "busybox"))
        ok(md("load", "-i", str(tmp_path / "busybox.tar")))
        ok(md(*compose, "up", "-d"))  # first: the host it starts has compose's settings
        ok(daemon.docker("run", "-d", "--name", "theirs", "busybox", "sleep", "300"))
        theirs = json.loads(ok(daemon.docker("inspect", "theirs")))[0]
        ours = json.loads(ok(md("inspect", "own-a-1")))[0]
        assert theirs["NetworkSettings"]["IPAddress"].startswith("10.66.0.")
        bridge = json.loads(ok(daemon.docker("network", "inspect", "bridge")))[0]
        assert bridge["Options"]["com.docker.network.bridge.enable_icc"] == "false"
        assert f"/{session_parent}/{theirs['Id']}" in cgroup_of(theirs["State"]["Pid"])
        assert f"/{session_parent}-compose/{ours['Id']}" in cgroup_of(ours["State"]["Pid"])
        hosts = {parent_of(theirs["State"]["Pid"]), parent_of(ours["State"]["Pid"])}
        assert len(hosts) == 2  # a host for each settings
    finally:
        daemon.docker("rm", "-f", "theirs")
        md(*compose, "down")
        daemon.stop()
    assert glob.glob(f"/sys/fs/cgroup/**/{session_parent}-compose", recursive=True) == []
