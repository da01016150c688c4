"""Reading a request the way dockerd reads it: JSON bodies, boolean and integer query
parameters, and the ``filters`` parameter.

Everything a client sends is untrusted. A body is read up to ``MAX_BODY`` bytes (a bigger one
is refused with 413 before it fills the daemon's memory), must be one JSON object, and its
shape is checked by the handler that reads it, against Docker's Go types (shapes.py), so a
wrong type is a 400 that names the field, never a ``TypeError`` deep in the engine.

Spec: Docker Engine API v1.50 (query parameters of each endpoint; ``filters`` is "a JSON
encoded value of the filters (a map[string][]string)"). Model: moby ``api/server/httputils``
(``BoolValue``, ``ReadJSON``) and ``api/types/filters/parse.go``.
"""

import json

from starlette.requests import Request

from minidocker.daemon.errors import ApiError

MAX_BODY = 1 << 20  # 1 MiB: a container's whole configuration is a few kB


async def json_body(request: Request, allow_null: bool = False) -> dict:
    """The request's JSON object ({} for an empty body, and for ``null`` if allowed)."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise ApiError(f"request body too large: more than {MAX_BODY} bytes", 413)
    if not data.strip():
        return {}
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(f"invalid JSON in the request body: {exc}") from None
    if value is None and allow_null:
        return {}
    if not isinstance(value, dict):
        raise ApiError("the request body must be a JSON object")
    return value


def flag(request: Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter as dockerd reads one: absent, "", "0", "no", "false" and
    "none" are false, anything else is true."""
    value = request.query_params.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("", "0", "no", "false", "none")


def integer(request: Request, name: str, default: int | None = None) -> int | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError(f"invalid value for {name}: {value!r} is not an integer") from None


def json_query(query, name: str):
    """A query parameter that carries JSON (``?filters={...}``, ``?buildargs={...}``), decoded;
    None when it is absent or empty."""
    text = query.get(name)
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ApiError(f"invalid {name}: {exc}") from None


def filters(request: Request) -> dict[str, list[str]]:
    """``?filters={"label":["a=b"],"status":["running"]}`` (also the old form
    ``{"label":{"a=b":true}}``) as {name: [values]}."""
    raw = json_query(request.query_params, "filters")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError("invalid filters: give a JSON object of lists")
    result = {}
    for name, values in raw.items():
        if isinstance(values, dict):  # every key, as moby's Args.Get: one sent as false
            values = list(values)  # dropped would widen a prune to everything
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ApiError(f"invalid filter {name!r}: give a list of strings")
        result[name] = values
    return result


def filter_items(request: Request) -> list[str]:
    """The filters as the CLI's ``--filter KEY=VALUE`` items: the engine's own ``Filters``
    (minidocker/filters.py) then checks and applies them, as for ``minidocker ps``."""
    return [f"{name}={value}" for name, values in filters(request).items() for value in values]


def prune_filters(request: Request, accepted: tuple[str, ...], command: str):
    """A prune's filters, by the rules of the CLI's ``--filter`` (minidocker/filters.py): one
    it does not know is refused, never ignored (it would widen what is deleted)."""
    from minidocker.filters import Filters

    return Filters.parse(filter_items(request), accepted, command)
