"""A lab of hosts on one machine: network namespaces on an underlay bridge, a daemon in each.

A cluster needs several hosts on one network. Here a *host* is a network namespace (its own
interfaces, addresses, routes and iptables), and the *network* between them is a bridge that
lives in one more namespace, the *lab*, so nothing of it touches this machine's own network:

    lab netns:   bridge lab0 (10.77.0.1/24), one port per host
    etcd1..3:    eth0 10.77.0.2-4/24 <- veth -> lab0     one etcd member each (etcd.py)
    node n1:     eth0 10.77.0.11/24 <- veth -> lab0     minidocker daemon on n1/md.sock
    node n2:     eth0 10.77.0.12/24 <- veth -> lab0     ...

Each namespace is held by a process (``unshare --net sleep infinity``): it lives as long as
its holder does, and when the holder is killed the kernel deletes it with every interface and
iptables rule inside — so ``down`` cannot leave a veth behind, even after a crash. Each node
has its own state root, cgroup parent and default bridge subnet (172.31.N.0/24, so routes
between nodes make sense), and its own daemon (stage 12), started inside the node's network
namespace with a private mount namespace (``nsenter --net``, ``unshare --mount``), as
``ip netns exec`` would. The manager talks to a daemon through its unix socket.

Three faults a notebook cell can cause: ``unplug`` (the node's cable: its port on lab0 goes
down), ``partition`` (iptables in the node drops everything on eth0, the link stays up) and
``crash`` (the daemon is killed). Every PID and name is recorded in ``cluster/lab.json``
under the state root, so ``down`` removes everything it made.

Man pages: network_namespaces(7), unshare(1), nsenter(1), veth(4), ip-link(8), iptables(8).
Used by: ``minidocker cluster up|down|ls``, tests/test_cluster.py.
"""

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from minidocker import cgroups, explain
from minidocker.errors import MinidockerError
from minidocker.state import state_root, write_json

UNDERLAY = ipaddress.ip_network("10.77.0.0/24")
LAB_BRIDGE = "lab0"
ETCD_MEMBERS = 3
FIRST_NODE_HOST = 11  # n1 is 10.77.0.11
MAX_NODES = 20
START_TIMEOUT = 120.0  # a bound for a hang: a daemon that dies is reported at once
LAB_MARK = "MINIDOCKER_LAB"  # in the environment of every process the lab starts


class LabError(MinidockerError):
    """The lab cannot be made, or is not there."""


@dataclass
class Node:
    """One host of the lab: the namespace's holder, its address and its daemon."""

    name: str
    address: str
    holder: int  # the PID that holds the node's network namespace
    root: str  # its MINIDOCKER_ROOT
    socket: str  # its daemon's unix socket
    cgroup_parent: str
    bridge_subnet: str  # its default bridge, different on each node
    daemon: int = 0  # the daemon's PID (0: not running)
    processes: dict[str, int] = field(default_factory=dict)  # agent, manager: their PIDs

    @property
    def netns(self) -> str:
        return f"/proc/{self.holder}/ns/net"


@dataclass
class Lab:
    directory: str
    holder: int  # the PID that holds the lab's network namespace
    nodes: dict[str, Node] = field(default_factory=dict)
    etcd: dict[str, int] = field(default_factory=dict)  # member name -> PID
    etcd_addresses: dict[str, str] = field(default_factory=dict)
    etcd_holders: dict[str, int] = field(default_factory=dict)  # member name -> netns holder

    @property
    def netns(self) -> str:
        return f"/proc/{self.holder}/ns/net"

    def node(self, name: str) -> Node:
        if name not in self.nodes:
            raise LabError(f"no node {name!r} in the lab (nodes: {', '.join(self.nodes)}); "
                           "see 'minidocker cluster ls'")
        return self.nodes[name]

    def save(self) -> None:
        write_json(Path(self.directory) / "lab.json", asdict(self))


# --- where the lab is recorded --------------------------------------------------------------------

def lab_directory() -> Path:
    return state_root() / "cluster"


def load() -> Lab:
    """The lab recorded under the state root; a one-line error when there is none."""
    path = lab_directory() / "lab.json"
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise LabError("no cluster lab is up: start one with 'minidocker cluster up "
                       "--nodes 3'") from None
    nodes = {name: Node(**node) for name, node in record.pop("nodes").items()}
    return Lab(**record, nodes=nodes)


def node_address(index: int) -> str:
    return str(UNDERLAY.network_address + FIRST_NODE_HOST + index - 1)


def etcd_address(index: int) -> str:
    return str(UNDERLAY.network_address + 1 + index)


# --- up --------------------------------------------------------------------------------------------

