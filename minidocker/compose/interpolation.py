"""Stage 13 — the ``.env`` file and ``${VAR}`` interpolation of a Compose file.

Before Compose reads a single key, it replaces variables in every *value* of the file (never in
a key) with the values of the shell's environment, or of the project's ``.env`` file when the
shell has none: ``$VAR`` and ``${VAR}``; ``${VAR:-default}`` (unset *or empty*: the default) and
``${VAR-default}`` (only unset); ``${VAR:?message}`` and ``${VAR?message}`` (refuse the file);
``${VAR:+other}`` and ``${VAR+other}`` (the other way round); ``$$`` is a ``$``. Defaults may
hold variables themselves (``${A:-${B}}``). An unset variable with no default is an empty
string, with a warning, as docker-compose says it.

Spec: the Compose Specification, "Interpolation" (12-interpolation.md); Docker's ".env file"
syntax (KEY=VALUE lines, ``#`` comments, quotes). Used by: ``compose config`` and every
``compose`` command (loader.py).
"""

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from minidocker.errors import MinidockerError

NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(MinidockerError):
    """A ``${VAR:?message}`` whose variable is missing, or a ``$`` that starts nothing."""


# --- the .env file -----------------------------------------------------------------------------

def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines: blank lines and ``#`` comments skipped, ``export`` allowed, quotes
    taken off (a double-quoted value knows ``\\n``); a line without ``=`` is an error."""
    try:
        text = path.read_text()
    except OSError as err:
        raise MinidockerError(f"cannot read the env file {path}: {err.strerror}") from None
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not NAME.fullmatch(key):
            raise MinidockerError(f"{path}:{number}: '{line}' is not KEY=VALUE (a variable "
                                  "name, '=', then its value)")
        values[key] = unquote(value.strip())
    return values


def unquote(value: str) -> str:
    """A value as written after ``=``: quotes removed, an unquoted ``  # comment`` dropped."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        inner = value[1:-1]
        return inner.replace("\\n", "\n").replace('\\"', '"') if value[0] == '"' else inner
    return value.split(" #", 1)[0].rstrip()


# --- ${VAR} in a value ---------------------------------------------------------------------------

def interpolate(text: str, env: Mapping[str, str], where: str,
                warn: Callable[[str], None] = lambda _: None) -> str:
    """``text`` with its variables replaced; ``where`` names the value in an error."""
    out, i = [], 0
    while i < len(text):
        dollar = text.find("$", i)
        if dollar < 0:
            out.append(text[i:])
            break
        out.append(text[i:dollar])
        value, i = substitute(text, dollar, env, where, warn)
        out.append(value)
    return "".join(out)


def substitute(text: str, dollar: int, env: Mapping[str, str], where: str,
               warn: Callable[[str], None]) -> tuple[str, int]:
    """The value of the ``$...`` at ``dollar``, and where the text goes on after it."""
    rest = text[dollar + 1:]
    if rest.startswith("$"):
        return "$", dollar + 2
    name = NAME.match(rest)
    if name:
        return lookup(name.group(), env, warn), dollar + 1 + name.end()
    if not rest.startswith("{"):
        raise InterpolationError(f"{where}: invalid interpolation format in {text!r}: a '$' "
                                 "starts a variable ($VAR or ${VAR}); write $$ for a '$'")
    end = closing_brace(text, dollar + 2, where)
    return braced(text[dollar + 2:end], env, where, warn), end + 1


def closing_brace(text: str, start: int, where: str) -> int:
    """The ``}`` that closes the ``${`` before ``start``, skipping nested ``${...}``."""
    depth = 1
    for i in range(start, len(text)):
        if text.startswith("${", i):
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise InterpolationError(f"{where}: invalid interpolation format in {text!r}: a '${{' is "
                             "never closed by '}'")


def braced(inner: str, env: Mapping[str, str], where: str, warn) -> str:
    """``NAME``, or ``NAME`` + an operator + a word (itself interpolated when it is used)."""
    name = NAME.match(inner)
    if not name:
        raise InterpolationError(f"{where}: invalid interpolation format '${{{inner}}}': a "
                                 "variable name is letters, digits and _")
    rest = inner[name.end():]
    key = name.group()
    if not rest:
        return lookup(key, env, warn)
    operator = next((op for op in OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise InterpolationError(f"{where}: invalid interpolation format '${{{inner}}}': use "
                                 "${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}")
    word = rest[len(operator):]
    value = env.get(key)
    present = value is not None and (value != "" or ":" not in operator)
    kind = operator[-1]
    if kind == "-":
        return value if present else interpolate(word, env, where, warn)
    if kind == "+":
        return interpolate(word, env, where, warn) if present else ""
    if not present:  # "?"
        message = interpolate(word, env, where, warn) or "it is required"
        raise InterpolationError(f"{where}: variable {key} is "
                                 f"{'empty' if value == '' else 'not set'}: {message} (set it "
                                 "in the shell or in the project's .env file)")
    return value


def lookup(key: str, env: Mapping[str, str], warn) -> str:
    if key not in env:
        warn(f"The {key} variable is not set. Defaulting to a blank string.")
        return ""
    return env[key]


def interpolate_tree(tree, env: Mapping[str, str], where: str, warn):
    """Every string value of a YAML tree interpolated (keys are left alone)."""
    if isinstance(tree, str):
        return interpolate(tree, env, where, warn)
    if isinstance(tree, dict):
        return {key: interpolate_tree(value, env, f"{where}.{key}", warn)
                for key, value in tree.items()}
    if isinstance(tree, list):
        return [interpolate_tree(item, env, where, warn) for item in tree]
    if hasattr(tree, "value"):  # the !reset and !override tags (see loader.py)
        return type(tree)(interpolate_tree(tree.value, env, where, warn))
    return tree
