"""The same Compose files, brought up by docker-compose 1.29 on the real dockerd 20.10 and by
``minidocker compose`` on minidocker: the containers, their labels, networks and aliases,
volumes, mounts, published ports and environments must agree. dockerd runs inside the test
session's private network and mount namespaces, on a tmpfs of its own, without iptables, under
a cgroup parent of its own; it is stopped by its PID at the end.

The differences that remain, each with its reason, are in ``normalised``: container names
(``_`` in 1.29, ``-`` in Compose v2, which minidocker follows; the image built for a service
too), the container's short ID that dockerd adds to its aliases, the label values that name the
tool (version, config hash, how the files are written), and the image reference as recorded
(``busybox`` vs ``busybox:latest``).
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from minidocker import kernel
from tests.conftest import MINIDOCKER, minidocker

CASES = Path(__file__).parent / "compose"
DOCKER = "/usr/local/bin/docker"
NEEDED = ("/usr/sbin/dockerd", "/usr/bin/containerd", "/usr/bin/docker-compose", DOCKER)
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not all(map(os.path.exists, NEEDED)),
                                 reason="dockerd, containerd or docker-compose not installed")]
ENV = {"PATH": os.environ["PATH"], "HOME": "/root", "FROM_SHELL": "shell"}


@pytest.fixture(scope="module")
def dockerd():
    """A private dockerd; yields the environment that points docker and docker-compose at it."""
    root = Path(tempfile.mkdtemp(prefix="minidocker-dockerd-"))
    kernel.mount("tmpfs", str(root), "tmpfs", 0, "mode=700")
    parent = f"{os.environ.get('MINIDOCKER_CGROUP_PARENT', 'minidocker')}-dockerd"
    log = open(root / "log", "w")
    daemon = subprocess.Popen(
        ["dockerd", "--data-root", f"{root}/data", "--exec-root", f"{root}/exec",
         "--pidfile", f"{root}/pid", "-H", f"unix://{root}/sock", "--iptables=false",
         "--ip-masq=false", "--bridge=none", "--cgroup-parent", parent,
         "--containerd-namespace", "minidocker-test", "--log-level", "error"],
        stdout=log, stderr=subprocess.STDOUT)
    env = {**ENV, "DOCKER_HOST": f"unix://{root}/sock", "DOCKER_CONFIG": f"{root}/config"}
    try:
        deadline = time.monotonic() + 60
        while subprocess.run([DOCKER, "version"], env=env, capture_output=True).returncode:
            assert daemon.poll() is None and time.monotonic() < deadline, \
                (root / "log").read_text()
            time.sleep(0.3)
        image = subprocess.run([*MINIDOCKER, "save", "busybox"], capture_output=True)
        subprocess.run([DOCKER, "load"], input=image.stdout, env=env, check=True,
                       capture_output=True)
        yield env
    finally:
        daemon.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.wait(30)
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        log.close()
        kernel.umount2(str(root), kernel.MNT_DETACH)
        shutil.rmtree(root, ignore_errors=True)
        for directory in Path("/sys/fs/cgroup").glob(f"*/{parent}"):
            with contextlib.suppress(OSError):
                directory.rmdir()


def docker_compose(env, project: str, case: str, *args: str):
    return subprocess.run(["docker-compose", "-p", project, *args], cwd=CASES / case, env=env,
                          capture_output=True, text=True, timeout=180)


def mine(project: str, case: str, *args: str):
    return minidocker("compose", "-p", project, "-f", str(CASES / case / "compose.yaml"),
                      *args, env=ENV, timeout=180)


def inspect_all(run, names: list[str]) -> list[dict]:
    result = run("inspect", *names)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def observed(run, project: str) -> dict:
    """What a project became, through the Engine API's own words (inspect and ls)."""
    label = f"label=com.docker.compose.project={project}"
    names = run("ps", "-a", "--filter", label, "--format", "{{.Names}}").stdout.split()
    networks = run("network", "ls", "--filter", label, "--format", "{{.Name}}").stdout.split()
    volumes = run("volume", "ls", "--filter", label, "--format", "{{.Name}}").stdout.split()
    return {"containers": sorted(map(normalised, inspect_all(run, names)) if names else [],
                                 key=lambda c: c["name"]),
            "networks": sorted(networks), "volumes": sorted(volumes)}