def up(count: int, with_etcd: bool = True) -> Lab:
    """Make the lab namespace and its bridge, then ``count`` nodes, each with a daemon, and
    (``with_etcd``) the 3-member etcd cluster. On any failure, what was made is removed."""
    if not 1 <= count <= MAX_NODES:
        raise LabError(f"invalid --nodes {count}: a lab has 1 to {MAX_NODES} nodes")
    directory = lab_directory()
    if (directory / "lab.json").exists():
        raise LabError("a cluster lab is already up: see 'minidocker cluster ls', or remove "
                       "it with 'minidocker cluster down'")
    directory.mkdir(parents=True, exist_ok=True)
    lab = Lab(str(directory), hold_namespace())
    lab.save()
    try:
        make_underlay(lab)
        for index in range(1, count + 1):
            add_node(lab, index)
        prepare_roots(list(lab.nodes.values()))
        for node in lab.nodes.values():
            start_daemon(lab, node)
        if with_etcd:
            from minidocker.cluster import etcd

            etcd.start_cluster(lab)
        for node in lab.nodes.values():
            wait_for_daemon(node)
    except BaseException:
        down()
        raise
    return lab


def hold_namespace() -> int:
    """A new network namespace, held by a sleeping process: ``unshare --net sleep infinity``.
    Its own session, so a Ctrl-C in this terminal does not end the lab."""
    holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "infinity"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=marked_environment(),
                              start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    own = os.stat("/proc/self/ns/net").st_ino
    while os.stat(f"/proc/{holder.pid}/ns/net").st_ino == own:  # unshare has not run yet
        if holder.poll() is not None or time.monotonic() > deadline:
            raise LabError("unshare --net failed: is this machine allowing network namespaces?")
        time.sleep(0.01)
    return holder.pid


def netlink(netns: str):
    """A netlink connection inside ``netns`` (pyroute2 opens it there; we stay here)."""
    from pyroute2 import IPRoute

    return IPRoute(netns=netns, flags=0)


def make_underlay(lab: Lab) -> None:
    """The lab's switch: bridge lab0, up, with the lab's own address (10.77.0.1)."""
    explain.step("ip link", f"add {LAB_BRIDGE} type bridge (in the lab's namespace)")
    with netlink(lab.netns) as ip:
        ip.link("set", index=ip.link_lookup(ifname="lo")[0], state="up")
        ip.link("add", ifname=LAB_BRIDGE, kind="bridge")
        bridge = ip.link_lookup(ifname=LAB_BRIDGE)[0]
        ip.addr("add", index=bridge, address=str(UNDERLAY.network_address + 1),
                prefixlen=UNDERLAY.prefixlen)
        ip.link("set", index=bridge, state="up")


def add_node(lab: Lab, index: int) -> Node:
    """Node ``n<index>``: a namespace plugged into the lab, a state root, a cgroup parent."""
    name = f"n{index}"
    directory = Path(lab.directory) / name
    directory.mkdir(exist_ok=True)
    node = Node(name, node_address(index), hold_namespace(), str(directory / "root"),
                str(directory / "md.sock"), f"{cgroups.parent()}-lab-{name}",
                f"172.31.{index}.0/24")
    lab.nodes[name] = node
    lab.save()
    plug_in(lab, name, node.holder, node.address)
    return node


def plug_in(lab: Lab, name: str, holder: int, address: str) -> None:
    """A host on the lab's switch: a veth pair, one end (``v<name>``) a port of lab0, the other
    moved into the host's namespace as ``eth0``, with the host's address."""
    port = f"v{name}"
    explain.step("ip link", f"add {port} type veth peer name eth0 netns {name}; "
                 f"set {port} master {LAB_BRIDGE}; addr {address}/24 on {name}'s eth0")
    with netlink(lab.netns) as ip:
        ip.link("add", ifname=port, kind="veth", peer={"ifname": f"e{name}"})
        ip.link("set", index=ip.link_lookup(ifname=port)[0],
                master=ip.link_lookup(ifname=LAB_BRIDGE)[0], state="up")
        ip.link("set", index=ip.link_lookup(ifname=f"e{name}")[0], net_ns_pid=holder)
    with netlink(f"/proc/{holder}/ns/net") as ip:
        eth0 = ip.link_lookup(ifname=f"e{name}")[0]
        ip.link("set", index=eth0, ifname="eth0")
        ip.addr("add", index=eth0, address=address, prefixlen=UNDERLAY.prefixlen)
        ip.link("set", index=eth0, state="up")
        ip.link("set", index=ip.link_lookup(ifname="lo")[0], state="up")


