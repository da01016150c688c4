"""Stage 12's acceptance test: the README's tour through the real docker CLI (28.2), line by line.

``Tour.run`` takes each line of the README's docker block in order, checks that it is the line
the test expects (so the README and the test cannot drift apart), and runs it unchanged with
bash, ``DOCKER_HOST`` on a daemon of the test's and ``REGISTRY`` on minidocker's registry. The
interactive lines (``run -it``, ``exec -it``, ``attach`` and its detach keys) run on a real pty.
After each line the test checks what the CLI printed and, where it matters, what the kernel shows:
the cgroup files of the container's process, /proc, the mount table, the bridge's link.
"""

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import minidocker
from tests.daemon_helpers import DOCKER, Terminal, running_daemon
from tests.registry_helpers import REPO_ROOT, minidocker_registry

pytestmark = pytest.mark.skipif(not shutil.which(DOCKER), reason="needs the docker CLI")

CONTAINERS = ("web", "count", "db")
IMAGES = ("mybox:1", "hello:1")


def readme_tour() -> list[str]:
    """The README's docker tour: each line of its block, without its comment."""
    text = (REPO_ROOT / "README.md").read_text()
    block = text.split("runs\nthese lines as written", 1)[1].split("```sh\n", 1)[1]
    block = block.split("```", 1)[0]
    return [re.split(r"\s{2,}# ", line)[0].rstrip() for line in block.splitlines()]


class Tour:
    def __init__(self, daemon, registry):
        self.daemon, self.lines = daemon, readme_tour()
        self.env = {**daemon.env, "REGISTRY": registry.host}

    def next(self, line: str) -> str:
        assert self.lines, f"the README's tour ends before {line!r}"
        assert self.lines[0] == line, "the README's tour and the test differ"
        return self.lines.pop(0)

    def run(self, line: str, code: int = 0) -> str:
        """Run the README's next line (which must be ``line``); its stdout."""
        result = subprocess.run(["bash", "-c", self.next(line)], capture_output=True,
                                text=True, timeout=120, env=self.env)
        assert result.returncode == code, f"{line}\nrc={result.returncode}\n" \
            f"{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        return result.stdout

    def terminal(self, line: str) -> Terminal:
        """The README's next line on a pty of ours, as a user types it in a terminal."""
        return Terminal(self.daemon, ["-c", self.next(line)], program="/bin/bash",
                        env={"REGISTRY": self.env["REGISTRY"]})

    def inspect(self, template: str, name: str) -> str:
        """Not a line of the tour: what the test asks the daemon to check a line."""
        result = self.daemon.docker("inspect", "-f", template, name)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()


@pytest.fixture
def tour(tmp_path):
    work = tmp_path / "registry"
    work.mkdir()
    minidocker("registry", "htpasswd", str(work / "htpasswd"), "alice", input="wonderland\n")
    registry = minidocker_registry(work / "root", work / "serve.log", "--auth",
                                   f"htpasswd:{work / 'htpasswd'}")
    try:
        with running_daemon(tmp_path, "tour-never-") as daemon:
            yield Tour(daemon, registry)
            assert "Traceback" not in daemon.log_text()
    finally:
        registry.stop()
        minidocker("rm", "-f", "-v", *CONTAINERS)
        minidocker("rmi", "-f", *IMAGES, f"{registry.host}/course/hello:1")
        minidocker("network", "rm", "shop")
        minidocker("volume", "rm", "data")


def cgroup_file(pid: str, controller: str, name: str) -> str:
    """A cgroup file of process ``pid``'s group: v1's hierarchy of ``controller``, else v2's."""
    lines = [line.split(":", 2) for line in Path(f"/proc/{pid}/cgroup").read_text().split("\n")
             if line]
    for _, controllers, path in lines:
        if controller in controllers.split(","):
            return (Path("/sys/fs/cgroup", controllers) / path.lstrip("/") / name).read_text()
    path = next(path for _, controllers, path in lines if controllers == "")
    return (Path("/sys/fs/cgroup") / path.lstrip("/") / name).read_text()


def v2() -> bool:
    return Path("/sys/fs/cgroup/cgroup.controllers").exists()


def alive(pid: str) -> bool:
    return Path(f"/proc/{pid}").exists()


def test_the_readme_tour_through_the_docker_cli(tour):
    containers(tour)
    tty_and_detach_keys(tour)
    moves_and_counters(tour)
    images_and_build(tour)
    registry(tour)
    networks_volumes_events(tour)
    system(tour)
    assert not tour.lines, f"lines of the README's tour the test did not run: {tour.lines}"


