"""/etc/hosts, /etc/resolv.conf and /etc/hostname: how a container finds names.

Docker writes these three files for each container, outside its image, and bind-mounts them
over the image's. ``/etc/hosts`` holds the localhost lines, ``--add-host`` entries, ``--link``
entries and the container's own address and hostname; ``/etc/resolv.conf`` is the host's, minus
nameservers on 127.x (they would be the *container's* loopback, where no resolver listens), or
8.8.8.8 and 8.8.4.4 when nothing is left; ``--dns``/``--dns-search`` replace them.

Finding the other containers of a user-defined network by name: Docker runs an embedded DNS
server (127.0.0.11) in every container. We chose the older, visible mechanism: keep each
container's ``/etc/hosts`` current, rewritten whenever a peer joins or leaves the network.
A student can ``cat /etc/hosts`` and see exactly why ``ping web`` works; the cost is that a
name's address is only as fresh as the last rewrite, and there is no round-robin.

The files are written *in place* (same inode): a bind mount pins the inode it was made on,
so a rename(2) would give the container a stale file. A reader can catch a half-written file
for an instant — the same trade-off Docker makes for these files.

``write_container_files`` builds the three files of one container from the endpoint records
(store.py); ``refresh_peers`` rewrites those of the containers on a network.

Man pages: hosts(5), resolv.conf(5), hostname(5). Docker: ``--add-host``, ``--link``,
``--dns``, ``--dns-search``, ``--hostname``.
Used by: notebook 08-networking; lab 08-networking has the student build the same step by hand.
"""

import ipaddress
import os
from pathlib import Path

from minidocker.errors import MinidockerError, NotFound
from minidocker.network import store
from minidocker.network.records import Network

LOCALHOST = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""
FALLBACK_NAMESERVERS = ["8.8.8.8", "8.8.4.4"]  # Docker's, when the host has only 127.x ones


def parse_add_host(spec: str) -> tuple[str, str]:
    """``--add-host name:ip`` as ``(name, ip)``."""
    name, sep, address = spec.partition(":")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        sep = ""
    if not sep or not name:
        raise MinidockerError(f"invalid argument {spec!r} for --add-host: use name:ip, e.g. "
                              "db:10.0.0.5")
    return name, address


def parse_link(spec: str) -> tuple[str, str]:
    """``--link name[:alias]`` as ``(name, alias)``."""
    name, _, alias = spec.partition(":")
    return name.lstrip("/"), alias or name.lstrip("/")


def hosts_file(hostname: str, own_addresses: list[str], add_hosts: list[tuple[str, str]],
               links: list[tuple[str, list[str]]], peers: list[tuple[str, list[str]]]) -> str:
    """The text of /etc/hosts: localhost, ``--add-host``, links, peers, and ourselves.
    ``links`` and ``peers`` are ``(address, names)`` pairs."""
    lines = [LOCALHOST.rstrip("\n")]
    lines += [f"{address}\t{name}" for name, address in add_hosts]
    lines += [f"{address}\t{' '.join(names)}" for address, names in links + peers]
    short = hostname.split(".")[0]
    own_names = hostname if short == hostname else f"{hostname} {short}"
    lines += [f"{address}\t{own_names}" for address in own_addresses]
    return "\n".join(lines) + "\n"


def host_resolv_conf(path: Path = Path("/etc/resolv.conf")) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def resolv_conf(dns: list[str], dns_search: list[str], host_lines: list[str]) -> str:
    """The text of /etc/resolv.conf: the host's, without loopback nameservers, with
    ``--dns`` and ``--dns-search`` replacing what they name."""
    servers = [line.split()[1] for line in host_lines
               if line.startswith("nameserver") and len(line.split()) > 1]
    servers = [s for s in servers if not s.startswith("127.") and s != "::1"]
    search = [word for line in host_lines if line.startswith("search")
              for word in line.split()[1:]]
    options = [line for line in host_lines if line.startswith("options")]
    lines = [f"search {' '.join(dns_search or search)}"] if dns_search or search else []
    lines += [f"nameserver {s}" for s in (dns or servers or FALLBACK_NAMESERVERS)]
    return "\n".join(lines + options) + "\n"


def rewrite(path: Path, text: str) -> None:
    """Write a file the container may have bind-mounted already: in place, keeping its inode
    (see the module docstring). A new one needs no temporary file either: the container that
    reads it does not start before it is written, and every start writes it again. Readable
    by every user inside, as Docker's (0644)."""
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.fchmod(fd, 0o644)  # a file written by an older version was 0600
        os.write(fd, data)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


