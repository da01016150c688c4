"""Go templates, the language of ``--format`` and ``inspect -f``: a small ``text/template``.

A template is text with *actions* between ``{{`` and ``}}``. ``parse`` turns it into a tree
once (a broken template fails here, before anything is printed); ``Template.execute`` walks
the tree over one object (a dict: a row of ``ps``, a JSON object of ``inspect``).

What works, as in Go: fields ``.State.Status`` (``.`` is the object itself), strings, numbers,
parentheses ``(index .List 0).Field``, pipes ``.Names | upper``, ``range``, ``if``/``else``
and ``{{- trim -}}`` markers; the functions below (Go's ``index``, ``len``, ``printf``, ...
and those docker/cli adds: ``json``, ``join``, ``split``, ``upper``, ``title``, ``pad``, ...).

Specs: Go's text/template (https://pkg.go.dev/text/template); docker/cli's
``templates/templates.go`` (its extra functions) and docs "Format command and log output".
Used by notebook 06 (``inspect -f``) and every ``--format`` flag.
"""

import json
import re
from dataclasses import dataclass, field

from minidocker.errors import MinidockerError


class TemplateError(MinidockerError):
    """A template that cannot be parsed or executed; the message says where."""


HINT = ("(see the fields in the JSON from 'minidocker inspect' without -f, or from "
        "'--format \"{{json .}}\"' of a listing)")


def _json(value) -> str:
    """Go's json.Marshal as docker/cli calls it: compact, no HTML escaping."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _index(value, *keys):
    for key in keys:
        value = value[key] if isinstance(value, list) else (value or {}).get(str(key))
    return value


def _printf(fmt: str, *args) -> str:
    """Go's fmt.Sprintf for the usual verbs: %s %v %q %d, with widths (%-10s, %.5s)."""
    numbers = tuple(a if isinstance(a, int | float) and not isinstance(a, bool) else show(a)
                    for a in args)
    return fmt.replace("%v", "%s").replace("%q", '"%s"') % numbers


FUNCTIONS = {
    "json": _json,
    "index": _index,
    "len": len,
    "print": lambda *args: "".join(map(show, args)),
    "println": lambda *args: " ".join(map(show, args)) + "\n",
    "printf": _printf,
    "eq": lambda a, *others: any(a == b for b in others),
    "ne": lambda a, b: a != b,
    "not": lambda a: not a,
    "join": lambda items, sep: sep.join(map(show, items or [])),
    "split": lambda text, sep: text.split(sep),
    "lower": lambda text: show(text).lower(),
    "upper": lambda text: show(text).upper(),
    "title": lambda text: show(text).title(),
    "truncate": lambda text, length: show(text)[:length],
    "pad": lambda text, left, right: " " * left + show(text) + " " * right,
}


# --- parse: text to a tree ---------------------------------------------------------------------

ACTION = re.compile(r"{{(-\s)?(.*?)(\s-)?}}", re.DOTALL)
TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\(|\)|\||[^\s()|]+')
TERM = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+|\.|(\.\w+)+|[A-Za-z_]\w*')


@dataclass
class Node:
    """One piece of the tree: ``text``, an ``action`` (a pipeline of commands), or a block
    (``range``/``if``) with its ``body`` and ``orelse``."""

    kind: str
    text: str = ""
    pipeline: list = field(default_factory=list)
    body: list = field(default_factory=list)
    orelse: list = field(default_factory=list)


@dataclass
class Template:
    nodes: list

    def execute(self, obj) -> str:
        return "".join(_run(self.nodes, obj))


def parse(text: str) -> Template:
    """The tree of ``text``, or a TemplateError naming what is broken."""
    pieces = _split(text)
    nodes, closer = _parse_nodes(pieces)
    if closer is not None:
        raise TemplateError(f"template: unexpected {{{{{closer}}}}}")
    return Template(nodes)


def _split(text: str) -> list[tuple[str, str]]:
    """``("text", ...)`` and ``("action", ...)`` pieces, with ``{{-``/``-}}`` trimming."""
    pieces, pos = [], 0
    for match in ACTION.finditer(text):
        before = text[pos:match.start()]
        if match.group(1):
            before = before.rstrip()
        pieces.append(("text", before))
        pieces.append(("action", match.group(2).strip()))
        pos = match.end()
        if match.group(3):
            pos = len(text) - len(text[pos:].lstrip())
    rest = text[pos:]
    if "{{" in rest:
        raise TemplateError("template: unclosed action: every '{{' needs its '}}'")
    pieces.append(("text", rest))
    return pieces


def _parse_nodes(pieces: list) -> tuple[list[Node], str | None]:
    """Nodes until ``end`` or ``else`` (returned as the closer) or the end of the pieces."""
    nodes = []
    while pieces:
        kind, text = pieces.pop(0)
        if kind == "text":
            nodes.append(Node("text", text=text))
        elif text in ("end", "else"):
            return nodes, text
        elif text.split(" ", 1)[0] in ("range", "if"):
            nodes.append(_parse_block(text, pieces))
        elif not text or text.startswith("/*"):
            continue  # {{/* a comment */}}
        else:
            nodes.append(Node("action", pipeline=_parse_pipeline(text)))
    return nodes, None


