"""The network records on disk: what exists, so that it can be found again and removed.

Each network is one JSON file, ``$MINIDOCKER_ROOT/networks/<id>.json``: its name, driver,
subnet, gateway, bridge, options, and the IPAM allocations (which container holds which
address). Each container that was given networking has one *endpoint record*,
``networks/endpoints/<container id>.json``, listing every veth, address and iptables rule made
for it. A record is written *before* the kernel object it names is created, so that after a
crash (even ``kill -9`` of minidocker itself) ``release`` finds everything from the records
alone.

Two concurrent ``run``s must not pick the same address or the same subnet: every change goes
through ``locked()``, an exclusive flock(2) on ``networks/.lock``.

``network create`` makes a bridge and its rules in several steps, and may be killed between
any two. Its record is written first as ``networks/<id>.creating`` (what it is about to make)
and renamed to ``<id>.json`` once all is made: rename(2) is the moment the network exists. A
``.creating`` record found under the lock is a killed create's (a create holds the lock
throughout), and the next create or prune undoes what it names (``pending_networks``).

The record itself (``Network``) lives in records.py; this module only stores it, and asks
ipam.py for the default bridge's gateway. IPAM never reads the disk: the dependency goes one
way, store -> ipam -> records.

Man pages: flock(2), rename(2).
Used by: notebook 08-networking, lab 08-networking.
"""

import fcntl
import hashlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from minidocker.errors import MinidockerError, NotFound
from minidocker.network import ipam
from minidocker.network.records import (
    DEFAULT_BRIDGE,
    DEFAULT_SUBNET,
    ICC_OPTION,
    PREDEFINED,
    Network,
)
from minidocker.state import read_json, state_root, write_json


def networks_dir() -> Path:
    path = state_root() / "networks"
    path.mkdir(parents=True, exist_ok=True)
    return path


def endpoints_dir() -> Path:
    path = networks_dir() / "endpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def locked() -> Iterator[None]:
    """Hold the networks lock: one writer of network and endpoint records at a time."""
    with open(networks_dir() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def new_id() -> str:
    return secrets.token_hex(32)


# --- networks ---------------------------------------------------------------------------------

def save(network: Network) -> None:
    write_json(networks_dir() / f"{network.id}.json", asdict(network))


def delete(network: Network) -> None:
    (networks_dir() / f"{network.id}.json").unlink(missing_ok=True)


def all_networks() -> list[Network]:
    """Every network, the predefined ones first (created on first use, like dockerd does at
    start)."""
    found = [Network(**read_json(path)) for path in sorted(networks_dir().glob("*.json"))]
    names = {n.name for n in found}
    for name in PREDEFINED:
        if name not in names:
            found.append(predefined(name))
            save(found[-1])
    return sorted(found, key=lambda n: (not n.predefined, n.created))


def predefined(name: str) -> Network:
    """A predefined network; its ID is derived from its name, so that two first-time callers
    racing to create it write the same record."""
    network_id = hashlib.sha256(f"minidocker predefined network {name}".encode()).hexdigest()
    if name == "bridge":
        subnet = os.environ.get("MINIDOCKER_BRIDGE_SUBNET") or DEFAULT_SUBNET  # dockerd --bip
        icc = os.environ.get("MINIDOCKER_ICC", "true")  # dockerd --icc=false
        return Network(network_id, "bridge", "bridge", subnet, ipam.first_host(subnet),
                       DEFAULT_BRIDGE, options={ICC_OPTION: icc})
    return Network(network_id, name, {"host": "host", "none": "null"}[name])


def find(name_or_id: str) -> Network:
    """A network by name, full ID or unique ID prefix, as Docker looks them up."""
    networks = all_networks()
    for network in networks:
        if name_or_id in (network.name, network.id):
            return network
    matches = [n for n in networks if n.id.startswith(name_or_id)] if name_or_id else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise MinidockerError(f"network {name_or_id} is ambiguous ({len(matches)} matches): "
                              "give more of its ID")
    raise NotFound(f"network {name_or_id} not found: see 'minidocker network ls', or create it "
                   f"with 'minidocker network create {name_or_id}'")


def bridge_owner() -> str:
    """The alias every bridge made from this state root carries (see bridge.py): the state
    root's path, or its hash if the path is too long for an alias (255 bytes)."""
    root = str(state_root().resolve())
    if len(root) > 200:
        root = "sha256:" + hashlib.sha256(root.encode()).hexdigest()
    return f"minidocker:{root}"


# --- a network being created ------------------------------------------------------------------

def pending_path(network: Network) -> Path:
    return networks_dir() / f"{network.id}.creating"


def save_pending(network: Network) -> None:
    """Write what a create is about to make, before it makes anything."""
    write_json(pending_path(network), asdict(network))


def commit(network: Network) -> None:
    """The network exists: its record takes its final name in one step."""
    os.rename(pending_path(network), networks_dir() / f"{network.id}.json")


def discard_pending(network: Network) -> None:
    pending_path(network).unlink(missing_ok=True)


def pending_networks() -> list[Network]:
    """The networks of creates that were killed half-way (call it under ``locked()``)."""
    return [Network(**read_json(path)) for path in sorted(networks_dir().glob("*.creating"))]


# --- endpoint records ---------------------------------------------------------------------------

def endpoint_path(container_id: str) -> Path:
    return endpoints_dir() / f"{container_id}.json"


def read_endpoints(container_id: str) -> dict | None:
    path = endpoint_path(container_id)
    return read_json(path) if path.exists() else None


def write_endpoints(record: dict) -> None:
    write_json(endpoint_path(record["container"]), record)


def all_endpoint_records() -> list[dict]:
    return [read_json(path) for path in sorted(endpoints_dir().glob("*.json"))]
