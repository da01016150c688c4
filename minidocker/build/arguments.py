"""Arguments of a Dockerfile instruction: flags first, then the instruction's own form.

One logical line is ``INSTRUCTION [--flag=value ...] arguments``. The instruction is the first
word; words starting with ``--`` right after it are its flags (``COPY --from=build``); what
follows is read by the rule of that instruction, as the Dockerfile reference describes it:

- the exec form, a JSON array of strings (``CMD ["nginx", "-g", "daemon off;"]``), tried first
  by RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, and by ADD, COPY, VOLUME for their list; text
  that is not valid JSON is the shell form (one string, or words for the lists), but a JSON
  array holding something other than strings is an error;
- whitespace-separated words (FROM, EXPOSE);
- one string, the rest of the line (USER, WORKDIR, STOPSIGNAL, MAINTAINER);
- ``key=value`` pairs whose values may be quoted (ENV, LABEL; ENV also knows the old
  ``ENV key the value`` form), and ``name[=default]`` words (ARG).

Nothing is expanded here: quotes stay in the words, ``$v`` stays ``$v``; the builder expands
later, per instruction (see instructions.py).

Spec: moby/buildkit frontend/dockerfile/docs/reference.md ("Shell and exec form", each
instruction's section); frontend/dockerfile/parser (split_command.go, line_parsers.go).
Used by: parser.py; notebook 10-builds.
"""

import json
import re
from collections.abc import Callable

from minidocker.build.shell import go_quote, is_space
from minidocker.errors import MinidockerError

# The blanks that separate the instruction from its arguments and words from each other (a
# newline cannot occur: continuation lines are joined without theirs)
BLANKS = re.compile(r"[\t\v\f\r ]+")


class ArgumentError(MinidockerError):
    """The arguments cannot be read; the parser adds the file and line."""


def split_command(line: str, escape: str) -> tuple[str, list[str], str]:
    """``COPY --from=build /a /b`` -> ``("COPY", ["--from=build"], "/a /b")``."""
    parts = BLANKS.split(line.strip(), maxsplit=1)
    if len(parts) < 2:
        return parts[0], [], ""
    rest, flags = extract_flags(parts[1], escape)
    return parts[0], flags, rest.strip()


def extract_flags(text: str, escape: str) -> tuple[str, list[str]]:
    """Takes the ``--flag`` words from the front of the arguments; a word ``--`` ends them.
    Quotes and the escape character work in flags as in a shell (``--chown="a b"``)."""
    flags: list[str] = []
    word, quote, quoted, in_word = "", "", False, False
    i = 0
    while i < len(text):
        ch = text[i]
        if not in_word:
            if is_space(ch):
                i += 1
                continue
            if not text.startswith("--", i):
                return text[i:], flags
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and i + 1 == len(text):
                quote = ""
            else:
                if ch == escape:
                    i += 1
                word += text[i]
        elif is_space(ch):
            if word == "--":
                return text[i:], flags
            if word or quoted:
                flags.append(word)
            word, quoted, in_word = "", False, False
        elif ch in "'\"":
            quote, quoted = ch, True
        elif ch == escape:
            if i + 1 < len(text):
                i += 1
                word += text[i]
        else:
            word += ch
        i += 1
    if word != "--" and (word or quoted):
        flags.append(word)
    return "", flags


def parse_words(text: str, escape: str) -> list[str]:
    """Splits on blanks outside quotes, keeping quotes and escapes in the words: ENV, LABEL
    and ARG words are unquoted later, when they are expanded."""
    words: list[str] = []
    word, quote, quoted, in_word = "", "", False, False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == escape and quote != "'":
            # it stays in the word with the character it escapes, a quote included; the last
            # one on the line is dropped and closes an open quote
            if i + 1 < len(text):
                word += text[i:i + 2]
            else:
                quote = ""
            in_word = True
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
            word += ch
        elif is_space(ch):
            if in_word and (word or quoted):
                words.append(word)
            word, quoted, in_word = "", False, False
        else:
            in_word = True
            if ch in "'\"":
                quote, quoted = ch, True
            word += ch
        i += 1
    if word or quoted:
        words.append(word)
    return words


