"""TLS for a registry: the kit's own CA, and where a client looks for the CAs it trusts.

A company registry usually has a certificate signed by the company's CA, which no system
trust store holds: Docker then fails with ``x509: certificate signed by unknown authority``.
Docker's answer, kept here, is a directory per registry — ``/etc/docker/certs.d/HOST:PORT/``
with ``ca.crt`` (and ``client.cert``/``client.key`` for mutual TLS) — trusted for that
registry only, next to the system's CAs. minidocker's is ``/etc/minidocker/certs.d`` (or
``$MINIDOCKER_CERTS_D``).

An *insecure registry* is one the client may reach without verified TLS: Docker tries HTTPS
without checking the certificate, then plain HTTP. Loopback (``localhost``, 127.0.0.0/8,
::1) is always insecure, as in Docker; others must be named with ``--insecure-registry`` (or
``$MINIDOCKER_INSECURE_REGISTRIES``, comma-separated, as ``insecure-registries`` in
``daemon.json``).

``make_certs(dir, hosts)`` is the kit's CA: ``openssl`` makes a CA and a server certificate for
``hosts`` (its subjectAltName), for ``minidocker registry serve --tls``.

Docs: Docker's "Verify repository client with certificates", "Test an insecure registry";
openssl-req(1), openssl-x509(1); RFC 5280 section 4.2.1.6 (subjectAltName).
Used by: the registry client (``client.py``), ``minidocker registry certs``; notebook 11.
"""

import ipaddress
import os
import ssl
import subprocess
from pathlib import Path

from minidocker.errors import MinidockerError

CERTS_D = Path("/etc/minidocker/certs.d")


# --- the server's side: the kit's CA -----------------------------------------------------------

def make_certs(directory: Path, hosts: list[str]) -> tuple[Path, Path]:
    """``ca.crt``/``ca.key`` (made once) and ``server.crt``/``server.key`` for ``hosts``;
    returns (server.crt, server.key)."""
    names = ",".join(("IP:" if _is_ip(h) else "DNS:") + h for h in hosts)
    return issue(directory, "server", hosts[0],
                 f"subjectAltName={names}\nextendedKeyUsage=serverAuth\n")


def make_client_cert(directory: Path, name: str = "client") -> tuple[Path, Path]:
    """A client certificate from the same CA (``NAME.crt``/``NAME.key``), for mutual TLS:
    the daemon's ``--tlsverify`` lets in only clients that show one."""
    return issue(directory, name, name, "extendedKeyUsage=clientAuth\n")


def issue(directory: Path, name: str, common_name: str, extensions: str) -> tuple[Path, Path]:
    """The kit's CA (made once) signs a new key's certificate request: NAME.crt, NAME.key."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MinidockerError(f"cannot make the certificates' directory {directory}: "
                              f"{exc.strerror} (give a directory you can write)") from None
    ca_crt, ca_key = directory / "ca.crt", directory / "ca.key"
    crt, key, csr = (directory / f"{name}.{kind}" for kind in ("crt", "key", "csr"))
    if not ca_crt.exists():
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365",
                 "-subj", "/CN=minidocker kit CA", "-keyout", ca_key, "-out", ca_crt,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={common_name}",
             "-keyout", key, "-out", csr)
    extfile = directory / f"{name}.ext"
    extfile.write_text(extensions.rstrip("\n") + "\nbasicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
             "-days", "365", "-extfile", extfile, "-out", crt)
    for secret in (ca_key, key):
        secret.chmod(0o600)
    csr.unlink()
    return crt, key


def _openssl(*args) -> None:
    try:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
    except FileNotFoundError:
        raise MinidockerError("openssl is not installed: install it (apt install openssl) "
                              "to make the kit's certificates") from None
    except subprocess.CalledProcessError as exc:
        raise MinidockerError(f"openssl {args[0]} failed: {exc.stderr.decode().strip()}") \
            from None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --- the client's side: whom to trust ---------------------------------------------------------

def certs_dir(host: str) -> Path:
    """Where the CAs for ``host`` (``HOST:PORT`` as in the image name) live."""
    return Path(os.environ.get("MINIDOCKER_CERTS_D") or CERTS_D) / host


def ssl_context(host: str) -> ssl.SSLContext:
    """The system's CAs plus ``certs.d/HOST/*.crt``, and a client certificate if one is
    there (``client.cert`` + ``client.key``)."""
    context = ssl.create_default_context()
    folder = certs_dir(host)
    if folder.is_dir():
        for ca in sorted(folder.glob("*.crt")):
            context.load_verify_locations(cafile=str(ca))
        if (folder / "client.cert").exists() and (folder / "client.key").exists():
            context.load_cert_chain(str(folder / "client.cert"), str(folder / "client.key"))
    return context


def insecure_registries(extra: tuple[str, ...] = ()) -> list[str]:
    named = os.environ.get("MINIDOCKER_INSECURE_REGISTRIES", "")
    return [h.strip() for h in [*extra, *named.split(",")] if h.strip()]


def is_insecure(host: str, extra: tuple[str, ...] = ()) -> bool:
    """May ``host`` (``name[:port]``) be reached without verified TLS? Loopback always; a
    host, host:port or CIDR named as insecure too."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if address is not None and address.is_loopback:
        return True
    for entry in insecure_registries(extra):
        if entry in (host, name):
            return True
        try:
            if address is not None and address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def explain_tls_failure(host: str, error: Exception) -> MinidockerError:
    """The seeds' x509 errors, each with what to do about it."""
    text = str(error)
    insecure = f"or, if you accept an unverified connection, use --insecure-registry {host}"
    if "mismatch" in text:  # the certificate names other hosts (its subjectAltName)
        return MinidockerError(
            f'Get "https://{host}/v2/": x509: certificate is not valid for {host} ({text}). '
            f"Make the server's certificate for the name you use (minidocker registry certs "
            f"--host NAME), {insecure}")
    if "expired" in text:
        return MinidockerError(f'Get "https://{host}/v2/": x509: certificate has expired or '
                               f"is not yet valid ({text}); renew it, {insecure}")
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return MinidockerError(
            f'Get "https://{host}/v2/": x509: certificate signed by unknown authority '
            f"({text}). The registry's certificate is signed by a CA this machine does not "
            f"trust: put that CA in {certs_dir(host)}/ca.crt (for the kit's registry: the "
            f"ca.crt next to its server.crt), {insecure}")
    return MinidockerError(f"TLS with {host} failed: {text}; {insecure}")