def enter(lab: Lab) -> None:
    """Move this process into the lab's network namespace (setns(2)), where etcd is reached:
    what ``ip netns exec lab`` does before it runs a command."""
    from minidocker import kernel

    fd = os.open(lab.netns, os.O_RDONLY)
    try:
        kernel.setns(fd, kernel.CLONE_NEWNET)
    finally:
        os.close(fd)


def in_namespace(netns: str, argv: list[str], private_mounts: bool = False) -> list[str]:
    """``argv`` run inside a network namespace (``ip netns exec``'s two steps, written out),
    and with a mount namespace of its own if asked."""
    mounts = ["unshare", "--mount", "--propagation", "private", "--"] if private_mounts else []
    return ["nsenter", f"--net={netns}", "--", *mounts, *argv]


def node_environment(node: Node) -> dict[str, str]:
    """What makes a node's engine its own: its state root, cgroup parent and bridge subnet."""
    return {**os.environ, "MINIDOCKER_ROOT": node.root,
            "MINIDOCKER_CGROUP_PARENT": node.cgroup_parent,
            "MINIDOCKER_BRIDGE_SUBNET": node.bridge_subnet}


def marked_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every process the lab starts, marked with the lab's directory, so
    that ``down`` finds them all, even one whose PID was never recorded."""
    return {**(env or os.environ), LAB_MARK: str(lab_directory())}


def spawn(argv: list[str], log: Path, env: dict[str, str] | None) -> int:
    """Start a lab process in the background (its own session), its output in ``log``."""
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, env=marked_environment(env),
                                   start_new_session=True)
    return process.pid


def prepare_roots(nodes: list[Node]) -> None:
    """``minidocker setup`` in each node's state root (the busybox image, offline), all at
    once."""
    setups = [subprocess.Popen([sys.executable, "-m", "minidocker.cli", "setup"],
                               env=node_environment(node), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
              for node in nodes if not Path(node.root, "oci").exists()]
    for setup in setups:
        _, error = setup.communicate()
        if setup.returncode:
            raise LabError(f"minidocker setup failed for a node: {error.decode().strip()}")


def start_daemon(lab: Lab, node: Node) -> None:
    """The node's engine: ``minidocker daemon`` on its socket, inside the node's namespaces
    (its state root prepared first)."""
    env = node_environment(node)
    cli = [sys.executable, "-m", "minidocker.cli"]
    prepare_roots([node])
    argv = in_namespace(node.netns, [*cli, "daemon", "-H", f"unix://{node.socket}",
                                     "--log-level", "warning"], private_mounts=True)
    explain.step("nsenter", f"--net={node.name} unshare --mount minidocker daemon "
                 f"-H unix://{node.socket}")
    node.daemon = spawn(argv, Path(node.socket).with_name("daemon.log"), env)
    lab.save()


def wait_for_daemon(node: Node) -> None:
    from minidocker.cluster.engine import Engine

    deadline = time.monotonic() + START_TIMEOUT
    while not Engine(node.socket).ping():
        if not alive(node.daemon) or time.monotonic() > deadline:
            log = Path(node.socket).with_name("daemon.log")
            raise LabError(f"the daemon of node {node.name} did not start: "
                           f"{log.read_text()[-800:] if log.exists() else 'no log'}")
        time.sleep(0.05)


# --- faults ----------------------------------------------------------------------------------------

def unplug(lab: Lab, name: str, plugged: bool = False) -> None:
    """Pull (or put back) the node's cable: its port on the lab's bridge goes down (up)."""
    lab.node(name)
    state = "up" if plugged else "down"
    explain.step("ip link", f"set v{name} {state} (in the lab's namespace)")
    with netlink(lab.netns) as ip:
        ip.link("set", index=ip.link_lookup(ifname=f"v{name}")[0], state=state)


def partition(lab: Lab, name: str, healed: bool = False) -> None:
    """Cut the node off (or heal it): iptables in the node drops all it sends or receives on
    eth0; its link stays up, as when a switch's filter, not a cable, fails."""
    node = lab.node(name)
    action = "-D" if healed else "-I"
    for chain, direction in (("INPUT", "-i"), ("OUTPUT", "-o")):
        rule = ["iptables", action, chain, direction, "eth0", "-j", "DROP"]
        explain.step("iptables", " ".join(rule[1:]) + f" (in {name})")
        result = subprocess.run(in_namespace(node.netns, rule), capture_output=True, text=True)
        if result.returncode and not healed:
            raise LabError(f"iptables failed in {name}: {result.stderr.strip()}")


def crash(lab: Lab, name: str) -> None:
    """Kill the node's daemon (and its agent) with SIGKILL: the engine is gone at once, its
    containers keep running under their monitors, as when dockerd dies."""
    node = lab.node(name)
    for pid in [node.daemon, *node.processes.values()]:
        kill(pid)
    node.daemon = 0
    node.processes.clear()
    lab.save()