def exec_form(text: str) -> list[str] | None:
    """The JSON array of an exec form, or None when the text is not JSON (then it is the shell
    form). A valid JSON array of anything but strings is refused, as Docker does."""
    text = text.lstrip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text, parse_constant=_not_json)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise ArgumentError("when using JSON array syntax, arrays must be comprised of strings only")
    return value


def _not_json(name: str):
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity: Python's json accepts them, Go's not


# Each reader returns the arguments and whether they were written in the exec (JSON) form.
Arguments = tuple[list[str], bool]


def words_or_nothing(text: str, escape: str) -> Arguments:
    """FROM, EXPOSE: the words as written."""
    return (BLANKS.split(text) if text else []), False


def whole_string(text: str, escape: str) -> Arguments:
    """USER, WORKDIR, STOPSIGNAL, MAINTAINER: the rest of the line is one argument."""
    return ([text] if text else []), False


def exec_or_shell_form(text: str, escape: str) -> Arguments:
    """RUN, CMD, ENTRYPOINT, SHELL: a JSON array, or else one shell command line."""
    if not text:
        return [], False
    array = exec_form(text)
    return ([text], False) if array is None else (array, True)


def exec_or_word_list(text: str, escape: str) -> Arguments:
    """ADD, COPY, VOLUME: a JSON array, or else whitespace-separated words."""
    array = exec_form(text)
    return words_or_nothing(text, escape) if array is None else (array, True)


def healthcheck_form(text: str, escape: str) -> Arguments:
    """HEALTHCHECK: a type word (``CMD`` or ``NONE``), then a command in either form."""
    kind = re.match(r"\S*", text).group()
    if not kind:
        return [], False
    command, is_exec = exec_or_shell_form(text[len(kind):].lstrip(), escape)
    return [kind, *command], is_exec


def key_value_pairs(instruction: str) -> Callable[[str, str], Arguments]:
    """ENV and LABEL: ``key=value ...``, each pair printed as key, value and ``=``; or the old
    ``key value with spaces`` form (one pair, separator ``""``), told apart by the first word."""

    def read(text: str, escape: str) -> Arguments:
        words = parse_words(text, escape)
        if not words:
            return [], False
        if "=" not in words[0]:
            parts = BLANKS.split(text, maxsplit=1)
            if len(parts) < 2:
                raise ArgumentError(f"{instruction} must have two arguments")
            return [parts[0], parts[1], ""], False
        arguments = []
        for word in words:
            if "=" not in word:
                raise ArgumentError(f"Syntax error - can't find = in {go_quote(word)}. "
                                    "Must be of the form: name=value")
            key, value = word.split("=", 1)
            arguments += [key, value, "="]
        return arguments, False

    return read


def names_or_assignments(text: str, escape: str) -> Arguments:
    """ARG: ``name`` or ``name=default`` words."""
    return parse_words(text, escape), False


def ignored(text: str, escape: str) -> Arguments:
    """An unknown instruction: BuildKit's parser keeps it with one empty argument and leaves the
    refusal to the next layer (instructions.py), which can suggest the right name."""
    return [""], False


ARGUMENT_READERS: dict[str, Callable[[str, str], Arguments]] = {
    "add": exec_or_word_list,
    "arg": names_or_assignments,
    "cmd": exec_or_shell_form,
    "copy": exec_or_word_list,
    "entrypoint": exec_or_shell_form,
    "env": key_value_pairs("ENV"),
    "expose": words_or_nothing,
    "from": words_or_nothing,
    "healthcheck": healthcheck_form,
    "label": key_value_pairs("LABEL"),
    "maintainer": whole_string,
    "run": exec_or_shell_form,
    "shell": exec_or_shell_form,
    "stopsignal": whole_string,
    "user": whole_string,
    "volume": exec_or_word_list,
    "workdir": whole_string,
}


def read_arguments(instruction: str, text: str, escape: str) -> Arguments:
    """The arguments of ``instruction`` (any case) read by its rule. ONBUILD is the parser's:
    its argument is a whole instruction."""
    reader = ARGUMENT_READERS.get(instruction.lower(), ignored)
    return reader(text, escape)
