"""The routing mesh: a port published by a service answers on every node's address.

``service create --publish 8080:80`` opens port 8080 on *every* node, whether or not it runs a
task of the service: a connection to any node's address is sent on to one of the tasks,
wherever it runs, over the overlay. Each node's agent writes the same few iptables rules in
its own namespace, from etcd (kube-proxy's iptables mode; IPVS, Docker's choice, is not in
this kernel):

    nat MD-MESH (from PREROUTING and OUTPUT, for the node's own addresses)
      -p tcp --dport 8080 -m statistic --mode random --probability 0.33333 -j DNAT --to 10.255.0.3:80
      -p tcp --dport 8080 -m statistic --mode random --probability 0.50000 -j DNAT --to 10.255.0.4:80
      -p tcp --dport 8080 -j DNAT --to 10.255.0.6:80
    nat MD-MESH-SNAT (from POSTROUTING)
      -o ov4097 -m conntrack --ctstate DNAT -j SNAT --to-source 10.255.0.2
    filter MD-MESH-FORWARD (from FORWARD, first)
      -o ov4097 -m conntrack --ctstate DNAT -j ACCEPT

The ``statistic`` rules pick each of *n* tasks with probability 1/n (the first 1/n, the next
1/(n-1) of the rest, ...). The SNAT is what makes it work across nodes: the task may live on
another node, and would answer the client straight from there; with this node's own address on
the overlay as the source, the reply comes back here, where conntrack undoes both rewrites.
The task sees the node, not the client (as with Docker's ingress).

``--publish mode=host,published=P,target=T`` is not the mesh: the port is a resource of the
task's node only (the scheduler's port filter), published there by the node's daemon (stage 8).

Man pages: iptables(8), iptables-extensions(8) (statistic, conntrack, DNAT, SNAT),
iptables-restore(8). Docs: docs.docker.com "Use swarm mode routing mesh"; Kubernetes
"Virtual IPs and Service Proxies" (iptables mode). Used by: vxlan.py (the agent's pass).
"""

import subprocess

from minidocker.cluster import overlay
from minidocker.cluster import swarm as records

CHAINS = {"nat": ["MD-MESH", "MD-MESH-SNAT"], "filter": ["MD-MESH-FORWARD"]}
HOOKS = [("nat", "PREROUTING", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", "MD-MESH"]),
         ("nat", "OUTPUT", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", "MD-MESH"]),
         ("nat", "POSTROUTING", ["-j", "MD-MESH-SNAT"]),
         ("filter", "FORWARD", ["-j", "MD-MESH-FORWARD"])]
_applied: dict[str, list[str] | None] = {"rules": None}  # last written (None: not yet)


def backends(state: dict, service: dict) -> list[str]:
    """The addresses of a service's running tasks, on its first network."""
    found = []
    for task in sorted(state["tasks"].values(), key=lambda t: (t.get("Slot") or 0, t["ID"])):
        if task["ServiceID"] == service["ID"] and task["DesiredState"] == records.RUNNING \
                and task["Status"]["State"] == records.RUNNING:
            found += [a["Address"] for a in task.get("NetworksAttachments", [])][:1]
    return found


def rules(state: dict, mine: dict[str, dict], node_id: str) -> list[str]:
    """Every rule of the mesh on this node, as ``iptables-restore`` lines."""
    lines = []
    for service in sorted(state["services"].values(), key=lambda s: s["Spec"]["Name"]):
        networks = overlay.service_networks(service)
        if not networks or networks[0] not in mine:
            continue
        addresses = backends(state, service)
        for port in overlay.mesh_ports(service):
            proto, published = port.get("Protocol", "tcp"), port["PublishedPort"]
            for index, address in enumerate(addresses):
                left = len(addresses) - index
                pick = ["-m", "statistic", "--mode", "random", "--probability",
                        f"{1 / left:.5f}"] if left > 1 else []
                lines.append(" ".join(["-A MD-MESH -p", proto, "--dport", str(published),
                                       *pick, "-j DNAT --to-destination",
                                       f"{address}:{port['TargetPort']}"]))
    for network in sorted(mine.values(), key=lambda n: n["VNI"]):
        bridge = overlay.bridge_name(network)
        lines.append(f"-A MD-MESH-SNAT -o {bridge} -m conntrack --ctstate DNAT -j SNAT "
                     f"--to-source {network['NodeAddresses'][node_id]}")
        lines.append(f"-A MD-MESH-FORWARD -o {bridge} -m conntrack --ctstate DNAT -j ACCEPT")
    return lines


def apply(state: dict, mine: dict[str, dict], node: dict) -> None:
    """Write the mesh's chains (whole, with ``iptables-restore --noflush``) if they changed;
    with no overlay left on the node, remove the chains and their hooks."""
    wanted = rules(state, mine, node["ID"])
    if wanted == _applied["rules"]:
        return  # unchanged: no iptables run at all
    if not mine:
        remove()  # also the first time: whatever an earlier agent of this node left
    else:
        restore(wanted)
        for table, chain, args in HOOKS:
            if iptables("-t", table, "-C", chain, *args).returncode:
                iptables("-t", table, "-I", chain, "1", *args)
    _applied["rules"] = wanted


def restore(lines: list[str]) -> None:
    """Each chain declared (so emptied) and filled again, in one step per table."""
    text = []
    for table, chains in CHAINS.items():
        text += [f"*{table}", *(f":{chain} - [0:0]" for chain in chains)]
        text += [line for line in lines if line.split()[1] in chains]
        text.append("COMMIT")
    subprocess.run(["iptables-restore", "-w", "--noflush"], input="\n".join(text) + "\n",
                   text=True, check=True, capture_output=True)


def remove() -> None:
    for table, chain, args in HOOKS:
        iptables("-t", table, "-D", chain, *args)
    for table, chains in CHAINS.items():
        for chain in chains:
            iptables("-t", table, "-F", chain)
            iptables("-t", table, "-X", chain)


def iptables(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)
