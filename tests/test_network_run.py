"""Stage 8 end to end, as a user types it: ``minidocker network create``, ``run --network``,
``-p``/``-P``, ``--link``, ``--dns``... through the real command line, checked from inside the
containers (``exec``, or a second container) and from the lab host's kernel (links, addresses,
iptables rules).

Everything runs in the test session's private network namespace (the "lab host", see the root
conftest.py); the "outside world" is one more namespace wired to it (test_network_bridge.py).

The clients inside the containers use ``nc`` with a raw HTTP request: the image's static
``busybox wget`` works for a name found in /etc/hosts, but segfaults when a name has to go to DNS
(static glibc's NSS) and when its ``-T`` timeout fires — exactly the negative checks below.
"""

import json
import os
import subprocess
import time

import pytest

from minidocker import kernel
from tests.conftest import Containers, minidocker
from tests.helpers import port_taken
from tests.test_network_bridge import (  # outside: a fixture, used by name
    OUTSIDE_HOST_IP,
    OUTSIDE_IP,
    host_fetch,
    outside,  # noqa: F401
    outside_fetch,
)

SERVE = "mkdir -p /www && echo hello from {name} > /www/index.html && exec httpd -f -p 80 -h /www"
GET = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} 80 | sed '1,/^\\r$/d'"


# --- helpers ------------------------------------------------------------------------------------

def kernel_state() -> dict[str, list[str]]:
    """What the lab host's kernel holds for networking: link names, IPv4 addresses, and the
    filter and nat rules (link flags and IPv6 link-local addresses come and go by themselves)."""
    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    links = sorted(line.split(": ")[1].split("@")[0] for line in run("ip", "-o", "link")
                   .splitlines())
    addresses = sorted(" ".join(line.split()[1:4]) for line in run("ip", "-o", "-4", "addr")
                       .splitlines())
    return {"links": links, "addresses": addresses,
            "filter": run("iptables", "-w", "-S").splitlines(),
            "nat": run("iptables", "-w", "-t", "nat", "-S").splitlines()}


def settled(expected: dict, timeout: float = 5.0) -> dict:
    """The kernel state once it equals ``expected`` (or after ``timeout``): a veth whose
    namespace died is deleted by the kernel a moment later."""
    deadline = time.monotonic() + timeout
    while (now := kernel_state()) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return now


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess, words: str, code: int = 125) -> None:
    """Docker's exit code (125 for run, 1 for the network commands) and one line on stderr
    that says what went wrong — no traceback."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def inspect(container: str, template: str) -> str:
    return ok(minidocker("inspect", "-f", template, container)).strip()


class Lab:
    """The containers and networks of one test, all removed at its end (containers first)."""

    def __init__(self, containers: Containers):
        self.containers = containers
        self.networks: list[str] = []

    def network(self, name: str, *options: str) -> str:
        ok(minidocker("network", "create", *options, name))
        self.networks.append(name)
        return name

    def run_d(self, *args: str, label: str = "c") -> str:
        return self.containers.run_d(*args, label=label)

    def web(self, *args: str, label: str = "web") -> str:
        """A detached ``busybox httpd`` that answers "hello from <its name>"; returns the name
        once it serves."""
        name = self.containers.name(label)
        ok(minidocker("run", "-d", "--name", name, *args, "busybox", "sh", "-c",
                      SERVE.format(name=name)))
        deadline = time.monotonic() + 10
        while "httpd" not in minidocker("top", name).stdout and time.monotonic() < deadline:
            time.sleep(0.1)
        return name

    def client(self, *args: str, script: str) -> subprocess.CompletedProcess:
        """A throwaway container (``run --rm ARGS busybox sh -c SCRIPT``)."""
        return minidocker("run", "--rm", *args, "busybox", "sh", "-c", script)

    def fetch(self, *args: str, host: str) -> str:
        """The body a throwaway container gets for ``GET http://HOST/`` ("" if nothing)."""
        return self.client(*args, script=GET.format(host=host)).stdout

    def remove_all(self) -> None:
        self.containers.remove_all()
        for name in reversed(self.networks):
            minidocker("network", "rm", name)


@pytest.fixture
def lab(request):
    made = Lab(Containers(request.node.name))
    yield made
    made.remove_all()


@pytest.fixture(scope="module", autouse=True)
def default_bridge_ready():
    """The default bridge and minidocker's chains exist from the first bridge run on (as
    docker0 does): make them once, so that each test's before/after compares only its own."""
    ok(minidocker("run", "--rm", "--network", "bridge", "busybox", "true"))


