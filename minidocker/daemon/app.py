"""The daemon as an ASGI application: the Engine API's routes, its version prefixes, its
error body, and the socket it listens on.

``create_app()`` maps each route of the API to its handler (one module per section:
system, containers, execs, images, networks, volumes). A client may put a version before any
path (``/v1.50/containers/json``): ``Versioning`` strips it and refuses versions outside
1.24-1.50, as dockerd refuses them. Every refusal is Docker's ``{"message": ...}`` (errors.py).

``serve()`` applies the settings (daemon.json and the flags, settings.py) and runs the app with
uvicorn on a unix socket that it makes itself, so that the socket is born with its final mode:
0600 (root only), or 0660 owned by ``--group``, as dockerd's ``docker`` group. The Engine API
is a root shell for whoever reaches it, so a TCP listener needs ``--tlsverify``: TLS where the
client too shows a certificate signed by the daemon's CA (``--tlscacert``), as dockerd's —
or, against advice, ``--insecure-tcp``.

Spec: Docker Engine API v1.50 ("Versioning", "Errors"); dockerd(8) (``-H``, ``--group``).
Model: moby ``api/server/server.go`` and ``api/server/router/*`` (route registration).
Used by: ``minidocker daemon``; tests/test_daemon*.py.
"""

import grp
import logging
import os
import re
import socket
import sys
from contextlib import contextmanager, suppress
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route

from minidocker.daemon import (
    archive,
    builds,
    containers,
    distribution,
    events,
    execs,
    images,
    networks,
    stats,
    system,
    volumes,
)
from minidocker.daemon.errors import (
    error_response,
    on_bug,
    on_engine_error,
    on_http_error,
    on_os_error,
)
from minidocker.daemon.sessions import Sessions
from minidocker.daemon.settings import Settings
from minidocker.errors import MinidockerError

C = "/containers/{id}"
ROUTES = [
    Route("/_ping", system.system_ping, methods=["GET", "HEAD"]),
    Route("/version", system.system_version, methods=["GET"]),
    Route("/info", system.system_info, methods=["GET"]),
    Route("/containers/json", containers.container_list, methods=["GET"]),
    Route("/containers/create", containers.container_create, methods=["POST"]),
    Route("/containers/prune", containers.container_prune, methods=["POST"]),
    Route(C + "/json", containers.container_inspect, methods=["GET"]),
    Route(C + "/top", containers.container_top, methods=["GET"]),
    Route(C + "/logs", containers.container_logs, methods=["GET"]),
    Route(C + "/changes", containers.container_changes, methods=["GET"]),
    Route(C + "/start", containers.container_start, methods=["POST"]),
    Route(C + "/stop", containers.container_stop, methods=["POST"]),
    Route(C + "/restart", containers.container_restart, methods=["POST"]),
    Route(C + "/kill", containers.container_kill, methods=["POST"]),
    Route(C + "/rename", containers.container_rename, methods=["POST"]),
    Route(C + "/pause", containers.container_pause, methods=["POST"]),
    Route(C + "/unpause", containers.container_unpause, methods=["POST"]),
    Route(C + "/resize", containers.container_resize, methods=["POST"]),
    Route(C + "/attach", containers.container_attach, methods=["POST"]),
    Route(C + "/wait", containers.container_wait, methods=["POST"]),
    Route(C, containers.container_delete, methods=["DELETE"]),
    Route(C + "/exec", execs.container_exec, methods=["POST"]),
    Route("/exec/{id}/start", execs.exec_start, methods=["POST"]),
    Route("/exec/{id}/resize", execs.exec_resize, methods=["POST"]),
    Route("/exec/{id}/json", execs.exec_inspect, methods=["GET"]),
    Route("/images/json", images.image_list, methods=["GET"]),
    Route("/images/create", images.image_create, methods=["POST"]),
    Route("/images/prune", images.image_prune, methods=["POST"]),
    Route("/images/{name:path}/json", images.image_inspect, methods=["GET"]),
    Route("/images/{name:path}/history", images.image_history, methods=["GET"]),
    Route("/images/{name:path}/tag", images.image_tag, methods=["POST"]),
    Route("/images/{name:path}", images.image_delete, methods=["DELETE"]),
    # images over the wire: build, load/save, commit, and the registry's side
    Route("/build", builds.image_build, methods=["POST"]),
    Route("/build/prune", builds.build_prune, methods=["POST"]),
    Route("/images/load", images.image_load, methods=["POST"]),
    Route("/images/get", images.images_get, methods=["GET"]),
    Route("/images/search", distribution.image_search, methods=["GET"]),
    Route("/images/{name:path}/get", images.image_get, methods=["GET"]),
    Route("/images/{name:path}/push", distribution.image_push, methods=["POST"]),
    Route("/commit", images.image_commit, methods=["POST"]),
    Route("/auth", distribution.auth, methods=["POST"]),
    Route("/networks", networks.network_list, methods=["GET"]),
    Route("/networks/create", networks.network_create, methods=["POST"]),
    Route("/networks/prune", networks.network_prune, methods=["POST"]),
    Route("/networks/{id}", networks.network_inspect, methods=["GET"]),
    Route("/networks/{id}", networks.network_delete, methods=["DELETE"]),
    Route("/networks/{id}/connect", networks.network_connect, methods=["POST"]),
    Route("/networks/{id}/disconnect", networks.network_disconnect, methods=["POST"]),
    Route("/volumes", volumes.volume_list, methods=["GET"]),
    Route("/volumes/create", volumes.volume_create, methods=["POST"]),
    Route("/volumes/prune", volumes.volume_prune, methods=["POST"]),
    Route("/volumes/{name}", volumes.volume_inspect, methods=["GET"]),
    Route("/volumes/{name}", volumes.volume_delete, methods=["DELETE"]),
]

