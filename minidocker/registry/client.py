"""The client side of the distribution API: one session with one repository of a registry.

Every pull and push starts the same way, and ``Session`` holds what it learns:

1. **where**: ``busybox`` is ``docker.io/library/busybox`` (Docker Hub's API lives at
   ``registry-1.docker.io``); ``127.0.0.1:5000/app`` is ``app`` on ``127.0.0.1:5000``;
2. **ping**: ``GET /v2/`` over HTTPS, trusting the system's CAs plus ``certs.d/HOST:PORT``
   (``tls.py``); an insecure registry (loopback, or named) may instead answer over HTTPS
   without a checked certificate, or over plain HTTP, tried in that order as Docker does;
3. **challenge**: a ``401`` carries ``WWW-Authenticate``: ``Basic`` means "send the user and
   password"; ``Bearer realm=...,service=...`` means "get a token from realm for the scope
   you need" (``repository:NAME:pull`` to pull, ``pull,push`` to push) — with the stored
   credentials (``credentials.py``) if any, anonymously otherwise — and send it as
   ``Authorization: Bearer``. A token that expires is fetched again on the next 401.

The credentials go only to the registry and to the realm it names: a ``Location`` on another
host gets none, redirects to another host (blob storage on a CDN) lose the ``Authorization``
header (httpx drops it when the origin changes), and layers with foreign ``urls`` are fetched
without it (``pull.py``). Everything
read whole (manifests, configs, tokens, error bodies) is capped in size.

Spec: distribution-spec spec.md ("Determining Support", "Error Codes"); distribution's
docs/spec/auth/token.md; RFC 6750 section 3 (the challenge's syntax).
Used by: ``pull.py``, ``push.py``, ``minidocker login``; notebook 11-registries.
"""

import base64
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx

from minidocker.errors import MinidockerError
from minidocker.image.reference import parse_reference
from minidocker.registry import credentials, tls

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
MAX_MANIFEST = 4 << 20  # as distribution caps a manifest it accepts
MAX_CONFIG = 8 << 20
MAX_TOKEN = 1 << 20
CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"|(\w+)=([^\s,]+)')
USER_AGENT = "minidocker/0.1 (distribution client)"


class RegistryClientError(MinidockerError):
    """A registry refused, or could not be reached; the message says what to do."""


class Unauthorized(RegistryClientError):
    pass


@dataclass(frozen=True)
class Target:
    """An image in a registry: ``host`` as the user writes it, ``repository`` as the API
    names it (``library/busybox`` on Docker Hub), and a tag or a digest."""
    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.host == DOCKER_HUB else self.host

    @property
    def name(self) -> str:
        """The repository as the local store names it (``busybox``, ``127.0.0.1:5000/app``)."""
        if self.host == DOCKER_HUB:
            return self.repository.removeprefix("library/")
        return f"{self.host}/{self.repository}"

    @property
    def reference(self) -> str:
        """What the manifest endpoint is asked for: the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        return self.name + (f"@{self.digest}" if self.digest else f":{self.tag}")


def locate(name: str) -> Target:
    """Docker's rule: the first component is a registry host if it has a ``.`` or ``:`` or is
    ``localhost``; otherwise the image is on Docker Hub, official ones under ``library/``."""
    ref = parse_reference(name)
    first, _, rest = ref.repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = DOCKER_HUB, ref.repository if rest else f"library/{ref.repository}"
    return Target(host, path, ref.tag, ref.digest)


def short_digest(digest: str) -> str:
    """A blob as Docker's progress lines name it: 12 hex digits."""
    return digest.split(":", 1)[1][:12]


