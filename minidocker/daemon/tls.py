"""Stage 12 — TLS in front of the Engine API: ``minidocker daemon --tlsverify``.

Whoever reaches the Engine API is root on the host, so on TCP it takes *mutual* TLS, as
``dockerd --tlsverify``: the daemon shows its certificate, and the client must show one that
the daemon's CA (``--tlscacert``) signed; ``DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=DIR`` makes
the docker CLI do its part. ``minidocker daemon certs DIR`` makes the kit's CA and both
certificates.

Why a front door of threads and not the event loop's own TLS? ``docker run`` *half-closes*
its attach connection: when its stdin ends (or at once, without ``-i``) it closes its sending
side — over TLS, a ``close_notify`` alert — and keeps reading the container's output. asyncio's
TLS transport closes the whole connection on ``close_notify``; a blocking ``ssl`` socket, as
Go's TLS, keeps the other direction open. So each TLS connection gets a thread that unwraps
it and relays the bytes to the daemon's own unix socket, passing the half-close on as
``shutdown(SHUT_WR)``; the application behind sees an ordinary local client.

Man pages: ssl(7ssl) (openssl), shutdown(2), select(2). Docs: "Protect the Docker daemon
socket" (docs.docker.com); RFC 8446 section 6.1 (closure alerts).
"""

import contextlib
import select
import socket
import ssl
import threading

from minidocker.errors import MinidockerError


def server_context(ca: str, cert: str, key: str) -> ssl.SSLContext:
    """TLS 1.2 or later, our certificate, and a client certificate required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
        context.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise MinidockerError(f"cannot load the TLS files ({exc}): check --tlscacert, "
                              "--tlscert and --tlskey ('minidocker daemon certs DIR' makes "
                              "them)") from None
    context.verify_mode = ssl.CERT_REQUIRED
    return context


class FrontDoor:
    """Accepts TLS clients on ``listener`` and relays each to the unix socket ``backend``."""

    def __init__(self, listener: socket.socket, context: ssl.SSLContext, backend: str):
        self.listener, self.context, self.backend = listener, context, backend

    def start(self) -> None:
        threading.Thread(target=self.accept_forever, name="tls-front-door", daemon=True).start()

    def accept_forever(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # the listener was closed: the daemon stops
                return
            threading.Thread(target=self.serve, args=(client,), daemon=True).start()

    def serve(self, client: socket.socket) -> None:
        """The handshake (a client without a good certificate goes no further), then the
        relay until both directions have ended."""
        client.settimeout(10)
        try:
            tls = self.context.wrap_socket(client, server_side=True)
        except (OSError, ssl.SSLError):
            client.close()
            return
        tls.settimeout(None)
        local = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            local.connect(self.backend)
            relay(tls, local)
        except OSError:
            pass
        finally:
            local.close()
            tls.close()


def relay(tls: ssl.SSLSocket, local: socket.socket) -> None:
    """Copy both ways; an end that stops sending is passed on as a half-close."""
    reading = {tls, local}
    while reading:
        ready, _, _ = select.select(list(reading), [], [])
        if tls.pending() and tls not in ready:
            ready.append(tls)
        for source in ready:
            target = local if source is tls else tls
            try:
                data = source.recv(65536)  # blocks only until the rest of a TLS record
            except OSError:  # ssl.SSLError too: a broken connection ends this direction
                data = b""
            if data:
                target.sendall(data)
                continue
            reading.discard(source)
            if source is tls:
                with contextlib.suppress(OSError):
                    local.shutdown(socket.SHUT_WR)  # the client's close_notify, passed on
            else:
                return  # the daemon has answered everything: close the TLS connection