def containers(tour: Tour) -> None:
    assert tour.run("docker run --rm busybox echo hello from a container") \
        == "hello from a container\n"
    term = tour.terminal("docker run --rm -it busybox sh")
    assert b"# " in term.read_until(b"# ")  # the shell's prompt, through the container's pty
    term.type("echo pid-$$ on $(tty)\r")
    assert b"pid-1 on /dev/pts/0" in term.read_until(b"pid-1 on /dev/pts/0")
    term.type("exit\r")
    assert term.finish() == 0

    tour.run("docker run -dit --name web --cpus 0.5 --pids-limit 20 busybox sh")
    pid = tour.inspect("{{.State.Pid}}", "web")
    assert cgroup_file(pid, "pids", "pids.max") == "20\n"  # the kernel's own limits
    if v2():
        assert cgroup_file(pid, "cpu", "cpu.max") == "50000 100000\n"
    else:
        assert cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "50000\n"
    ps = tour.run("docker ps -a").splitlines()
    assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                             "PORTS", "NAMES"]
    assert any(row.endswith(" web") and " Up " in row for row in ps[1:]), ps

    tour.run("docker run -d --name count busybox sh -c "
             "'for i in 1 2 3; do echo $i; sleep 0.3; done'")
    assert tour.run("docker logs -f count") == "1\n2\n3\n"  # follows until the end

    term = tour.terminal("docker exec -it web sh")
    assert b"# " in term.read_until(b"# ")
    term.type("ps -o pid,args; exit 4\r")
    seen = term.read_until(b"ps -o pid,args")
    assert term.finish() == 4
    assert re.search(rb"\n\s*1 sh\r\n", term.seen), seen  # the container's PID 1 beside it


def tty_and_detach_keys(tour: Tour) -> None:
    """``attach`` to web's shell, type a line, detach with the keys: the CLI leaves, the
    container's process runs on (the kernel still has it)."""
    pid = tour.inspect("{{.State.Pid}}", "web")
    for line, keys, word in (("docker attach --detach-keys ctrl-x,x web", "\x18x", "first"),
                             ("docker attach web", "\x10\x11", "second")):
        term = tour.terminal(line)
        term.type(f"echo {word}-$((40+2))\r")
        assert f"{word}-42".encode() in term.read_until(f"{word}-42".encode())
        for key in keys:  # one at a time, as typed
            term.type(key)
            time.sleep(0.2)
        assert b"read escape sequence" in term.read_until(b"read escape sequence")
        term.finish()
        assert tour.inspect("{{.State.Running}}", "web") == "true" and alive(pid)


def moves_and_counters(tour: Tour) -> None:
    pid = tour.inspect("{{.State.Pid}}", "web")
    tour.run("docker pause web && docker unpause web")
    assert cgroup_file(pid, "freezer", "cgroup.freeze" if v2() else "freezer.state") \
        in ("0\n", "THAWED\n")
    tour.run("docker stop -t 1 web && docker start web && docker restart -t 1 web")
    assert not alive(pid)
    pid = tour.inspect("{{.State.Pid}}", "web")
    assert alive(pid) and tour.inspect("{{.RestartCount}} {{.State.Status}}", "web") \
        == "0 running"
    tour.run("docker cp web:/etc/hostname /tmp/web-hostname && "
             "docker cp /etc/hostname web:/tmp/")
    hostname = tour.inspect("{{.Config.Hostname}}", "web")
    try:
        assert Path("/tmp/web-hostname").read_text() == f"{hostname}\n"
    finally:
        Path("/tmp/web-hostname").unlink(missing_ok=True)
    copied = tour.daemon.docker("exec", "web", "cat", "/tmp/hostname")
    assert copied.stdout == Path("/etc/hostname").read_text()

    stats = tour.run("docker stats --no-stream web").splitlines()
    assert stats[0].split()[:4] == ["CONTAINER", "ID", "NAME", "CPU"] and "PIDS" in stats[0]
    pids_column = stats[1].split()[-1]
    assert pids_column == cgroup_file(pid, "pids", "pids.current").strip()
    top = tour.run("docker top web").splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"]
    assert [row.split()[1] for row in top[1:]] == [pid]  # the host's PID of its sh
    assert tour.run("docker inspect -f '{{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}' "
                    "web") == "500000000 20\n"
    tour.run("docker kill web && docker rm -f web count")
    assert not alive(pid)
    assert tour.daemon.docker("inspect", "web").returncode == 1


