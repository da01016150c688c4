"""``minidocker compose`` bringing projects up and down on the real engine (in the test
session's private namespaces): Docker's names and labels, idempotent ``up``, scaling, two
networks, a failed ``up``, an ``up`` killed half-way, and ``down`` leaving nothing."""

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import MINIDOCKER, minidocker

CASES = Path(__file__).parent / "compose"
pytestmark = pytest.mark.slow


def compose(project: str, case: str, *args: str, files=("compose.yaml",), timeout=120):
    paths = [arg for name in files for arg in ("-f", str(CASES / case / name))]
    return minidocker("compose", "-p", project, *paths, *args, timeout=timeout)


@pytest.fixture
def down():
    """Projects to take down at the end of the test, whatever happened."""
    made = []
    yield made.append
    for project in made:
        minidocker("compose", "-p", project, "down", "-v", "--remove-orphans", timeout=120)


def inspect(name: str) -> dict:
    result = minidocker("inspect", name)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0]


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def labelled(project: str, kind: str = "ps") -> list[str]:
    label = f"label=com.docker.compose.project={project}"
    args = {"ps": ["ps", "-a", "--format", "{{.Names}}"],
            "network": ["network", "ls", "--format", "{{.Name}}"],
            "volume": ["volume", "ls", "--format", "{{.Name}}"]}[kind]
    return sorted(minidocker(*args, "--filter", label).stdout.split())


def test_up_is_idempotent_and_down_removes_everything(down, tmp_path):
    down("shop")
    first = compose("shop", "webapp", "up", "-d")
    assert first.returncode == 0, first.stderr
    names = ["shop-app-1", "shop-db-1", "shop-web-1"]
    assert labelled("shop") == names
    assert labelled("shop", "network") == ["shop_default"]
    assert labelled("shop", "volume") == ["shop_dbdata"]
    watchers = {parent_of(inspect(name)["State"]["Pid"]) for name in names}
    assert len(watchers) == 1  # the state root's monitor host, not a monitor process each
    assert b"--host" in Path(f"/proc/{watchers.pop()}/cmdline").read_bytes().split(b"\0")
    web = inspect("shop-web-1")
    labels = web["Config"]["Labels"]
    assert (labels["com.docker.compose.project"], labels["com.docker.compose.service"],
            labels["com.docker.compose.container-number"],
            labels["com.docker.compose.oneoff"]) == ("shop", "web", "1", "False")
    assert len(labels["com.docker.compose.config-hash"]) == 64
    assert web["NetworkSettings"]["Networks"]["shop_default"]["Aliases"][0] == "web"
    assert web["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort":
                                                             "8080"}]}
    assert inspect("shop-app-1")["Config"]["Image"] == "shop-app:latest"  # built
    assert any(m.get("Name") == "shop_dbdata" for m in inspect("shop-db-1")["Mounts"])
    page = compose("shop", "webapp", "exec", "-T", "app", "wget", "-qO-", "http://web/")
    assert page.stdout == "<h1>hello</h1>\n", page.stderr  # by name, on the project network

    ids = {name: inspect(name)["Id"] for name in names}
    again = compose("shop", "webapp", "up", "-d")
    assert again.returncode == 0 and again.stderr.count("Running") == 3, again.stderr
    assert {name: inspect(name)["Id"] for name in names} == ids  # unchanged: left running

    override = tmp_path / "override.yaml"
    override.write_text("services:\n  app:\n    environment:\n      MODE: changed\n")
    changed = minidocker("compose", "-p", "shop", "-f", str(CASES / "webapp" / "compose.yaml"),
                         "-f", str(override), "up", "-d")
    assert changed.returncode == 0, changed.stderr
    assert "shop-app-1  Recreate" in changed.stderr
    assert inspect("shop-app-1")["Id"] != ids["shop-app-1"]
    assert inspect("shop-db-1")["Id"] == ids["shop-db-1"]
    assert "MODE=changed" in inspect("shop-app-1")["Config"]["Env"]

    gone = compose("shop", "webapp", "down", "-v", "--rmi", "local")
    assert gone.returncode == 0, gone.stderr
    assert labelled("shop") == labelled("shop", "network") == labelled("shop", "volume") == []
    assert "shop-app" not in minidocker("images").stdout


