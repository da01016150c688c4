"""The cluster's store: a real 3-member etcd cluster inside the lab, with TLS everywhere.

etcd keeps a key-value map consistent on several machines with the Raft consensus protocol:
a write is committed when a majority of members (2 of 3) has it on disk, so one member may die
and the cluster still reads and writes. Each member here is a process in the lab's network
namespace of its own, plugged into the lab's bridge like a node (10.77.0.2-4): port 2380 talks Raft to its
peers, port 2379 serves clients (gRPC, and the JSON gateway store.py uses).

Every connection is TLS with certificates from the lab's own CA, and both sides show one:
members prove themselves to each other (``--peer-client-cert-auth``), clients must present a
client certificate (``--client-cert-auth``). The CA and the certificates are made with
openssl here; the kit's CA helper (registry/tls.py) will take this over.

Docs: etcd.io "Clustering Guide" (static bootstrap), "Transport security model";
etcd(1). Used by: lab.py (``cluster up``), store.py, tests/test_cluster.py.
"""

import time
from pathlib import Path

from minidocker import explain
from minidocker.errors import MinidockerError
from minidocker.registry.tls import issue

ETCD = "/usr/bin/etcd"
CLIENT_PORT, PEER_PORT = 2379, 2380
START_TIMEOUT = 120.0  # a bound for a hang: a member that dies is reported at once
CLIENT_CERT = "client"  # the certificate every minidocker process shows to etcd


class EtcdError(MinidockerError):
    """etcd could not be started, or answered with an error."""


# --- certificates --------------------------------------------------------------------------------

def make_certificates(directory: Path, members: dict[str, str]) -> None:
    """The CA, one certificate per member (a server to clients, a client to its peers, so
    both usages), and the client certificate of minidocker's processes."""
    for name, address in members.items():  # the kit's CA (registry/tls.py) is made first
        issue(directory, name, name, f"subjectAltName=IP:{address}\n"
              "extendedKeyUsage=serverAuth,clientAuth")
    issue(directory, CLIENT_CERT, "minidocker", "extendedKeyUsage=clientAuth")


# --- the members ---------------------------------------------------------------------------------

def member_argv(name: str, address: str, members: dict[str, str], data: Path,
                pki: Path) -> list[str]:
    """One member's command line: where it listens, who its peers are, its certificates, and
    Raft's clock: the leader's heartbeat every 200 ms, an election after 2 s without one
    (etcd's "Tuning" guide: raise both on a slow machine, where a member starved of CPU for
    a second would otherwise start elections that stall every request). 2 s keeps etcd's
    shortest lease at 3 s (1.5 election timeouts), below the agents' TTL (10 s)."""
    peers = ",".join(f"{n}=https://{a}:{PEER_PORT}" for n, a in members.items())
    return [ETCD, "--name", name, "--data-dir", str(data),
            "--listen-client-urls", f"https://{address}:{CLIENT_PORT}",
            "--advertise-client-urls", f"https://{address}:{CLIENT_PORT}",
            "--listen-peer-urls", f"https://{address}:{PEER_PORT}",
            "--initial-advertise-peer-urls", f"https://{address}:{PEER_PORT}",
            "--initial-cluster", peers, "--initial-cluster-state", "new",
            "--initial-cluster-token", "minidocker-lab",
            "--cert-file", str(pki / f"{name}.crt"), "--key-file", str(pki / f"{name}.key"),
            "--client-cert-auth", "--trusted-ca-file", str(pki / "ca.crt"),
            "--peer-cert-file", str(pki / f"{name}.crt"),
            "--peer-key-file", str(pki / f"{name}.key"),
            "--peer-client-cert-auth", "--peer-trusted-ca-file", str(pki / "ca.crt"),
            "--heartbeat-interval", "200", "--election-timeout", "2000",
            "--logger", "zap", "--log-level", "warn"]


def start_cluster(lab) -> None:
    """Certificates, then the three members in the lab's namespace; returns when the cluster
    has a leader and answers a client."""
    from minidocker.cluster import lab as labs
    from minidocker.cluster.store import Store

    if not Path(ETCD).exists():
        raise EtcdError(f"etcd is not installed ({ETCD}): install it (apt install etcd-server), "
                        "or make a lab without it: 'minidocker cluster up --no-etcd'")
    directory = Path(lab.directory) / "etcd"
    pki = directory / "pki"
    for index in range(1, labs.ETCD_MEMBERS + 1):
        name = f"etcd{index}"
        lab.etcd_addresses[name] = labs.etcd_address(index)
        lab.etcd_holders[name] = labs.hold_namespace()
        lab.save()
        labs.plug_in(lab, name, lab.etcd_holders[name], lab.etcd_addresses[name])
    make_certificates(pki, lab.etcd_addresses)
    for name, address in lab.etcd_addresses.items():
        argv = member_argv(name, address, lab.etcd_addresses, directory / name, pki)
        explain.step("etcd", f"--name {name} --listen-peer-urls https://{address}:{PEER_PORT} "
                     f"(in {name}'s namespace)")
        lab.etcd[name] = spawn_member(lab, name, argv)
        lab.save()
    labs.enter(lab)
    wait_until_healthy(Store.for_lab(lab), lab)


def spawn_member(lab, name: str, argv: list[str]) -> int:
    from minidocker.cluster import lab as labs

    netns = f"/proc/{lab.etcd_holders[name]}/ns/net"
    return labs.spawn(labs.in_namespace(netns, argv),
                      Path(lab.directory) / "etcd" / f"{name}.log", None)


def restart_member(lab, name: str) -> None:
    """Start a stopped member again, on its data directory (it rejoins and catches up)."""
    directory = Path(lab.directory) / "etcd"
    argv = member_argv(name, lab.etcd_addresses[name], lab.etcd_addresses, directory / name,
                       directory / "pki")
    argv[argv.index("new")] = "existing"
    lab.etcd[name] = spawn_member(lab, name, argv)
    lab.save()


def wait_until_healthy(store, lab) -> None:
    from minidocker.cluster import lab as labs

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            store.get("/minidocker/health")
            return
        except EtcdError as exc:
            dead = [n for n, pid in lab.etcd.items() if not labs.alive(pid)]
            if dead or time.monotonic() > deadline:
                log = Path(lab.directory) / "etcd" / f"{(dead or ['etcd1'])[0]}.log"
                raise EtcdError(f"etcd did not start ({exc}): "
                                f"{log.read_text()[-600:] if log.exists() else ''}") from None
            time.sleep(0.2)
