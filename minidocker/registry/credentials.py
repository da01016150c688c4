"""Registry credentials in a Docker-style ``config.json``.

``docker login`` stores what it needs in ``~/.docker/config.json``::

    {"auths": {"127.0.0.1:5000": {"auth": "<base64 of user:password>"}}}

keyed by the registry's host (Docker Hub's key is ``https://index.docker.io/v1/``, a relic
of the v1 API). base64 is an encoding, not encryption: the file is the secret, so it is
written with mode 0600 (Docker's credential helpers keep it in a keyring instead). minidocker's
file is ``~/.minidocker/config.json``, or ``config.json`` in ``$MINIDOCKER_CONFIG`` (a
directory, like ``$DOCKER_CONFIG``). Other keys in the file are kept as they are.

Docs: Docker's "docker login" reference (credential stores, the config file),
"Configuration files" in the docker CLI reference.
Used by: ``minidocker login``/``logout``, the registry client; notebook 11-registries.
"""

import base64
import binascii
import json
import os
from pathlib import Path

from minidocker.errors import MinidockerError
from minidocker.state import atomic_file

DOCKER_HUB = "docker.io"
DOCKER_HUB_KEY = "https://index.docker.io/v1/"


def config_path() -> Path:
    folder = os.environ.get("MINIDOCKER_CONFIG") or Path.home() / ".minidocker"
    return Path(folder) / "config.json"


def _key(host: str) -> str:
    return DOCKER_HUB_KEY if host in (DOCKER_HUB, "index.docker.io",
                                      "registry-1.docker.io") else host


def _read() -> dict:
    path = config_path()
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise MinidockerError(f"{path} is not a readable JSON file ({exc}); fix or remove it") \
            from None
    return config if isinstance(config, dict) else {}


def _write(config: dict) -> None:
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with atomic_file(path, mode=0o600) as f:
        f.write((json.dumps(config, indent="\t") + "\n").encode())


def get(host: str) -> tuple[str, str] | None:
    """The (user, password) stored for ``host``, if any."""
    entry = _read().get("auths", {}).get(_key(host)) or {}
    try:
        user, sep, password = base64.b64decode(entry.get("auth", "")).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise MinidockerError(f"the credentials for {host} in {config_path()} are not valid "
                              f"base64: run 'minidocker login {host}' again") from None
    return (user, password) if sep else None


def store(host: str, user: str, password: str) -> Path:
    config = _read()
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config.setdefault("auths", {})[_key(host)] = {"auth": auth}
    _write(config)
    return config_path()


def erase(host: str) -> bool:
    """Forget ``host``'s credentials; False if there were none."""
    config = _read()
    if _key(host) not in config.get("auths", {}):
        return False
    del config["auths"][_key(host)]
    _write(config)
    return True
