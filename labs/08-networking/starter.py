"""Lab 08 — networking: connect a container to the world by hand.

The checker gives you a "container": a process (PID ``pid``) in a network namespace of its own,
where there is nothing but ``lo``, down. Next to it is an "outside world", another namespace
wired to the host on 203.0.113.0/24, which knows nothing of your private subnet. You wire the
container to it the way Docker's bridge network does:

    container (10.0.0.2/24, eth0) == veth pair == veth0 [host: br0 10.0.0.1/24] --> outside

Use the ``ip`` and ``iptables`` commands (through ``run`` and ``in_container`` below: each
function is a few command lines, the ones you would type), or pyroute2's ``IPRoute`` and
``NetNS`` if you prefer netlink from Python: the checker looks only at what the kernel shows.
Not ``minidocker.network``, which would do the lesson for you.

Check your work (every step runs in a throwaway network namespace that plays the host, so
nothing you make here touches this machine's network):

    sudo minidocker lab check 08                # this file
    sudo minidocker lab check 08 PATH           # a copy of it

Steps and hints: labs/08-networking/README.md. Man pages: network_namespaces(7), veth(4),
ip-link(8), ip-address(8), ip-route(8), bridge(8), iptables(8), iptables-extensions(8).
"""

import subprocess

HOST_IF = "veth0"  # the veth end on the host, plugged into the bridge
CONTAINER_IF = "eth0"  # the veth end in the container
BRIDGE = "br0"
GATEWAY = "10.0.0.1"  # the bridge's address, and the container's gateway ("via GATEWAY")
CONTAINER_IP = "10.0.0.2"  # the container's address on eth0
PREFIX = 24  # the subnet's prefix length: an address on a link is "ADDRESS/PREFIX"
SUBNET = "10.0.0.0/24"


# --- given: run a command on the host, or inside the container's network namespace -----------

def run(*argv: str) -> str:
    """Run a command on the host, e.g. ``run("ip", "link", "show")``, and return what it
    printed. If it fails, raise an error that says what the command said."""
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def in_container(pid: int, *argv: str) -> str:
    """Run a command inside the network namespace of process ``pid`` (and only that one of
    its namespaces): ``in_container(pid, "ip", "addr")``. nsenter(1) does the setns(2)."""
    return run("nsenter", f"--net=/proc/{pid}/ns/net", *argv)


# --- yours: one function per step ----------------------------------------------------------------

def create_veth_pair(pid: int) -> None:
    """Step 1: a veth pair, ``veth0`` on the host and ``eth0`` in the network namespace of
    process ``pid``; both up, and the container's ``lo`` up too."""
    # TODO Step 1: create the pair on the host, move one end into the container's namespace
    #              (by its PID), then bring veth0, eth0 and the container's lo up.
    raise NotImplementedError("Step 1: create_veth_pair() is not written yet")


def create_bridge() -> None:
    """Step 2: a bridge ``br0`` with the address 10.0.0.1/24, up, with ``veth0`` plugged in."""
    # TODO Step 2: add the bridge, give it the gateway address, bring it up, and make it
    #              veth0's master.
    raise NotImplementedError("Step 2: create_bridge() is not written yet")


def configure_container(pid: int) -> None:
    """Step 3: inside the container, ``eth0`` gets 10.0.0.2/24, and a default route goes via
    the bridge's address."""
    # TODO Step 3: in the container's namespace: the address on eth0, then the default route.
    raise NotImplementedError("Step 3: configure_container() is not written yet")


def enable_nat() -> None:
    """Step 4: let the host route the container's packets out, and give them the host's own
    address on the way (MASQUERADE), so that the answers find their way back."""
    # TODO Step 4: net.ipv4.ip_forward = 1; then an iptables rule in the nat table's
    #              POSTROUTING chain for packets from SUBNET that leave by anything but BRIDGE.
    raise NotImplementedError("Step 4: enable_nat() is not written yet")