# --- the files of one container, from the endpoint records ------------------------------------

def write_container_files(container_id: str, directory: Path) -> dict[str, Path]:
    """Write the container's ``hosts``, ``resolv.conf`` and ``hostname`` into ``directory``
    and return where each goes: ``{"/etc/hosts": path, ...}``, for the caller to bind-mount.
    The directory is remembered, so the hosts file is kept current as peers come and go."""
    with store.locked():
        record = store.read_endpoints(container_id)
        if record is None:
            raise NotFound(f"container {container_id[:12]} has no network record: call "
                           "attach first")
        record["files_dir"] = str(directory)
        store.write_endpoints(record)
        return _write_files(record)


def _write_files(record: dict) -> dict[str, Path]:
    directory = Path(record["files_dir"])
    directory.mkdir(parents=True, exist_ok=True)
    hosts_text, resolv_text = _files_text(record)
    files = {"/etc/hosts": directory / "hosts", "/etc/resolv.conf": directory / "resolv.conf",
             "/etc/hostname": directory / "hostname"}
    rewrite(files["/etc/hosts"], hosts_text)
    rewrite(files["/etc/resolv.conf"], resolv_text)
    rewrite(files["/etc/hostname"], record["hostname"] + "\n")
    return files


def _files_text(record: dict) -> tuple[str, str]:
    host_resolv = host_resolv_conf()
    if record["mode"] == "host":  # the host's own files, as Docker copies them
        etc_hosts = Path("/etc/hosts")
        return (etc_hosts.read_text() if etc_hosts.exists() else LOCALHOST,
                "\n".join(host_resolv) + "\n")
    if record["mode"] == "container":
        other = store.read_endpoints(record["network"].split(":", 1)[1])
        if other and other["files_dir"]:
            folder = Path(other["files_dir"])
            return (folder / "hosts").read_text(), (folder / "resolv.conf").read_text()
    own = [e["ip_address"] for e in record["endpoints"][:1]]
    add_hosts = [tuple(h) for h in record["add_hosts"]]
    text = hosts_file(record["hostname"], own, add_hosts, _link_lines(record),
                      _peer_lines(record))
    return text, resolv_conf(record["dns"], record["dns_search"], host_resolv)


def _names(record: dict, endpoint: dict | None = None) -> list[str]:
    """A container's names on one network: its name, that endpoint's aliases, its short ID."""
    aliases = record["aliases"] if endpoint is None else endpoint.get("aliases", [])
    return list(dict.fromkeys([record["name"], *aliases, record["container"][:12]]))


def _peer_lines(record: dict) -> list[tuple[str, list[str]]]:
    """The other containers on our user-defined networks (not on the default ``bridge``,
    where Docker only resolves ``--link``s)."""
    mine = {e["network_id"]: e for e in record["endpoints"] if e["network"] != "bridge"}
    return [(e["ip_address"], _names(other, e)) for other in store.all_endpoint_records()
            if other["container"] != record["container"]
            for e in other["endpoints"] if e["network_id"] in mine]


def resolve_links(links: list[str]) -> list[list[str]]:
    """``--link name:alias`` as ``[container id, alias]``; the container must be attached."""
    resolved = []
    for spec in links:
        name, alias = parse_link(spec)
        found = [r for r in store.all_endpoint_records()
                 if name in (r["name"], r["container"]) or r["container"].startswith(name)]
        if len(found) != 1 or not found[0]["endpoints"]:
            raise NotFound(f"could not get container for {name}: --link needs a running "
                           "container on a bridge network")
        resolved.append([found[0]["container"], alias])
    return resolved


def _link_lines(record: dict) -> list[tuple[str, list[str]]]:
    lines = []
    for container_id, alias in record["links"]:
        linked = store.read_endpoints(container_id)
        if linked and linked["endpoints"]:
            names = list(dict.fromkeys([alias, container_id[:12], linked["name"]]))
            lines.append((linked["endpoints"][0]["ip_address"], names))
    return lines


def refresh_peers(network: Network) -> None:
    """Rewrite the hosts file of every container on the network whose file may change: on a
    user network every one (its peers are in it); on the default bridge, where names are not
    resolved, only those with ``--link``s (a linked container may have a new address)."""
    for record in store.all_endpoint_records():
        if record["files_dir"] and (record["links"] or network.name != "bridge") and any(
                e["network_id"] == network.id for e in record["endpoints"]):
            _write_files(record)