def restart(lab: Lab, name: str) -> None:
    """Start a crashed node's daemon again (nothing to do if it runs)."""
    node = lab.node(name)
    if not alive(node.daemon):
        start_daemon(lab, node)
    wait_for_daemon(node)


# --- down ------------------------------------------------------------------------------------------

def down() -> list[str]:
    """Remove the lab: every process it started (daemons, agents, managers, etcd), every
    container on its nodes, their cgroups, its namespaces (and with them every veth and
    iptables rule), its directory. Works after a crash: it needs only lab.json."""
    try:
        lab = load()
    except LabError:
        return []
    for node in lab.nodes.values():  # first the managers and agents: nothing new starts
        for pid in node.processes.values():
            kill(pid)
    removed = []
    for node in lab.nodes.values():
        remove_node(node)
        removed.append(node.name)
    for pid in [*lab.etcd.values(), *lab.etcd_holders.values()]:
        kill(pid)
    kill(lab.holder)
    for pid in marked_processes(lab.directory):  # any the records missed
        kill(pid)
    for node in lab.nodes.values():
        remove_cgroups(node.cgroup_parent)
    subprocess.run(["rm", "-rf", "--one-file-system", lab.directory], check=False)
    return removed


def remove_node(node: Node) -> None:
    """The node's containers first (through its daemon, if it answers), then each of its
    processes, then its cgroups and namespace."""
    from minidocker.cluster.engine import Engine

    engine = Engine(node.socket)
    if node.daemon and engine.ping():
        for container in engine.containers(all=True):
            engine.remove(container["Id"])
    for pid in [*node.processes.values(), node.daemon]:
        kill(pid)
    for pid in monitors_of(node.root) + cgroup_processes(node.cgroup_parent):
        kill(pid)
    remove_cgroups(node.cgroup_parent)
    kill(node.holder)


def marked_processes(directory: str) -> list[int]:
    mark = f"{LAB_MARK}={directory}".encode()
    return [int(pid) for pid, environ in environments() if mark in environ.split(b"\0")]


def environments():
    """(PID, environ) of every process we may read."""
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            yield entry, Path(f"/proc/{entry}/environ").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue


def monitors_of(root: str) -> list[int]:
    """Container monitors of a node, by the state root in their environment (a monitor outlives
    its daemon)."""
    mark = f"MINIDOCKER_ROOT={root}".encode()
    return [int(pid) for pid, environ in environments() if mark in environ.split(b"\0")]


def cgroup_directories(parent: str) -> list[Path]:
    roots = [cgroups.CGROUP_ROOT / c for c in cgroups.CONTROLLERS]
    roots += [cgroups.CGROUP_ROOT, cgroups.CGROUP_ROOT / "unified"]
    return [root / parent for root in roots if (root / parent).is_dir()]


def cgroup_processes(parent: str) -> list[int]:
    pids = set()
    for directory in cgroup_directories(parent):
        for procs in directory.rglob("cgroup.procs"):
            pids.update(int(p) for p in procs.read_text().split())
    return sorted(pids)


def remove_cgroups(parent: str) -> None:
    """rmdir the node's cgroups, deepest first (a cgroup is removed by rmdir, when empty)."""
    for directory in cgroup_directories(parent):
        for child in sorted(directory.rglob("*"), key=lambda p: -len(p.parts)):
            if child.is_dir():
                _rmdir(child)
        _rmdir(directory)


def _rmdir(path: Path) -> None:
    for _ in range(250):  # a killed process leaves its cgroup a moment later (5 s at most)
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)


def alive(pid: int) -> bool:
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def kill(pid: int) -> None:
    """SIGKILL ``pid`` and wait until it is gone (reaped by us if it is our child)."""
    if not pid:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(500):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if not alive(pid):
            return
        time.sleep(0.01)


# --- ls --------------------------------------------------------------------------------------------

def rows(lab: Lab) -> list[dict[str, str]]:
    """One row per node and per etcd member, for ``cluster ls``."""
    from minidocker.cluster.engine import Engine

    table = []
    for node in lab.nodes.values():
        daemon = "running" if node.daemon and Engine(node.socket).ping() else "crashed"
        table.append({"NAME": node.name, "ADDRESS": node.address, "DAEMON": daemon,
                      "SOCKET": node.socket, "BRIDGE": node.bridge_subnet})
    for name, pid in lab.etcd.items():
        table.append({"NAME": name, "ADDRESS": lab.etcd_addresses.get(name, ""),
                      "DAEMON": "etcd " + ("running" if alive(pid) else "stopped"),
                      "SOCKET": "", "BRIDGE": ""})
    return table
