"""NAT and filtering with iptables: how containers reach out, are reached, and are kept apart.

Four jobs, each a few rules, all in minidocker's own chains so that removing them is exact:

* **Egress** — ``nat MINIDOCKER-POSTROUTING``: ``-s <subnet> ! -o <bridge> -j MASQUERADE``
  rewrites a container's private source address to the host's as its packet leaves.
* **Publishing** — ``nat MINIDOCKER`` (jumped from PREROUTING and OUTPUT for packets to one of
  the host's own addresses, ``-m addrtype --dst-type LOCAL``): ``-p tcp --dport 8080 -j DNAT
  --to-destination 172.18.0.2:80`` rewrites the destination; ``filter MINIDOCKER`` lets it in.
* **Isolation** — ``filter MINIDOCKER-ISOLATION-STAGE-1/2`` (Docker's two stages): a packet
  that enters from bridge A and leaves by any *other* bridge is dropped, so networks cannot
  see each other. ``--internal`` drops everything between the bridge and the outside world
  (and gets no MASQUERADE); ``enable_icc=false`` drops bridge → same bridge (containers'
  traffic through a bridge passes iptables because ``br_netfilter`` is loaded: like dockerd,
  we ``modprobe br_netfilter`` when a network needs it and it is not there yet).
* **Forwarding** — ``filter MINIDOCKER-FORWARD`` accepts what the network allows, so the rules
  work even on a host whose FORWARD policy is DROP.

Publishing to the host's own 127.0.0.1: we chose **hairpin NAT**, as Docker does with
``--userland-proxy=false``, rather than a ``docker-proxy`` process per port. The OUTPUT hook
DNATs locally made packets; ``route_localnet=1`` on the bridge lets a packet from 127.0.0.1 be
routed out of it at all, and ``-s 127.0.0.0/8 -o <bridge> -j MASQUERADE`` gives it the
gateway's address so that the container's reply comes back. No extra process to keep alive or
clean up, and the whole mechanism is visible in ``iptables -t nat -S``. The price:
``route_localnet`` lets a neighbour on the bridge send to 127.0.0.1 (CVE-2020-8558), which is
why Docker keeps the proxy as its default — so ``filter MINIDOCKER-INPUT`` drops what comes in
from a bridge for 127.0.0.0/8 unless it belongs to a connection we made (kube-proxy's rule).

Every rule is a ``Rule`` (table, chain, arguments), recorded before it is added and deleted
with the same arguments. ``iptables -w`` waits for the xtables lock.

Man pages: iptables(8), iptables-extensions(8) (MASQUERADE, DNAT, addrtype, conntrack),
modprobe(8); the kernel's Documentation/networking/ip-sysctl (bridge-nf-call-iptables).
Used by: notebook 08-networking; lab 08-networking has the student build the same step by hand.
"""

import subprocess
from dataclasses import dataclass
from pathlib import Path

from minidocker import explain
from minidocker.errors import MinidockerError

# Our chains, per table, and where the built-in chains jump into them.
CHAINS = {"nat": ["MINIDOCKER", "MINIDOCKER-POSTROUTING"],
          "filter": ["MINIDOCKER-FORWARD", "MINIDOCKER", "MINIDOCKER-ISOLATION-STAGE-1",
                     "MINIDOCKER-ISOLATION-STAGE-2", "MINIDOCKER-INPUT"]}


@dataclass(frozen=True)
class Rule:
    """One iptables rule: ``iptables -t TABLE -A CHAIN ARGS...``."""

    table: str
    chain: str
    args: tuple[str, ...]

    def to_json(self) -> list:
        return [self.table, self.chain, list(self.args)]

    @classmethod
    def from_json(cls, value: list) -> "Rule":
        return cls(value[0], value[1], tuple(value[2]))


HOOKS = [
    Rule("nat", "PREROUTING", ("-m", "addrtype", "--dst-type", "LOCAL", "-j", "MINIDOCKER")),
    Rule("nat", "OUTPUT", ("-m", "addrtype", "--dst-type", "LOCAL", "-j", "MINIDOCKER")),
    Rule("nat", "POSTROUTING", ("-j", "MINIDOCKER-POSTROUTING")),
    Rule("filter", "FORWARD", ("-j", "MINIDOCKER-FORWARD")),
    Rule("filter", "INPUT", ("-j", "MINIDOCKER-INPUT")),
    Rule("filter", "MINIDOCKER-FORWARD", ("-j", "MINIDOCKER-ISOLATION-STAGE-1")),
]


def iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise MinidockerError(f"iptables {' '.join(args)} failed: {done.stderr.strip()} "
                              "(run 'minidocker doctor' to check iptables and its modules)")
    return done


def exists(rule: Rule) -> bool:
    return iptables("-t", rule.table, "-C", rule.chain, *rule.args, check=False).returncode == 0


def add(rule: Rule, first: bool = False) -> None:
    """Append the rule (insert it first with ``first``) unless it is already there."""
    if not exists(rule):
        where = ["-I", rule.chain, "1"] if first else ["-A", rule.chain]
        explain.step("iptables", " ".join(["-t", rule.table, *where, *rule.args]))
        iptables("-t", rule.table, *where, *rule.args)


def delete(rule: Rule) -> None:
    """Delete the rule, every copy of it; a missing rule (or chain) is fine."""
    while exists(rule):
        iptables("-t", rule.table, "-D", rule.chain, *rule.args)


# --- a container's rules, in one batch ------------------------------------------------------------

def add_all(rules: list[Rule], first: bool = False) -> None:
    """Add a container's rules (its published ports, its links) as one transaction:
    ``iptables-restore --noflush`` reads them all, takes the xtables lock once and commits them
    together — one process instead of two per rule (check, then add). The rules are new (they
    name this container's address), so they are not checked first. ``iptables -S`` shows them
    as if they had been added one by one."""
    if rules:
        for rule in rules:
            explain.step("iptables", " ".join(["-t", rule.table, *_where(rule, first),
                                               *rule.args]))
        _restore(rules, lambda rule: _where(rule, first))


def delete_all(rules: list[Rule]) -> None:
    """Delete a container's rules in one transaction; if one is missing (a crash came between
    recording it and adding it), the batch fails as a whole and they go one by one."""
    if rules and _restore(rules, lambda rule: ["-D", rule.chain], check=False).returncode:
        for rule in rules:
            delete(rule)


def _where(rule: Rule, first: bool) -> list[str]:
    return ["-I", rule.chain, "1"] if first else ["-A", rule.chain]