def test_scale_and_replicas_by_one_name(down):
    down("farm")
    scaled = compose("farm", "scaled", "up", "-d", "--scale", "worker=2")
    assert scaled.returncode == 0, scaled.stderr
    assert labelled("farm") == ["farm-client-1", "farm-worker-1", "farm-worker-2"]
    hosts = compose("farm", "scaled", "exec", "-T", "client", "cat", "/etc/hosts").stdout
    assert sum(" worker" in line for line in hosts.splitlines()) == 2  # both answer 'worker'
    assert compose("farm", "scaled", "up", "-d").returncode == 0  # the file says 3
    assert labelled("farm") == ["farm-client-1", "farm-worker-1", "farm-worker-2",
                                "farm-worker-3"]
    assert compose("farm", "scaled", "up", "-d", "--scale", "worker=1").returncode == 0
    assert labelled("farm") == ["farm-client-1", "farm-worker-1"]
    listing = compose("farm", "scaled", "ps").stdout.splitlines()
    assert listing[0].split()[:4] == ["NAME", "IMAGE", "COMMAND", "SERVICE"]
    assert [line.split()[0] for line in listing[1:]] == ["farm-client-1", "farm-worker-1"]
    assert compose("farm", "scaled", "stop", "-t", "1", "client").returncode == 0
    killed = compose("farm", "scaled", "kill")  # only the running containers, as Compose
    assert killed.returncode == 0 and killed.stderr.splitlines() == [
        " Container farm-worker-1  Killed"], killed.stderr


def logged(name: str, text: str, timeout: float = 20) -> str:
    """The container's log once ``text`` is in it (its monitor may still be writing it)."""
    deadline = time.monotonic() + timeout
    while text not in (log := minidocker("logs", name).stdout) and time.monotonic() < deadline:
        time.sleep(0.2)
    return log


def test_two_networks_and_aliases(down):
    """middle is created on both of its networks and joins them before its process starts:
    frontnet first (its priority: eth0), backnet second at its ipv4_address (eth1)."""
    down("nets")
    assert compose("nets", "twonets", "up", "-d").returncode == 0
    assert labelled("nets", "network") == ["nets_backnet", "nets_frontnet"]
    middle = inspect("nets-middle-1")["NetworkSettings"]["Networks"]
    assert sorted(middle) == ["nets_backnet", "nets_frontnet"]
    assert middle["nets_backnet"]["IPAddress"] == "10.251.7.50"
    seen_at_start = logged("nets-middle-1", "default via")  # what its process printed at once
    front = middle["nets_frontnet"]
    assert f" eth0    inet {front['IPAddress']}/" in seen_at_start, seen_at_start
    assert " eth1    inet 10.251.7.50/24 " in seen_at_start, seen_at_start
    assert f"default via {front['Gateway']} dev eth0" in seen_at_start, seen_at_start

    def ping(service, name):
        return compose("nets", "twonets", "exec", "-T", service, "ping", "-c1", "-W1",
                       name).returncode

    assert ping("front", "api") == 0 and ping("back", "api-internal") == 0
    assert ping("back", "middle") == 0 and ping("front", "middle") == 0
    assert ping("back", "front") != 0  # not on a network they share


def failed_up(project: str, tmp_path: Path, text: str) -> str:
    """``up -d`` of the file ``text``, which must fail in one line (no traceback): that line."""
    (tmp_path / "compose.yaml").write_text(text)
    failed = minidocker("compose", "-p", project, "-f", str(tmp_path / "compose.yaml"), "up",
                        "-d")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr
    return failed.stderr.strip().splitlines()[-1]


def test_an_address_outside_the_subnet_names_service_and_network(down, tmp_path):
    """A bad ipv4_address is refused before the container is made, in one line."""
    down("badip")
    error = failed_up("badip", tmp_path, """
services:
  app:
    image: busybox
    networks: {front: null, back: {ipv4_address: 10.251.9.7}}
networks: {front: null, back: {ipam: {config: [{subnet: 10.251.8.0/24}]}}}
""")
    assert error.startswith("minidocker: service 'app' failed: networks.back.ipv4_address: "
                            "Invalid address 10.251.9.7"), error
    assert "badip_back: 10.251.8.0/24" in error, error
    assert labelled("badip") == []  # nothing half-made


def test_logs_run_and_exec(down):
    down("tools")
    assert compose("tools", "webapp", "up", "-d", "db", "app").returncode == 0
    logs = compose("tools", "webapp", "logs", "app", "--no-color")
    assert logs.stdout == "tools-app-1 | app up\n", logs.stderr
    run = compose("tools", "webapp", "run", "--rm", "-e", "X=42", "app", "sh", "-c",
                  "echo $X $DB_HOST; exit 3")
    assert (run.returncode, run.stdout) == (3, "42 db\n"), run.stderr
    assert labelled("tools") == ["tools-app-1", "tools-db-1"]  # the one-off is gone
    assert compose("tools", "webapp", "exec", "-T", "db", "cat", "/data/ready").stdout == "ok\n"
    stopped = compose("tools", "webapp", "stop")
    assert stopped.returncode == 0 and "Stopped" in stopped.stderr
    assert compose("tools", "webapp", "ps").stdout.count("\n") == 1  # only the header
    assert compose("tools", "webapp", "ps", "-a").stdout.count("Exited") == 2
    started = compose("tools", "webapp", "start")  # under the monitor host again
    assert started.returncode == 0 and started.stderr.count("Started") == 2, started.stderr
    watchers = {parent_of(inspect(name)["State"]["Pid"]) for name in labelled("tools")}
    assert len(watchers) == 1


