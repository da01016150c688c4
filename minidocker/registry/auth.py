"""Who may do what: HTTP Basic from an htpasswd file, and the Bearer token flow.

A registry with auth answers a request it cannot authorise with ``401 Unauthorized`` and a
``WWW-Authenticate`` challenge that tells the client how to come back:

* ``Basic realm="..."``: send ``Authorization: Basic base64(user:password)`` on every request
  (the password is checked against a bcrypt hash from an htpasswd file, as distribution does);
* ``Bearer realm="<token URL>",service="...",scope="repository:NAME:pull,push"``: fetch a
  token from the realm (with Basic credentials, or none), then send ``Authorization: Bearer
  <token>``. The token names the *access* it grants — the scopes asked for, intersected with
  what the user may do — and expires; a token for another repository is refused with
  ``error="insufficient_scope"``. This is how Docker Hub works (``auth.docker.io/token``).

Here the token server is a route of the registry itself (``/token``) and a token is
``base64url(claims).base64url(HMAC-SHA256(claims))`` with a key that lives as long as the
server process; distribution uses signed JWTs from a separate server, but the dance the client
does is the same. Any user in the htpasswd file gets pull, push and delete on every
repository; an anonymous token request gets a token with no access.

Spec: distribution's docs/spec/auth/token.md (the challenge, the token request and response
fields ``token``/``access_token``/``expires_in``/``issued_at``), docs/spec/auth/scope.md;
RFC 6750 section 3 (the Bearer challenge), RFC 7617 (Basic).
Used by: ``minidocker registry serve --auth``; notebook 11-registries (the token flow).
"""

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import bcrypt
from starlette.requests import Request
from starlette.responses import JSONResponse

from minidocker.errors import MinidockerError
from minidocker.registry.errors import RegistryError

TOKEN_LIFETIME = 300  # seconds; the spec asks for at least 60
ACTIONS = ("pull", "push", "delete")
# /v2/<name>/<endpoint>: the name may hold slashes, so the endpoint is matched from the end
ENDPOINT = re.compile(r"^/v2/(?P<name>.+)/(?:manifests/[^/]+|blobs/uploads/[^/]*|"
                      r"blobs/[^/]+|tags/list|referrers/[^/]+)$")


@dataclass(frozen=True)
class Access:
    """One entry of a scope: ``repository:team/app:pull,push`` (scope.md)."""
    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    @classmethod
    def parse(cls, scope: str) -> "Access":
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")  # a name may carry a port: host:5000/app
        if not kind or not name:
            raise ValueError(scope)
        return cls(kind, name, tuple(a for a in actions.split(",") if a))


def required_access(method: str, path: str, query: bytes) -> list[Access]:
    """What a request needs: pull to read a repository, push to write (and to look at an
    upload), delete to delete; a cross-repository mount also reads its source. ``/v2/``
    itself needs only a login."""
    if path == "/v2/_catalog":
        return [Access("registry", "catalog", ("*",))]
    match = ENDPOINT.match(path)
    if not match:
        return []
    action = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}.get(method, "push")
    if "/blobs/uploads/" in path:  # an upload session is a push, whatever the method
        action = "push"
    needed = [Access("repository", match["name"], ("pull", "push") if action == "push"
                     else (action,))]
    source = parse_qs(query.decode("latin-1")).get("from")
    if method == "POST" and source:
        needed.append(Access("repository", source[0], ("pull",)))
    return needed


# --- htpasswd ----------------------------------------------------------------------------------

class Htpasswd:
    """``user:bcrypt-hash`` lines, as ``htpasswd -B`` writes them (distribution accepts bcrypt
    only, and so does this). A checked pair is remembered, so that a push of many requests
    costs one bcrypt, not one per request."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.users: dict[str, bytes] = {}
        try:
            lines = self.path.read_text().splitlines()
        except OSError as exc:
            raise MinidockerError(f"cannot read the htpasswd file {path}: {exc.strerror}; "
                                  "make one with 'minidocker registry htpasswd FILE USER'") \
                from None
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.startswith("#"):
                continue
            user, _, hashed = line.strip().partition(":")
            if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
                raise MinidockerError(f"{path}, line {number}: not a bcrypt hash; make entries "
                                      "with 'htpasswd -B' or 'minidocker registry htpasswd'")
            self.users[user] = hashed.encode()
        self._checked: set[bytes] = set()

    def check(self, user: str, password: str) -> bool:
        hashed = self.users.get(user)
        if hashed is None:
            return False
        key = hashlib.sha256(f"{user}\0{password}".encode() + hashed).digest()
        if key in self._checked:
            return True
        if bcrypt.checkpw(password.encode(), hashed):
            self._checked.add(key)
            return True
        return False


def htpasswd_line(user: str, password: str) -> str:
    """An htpasswd entry for ``user`` (bcrypt, as ``htpasswd -B`` makes it)."""
    if not user or ":" in user:
        raise MinidockerError(f"invalid user name {user!r}: it must be non-empty, without ':'")
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode()}"


def basic_credentials(header: str) -> tuple[str, str] | None:
    """``Basic base64(user:password)`` -> (user, password), or None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