def _restore(rules: list[Rule], verb, check: bool = True) -> subprocess.CompletedProcess:
    """``iptables-restore --noflush``: one ``*table`` section per table, ``COMMIT`` each."""
    lines = []
    for table in dict.fromkeys(rule.table for rule in rules):
        lines += [f"*{table}", *(" ".join([*verb(rule), *rule.args])
                                 for rule in rules if rule.table == table), "COMMIT"]
    done = subprocess.run(["iptables-restore", "-w", "--noflush"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True)
    if check and done.returncode != 0:
        raise MinidockerError(f"iptables-restore failed: {done.stderr.strip()} (run "
                              "'minidocker doctor' to check iptables and its modules)")
    return done


def chain_exists(table: str, chain: str) -> bool:
    return iptables("-t", table, "-S", chain, check=False).returncode == 0


# --- the base: our chains and the jumps into them --------------------------------------------

def ensure_chains() -> None:
    """Create minidocker's chains and hook them into the built-in ones, once."""
    for table, chains in CHAINS.items():
        for chain in chains:
            if not chain_exists(table, chain):
                iptables("-t", table, "-N", chain)
    for hook in HOOKS:
        add(hook, first=True)  # first: before rules of other tools in the built-in chain


BRIDGE_NF_CALL_IPTABLES = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")


def ensure_bridge_netfilter() -> None:
    """Make iptables see the frames a bridge forwards between two of its own ports, which
    ``enable_icc=false`` needs to drop: that is the ``br_netfilter`` module's job (its sysctl
    ``bridge-nf-call-iptables`` is 1 once it is loaded). Load it if it is not, as dockerd's
    bridge driver does."""
    if BRIDGE_NF_CALL_IPTABLES.exists():
        return
    explain.step("modprobe", "br_netfilter")
    try:
        loaded = subprocess.run(["modprobe", "br_netfilter"], capture_output=True, text=True)
    except FileNotFoundError:
        loaded = None
    if not BRIDGE_NF_CALL_IPTABLES.exists():
        why = loaded.stderr.strip() if loaded else "modprobe is not installed (apt install kmod)"
        raise MinidockerError("enable_icc=false needs the br_netfilter module, so that iptables "
                              f"sees traffic inside a bridge, and it could not be loaded ({why}): "
                              "run 'modprobe br_netfilter', or drop enable_icc=false")


def remove_chains() -> None:
    """Unhook and delete every minidocker chain (when no bridge network is left)."""
    for hook in reversed(HOOKS):
        delete(hook)
    for table, chains in CHAINS.items():
        for chain in chains:
            if chain_exists(table, chain):
                iptables("-t", table, "-F", chain)
        for chain in chains:
            if chain_exists(table, chain):
                iptables("-t", table, "-X", chain)


# --- the rules of one network ------------------------------------------------------------------

def network_rules(bridge: str, subnet: str, internal: bool, icc: bool) -> list[Rule]:
    """Every rule a bridge network needs, in the order they are added."""
    rules = []
    if internal:  # nothing in or out but the bridge's own subnet
        rules += [Rule("filter", "MINIDOCKER-ISOLATION-STAGE-1",
                       ("-i", bridge, "!", "-d", subnet, "-j", "DROP")),
                  Rule("filter", "MINIDOCKER-ISOLATION-STAGE-1",
                       ("-o", bridge, "!", "-s", subnet, "-j", "DROP"))]
    else:
        rules.append(Rule("nat", "MINIDOCKER-POSTROUTING",
                          ("-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE")))
    rules += [
        Rule("nat", "MINIDOCKER-POSTROUTING",  # hairpin: 127.0.0.1 -> a published port
             ("-s", "127.0.0.0/8", "-o", bridge, "-j", "MASQUERADE")),
        Rule("filter", "MINIDOCKER-INPUT",  # ... and its price, CVE-2020-8558: a container
             ("-i", bridge, "-d", "127.0.0.0/8", "-m", "conntrack", "!",  # may not reach
              "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP")),  # the host's 127.0.0.1
        Rule("filter", "MINIDOCKER-ISOLATION-STAGE-1",
             ("-i", bridge, "!", "-o", bridge, "-j", "MINIDOCKER-ISOLATION-STAGE-2")),
        Rule("filter", "MINIDOCKER-ISOLATION-STAGE-2", ("-o", bridge, "-j", "DROP")),
        Rule("filter", "MINIDOCKER-FORWARD",
             ("-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED",
              "-j", "ACCEPT")),
        Rule("filter", "MINIDOCKER-FORWARD", ("-o", bridge, "-j", "MINIDOCKER")),
        Rule("filter", "MINIDOCKER-FORWARD",
             ("-i", bridge, "-o", bridge, "-j", "ACCEPT" if icc else "DROP")),
    ]
    if not internal:
        rules.append(Rule("filter", "MINIDOCKER-FORWARD",
                          ("-i", bridge, "!", "-o", bridge, "-j", "ACCEPT")))
    return rules


def port_rules(bridge: str, container_ip: str, host_ip: str, host_port: int,
               container_port: int, proto: str) -> list[Rule]:
    """The rules that publish one port: DNAT it, let it through, and hairpin it."""
    destination = [] if host_ip in ("", "0.0.0.0") else ["-d", f"{host_ip}/32"]
    return [
        Rule("nat", "MINIDOCKER",
             (*destination, "-p", proto, "-m", proto, "--dport", str(host_port),
              "-j", "DNAT", "--to-destination", f"{container_ip}:{container_port}")),
        Rule("filter", "MINIDOCKER",
             ("-d", f"{container_ip}/32", "!", "-i", bridge, "-o", bridge, "-p", proto,
              "-m", proto, "--dport", str(container_port), "-j", "ACCEPT")),
        Rule("nat", "MINIDOCKER-POSTROUTING",  # a container reaching its own published port
             ("-s", f"{container_ip}/32", "-d", f"{container_ip}/32", "-p", proto, "-m", proto,
              "--dport", str(container_port), "-j", "MASQUERADE")),
    ]
