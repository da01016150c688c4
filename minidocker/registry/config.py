"""``config.yml``: the registry's settings in a file, as distribution reads them.

distribution (Docker Hub's ``registry`` image, Debian's ``docker-registry``) is configured by
one YAML file; ``minidocker registry serve --config FILE`` reads the same keys, so one file
drives either server:

    version: 0.1
    storage:
      filesystem:
        rootdirectory: /var/lib/registry      # blobs/ and repositories/ go below
    http:
      addr: :5000                              # ":PORT" listens on every address
      tls:
        certificate: /certs/server.crt
        key: /certs/server.key
    auth:
      htpasswd:                                # HTTP Basic, bcrypt entries only
        realm: basic-realm
        path: /auth/htpasswd

or ``auth.token`` (``realm``, ``service``, ``issuer``, ``rootcertbundle``) for the Bearer
flow. distribution expects a separate token server that signs JWTs with the key of
``rootcertbundle``; minidocker's token server is built in (``/token``, ``auth.py``), so it
needs instead the users it hands tokens to: ``auth.token.htpasswd: FILE``. Keys minidocker has
no use for (``log``, ``storage.cache``, ``storage.delete``, ``http.headers``, ``health``...)
are accepted and ignored; a storage driver other than ``filesystem`` is refused.

Spec: distribution's docs/content/about/configuration.md ("version", "storage", "http",
"auth"). Used by: ``minidocker registry serve --config``, the ``registry`` image
(``registry/image.py``); tests/test_registry_container.py.
"""

from dataclasses import dataclass
from pathlib import Path

from minidocker.errors import MinidockerError
from minidocker.registry.auth import BasicAuth, Htpasswd, TokenAuth


class ConfigError(MinidockerError):
    """The config file is missing, not YAML, or says something minidocker cannot do."""


@dataclass
class Settings:
    """What ``registry serve`` needs; ``None`` where the file says nothing."""
    addr: str | None = None
    root: Path | None = None
    auth: BasicAuth | TokenAuth | None = None
    tls: tuple[Path, Path] | None = None


def load_config(path: Path) -> Settings:
    """Read ``path`` as distribution's config.yml."""
    import yaml

    try:
        document = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the registry config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"the registry config {path} is not YAML: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"the registry config {path} is not a YAML mapping")
    if str(document.get("version", "")) != "0.1":
        raise ConfigError(f"{path}: 'version: 0.1' is the only config version (as in "
                          "distribution 2.x)")
    return Settings(addr=http_addr(section(document, "http")),
                    root=storage_root(section(document, "storage"), path),
                    auth=auth_policy(section(document, "auth")),
                    tls=tls_files(section(section(document, "http"), "tls")))


def section(mapping: dict, key: str) -> dict:
    value = mapping.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"'{key}' in the registry config must be a mapping")
    return value


def storage_root(storage: dict, path: Path) -> Path | None:
    """``storage.filesystem.rootdirectory``: the only driver minidocker has."""
    drivers = [k for k in storage if k not in ("cache", "delete", "maintenance", "redirect")]
    if drivers and drivers != ["filesystem"]:
        raise ConfigError(f"{path}: storage driver {', '.join(drivers)} is not supported; "
                          "minidocker stores on the filesystem (storage.filesystem)")
    root = section(storage, "filesystem").get("rootdirectory")
    return Path(root) if root else None


def http_addr(http: dict) -> str | None:
    """``http.addr``: ``HOST:PORT``, or ``:PORT`` for every address (Go's way of saying it)."""
    addr = http.get("addr")
    if addr is None:
        return None
    addr = str(addr)
    return f"0.0.0.0{addr}" if addr.startswith(":") else addr


def tls_files(tls: dict) -> tuple[Path, Path] | None:
    if not tls:
        return None
    if not tls.get("certificate") or not tls.get("key"):
        raise ConfigError("http.tls needs both 'certificate' and 'key' (PEM files)")
    return Path(tls["certificate"]), Path(tls["key"])


def auth_policy(auth: dict) -> BasicAuth | TokenAuth | None:
    """``auth.htpasswd`` or ``auth.token`` (one of them, as distribution allows one)."""
    if len(auth) > 1:
        raise ConfigError(f"the registry config names {len(auth)} auth providers "
                          f"({', '.join(auth)}); give one")
    if "htpasswd" in auth:
        settings = section(auth, "htpasswd")
        if not settings.get("path"):
            raise ConfigError("auth.htpasswd needs 'path', the htpasswd file (bcrypt)")
        return BasicAuth(Htpasswd(Path(settings["path"])),
                         realm=settings.get("realm") or BasicAuth.realm)
    if "token" in auth:
        settings = section(auth, "token")
        if not settings.get("htpasswd"):
            raise ConfigError("auth.token needs 'htpasswd', the users minidocker's built-in "
                              "token server (/token) issues tokens to")
        return TokenAuth(Htpasswd(Path(settings["htpasswd"])),
                         service=settings.get("service") or TokenAuth.service,
                         realm=settings.get("realm"))
    if auth:
        raise ConfigError(f"auth provider {next(iter(auth))!r} is not supported: use "
                          "htpasswd or token")
    return None
