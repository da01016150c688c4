"""The same Compose files, brought up by docker-compose 1.29 on the real dockerd 20.10 and by
``minidocker compose`` on minidocker: the containers, their labels, networks, aliases and
fixed addresses, volumes, mounts, published ports and environments must agree. dockerd runs
in namespaces of its own, on a tmpfs, without iptables, under a cgroup parent of its own
(tests/dockerd_helpers.py); it is stopped by its PID at the end. The same files also go
through docker-compose 1.29 driving minidocker's own daemon.

The differences that remain, each with its reason, are in ``normalised``: container names
(``_`` in 1.29, ``-`` in Compose v2, which minidocker follows; the image built for a service
too), the container's short ID that dockerd adds to its aliases, the label values that name the
tool (version, config hash, how the files are written), and the image reference as recorded
(``busybox`` vs ``busybox:latest``).
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from minidocker.viz.engines import DOCKER
from tests.conftest import MINIDOCKER, minidocker
from tests.dockerd_helpers import running_dockerd

CASES = Path(__file__).parent / "compose"
NEEDED = ("/usr/sbin/dockerd", "/usr/bin/containerd", "/usr/bin/docker-compose", DOCKER)
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not all(map(os.path.exists, NEEDED)),
                                 reason="dockerd, containerd or docker-compose not installed")]
ENV = {"PATH": os.environ["PATH"], "HOME": "/root", "FROM_SHELL": "shell"}


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory):
    """A private dockerd (tests/dockerd_helpers.py: its own namespaces, a tmpfs on /run, its
    own roots); yields the environment that points docker and docker-compose at it."""
    with running_dockerd(tmp_path_factory.mktemp("dockerd")) as daemon:
        image = subprocess.run([*MINIDOCKER, "save", "busybox"], capture_output=True)
        loaded = daemon.docker("load", input=image.stdout)
        assert loaded.returncode == 0, loaded.stderr
        yield {**ENV, "DOCKER_HOST": daemon.env["DOCKER_HOST"],
               "DOCKER_CONFIG": daemon.env["DOCKER_CONFIG"]}


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
    networks = {name: (sorted(a for a in (n.get("Aliases") or []) if a != short_id),
                       (n.get("IPAMConfig") or {}).get("IPv4Address", ""))  # ipv4_address
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


@pytest.mark.parametrize("case", CASES_COMPARED)
def test_docker_compose_through_minidockers_daemon(tmp_path, case):
    """Issue 15, item 4: docker-compose 1.29 through minidocker's daemon, against minidocker
    compose, on the same file: the same containers, labels, networks, aliases, volumes, mounts,
    ports and environments (``normalised``)."""
    from tests.daemon_helpers import running_daemon

    try:
        with running_daemon(tmp_path, "viad") as daemon:
            env = {**daemon.env, **ENV}
            try:
                up = docker_compose(env, "viad", case, "up", "-d")
                assert up.returncode == 0, up.stderr
                theirs = observed(minidocker, "viad")
            finally:
                docker_compose(env, "viad", case, "down", "-v", "--rmi", "local")
        up = mine("viad", case, "up", "-d")
        assert up.returncode == 0, up.stderr
        ours = observed(minidocker, "viad")
    finally:  # by the labels, whoever made it
        mine("viad", case, "down", "-v", "--remove-orphans", "--rmi", "local")
    assert ours == theirs