# --- the two policies ---------------------------------------------------------------------------

class Denied(Exception):
    """A request without the credentials it needs: ``challenge`` is the WWW-Authenticate."""

    def __init__(self, challenge: str, message: str):
        super().__init__(message)
        self.challenge = challenge


@dataclass
class BasicAuth:
    users: Htpasswd
    realm: str = "minidocker registry"

    def authorize(self, request: dict, needed: list[Access]) -> None:
        credentials = basic_credentials(request["authorization"])
        if credentials is None or not self.users.check(*credentials):
            raise Denied(f'Basic realm="{self.realm}"', "authentication required")


@dataclass
class TokenAuth:
    users: Htpasswd
    service: str = "minidocker-registry"
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    realm: str | None = None  # where clients get tokens [default: this server's /token]

    # the token server's side (token.md, "Requesting a Token")

    def issue(self, user: str | None, scopes: list[str]) -> dict:
        granted = []
        for scope in scopes:
            try:
                access = Access.parse(scope)
            except ValueError:
                continue
            allowed = ACTIONS if access.type == "repository" else ("*",)
            actions = tuple(a for a in access.actions if user and a in allowed)
            if actions:
                granted.append({"type": access.type, "name": access.name,
                                "actions": list(actions)})
        now = int(time.time())
        claims = {"sub": user or "", "aud": self.service, "iat": now,
                  "exp": now + TOKEN_LIFETIME, "access": granted}
        token = self._sign(claims)
        return {"token": token, "access_token": token, "expires_in": TOKEN_LIFETIME,
                "issued_at": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")}

    def _sign(self, claims: dict) -> str:
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return payload + "." + _b64(hmac.digest(self.key, payload.encode(), "sha256"))

    def _claims(self, token: str) -> dict | None:
        payload, _, signature = token.partition(".")
        expected = _b64(hmac.digest(self.key, payload.encode(), "sha256"))
        if not hmac.compare_digest(signature, expected):
            return None
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims if claims.get("exp", 0) > time.time() else None

    # the registry's side (token.md, "Using the Bearer token")

    def authorize(self, request: dict, needed: list[Access]) -> None:
        scope = " ".join(str(a) for a in needed)
        realm = self.realm or f"{request['base']}/token"
        challenge = f'Bearer realm="{realm}",service="{self.service}"' + \
            (f',scope="{scope}"' if scope else "")
        scheme, _, token = request["authorization"].partition(" ")
        claims = self._claims(token.strip()) if scheme.lower() == "bearer" else None
        if claims is None:
            raise Denied(challenge, "authentication required")
        granted = {(a["type"], a["name"], action) for a in claims["access"]
                   for action in a["actions"]}
        for access in needed:
            if any((access.type, access.name, action) not in granted
                   for action in access.actions):
                raise Denied(challenge + ',error="insufficient_scope"',
                             f"the token does not grant {access}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_policy(spec: str) -> BasicAuth | TokenAuth:
    """``htpasswd:FILE`` or ``token:FILE`` (the token server checks users against FILE)."""
    kind, _, path = spec.partition(":")
    if kind == "htpasswd" and path:
        return BasicAuth(Htpasswd(Path(path)))
    if kind == "token" and path:
        return TokenAuth(Htpasswd(Path(path)))
    raise MinidockerError(f"invalid --auth {spec!r}: use htpasswd:FILE or token:FILE")


# --- in the application ----------------------------------------------------------------------

async def token_endpoint(request: Request) -> JSONResponse:
    """GET /token?service=&scope=...: a token for what the (optional) Basic user may do."""
    policy: TokenAuth = request.app.state.auth
    user = None
    if "authorization" in request.headers:
        credentials = basic_credentials(request.headers["authorization"])
        if credentials is None or not policy.users.check(*credentials):
            raise RegistryError("UNAUTHORIZED", "wrong user name or password")
        user = credentials[0]
    return JSONResponse(policy.issue(user, request.query_params.getlist("scope")))


class RequireAuth:
    """ASGI middleware in front of every ``/v2`` route: authorised, or 401 with a challenge."""

    def __init__(self, app, policy):
        self.app, self.policy = app, policy

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/v2"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "%s:%s" % (scope.get("server") or ("localhost", 80)))
        request = {"authorization": headers.get("authorization", ""),
                   "base": f"{scope['scheme']}://{host}"}
        needed = required_access(scope["method"], scope["path"], scope["query_string"])
        try:
            self.policy.authorize(request, needed)
        except Denied as denied:
            error = RegistryError("UNAUTHORIZED", str(denied), detail=[
                {"Type": a.type, "Name": a.name, "Action": action}
                for a in needed for action in a.actions],
                headers={"WWW-Authenticate": denied.challenge})
            response = JSONResponse(error.body(), status_code=401, headers=error.headers)
            return await response(scope, receive, send)
        await self.app(scope, receive, send)