@pytest.fixture
def our_child_monitor():
    """``start(*args)`` -> a detached container whose monitor is *this* process's child (we
    are its subreaper while it starts), so the test decides when the killed monitor is reaped:
    this machine's PID 1 reaps orphans late, at a time of its own."""
    children: list[int] = []

    def start(lab: Lab, *args: str) -> tuple[str, int]:
        kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)
        try:
            name = lab.run_d(*args, label="crash")
        finally:
            kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 0)
        monitor = int(inspect(name, "{{.State.MonitorPid}}"))
        children.append(monitor)
        return name, monitor

    yield start
    for pid in children:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


# --- names on a user network ----------------------------------------------------------------------

def test_containers_on_a_user_network_reach_each_other_by_name(lab):
    net = lab.network("n1")
    web = lab.web("--network", net)
    assert lab.fetch("--network", net, host=web) == f"hello from {web}\n"
    ip = inspect(web, "{{.NetworkSettings.IPAddress}}")
    assert ip.startswith("172.")
    hosts = lab.client("--network", net, script="cat /etc/hosts").stdout
    assert f"{ip}\t{web} " in hosts  # put there by minidocker, kept current (hosts.py)
    # busybox wget works too, for a name that /etc/hosts answers
    assert lab.client("--network", net, script=f"wget -qO- http://{web}/").stdout == \
        f"hello from {web}\n"


def test_a_network_alias_is_one_more_name(lab):
    net = lab.network("n1")
    web = lab.web("--network", net, "--network-alias", "db", "--network-alias", "cache")
    assert lab.fetch("--network", net, host="db") == f"hello from {web}\n"
    assert lab.fetch("--network", net, host="cache") == f"hello from {web}\n"
    assert inspect(web, "{{json .NetworkSettings.Networks.n1.Aliases}}") == '["db","cache"]'


def test_a_container_on_another_network_cannot_reach_it(lab):
    n1, n2 = lab.network("n1"), lab.network("n2")
    web = lab.web("--network", n1)
    ip = inspect(web, "{{.NetworkSettings.IPAddress}}")
    assert lab.fetch("--network", n1, host=ip) == f"hello from {web}\n"
    assert lab.fetch("--network", n2, host=ip) == ""  # isolation: dropped between bridges
    outsider = lab.client("--network", n2, script="cat /etc/hosts").stdout
    assert web not in outsider


# --- published ports ------------------------------------------------------------------------------

def test_a_published_port_serves_the_outside_world_and_localhost(lab, outside):  # noqa: F811
    web = lab.web("--network", "bridge", "-p", "8080:80")
    body = f"hello from {web}\n"
    assert outside_fetch(outside, OUTSIDE_HOST_IP, 8080) == body
    assert host_fetch(8080) == body  # hairpin NAT on the lab host's 127.0.0.1
    assert inspect(web, "{{json .NetworkSettings.Ports}}") == \
        '{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}]}'
    assert inspect(web, "{{.NetworkSettings.IPAddress}}").startswith("172.18.")
    (row,) = [line for line in ok(minidocker("ps")).splitlines() if line.endswith(web)]
    assert "0.0.0.0:8080->80/tcp" in row
    header = ok(minidocker("ps")).splitlines()[0]
    assert "PORTS" in header


def test_publish_all_publishes_the_exposed_ports_on_free_ones(lab):
    web = lab.web("--network", "bridge", "-P", "--expose", "80", "--expose", "53/udp")
    ports = json.loads(inspect(web, "{{json .NetworkSettings.Ports}}"))
    assert set(ports) == {"80/tcp", "53/udp"}
    tcp = int(ports["80/tcp"][0]["HostPort"])
    assert tcp > 1024 and int(ports["53/udp"][0]["HostPort"]) > 1024
    assert host_fetch(tcp) == f"hello from {web}\n"


def test_inspect_templates_index_a_published_port(lab):
    web = lab.run_d("--network", "bridge", "-p", "8183:80", "busybox", "sleep", "60")
    assert inspect(web, '{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}') == \
        "8183"


def test_the_port_command_lists_published_ports(lab):
    web = lab.run_d("--network", "bridge", "-p", "8181:80", "-p", "127.0.0.1:8182:81",
                    "busybox", "sleep", "60")
    assert ok(minidocker("port", web)).splitlines() == ["80/tcp -> 0.0.0.0:8181",
                                                        "81/tcp -> 127.0.0.1:8182"]
    assert ok(minidocker("port", web, "81")) == "127.0.0.1:8182\n"  # Docker: the address only


# --- the other network modes ----------------------------------------------------------------------

