"""A registry's HTTP conversation as a table and a sequence diagram; its files as a listing.

``conversation(exchanges)`` turns what ``registry.recording`` wrote down into one row per
request: the method and path, the status, and the headers that carry the protocol (a
``Location`` to upload to, a ``Range`` received so far, a ``Docker-Content-Digest``, a
``WWW-Authenticate`` challenge). ``sequence_graph`` is the same story as the data of a
sequence diagram (viz/sequence.py): one lifeline for the client, one for the registry, an
arrow per request and per answer, top to bottom in time; ``draw_sequence`` draws it.

``layout_tree(root, roles)`` draws a storage directory as ``tree(1)`` does (distribution's
``docker/registry/v2`` or minidocker's OCI image store), each digest cut to 12 hex digits and
each blob named by its role ("the layer", "the config"), so that two stores of the same image
can be read side by side (``side_by_side``).

Spec: distribution-spec spec.md (the endpoints), RFC 9110 (status codes and their phrases);
distribution's docs/content/about/configuration.md and registry/storage/paths.go (the layout).
Used by: notebook 11-registries; tests/test_viz_registry.py.
"""

import re
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote

from minidocker.registry.recording import Exchange
from minidocker.viz import sequence
from minidocker.viz.graph import Graph
from minidocker.viz.sequence import Arrow
from minidocker.viz.table import Table

DIGEST = re.compile(r"\b(sha256|sha512):([0-9a-f]{64,128})\b")
HEX = re.compile(r"\b[0-9a-f]{64}\b")
FAN_OUT = re.compile(r"[0-9a-f]{2}")  # blobs/sha256/<first two hex digits>/<hex>/data
ALGORITHMS = ("sha256", "sha512")
# header -> how it is shown in the answer column (None: its value)
ANSWER_HEADERS = {"www-authenticate": "WWW-Authenticate", "location": "Location",
                  "range": "Range", "docker-content-digest": "Docker-Content-Digest"}
COLOURS = {"request": "#1f5fa6", "2": "#2e7d32", "3": "#6a1b9a", "4": "#c62828", "5": "#c62828"}


def short(text: str) -> str:
    """Every digest in ``text`` cut to 12 hex digits (``sha256:3f2a1b9c0d4e…``)."""
    return DIGEST.sub(lambda m: f"{m[1]}:{m[2][:12]}…", text)


def request_line(exchange: Exchange, query: bool = True) -> str:
    """``PUT /v2/app/blobs/uploads/<uuid>?digest=sha256:…``: what the client asked."""
    target = unquote(exchange.target) if query else exchange.path
    return short(f"{exchange.method} {target}")


def status_line(exchange: Exchange) -> str:
    try:
        return f"{exchange.status} {HTTPStatus(exchange.status).phrase}"
    except ValueError:
        return str(exchange.status)


def answer_notes(exchange: Exchange) -> str:
    """The protocol's headers of the answer, ``Name: value`` separated by ``; ``."""
    headers = exchange.response_headers
    notes = [f"{shown}: {short(headers[name])}" for name, shown in ANSWER_HEADERS.items()
             if name in headers]
    return "; ".join(notes)


def credentials(exchange: Exchange) -> str:
    """The scheme of the request's ``Authorization`` (never its secret): ``Bearer``, ``Basic``."""
    scheme = exchange.request_headers.get("authorization", "").partition(" ")[0]
    return scheme or "-"


def conversation(exchanges: Iterable[Exchange], title: str = "") -> Table:
    """One row per request, in the order the server received them."""
    rows = [(number, request_line(e), credentials(e), status_line(e), answer_notes(e))
            for number, e in enumerate(exchanges, 1)]
    return Table(("#", "request", "auth", "answer", "what the answer says"), rows, title)


# --- the sequence diagram ------------------------------------------------------------------------

def arrows(exchanges: Iterable[Exchange]) -> list[Arrow]:
    """Each exchange as two arrows: the request (with the scheme of its credentials,
    ``[Bearer]``) in blue, its answer dashed and coloured by its status."""
    found = []
    for exchange in exchanges:
        scheme = credentials(exchange)
        carries = f"  [{scheme}]" if scheme != "-" else ""
        found.append(Arrow("client", request_line(exchange) + carries, COLOURS["request"]))
        answer, notes = status_line(exchange), answer_notes(exchange)
        found.append(Arrow("server", f"{answer}\n{notes}" if notes else answer,
                           COLOURS.get(str(exchange.status)[:1], "black"), dashed=True))
    return found


