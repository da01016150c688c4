"""The shell lexer of a Dockerfile: quotes, escapes and ``$variables`` without a shell.

Before a build runs ``WORKDIR $HOME/app`` or ``ENV PATH=$PATH:/opt/bin``, the builder (not a
shell) expands the variables. Docker does it with a small lexer that imitates ``sh``: single
quotes keep every character, double quotes keep all but ``$``, ``"`` and the escape character,
the escape character (a backslash, or the backtick chosen by an ``escape`` directive) takes
the next character literally, and ``$name``/``${name}`` become the variable's value. Inside
``${...}`` the reference's modifiers choose a value: ``${v:-word}`` (a default), ``${v:+word}`` (an
alternative), ``${v?message}`` (an error when unset), ``${v#pattern}``/``${v%pattern}`` (trim a
prefix/suffix), ``${v/pattern/replacement}``. With a ``:`` an empty value counts as unset.

``process_word`` gives one string (what WORKDIR or USER receive); ``process_words`` splits
the result into words after expansion, as ``EXPOSE`` and heredoc names need.

Spec: moby/buildkit frontend/dockerfile/docs/reference.md, "Environment replacement";
frontend/dockerfile/shell (the lexer, its envVarTest and wordsTest tables); POSIX sh,
"Quoting" and "Parameter Expansion".
Used by: notebook 10-builds, tests/test_build_parser.py (BuildKit's tables).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from minidocker.errors import MinidockerError

EOF = ""  # what the scanner returns past the last character

# Special parameters of sh ($@, $#, $?, ...): a build never sets them, so they expand to ""
SPECIAL_PARAMETERS = "@*#?-$!0"


class ExpansionError(MinidockerError):
    """A word the lexer cannot expand: an open quote, a missing ``}``, ``${v?message}``."""


def is_space(ch: str) -> bool:
    """Go's ``unicode.IsSpace``: Python's ``isspace`` also counts the ASCII separators 0x1c-0x1f."""
    return ch.isspace() and ch not in "\x1c\x1d\x1e\x1f"


@dataclass
class Expansion:
    """What expanding one word gave: the text, its words, and which variables it looked up."""

    result: str
    words: list[str]
    matched: set[str] = field(default_factory=set)
    unmatched: set[str] = field(default_factory=set)


class _Scanner:
    """One character at a time through a word, with a look at the next one (Go's text/scanner)."""

    def __init__(self, text: str):
        self.text = text.removeprefix("\ufeff")
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else EOF

    def next(self) -> str:
        ch = self.peek()
        self.pos += len(ch)
        return ch


class _Words:
    """Splits the expanded text into words on unquoted white space."""

    def __init__(self):
        self.words: list[str] = []
        self.current = ""

    def add_char(self, ch: str) -> None:
        """A character that may separate words (it came from the text or a variable)."""
        if not is_space(ch):
            self.current += ch
        elif self.current:
            self.words.append(self.current)
            self.current = ""

    def add_text(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw(self, text: str) -> None:
        """Quoted or escaped text: part of the current word, white space included."""
        self.current += text

    def finish(self) -> list[str]:
        if self.current:
            self.words.append(self.current)
            self.current = ""
        return self.words


class Lexer:
    """Expands one word at a time with a given environment.

    ``raw_quotes`` keeps the quote characters in the result and ``raw_escapes`` keeps the
    escape characters (the parser uses both to find heredoc names); ``skip_unset`` leaves
    ``$name`` as written when ``name`` is not set; ``skip_quotes`` treats quotes as ordinary
    characters.
    """

    def __init__(self, escape_token: str = "\\", *, raw_quotes: bool = False,
                 raw_escapes: bool = False, skip_unset: bool = False, skip_quotes: bool = False):
        self.escape_token = escape_token
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_unset = skip_unset
        self.skip_quotes = skip_quotes

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """The word with quotes removed and variables replaced, spaces kept (WORKDIR, USER...)."""
        return self.expand(word, env).result

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """The expanded word split into words on unquoted white space (EXPOSE, heredoc names)."""
        return self.expand(word, env).words

    def expand(self, word: str, env: Mapping[str, str]) -> Expansion:
        """Both views at once, plus the variables looked up (a build cache key needs them)."""
        state = _Expander(self, word, env)
        try:
            result, words = state.until(EOF, self.raw_escapes)
        except ExpansionError as err:
            raise ExpansionError(f"failed to process {go_quote(word)}: {err}") from None
        return Expansion(result, words, state.matched, state.unmatched)


class _Expander:
    """The state of expanding one word: where the scanner is, which variables were used."""

    def __init__(self, lexer: Lexer, word: str, env: Mapping[str, str]):
        self.lexer = lexer
        self.escape = lexer.escape_token
        self.scanner = _Scanner(word)
        self.env = env
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    def until(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        """Reads up to ``stop`` (EOF for the whole word; ``}`` or ``/`` inside ``${...}``)."""
        result, words = [], _Words()
        while (ch := self.scanner.peek()) != EOF:
            if stop != EOF and ch == stop:
                self.scanner.next()
                return "".join(result), words.finish()
            if ch == "$":
                text = self.dollar()
                words.add_text(text)
            elif ch in "'\"" and not self.lexer.skip_quotes:
                text = self.single_quoted() if ch == "'" else self.double_quoted()
                words.add_raw(text)
            elif ch == "<":
                text = self.possible_heredoc()
                words.add_raw(text)
            else:
                text = self.plain_character(words, raw_escapes)
            result.append(text)
        if stop != EOF:
            raise ExpansionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.finish()

    def plain_character(self, words: _Words, raw_escapes: bool) -> str:
        """An unquoted character; the escape character takes the next one literally (a lone
        escape character at the end of the word is dropped)."""
        ch = self.scanner.next()
        if ch != self.escape:
            words.add_char(ch)
            return ch
        text = (ch if raw_escapes else "") + self.scanner.next()
        words.add_raw(text)
        return text

    def single_quoted(self) -> str:
        """Everything up to the next ``'`` is literal: nothing, not even ``\\``, escapes in it."""
        quote = self.scanner.next()
        text = quote if self.lexer.raw_quotes else ""
        while (ch := self.scanner.next()) != "'":
            if ch == EOF:
                raise ExpansionError(
                    "unexpected end of statement while looking for matching single-quote")
            text += ch
        return text + (ch if self.lexer.raw_quotes else "")

    def double_quoted(self) -> str:
        """Up to the next ``"``: ``$`` still expands; the escape character escapes only
        ``"``, ``$`` and itself and stays literal before anything else."""
        quote = self.scanner.next()
        text = quote if self.lexer.raw_quotes else ""
        while True:
            ch = self.scanner.peek()
            if ch == EOF:
                raise ExpansionError(
                    "unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.scanner.next()
                return text + (ch if self.lexer.raw_quotes else "")
            if ch == "$":
                text += self.dollar()
                continue
            ch = self.scanner.next()
            if ch == self.escape:
                if self.lexer.raw_escapes:
                    text += ch
                following = self.scanner.peek()
                if following == EOF:
                    continue
                if following in ('"', "$", self.escape):
                    ch = self.scanner.next()
            text += ch

    def possible_heredoc(self) -> str:
        """``<<`` and the blanks after it stay glued to the heredoc's name (``<< EOF`` is one word)."""
        self.scanner.next()
        if self.scanner.peek() != "<":
            return "<"
        self.scanner.next()
        text = "<<"
        while self.scanner.peek() in ("\t", "\r", " "):
            text += self.scanner.next()
        return text

    def name(self) -> str:
        """A variable name: letters, digits and ``_``; or a run of digits (a positional
        parameter); or one special parameter character."""
        first = self.scanner.peek()
        if first != EOF and first.isdecimal():
            digits = ""
            while self.scanner.peek() != EOF and self.scanner.peek().isdecimal():
                digits += self.scanner.next()
            return digits
        if first != EOF and first in SPECIAL_PARAMETERS:
            return self.scanner.next()
        name = ""
        while (ch := self.scanner.peek()) != EOF and (ch.isalpha() or ch.isdecimal() or ch == "_"):
            name += self.scanner.next()
        return name

    def lookup(self, name: str) -> str | None:
        """The variable's value, or None when it is not set (empty and unset differ)."""
        value = self.env.get(name)
        (self.unmatched if value is None else self.matched).add(name)
        return value

    def dollar(self) -> str:
        """``$name`` or ``${...}``; a ``$`` followed by no name stays a ``$``."""
        self.scanner.next()
        if self.scanner.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value = self.lookup(name)
            if value is None:
                return "$" + name if self.lexer.skip_unset else ""
            return value
        self.scanner.next()
        return self.braces()

    def braces(self) -> str:
        """The inside of ``${...}``: a name, then ``}`` or a modifier."""
        first = self.scanner.peek()
        if first == EOF:
            raise ExpansionError("syntax error: missing '}'")
        if first in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self.name()
        modifier = self.scanner.next()
        if modifier == "}":
            value = self.lookup(name)
            if value is None:
                return "${" + name + "}" if self.lexer.skip_unset else ""
            return value
        if modifier == "/":
            return self.replacement(name)
        if modifier == ":":
            return self.modifier(name, ":" + self.scanner.next(), null_is_unset=True)
        if modifier == EOF:
            raise ExpansionError("syntax error: missing '}'")
        if modifier in "+-?#%":
            return self.modifier(name, modifier, null_is_unset=False)
        raise ExpansionError(f"unsupported modifier ({modifier}) in substitution")

    def modifier(self, name: str, written: str, null_is_unset: bool) -> str:
        """``${name-word}``, ``${name:+word}``, ``${name?message}``, ``${name#pattern}``..."""
        op = written[-1:]
        pattern_op = op in ("#", "%")
        if null_is_unset and pattern_op:
            raise ExpansionError(f"unsupported modifier ({written}) in substitution")
        word = self.word_until("}", raw_escapes=pattern_op)
        value = self.lookup(name)
        if value is None and self.lexer.skip_unset:
            return "${" + name + written + word + "}"
        unset = value is None or (null_is_unset and value == "")
        if op == "-":
            return word if unset else value
        if op == "+":
            return "" if unset else word
        if op == "?":
            if unset:
                default = "is not allowed to be unset" if value is None else "is not allowed to be empty"
                raise ExpansionError(f"{name}: {word or default}")
            return value
        if pattern_op:
            return trim(value or "", word, op)
        raise ExpansionError(f"unsupported modifier ({written}) in substitution")

    def replacement(self, name: str) -> str:
        """``${name/pattern/replacement}`` (first match) and ``${name//pattern/replacement}`` (all)."""
        every = self.scanner.peek() == "/"
        if every:
            self.scanner.next()
        pattern = self.word_until("/", raw_escapes=True, missing="syntax error: missing '/' in ${}")
        replacement = self.word_until("}", raw_escapes=True)
        value = self.lookup(name)
        if value is None and self.lexer.skip_unset:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        regex = shell_pattern(pattern, greedy=True, anchored=False)
        return regex.sub(lambda _: replacement, value or "", count=0 if every else 1)

    def word_until(self, stop: str, raw_escapes: bool,
                   missing: str = "syntax error: missing '}'") -> str:
        try:
            word, _ = self.until(stop, raw_escapes)
        except ExpansionError:
            if self.scanner.peek() == EOF:
                raise ExpansionError(missing) from None
            raise
        return word


def shell_pattern(pattern: str, greedy: bool, anchored: bool) -> re.Pattern:
    """A glob of ``${v#pattern}`` as a regular expression: ``?`` any one character, ``*`` any
    run (shortest or longest), ``\\*`` and ``\\?`` literal; no ``[...]`` classes."""
    regex = "^" if anchored else ""
    star = ".*" if greedy else ".*?"
    scanner = _Scanner(pattern)
    while (ch := scanner.next()) != EOF:
        if ch == "*":
            regex += star
        elif ch == "?":
            regex += "."
        elif ch == "\\":
            if scanner.peek() in ("}", "/"):
                continue  # escaped so that it did not end the ${...}; not part of the pattern
            escaped = scanner.next()
            if escaped not in ("*", "?", "\\"):
                raise ExpansionError(f"invalid pattern ({pattern}) in substitution: "
                                     f"invalid escape '\\{escaped}'")
            regex += re.escape(escaped)
        else:
            regex += re.escape(ch)
    return re.compile(regex)


def trim(value: str, pattern: str, op: str) -> str:
    """``#`` removes the shortest matching prefix, ``##`` the longest; ``%`` and ``%%`` the same
    for a suffix (matched on the reversed value with the reversed pattern)."""
    greedy = pattern.startswith(op)
    if greedy:
        pattern = pattern[1:]
    if op == "#":
        return trim_prefix(value, pattern, greedy)
    return trim_prefix(value[::-1], reverse_pattern(pattern), greedy)[::-1]


def trim_prefix(value: str, pattern: str, greedy: bool) -> str:
    match = shell_pattern(pattern, greedy, anchored=True).search(value)
    return value[match.end():] if match else value


def reverse_pattern(pattern: str) -> str:
    """Reverses a glob but keeps each ``\\x`` escape in its order (``a\\*c`` becomes ``c\\*a``)."""
    pieces, i = [], 0
    while i < len(pattern):
        size = 2 if pattern[i] == "\\" and i + 1 < len(pattern) else 1
        pieces.append(pattern[i:i + size])
        i += size
    return "".join(reversed(pieces))


def go_quote(text: str) -> str:
    """A string quoted as Go's ``strconv.Quote`` does (BuildKit prints arguments this way):
    ``"`` and ``\\`` escaped, printable characters kept, the rest as ``\\n``, ``\\x00``,
    ``\\u00a0``...; bytes that were not UTF-8 (kept as surrogate escapes) as ``\\xHH``."""
    return '"' + "".join(_go_char(ch) for ch in text) + '"'


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", '"': '\\"', "\\": "\\\\"}


def _go_char(ch: str) -> str:
    if ch in _GO_ESCAPES:
        return _GO_ESCAPES[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    if ch.isprintable():
        return ch
    if code < 0x80:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