def test_a_failed_up_names_the_service_and_keeps_the_others(down, tmp_path):
    down("clash")
    error = failed_up("clash", tmp_path, (
        "services:\n  first:\n    image: busybox\n    init: true\n    command: sleep 3600\n"
        "    ports: ['8090:80']\n  second:\n    image: busybox\n    command: sleep 3600\n"
        "    ports: ['8090:80']\n    depends_on: [first]\n"))
    assert error.startswith("minidocker: service 'second' failed:") and "8090" in error
    assert inspect("clash-first-1")["State"]["Status"] == "running"
    gone = minidocker("compose", "-p", "clash", "down")  # no file: the labels say it all
    assert gone.returncode == 0, gone.stderr
    assert labelled("clash") == [] and labelled("clash", "network") == []


def test_down_after_an_up_killed_half_way(down):
    down("crash")
    command = [*MINIDOCKER, "compose", "-p", "crash", "-f", str(CASES / "scaled" /
                                                                 "compose.yaml"), "up", "-d"]
    up = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    for line in up.stderr:
        if "Started" in line:
            up.send_signal(signal.SIGKILL)  # mid-way: more replicas were still to come
            break
    up.wait()
    assert 1 <= len(labelled("crash")) < 4
    gone = compose("crash", "scaled", "down")
    assert gone.returncode == 0, gone.stderr
    assert labelled("crash") == [] and labelled("crash", "network") == []


def test_service_healthy(down):
    down("health")
    result = compose("health", "healthy", "up", "-d")
    assert result.returncode == 0, result.stderr
    assert result.stderr.index("health-db-1  Healthy") < \
        result.stderr.index("health-migrate-1  Started")
    assert inspect("health-migrate-1")["State"]["ExitCode"] == 0
    assert inspect("health-app-1")["State"]["Status"] == "running"


def test_external_resources_must_exist(tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  app: {image: busybox, volumes: ['keep:/keep']}\n"
        "volumes:\n  keep: {external: true, name: precious}\n")
    result = minidocker("compose", "-p", "ext", "-f", str(tmp_path / "compose.yaml"), "up",
                        "-d")
    assert result.returncode == 1
    assert result.stderr == ("minidocker: volume precious is declared as external, but could "
                             "not be found: create it with 'minidocker volume create "
                             "precious'\n")
    assert labelled("ext") == [] and labelled("ext", "network") == []


@pytest.mark.parametrize("text", ["", "services: {}\n",
                                  "services:\n  app: {image: busybox, profiles: [debug]}\n"],
                         ids=["empty-file", "no-services", "every-service-behind-a-profile"])
def test_up_with_no_service_to_run_says_so(tmp_path, text):
    """As Compose v2's "no service selected" (1.29 refuses an empty file): exit 1, one line,
    nothing made."""
    (tmp_path / "compose.yaml").write_text(text)
    result = minidocker("compose", "-p", "none", "-f", str(tmp_path / "compose.yaml"), "up",
                        "-d")
    assert result.returncode == 1
    assert result.stderr == ("minidocker: no service selected: compose.yaml has no service to "
                             "run (an empty compose file, or each service behind a profile): "
                             "define one under 'services:', or enable its profile with "
                             "--profile\n")
    assert labelled("none", "network") == []


def test_a_volumes_driver_opts_reach_the_local_driver(down, tmp_path):
    """``driver_opts`` (type, device, o) as ``volume create -o``: a bind volume's device is
    what the service sees; an unknown option stops ``up`` before anything is made."""
    down("opts")
    device = tmp_path / "device"
    device.mkdir()
    (tmp_path / "compose.yaml").write_text(
        "services:\n  app: {image: busybox, volumes: ['data:/data'], command: "
        "['sh', '-c', 'echo from-app > /data/f']}\n"
        f"volumes:\n  data:\n    driver_opts: {{type: none, o: bind, device: '{device}'}}\n")
    up = minidocker("compose", "-p", "opts", "-f", str(tmp_path / "compose.yaml"), "up")
    assert up.returncode == 0, up.stderr
    assert (device / "f").read_text() == "from-app\n"
    assert json.loads(minidocker("volume", "inspect", "opts_data").stdout)[0]["Options"] == {
        "type": "none", "o": "bind", "device": str(device)}
    (tmp_path / "bad.yaml").write_text(
        "services:\n  app: {image: busybox, volumes: ['data:/data']}\n"
        "volumes:\n  data:\n    driver_opts: {size: 1m}\n")
    bad = minidocker("compose", "-p", "badopts", "-f", str(tmp_path / "bad.yaml"), "up", "-d")
    assert bad.returncode == 1 and bad.stderr.startswith(
        "minidocker: volume data: driver_opts: invalid option: \"size\""), bad.stderr
    assert labelled("badopts", "network") == []
