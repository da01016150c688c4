"""The system endpoints: how a client finds out who it is talking to.

Every docker CLI command begins with ``HEAD /_ping``: the answer's ``Api-Version`` header
tells the client which API version to speak (it takes the lower of its own and ours) and
``Ostype`` which platform. ``/version`` and ``/info`` are ``docker version`` and ``docker
info``: minidocker names itself, with the kernel, cgroup layout and state root it runs on.

    GET/HEAD /_ping      system_ping
    GET      /version    system_version
    GET      /info       system_info

Spec: Docker Engine API v1.50, section "System" (SystemPing, SystemVersion, SystemInfo) and
"Versioning".
"""

import platform
from datetime import UTC, datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

import minidocker
from minidocker.image.store import architecture

API_VERSION = "1.50"  # what the docker CLI 28.2 speaks
MIN_API_VERSION = "1.24"


def headers() -> dict:
    return {"Api-Version": API_VERSION, "Ostype": "linux", "Docker-Experimental": "false",
            "Server": f"minidocker/{minidocker.__version__} (linux)"}


def system_ping(request: Request) -> Response:
    body = "" if request.method == "HEAD" else "OK"
    return PlainTextResponse(body, headers={**headers(), "Cache-Control": "no-cache"})


def build_time() -> str:
    """dockerd's BuildTime is when its binary was built; minidocker's, when its code was
    installed (the package's mtime)."""
    mtime = Path(minidocker.__file__).stat().st_mtime
    return datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds")


def system_version(request: Request) -> Response:
    kernel, arch = platform.release(), architecture()
    engine = {"Version": minidocker.__version__, "ApiVersion": API_VERSION,
              "MinAPIVersion": MIN_API_VERSION, "GitCommit": "", "GoVersion":
              f"python{platform.python_version()}", "Os": "linux", "Arch": arch,
              "KernelVersion": kernel, "BuildTime": build_time()}
    return JSONResponse({
        "Platform": {"Name": "minidocker"},
        "Components": [{"Name": "Engine", "Version": minidocker.__version__,
                        "Details": {**{k: v for k, v in engine.items() if k != "Version"},
                                    "Experimental": "false"}}],
        **engine})


def system_info(request: Request) -> Response:
    """``GET /info``: the engine's own facts (container/system.py), as ``docker info``."""
    from minidocker.container.system import info

    return JSONResponse(info())