def _parse_block(text: str, pieces: list) -> Node:
    keyword, _, expression = text.partition(" ")
    node = Node(keyword, pipeline=_parse_pipeline(expression))
    node.body, closer = _parse_nodes(pieces)
    if closer == "else":
        node.orelse, closer = _parse_nodes(pieces)
    if closer != "end":
        raise TemplateError(f"template: unexpected EOF: {{{{{keyword}}}}} without {{{{end}}}}")
    return node


def _parse_pipeline(expression: str) -> list[list]:
    """``a | b c`` as ``[[a], [b, c]]``: each command a list of terms; a term is a token or
    a parenthesised pipeline (with an optional ``.Field`` after it)."""
    tokens = TOKEN.findall(expression)
    pipeline, rest = _parse_commands(tokens, expression)
    if rest:
        raise TemplateError(f"template: unexpected {rest[0]!r} in {{{{{expression}}}}}")
    return pipeline


def _parse_commands(tokens: list[str], expression: str) -> tuple[list[list], list[str]]:
    commands, command = [], []
    while tokens and tokens[0] != ")":
        token, tokens = tokens[0], tokens[1:]
        if token == "|":
            commands.append(_checked(command, expression))
            command = []
        elif token == "(":
            inner, tokens = _parse_commands(tokens, expression)
            if not tokens:
                raise TemplateError(f"template: unclosed left paren in {{{{{expression}}}}}")
            tokens = tokens[1:]
            then = []
            if tokens and tokens[0].startswith("."):
                then, tokens = [tokens[0]], tokens[1:]
            command.append(("(", inner, *then))
        else:
            command.append(token)
    commands.append(_checked(command, expression))
    return commands, tokens


def _checked(command: list, expression: str) -> list:
    if not command:
        raise TemplateError(f"template: missing value in {{{{{expression}}}}}")
    for term in command:
        if isinstance(term, str) and not TERM.fullmatch(term):
            raise TemplateError(f"template: bad term {term!r} in {{{{{expression}}}}}: use "
                                '.Field, "text", a number or a function')
    head = command[0]
    if isinstance(head, str) and head[0].isalpha() and head not in FUNCTIONS \
            and head not in ("true", "false", "nil"):
        raise TemplateError(f'template: function "{head}" not defined (known: '
                            f'{", ".join(FUNCTIONS)})')
    return command


# --- execute: the tree over one object ---------------------------------------------------------

def _run(nodes: list[Node], obj):
    for node in nodes:
        if node.kind == "text":
            yield node.text
        elif node.kind == "action":
            yield show(_pipeline(node.pipeline, obj))
        elif node.kind == "range":
            items = _pipeline(node.pipeline, obj) or []
            for item in items.values() if isinstance(items, dict) else items:
                yield from _run(node.body, item)
            if not items:
                yield from _run(node.orelse, obj)
        else:  # if
            yield from _run(node.body if _pipeline(node.pipeline, obj) else node.orelse, obj)


def _pipeline(pipeline: list[list], obj):
    value, piped = None, False
    for command in pipeline:
        value = _command(command + ([_Value(value)] if piped else []), obj)
        piped = True
    return value


@dataclass
class _Value:
    """A value handed down a pipe, as the last argument of the next command."""

    value: object


def _command(command: list, obj):
    head = command[0]
    if isinstance(head, str) and head in FUNCTIONS:
        args = [_term(term, obj) for term in command[1:]]
        try:
            return FUNCTIONS[head](*args)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            raise TemplateError(f"template: error calling {head}: {exc}") from None
    if len(command) > 1:
        raise TemplateError("template: only a function takes arguments: "
                            f"{{{{{' '.join(map(str, command))}}}}}")
    return _term(head, obj)


def _term(term, obj):
    if isinstance(term, _Value):
        return term.value
    if isinstance(term, tuple):  # ("(", pipeline, [".Field"])
        value = _pipeline(term[1], obj)
        return _field(value, term[2]) if len(term) > 2 else value
    if term.startswith('"'):
        return json.loads(term)
    if re.fullmatch(r"-?\d+", term):
        return int(term)
    if term in ("true", "false"):
        return term == "true"
    if term == "nil":
        return None
    if term.startswith("."):
        return _field(obj, term)
    raise TemplateError(f"template: can't evaluate {term!r}: use .Field, \"text\", a number "
                        "or a function")


def _field(value, path: str):
    for part in filter(None, path.split(".")):
        if not isinstance(value, dict) or part not in value:
            raise TemplateError(f"template: executing at <{path}>: can't evaluate field "
                                f"{part} {HINT}")
        value = value[part]
    return value


def show(value) -> str:
    """Values as Go prints them: true/false, <no value>, maps as map[k:v], lists as [a b]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<no value>"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{show(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(show(v) for v in value) + "]"
    return str(value)