# a container's files, resources and the engine's news (archive.py, stats.py, events.py)
ROUTES += [
    Route(C + "/archive", archive.container_archive, methods=["GET", "HEAD", "PUT"]),
    Route(C + "/export", archive.container_export, methods=["GET"]),
    Route(C + "/stats", stats.container_stats, methods=["GET"]),
    Route(C + "/update", stats.container_update, methods=["POST"]),
    Route("/events", events.system_events, methods=["GET"]),
    Route("/system/df", events.system_data_usage, methods=["GET"]),
]

VERSION_PREFIX = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")


def version_tuple(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


class Versioning:
    """ASGI middleware for the API's versions: ``/v1.NN/path`` is ``/path`` for
    1.24 <= NN <= 1.50 (another version is refused), and every answer says which version
    and server answered (``Api-Version``, ``Server``), as dockerd's do."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        match = VERSION_PREFIX.match(scope["path"])
        if match:
            problem = version_problem(int(match[1]), int(match[2]))
            if problem:
                return await error_response(problem, 400)(scope, receive, send)
            scope = {**scope, "path": match[3], "raw_path": match[3].encode()}
        ours = [(k.lower().encode(), v.encode()) for k, v in system.headers().items()]

        async def send_with_version(message):
            if message["type"] == "http.response.start":
                given = list(message.get("headers", []))
                names = {name for name, _ in given}
                message["headers"] = given + [h for h in ours if h[0] not in names]
            await send(message)

        await self.app(scope, receive, send_with_version)


def version_problem(major: int, minor: int) -> str:
    asked = f"{major}.{minor}"
    if (major, minor) < version_tuple(system.MIN_API_VERSION):
        return (f"client version {asked} is too old. Minimum supported API version is "
                f"{system.MIN_API_VERSION}, please upgrade your client to a newer version")
    if (major, minor) > version_tuple(system.API_VERSION):
        return (f"client version {asked} is too new. Maximum supported API version is "
                f"{system.API_VERSION}")
    return ""


def create_app(settings: Settings | None = None) -> Starlette:
    app = Starlette(routes=ROUTES, exception_handlers={
        MinidockerError: on_engine_error, HTTPException: on_http_error, OSError: on_os_error,
        Exception: on_bug})
    app.router.redirect_slashes = False
    app.state.sessions = Sessions()
    app.state.settings = settings or Settings()
    app.add_middleware(Versioning)
    return app


# --- the socket ---------------------------------------------------------------------------------

DEFAULT_HOST = "unix:///run/minidocker.sock"


def listen(host: str, group: str | None, insecure_tcp: bool, tls: bool = False,
           ) -> socket.socket:
    """The listening socket for ``-H``/``--host``: ``unix://PATH``, or ``tcp://ADDR:PORT``
    with TLS client certificates (``tls``) or, against advice, ``insecure_tcp``."""
    scheme, sep, where = host.partition("://")
    if not sep:
        raise MinidockerError(f"invalid --host {host!r}: use unix:///path/to.sock")
    if scheme == "tcp":
        if not (tls or insecure_tcp):
            raise MinidockerError(
                "refusing to listen on TCP without TLS: anyone who reaches the Engine API is "
                "root on this host. Use --tlsverify with certificates ('minidocker daemon "
                "certs DIR' makes them), a unix socket, or --insecure-tcp on a private "
                "network only.")
        address, _, port = where.rpartition(":")
        if not port.isdigit():
            raise MinidockerError(f"invalid --host {host!r}: use tcp://ADDRESS:PORT")
        if not tls:
            print(f"WARNING: the Engine API on tcp://{address}:{port} without TLS gives root "
                  "on this host to anyone who can connect", file=sys.stderr)
        return socket.create_server((address.strip("[]"), int(port)))
    if scheme != "unix" or not where.startswith("/"):
        raise MinidockerError(f"invalid --host {host!r}: use unix:///absolute/path.sock")
    return unix_socket(Path(where), group)


def unix_socket(path: Path, group: str | None) -> socket.socket:
    """Bind ``path`` with mode 0600 (0660 and the group's, with ``group``): the umask makes
    it so from the start, with no moment where others could connect."""
    gid = None
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise MinidockerError(f"no such group {group!r} (--group): create it with "
                                  f"'groupadd {group}', or leave --group out") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_socket():
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(str(path))
            raise MinidockerError(f"{path} is in use: another daemon listens there")
        except ConnectionRefusedError:
            path.unlink()  # a socket left by a daemon that died
        finally:
            probe.close()
    elif path.exists():
        raise MinidockerError(f"{path} exists and is not a socket; choose another --host")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with umask(0o177 if gid is None else 0o117):
        sock.bind(str(path))
    if gid is not None:
        os.chown(path, 0, gid)
    sock.listen(128)
    return sock


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def serve(settings: Settings, insecure_tcp: bool = False) -> None:
    """Run the daemon in the foreground until SIGINT/SIGTERM. Containers keep running under
    the monitor host (container/monitor.py) when it stops; the socket is removed."""
    import uvicorn

    from minidocker.daemon.hijack import EngineHTTP

    os.environ.update(settings.environment())  # before anything reads the state root
    from minidocker.container import monitor

    monitor.use_host()  # one loop for all our containers (a host of our settings)
    apply_bridge(settings)
    host = (settings.hosts or [DEFAULT_HOST])[0]
    sock = listen(host, settings.group or None, insecure_tcp, tls=settings.tlsverify)
    if settings.tlsverify:  # TLS is a front door that relays to a private unix socket
        sock = behind_tls(sock, settings)
    logging.basicConfig(level=getattr(logging, settings.log_level.upper(), logging.INFO))
    config = uvicorn.Config(create_app(settings), http=EngineHTTP, ws="none", lifespan="off",
                            log_level=settings.log_level, timeout_graceful_shutdown=2)
    path = sock.getsockname() if sock.family == socket.AF_UNIX else None
    socket_remover(uvicorn.Server, path)(config).run(sockets=[sock])


def behind_tls(front: socket.socket, settings: Settings) -> socket.socket:
    """``--tlsverify``: the TCP listener becomes TLS's front door (tls.py), and the app
    listens on a unix socket in a directory only root can enter (removed at shutdown)."""
    import tempfile

    from minidocker.daemon.tls import FrontDoor, server_context

    context = server_context(settings.tlscacert, settings.tlscert, settings.tlskey)
    private = Path(tempfile.mkdtemp(prefix="minidocker-daemon-"))  # mode 0700
    sock = unix_socket(private / "engine.sock", None)
    FrontDoor(front, context, str(private / "engine.sock")).start()
    return sock


def apply_bridge(settings: Settings) -> None:
    """``bip`` and ``icc``: the default bridge takes this daemon's ICC, on or off, and its
    subnet if ``bip`` is given (without it, the bridge keeps its address, as docker0 does);
    made again if it had others and no container is on it; with containers on it, the daemon
    refuses to start. As dockerd, at every start: a daemon with ``--icc=true`` after one with
    ``--icc=false`` turns ICC back on."""
    from minidocker.network.networks import readdress_default_bridge

    readdress_default_bridge(keep_subnet=not settings.bip)  # as Settings.environment says


def socket_remover(server_class, path: str | None):
    """uvicorn's Server, removing the socket file at shutdown: after it uvicorn re-raises the
    SIGTERM that stopped it, so no ``finally`` of ours would run."""

    class Server(server_class):
        async def shutdown(self, sockets=None) -> None:
            await super().shutdown(sockets)
            if path:
                with suppress(FileNotFoundError):
                    os.unlink(path)
                if Path(path).parent.name.startswith("minidocker-daemon-"):
                    Path(path).parent.rmdir()  # behind_tls's private directory

    return Server