def parse_challenge(header: str) -> tuple[str, dict]:
    """``Bearer realm="...",service="...",scope="..."`` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for match in CHALLENGE_PARAM.finditer(rest):
        key = match[1] or match[3]
        params[key.lower()] = match[2] if match[1] else match[4]
    return scheme.lower(), params


def read_capped(response: httpx.Response, cap: int, what: str) -> bytes:
    """The whole body of a streamed response, refused once it passes ``cap`` bytes; the
    response is closed."""
    try:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise RegistryClientError(f"the registry sent a {what} of {declared} bytes; "
                                      f"minidocker refuses more than {cap}")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > cap:
                raise RegistryClientError(f"the registry sent a {what} larger than {cap} "
                                          "bytes")
        return bytes(body)
    finally:
        response.close()


class Session:
    """A conversation with one repository: the scheme that worked, the auth it needs.

    ``actions`` is what this session will do (``("pull",)`` or ``("pull", "push")``);
    ``also_pull`` names other repositories it reads (the sources of cross-repo mounts)."""

    def __init__(self, target: Target, actions: tuple[str, ...] = ("pull",),
                 insecure: tuple[str, ...] = (), also_pull: tuple[str, ...] = (),
                 login: tuple[str, str] | None = None):
        self.target, self.host = target, target.api_host
        self.scopes = [f"repository:{name}:{','.join(acts)}" for name, acts in
                       [(target.repository, actions), *((n, ("pull",)) for n in also_pull)]
                       if name]  # no repository (a login): a token for no scope
        self.login = login or credentials.get(target.host)
        self.insecure = tls.is_insecure(self.host, insecure)
        self.authorization: str | None = None
        self.http: httpx.Client | None = None
        self.base = ""

    # --- 1. ping, choosing the transport -------------------------------------------------------

    def connect(self) -> "Session":
        """``GET /v2/`` on the first transport that answers; remember its challenge."""
        attempts = [("https", tls.ssl_context(self.host))]
        if self.insecure:
            attempts = [("https", False), ("http", False)]
        for number, (scheme, verify) in enumerate(attempts, 1):
            client = httpx.Client(verify=verify, timeout=httpx.Timeout(60, connect=10),
                                  follow_redirects=True, headers={"User-Agent": USER_AGENT})
            url = f"{scheme}://{self.host}/v2/"
            try:
                response = client.get(url)
            except httpx.ConnectError as exc:
                client.close()
                if number < len(attempts):
                    continue  # Docker's fallback for insecure registries: the next transport
                raise self._unreachable(scheme, exc) from None
            except httpx.HTTPError as exc:
                client.close()
                raise RegistryClientError(f'Get "{url}": {exc}') from None
            self.http, self.base = client, f"{scheme}://{self.host}"
            if response.status_code == 401:
                self._answer(response)
            elif response.status_code != 200:
                raise RegistryClientError(f"{url} answered {response.status_code}: this does "
                                          "not look like a registry (v2 API)")
            return self
        raise AssertionError("unreachable")

    def _unreachable(self, scheme: str, error: Exception) -> MinidockerError:
        text = str(error)
        if "WRONG_VERSION_NUMBER" in text:  # the answer to our TLS hello was plain HTTP
            return RegistryClientError(
                f'Get "https://{self.host}/v2/": http: server gave HTTP response to HTTPS '
                f"client. If {self.host} is a plain-HTTP registry, allow it with "
                f"--insecure-registry {self.host}")
        if scheme == "https" and ("SSL" in text or "certificate" in text):
            return tls.explain_tls_failure(self.host, error)
        return RegistryClientError(f'Get "{scheme}://{self.host}/v2/": {text}: is the '
                                   f"registry running there, and is the address right?")

    def close(self) -> None:
        if self.http is not None:
            self.http.close()

    def __enter__(self):
        try:
            return self.connect()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()

    # --- 2. the challenge and the token dance ------------------------------------------------

    def _answer(self, response: httpx.Response) -> None:
        """Get what the 401's ``WWW-Authenticate`` asks for; fail if it cannot be had."""
        scheme, params = parse_challenge(response.headers.get("www-authenticate", ""))
        if scheme == "basic":
            if self.login is None:
                raise self._login_needed()
            user, password = self.login
            self.authorization = "Basic " + base64.b64encode(
                f"{user}:{password}".encode()).decode()
        elif scheme == "bearer" and "realm" in params:
            self.authorization = "Bearer " + self._fetch_token(params)
        else:
            raise Unauthorized(f"{self.host} asks for authentication this client does not "
                               f"speak: {response.headers.get('www-authenticate')!r}")

    def _fetch_token(self, challenge: dict) -> str:
        """token.md, "Requesting a Token": GET realm?service=&scope=, Basic if logged in."""
        realm = challenge["realm"]
        if not realm.startswith(("https://", "http://")):
            raise Unauthorized(f"{self.host} names a token server {realm!r} that is not a URL")
        query = [("scope", scope) for scope in self.scopes]
        if "service" in challenge:
            query.insert(0, ("service", challenge["service"]))
        auth = httpx.BasicAuth(*self.login) if self.login else None
        try:
            reply = self.http.send(self.http.build_request("GET", realm, params=query),
                                   auth=auth, stream=True)
            body = read_capped(reply, MAX_TOKEN, "token")
        except httpx.HTTPError as exc:
            raise RegistryClientError(f"the token server {realm} failed: {exc}") from None
        if reply.status_code == 401:
            raise self._login_needed(wrong=self.login is not None)
        try:
            answer = json.loads(body)
            token = answer.get("token") or answer["access_token"]
        except (ValueError, KeyError, AttributeError):
            raise Unauthorized(f"the token server {realm} answered {reply.status_code} "
                               f"without a token") from None
        return token

    def _login_needed(self, wrong: bool = False) -> Unauthorized:
        if wrong:
            return Unauthorized(f"unauthorized: incorrect username or password for "
                                f"{self.target.host}: run 'minidocker login "
                                f"{self.target.host}' again")
        return Unauthorized(f"unauthorized: authentication required by {self.target.host}: "
                            f"run 'minidocker login {self.target.host}' first")

    # --- 3. requests ----------------------------------------------------------------------------

    def request(self, method: str, path: str, *, stream: bool = False,
                body: bytes | Callable[[], Iterator[bytes]] | None = None,
                **kwargs) -> httpx.Response:
        """One API request (``path`` relative to ``/v2/<name>/`` or a full URL from a
        ``Location``), answering one 401 with a new token and trying again. ``body`` is
        bytes, or a function returning an iterator (so it can be sent twice)."""
        url = path if path.startswith(("http://", "https://")) else \
            f"{self.base}/v2/{self.target.repository}/{path}"
        for attempt in (1, 2):
            headers = dict(kwargs.pop("headers", {}) or {})
            if self.authorization and url.startswith(self.base + "/"):  # never elsewhere
                headers["Authorization"] = self.authorization
            content = body() if callable(body) else body
            request = self.http.build_request(method, url, headers=headers, content=content,
                                              **kwargs)
            kwargs["headers"] = {k: v for k, v in headers.items() if k != "Authorization"}
            try:
                response = self.http.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise RegistryClientError(f"{method} {url} failed: {exc}") from None
            if response.status_code != 401 or attempt == 2:
                break
            response.close()
            self._answer(response)
        if response.status_code == 401:
            response.close()
            raise Unauthorized(f"denied: requested access to the resource is denied "
                               f"({' '.join(self.scopes) or url} as "
                               f"{self.login[0] if self.login else 'anonymous'}); log in "
                               f"with 'minidocker login {self.target.host}' as a user who "
                               "may do that")
        if not stream:
            response.read()
        return response

    def fail(self, response: httpx.Response, doing: str) -> RegistryClientError:
        """A refusal as one line: the spec's error code and message, and what we were doing."""
        try:
            body = response.content if response.is_stream_consumed else \
                read_capped(response, 64 << 10, "error")
            errors = json.loads(body)["errors"]
            reason = "; ".join(f"{e.get('code', '?').lower().replace('_', ' ')}: "
                               f"{e.get('message', '')}" for e in errors)
        except (ValueError, KeyError, TypeError, RegistryClientError, httpx.HTTPError):
            reason = f"HTTP {response.status_code} {response.reason_phrase}"
        return RegistryClientError(f"{doing}: {reason}")


def login(host: str, user: str, password: str, insecure: tuple[str, ...] = ()) -> None:
    """Check credentials as ``docker login`` does: ``GET /v2/`` must answer 200 with them
    (after the token dance, for a token registry)."""
    session = Session(Target(host, ""), login=(user, password), insecure=insecure)
    with session:
        try:
            response = session.request("GET", f"{session.base}/v2/")
        except Unauthorized:
            raise Unauthorized(f"login attempt to {session.base}/v2/ failed with status: 401 "
                               f"Unauthorized: wrong user name or password for {host}") \
                from None
    if response.status_code != 200:
        raise RegistryClientError(f"login attempt to {session.base}/v2/ failed with status: "
                                  f"{response.status_code} {response.reason_phrase}")