def images_and_build(tour: Tour) -> None:
    images = tour.run("docker images").splitlines()
    assert images[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(row.split()[:2] == ["busybox", "latest"] for row in images[1:])
    history = tour.run("docker history busybox").splitlines()
    assert history[0].split()[:4] == ["IMAGE", "CREATED", "CREATED", "BY"]
    assert tour.run("docker tag busybox mybox:1 && docker rmi mybox:1") == "Untagged: mybox:1\n"
    built = tour.run("printf 'FROM busybox\\nRUN echo built > /built\\nCMD cat /built\\n' | "
                     "DOCKER_BUILDKIT=0 docker build -t hello:1 -")
    for step in ("Step 1/3 : FROM busybox", "Step 2/3 : RUN echo built > /built",
                 "Step 3/3 : CMD cat /built", "Successfully built ",
                 "Successfully tagged hello:1"):
        assert step in built, built


def registry(tour: Tour) -> None:
    assert "Login Succeeded" in tour.run(
        "echo wonderland | docker login -u alice --password-stdin $REGISTRY")
    pushed = tour.run("docker tag hello:1 $REGISTRY/course/hello:1 && "
                      "docker push $REGISTRY/course/hello:1")
    assert "Pushed" in pushed and "1: digest: sha256:" in pushed
    pulled = tour.run("docker rmi hello:1 $REGISTRY/course/hello:1 && "
                      "docker pull $REGISTRY/course/hello:1")
    assert "Untagged: hello:1" in pulled and "Deleted: sha256:" in pulled, \
        (pulled, minidocker("ps", "-a").stdout, minidocker("images", "--digests").stdout)
    assert "Status: Downloaded newer image for" in pulled
    assert tour.run("docker run --rm $REGISTRY/course/hello:1") == "built\n"


def networks_volumes_events(tour: Tour) -> None:
    network_id = tour.run("docker network create shop && docker network ls").splitlines()[0]
    assert len(network_id) == 64
    shop = json.loads(tour.run("docker network inspect shop"))[0]
    assert (shop["Id"], shop["Driver"]) == (network_id, "bridge")
    subnet, gateway = (shop["IPAM"]["Config"][0][key] for key in ("Subnet", "Gateway"))
    bridge = f"md-{network_id[:12]}"  # the engine's name for it (Docker's: br-<id>)
    link = subprocess.run(["ip", "-d", "-o", "addr", "show", bridge], capture_output=True,
                          text=True).stdout  # the kernel's bridge, with the gateway's address
    assert f"inet {gateway}/{subnet.split('/')[1]}" in link, link
    details = subprocess.run(["ip", "-d", "link", "show", bridge], capture_output=True,
                             text=True).stdout
    assert "bridge forward_delay" in details, details
    tour.run("docker run -d --name db busybox sleep 1000 && docker network connect shop db")
    addresses = tour.daemon.docker("exec", "db", "ip", "-o", "-4", "addr").stdout
    prefix = subnet.rsplit(".", 1)[0]
    assert re.search(rf"eth1\s+inet {re.escape(prefix)}\.", addresses), addresses
    tour.run("docker rm -f db && docker network rm shop")
    assert "shop" not in tour.daemon.docker("network", "ls").stdout

    volumes = tour.run("docker volume create data && docker volume ls")
    assert volumes.startswith("data\nDRIVER    VOLUME NAME\n") and "local     data" in volumes
    mounted = tour.run("docker run --rm -v data:/data busybox grep ' /data ' "
                       "/proc/self/mountinfo")
    assert " /data " in mounted and "volumes/data" in mounted  # a bind of the volume's dir
    assert tour.run("docker volume rm data") == "data\n"

    events = tour.run("docker events --since 5m --until 0s --filter container=web")
    actions = [line.split()[2] for line in events.splitlines()]
    for action in ("create", "start", "attach", "pause", "unpause", "kill", "die", "destroy"):
        assert action in actions, events


def system(tour: Tour) -> None:
    df = tour.run("docker system df").splitlines()
    assert df[0].split()[:2] == ["TYPE", "TOTAL"] and df[1].startswith("Images")
    assert "Total reclaimed space" in tour.run("docker system prune -f")
    assert "Server Version" in tour.run("docker info")
    version = tour.run("docker version")
    assert "Server: minidocker" in version and "API version:      1.50" in version