def test_network_none_has_only_loopback(lab):
    links = ok(minidocker("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"))
    assert [line.split(": ")[1] for line in links.splitlines()] == ["lo"]


def test_network_none_has_loopback_up(lab):
    result = minidocker("run", "--rm", "--network", "none", "busybox", "ping", "-c1", "-W1",
                        "127.0.0.1")
    assert result.returncode == 0, result.stdout + result.stderr


def test_network_host_sees_the_lab_hosts_links(lab):
    inside = ok(minidocker("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link"))
    names = sorted(line.split(": ")[1].split("@")[0] for line in inside.splitlines())
    assert names == kernel_state()["links"]
    assert "minidocker0" in names


def test_network_container_shares_the_other_containers_address(lab):
    web = lab.web("--network", "bridge")
    side = lab.run_d("--network", f"container:{web}", "busybox", "sleep", "60", label="side")
    mine = ok(minidocker("exec", web, "ip", "-o", "-4", "addr"))
    theirs = ok(minidocker("exec", side, "ip", "-o", "-4", "addr"))
    assert mine == theirs and "eth0" in mine
    assert ok(minidocker("exec", side, "sh", "-c", GET.format(host="127.0.0.1"))) == \
        f"hello from {web}\n"  # the same loopback too


# --- network options --------------------------------------------------------------------------------

def test_an_internal_network_has_no_way_out(lab, outside):  # noqa: F811
    vault = lab.network("vault", "--internal")
    web = lab.web("--network", vault)
    assert lab.fetch("--network", vault, host=web) == f"hello from {web}\n"
    reach_out = f"ping -c3 -W2 {OUTSIDE_IP}"  # one reply of three is a way out (a loaded host)
    assert lab.client("--network", "bridge", script=reach_out).returncode == 0  # the control
    assert lab.client("--network", vault, script=reach_out).returncode != 0
    assert "default" not in lab.client("--network", vault, script="ip route").stdout


def test_enable_icc_false_keeps_containers_of_one_network_apart(lab):
    net = lab.network("lonely", "-o", "com.docker.network.bridge.enable_icc=false")
    web = lab.web("--network", net)
    gateway = inspect(web, "{{.NetworkSettings.Gateway}}")
    assert lab.client("--network", net, script=f"ping -c3 -W3 {gateway}").returncode == 0
    assert lab.fetch("--network", net, host=web) == ""


def test_a_link_opens_the_way_through_enable_icc_false(lab):
    net = lab.network("linked", "-o", "com.docker.network.bridge.enable_icc=false")
    web = lab.web("--network", net)
    assert lab.fetch("--network", net, "--link", f"{web}:site", host="site") == \
        f"hello from {web}\n"
    assert lab.fetch("--network", net, host=web) == ""  # without the link: still apart


# --- links and the /etc files ----------------------------------------------------------------------

def test_a_link_on_the_default_bridge_names_the_linked_container(lab):
    web = lab.web("--network", "bridge", "--expose", "80")
    ip = inspect(web, "{{.NetworkSettings.IPAddress}}")
    hosts = lab.client("--network", "bridge", "--link", f"{web}:site", script="cat /etc/hosts")
    assert f"{ip}\tsite " in ok(hosts)
    assert lab.fetch("--network", "bridge", "--link", f"{web}:site", host="site") == \
        f"hello from {web}\n"
    assert web not in lab.client("--network", "bridge", script="cat /etc/hosts").stdout


def test_a_link_sets_dockers_environment_variables(lab):
    web = lab.run_d("--network", "bridge", "--expose", "80", "-e", "ROLE=db", "busybox",
                    "sleep", "60")
    ip = inspect(web, "{{.NetworkSettings.IPAddress}}")
    env = ok(lab.client("--network", "bridge", "--link", f"{web}:site", script="env"))
    assert f"SITE_PORT=tcp://{ip}:80" in env
    assert f"SITE_PORT_80_TCP=tcp://{ip}:80" in env
    assert f"SITE_PORT_80_TCP_ADDR={ip}" in env
    assert "SITE_PORT_80_TCP_PORT=80" in env and "SITE_PORT_80_TCP_PROTO=tcp" in env
    assert "SITE_ENV_ROLE=db" in env


def test_dns_add_host_and_hostname_land_in_the_etc_files(lab):
    out = ok(lab.client("--network", "bridge", "--dns", "9.9.9.9", "--dns-search", "example.com",
                        "--add-host", "db:10.0.0.5", "--hostname", "myhost",
                        script="cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; "
                               "cat /etc/hostname; hostname"))
    resolv, hosts, names = out.split("---\n")
    assert resolv == "search example.com\nnameserver 9.9.9.9\n"
    assert "10.0.0.5\tdb\n" in hosts
    assert hosts.splitlines()[0] == "127.0.0.1\tlocalhost"
    assert hosts.splitlines()[-1].startswith("172.18.") and hosts.endswith("\tmyhost\n")
    assert names == "myhost\nmyhost\n"