def normalised(container: dict) -> dict:
    """One container, without what may differ for a stated reason."""
    labels = container["Config"]["Labels"]
    short_id = container["Id"][:12]
    compose_labels = {k: v for k, v in labels.items() if k.startswith("com.docker.compose.")
                      and k not in ("com.docker.compose.version",  # each tool its own
                                    "com.docker.compose.config-hash",  # each tool its hash
                                    "com.docker.compose.project.config_files")}  # path form
    mounts = sorted((m["Type"], m.get("Name") if m["Type"] == "volume" and len(
        m.get("Name", "")) != 64 else m["Source"] if m["Type"] == "bind" else "anonymous",
                     m["Destination"], m["RW"]) for m in container["Mounts"])
    networks = {name: sorted(a for a in (n.get("Aliases") or []) if a != short_id)
                for name, n in (container["NetworkSettings"]["Networks"] or {}).items()}
    ports = {port: sorted(b["HostPort"] for b in bindings or [])
             for port, bindings in (container["HostConfig"]["PortBindings"] or {}).items()}
    return {"name": container["Name"].lstrip("/").replace("_", "-"),  # 1.29: project_svc_1
            "labels": compose_labels, "image": tagged(container["Config"]["Image"]).replace("_", "-"),
            "command": container["Config"]["Cmd"], "env": sorted(container["Config"]["Env"]),
            "networks": networks, "mounts": mounts, "ports": ports,
            "init": bool(container["HostConfig"].get("Init"))}


def tagged(image: str) -> str:
    """minidocker's create records the reference as it resolved it (``busybox:latest``);
    dockerd keeps what it was given (``busybox``)."""
    return image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"


CASES_COMPARED = ["webapp", "scaled", "twonets", "envfile"]


@pytest.mark.parametrize("case", CASES_COMPARED)
def test_same_files_same_result(dockerd, case):
    project = f"cmp{case}"

    def docker(*args):
        return subprocess.run([DOCKER, *args], env=dockerd, capture_output=True, text=True)

    try:
        up = docker_compose(dockerd, project, case, "up", "-d")
        assert up.returncode == 0, up.stderr
        theirs = observed(docker, project)
    finally:
        docker_compose(dockerd, project, case, "down", "-v", "--rmi", "local")
    try:
        up = mine(project, case, "up", "-d")
        assert up.returncode == 0, up.stderr
        ours = observed(minidocker, project)
    finally:
        mine(project, case, "down", "-v", "--rmi", "local")
    assert ours["networks"] == theirs["networks"]
    assert ours["volumes"] == theirs["volumes"]
    assert [c["name"] for c in ours["containers"]] == [c["name"] for c in theirs["containers"]]
    for our, their in zip(ours["containers"], theirs["containers"], strict=True):
        assert our == their, our["name"]


@pytest.mark.xfail(reason="minidocker's daemon does not serve docker-compose 1.29's up yet: it "
                          "reads NetworkSettings.Networks of a created container (None here) "
                          "and connects networks before the start", strict=False)
def test_docker_compose_through_minidockers_daemon(tmp_path):
    """Issue 15, item 4: docker-compose 1.29 through minidocker's daemon, against minidocker
    compose, on the same file. It passes once the daemon serves what 1.29's up asks."""
    from tests.daemon_helpers import running_daemon

    try:
        with running_daemon(tmp_path, "viad") as daemon:
            env = {**daemon.env, **ENV}
            try:
                up = docker_compose(env, "viad", "scaled", "up", "-d")
                assert up.returncode == 0, up.stderr.strip().splitlines()[-1]
                theirs = observed(minidocker, "viad")
            finally:
                docker_compose(env, "viad", "scaled", "down", "-v")
        up = mine("viad", "scaled", "up", "-d")
        assert up.returncode == 0, up.stderr
        ours = observed(minidocker, "viad")
    finally:
        mine("viad", "scaled", "down", "-v", "--remove-orphans")  # by the labels, whoever made it
    assert ours == theirs