def sequence_graph(exchanges: Iterable[Exchange], client: str = "client",
                   server: str = "registry") -> Graph:
    """The data of the diagram (viz/sequence.py): a request from ``client:2i`` to
    ``server:2i``, its answer from ``server:2i+1`` back to ``client:2i+1``."""
    return sequence.sequence_graph(arrows(exchanges), client, server)


def draw_sequence(exchanges: Iterable[Exchange], client: str = "client",
                  server: str = "registry", title: str = ""):
    """The picture of ``sequence_graph``: requests in blue, answers coloured by status."""
    return sequence.draw_sequence(arrows(exchanges), client, server, title)


# --- the files of a store ------------------------------------------------------------------------

def layout_tree(root: str | Path, roles: Mapping[str, str] | None = None,
                label: str = "") -> str:
    """The directory ``root`` as ``tree(1)`` draws it, with every digest cut to 12 hex digits
    and named by its role (``roles``: digest -> "the layer", ...): after a ``data`` file, the
    role of the blob; after a ``link`` file, the digest it holds. Entries are sorted by name
    with each digest replaced by its role, so the tree keeps its shape when digests change.
    The first line is ``label`` (default: the directory's name)."""
    root, roles = Path(root), dict(roles or {})
    by_hex = {digest.split(":", 1)[1]: role for digest, role in roles.items()}
    lines = [f"{label or root.name}/"]

    def order(entry: Path) -> str:
        return HEX.sub(lambda m: by_hex.get(m[0], m[0]), entry.name)

    def note(entry: Path, named: str) -> str:
        if entry.name == "link" and entry.is_file():
            return f"  -> {short(entry.read_text().strip())}"
        if entry.name == "data" and named:
            return f"  {named}"
        if HEX.fullmatch(entry.name) and entry.name in by_hex and entry.is_file():
            return f"  {by_hex[entry.name]}"
        return ""

    def children(directory: Path) -> list[tuple[str, Path]]:
        """(name shown, entry); distribution's two-hex fan-out directories (``blobs/sha256/3b/``)
        are drawn in one line with the blob's directory, ``3b/3b9c286ba5ba…/``."""
        found = []
        for entry in directory.iterdir():
            if directory.name in ALGORITHMS and FAN_OUT.fullmatch(entry.name) and entry.is_dir():
                found += [(f"{entry.name}/{_cut(child.name)}", child)
                          for child in entry.iterdir()]
            else:
                found.append((_cut(entry.name), entry))
        return sorted(found, key=lambda item: order(item[1]))

    def walk(directory: Path, indent: str, named: str) -> None:
        entries = children(directory)
        for i, (shown, entry) in enumerate(entries):
            last = i == len(entries) - 1
            here = by_hex.get(entry.name, named)
            slash = "/" if entry.is_dir() else ""
            lines.append(f"{indent}{'└── ' if last else '├── '}{shown}{slash}"
                         f"{note(entry, here)}")
            if slash:
                walk(entry, indent + ("    " if last else "│   "), here)

    walk(root, "", "")
    return "\n".join(lines)


def _cut(part: str) -> str:
    return f"{part[:12]}…" if HEX.fullmatch(part) else part


def side_by_side(left: str, right: str, titles: tuple[str, str] = ("", ""), gap: int = 4) -> str:
    """Two blocks of text in two columns."""
    left_lines = ([titles[0], ""] if titles[0] else []) + left.splitlines()
    right_lines = ([titles[1], ""] if titles[1] else []) + right.splitlines()
    width = max((len(line) for line in left_lines), default=0) + gap
    rows = max(len(left_lines), len(right_lines))
    left_lines += [""] * (rows - len(left_lines))
    right_lines += [""] * (rows - len(right_lines))
    return "\n".join(f"{a:{width}}{b}".rstrip() for a, b in zip(left_lines, right_lines,
                                                                  strict=True))