# --- nothing left behind ----------------------------------------------------------------------------

def test_rm_f_and_network_rm_leave_nothing(lab):
    before = kernel_state()
    net = lab.network("n1")
    with_network = kernel_state()
    assert len(with_network["links"]) == len(before["links"]) + 1  # its bridge
    lab.web("--network", net, "-p", "8280:80")
    lab.web("--network", "bridge", "-p", "8281:80")
    lab.run_d("--network", net, "busybox", "sleep", "60")
    assert kernel_state() != with_network
    ok(minidocker("rm", "-f", *lab.containers.names))
    assert settled(with_network) == with_network
    ok(minidocker("network", "rm", net))
    lab.networks.remove(net)
    assert settled(before) == before


def test_a_killed_monitor_is_cleaned_up_by_ps_rm_and_network_prune(lab, our_child_monitor):
    before = kernel_state()
    net = lab.network("n1")
    on_net, monitor = our_child_monitor(lab, "--network", net, "-p", "8380:80", "busybox",
                                        "sleep", "60")
    on_bridge, monitor2 = our_child_monitor(lab, "--network", "bridge", "-p", "8381:80",
                                            "busybox", "sleep", "60")
    assert kernel_state() != before
    for pid in (monitor, monitor2):
        os.kill(pid, 9)  # the container's shim dies with it (PDEATHSIG)
        os.waitpid(pid, 0)  # reaped, as a normal init would
    listing = ok(minidocker("ps", "-a"))
    for name in (on_net, on_bridge):
        (row,) = [line for line in listing.splitlines() if line.endswith(name)]
        assert "Exited (137)" in row
    ok(minidocker("rm", on_net, on_bridge))  # no -f needed: they are exited
    pruned = ok(minidocker("network", "prune", "-f"))
    assert pruned == f"Deleted Networks:\n{net}\n\n"
    lab.networks.remove(net)
    assert settled(before) == before


def test_a_killed_monitor_not_yet_reaped_is_seen_dead(lab, our_child_monitor):
    """A zombie is not a monitor: whoever reaps it, and however late, ``ps`` sees it dead."""
    name, monitor = our_child_monitor(lab, "--network", "bridge", "busybox", "sleep", "60")
    os.kill(monitor, 9)
    deadline = time.monotonic() + 5
    while not zombie(monitor) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert zombie(monitor)  # dead, its parent (this test) has not waited for it yet
    (row,) = [line for line in ok(minidocker("ps", "-a")).splitlines() if line.endswith(name)]
    assert "Exited (137)" in row


# --- bad input ----------------------------------------------------------------------------------

def test_a_port_in_use_is_a_one_line_error_that_leaves_nothing(lab):
    before = kernel_state()
    with port_taken(9090):
        one_line_error(minidocker("run", "-d", "--name", lab.containers.name("clash"),
                                  "--network", "bridge", "-p", "9090:80", "busybox", "true"),
                       "Bind for 0.0.0.0:9090 failed: port is already allocated")
    assert settled(before) == before
    lab.run_d("--network", "bridge", "-p", "9191:80", "busybox", "sleep", "60", label="owner")
    with_owner = kernel_state()
    one_line_error(minidocker("run", "--rm", "--network", "bridge", "-p", "9191:80", "busybox",
                              "true"), "Bind for 0.0.0.0:9191 failed: port is already allocated")
    assert settled(with_owner) == with_owner


def test_an_overlapping_subnet_is_a_one_line_error_that_leaves_nothing(lab):
    lab.network("ten", "--subnet", "10.50.0.0/16")
    before = kernel_state()
    networks_before = ok(minidocker("network", "ls"))
    one_line_error(minidocker("network", "create", "--subnet", "10.50.1.0/24", "ten-too"),
                   "Pool overlaps with other one on this address space", code=1)
    assert kernel_state() == before
    assert ok(minidocker("network", "ls")) == networks_before


def test_an_unknown_network_is_a_one_line_error_that_leaves_nothing(lab):
    before = kernel_state()
    one_line_error(minidocker("run", "--rm", "--network", "nowhere", "busybox", "true"),
                   "network nowhere not found")
    one_line_error(minidocker("network", "rm", "nowhere"), "network nowhere not found", code=1)
    assert settled(before) == before
