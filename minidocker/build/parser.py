"""Reading a Dockerfile: lines become instructions, each a node of the syntax tree.

The Dockerfile reference describes the file in layers, and the parser reads it in the same
order. A few *parser directives* may open the file (``# escape=`` sets the escape character
to a backtick or a backslash, ``# syntax=`` names a frontend and is accepted and ignored
here); after the first other line, ``#`` only starts comments. A *comment* is a line whose
first non-blank character is ``#``. A line ending in the escape character *continues* on
the next one; comment lines and empty lines inside a continuation are skipped. The joined
*logical line* is an *instruction* (``RUN``, any case), its ``--flags`` and its
*arguments*, read by that instruction's rule (arguments.py). ``RUN``, ``COPY`` and ``ADD``
may end with *heredocs* (``<<EOF`` ... ``EOF``): the lines after the instruction, up to the
delimiter, are its inline files.

The result is one ``Node`` per instruction, with its line numbers and text as written, in
the shape of BuildKit's ``parser.Node``; ``dump`` prints it in BuildKit's own test format, so
BuildKit's test corpus checks this parser (tests/test_build_parser.py). The meaning of each
instruction (a typed ``Run``, ``Copy``, stages) is the next layer: instructions.py.

Spec: moby/buildkit frontend/dockerfile/docs/reference.md ("Format", "Parser directives",
"Here-Documents"); frontend/dockerfile/parser (the reference implementation and its tests).
Used by: notebook 10-builds, lab 10-build, the builder.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

from minidocker.build.arguments import read_arguments, split_command
from minidocker.build.shell import ExpansionError, Lexer, go_quote, is_space
from minidocker.errors import MinidockerError

DEFAULT_ESCAPE = "\\"
MAX_LINE = 65535  # BuildKit reads lines with Go's bufio.Scanner: 64 KiB with the newline

DIRECTIVES = ("syntax", "escape", "check")
DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*")
HEREDOC = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)")
HEREDOC_INSTRUCTIONS = ("add", "copy", "run")


class DockerfileError(MinidockerError):
    """A Dockerfile that cannot be read: ``Dockerfile:3: unknown instruction: RUNN``."""

    def __init__(self, file: str, line: int, message: str):
        super().__init__(f"{file}:{line}: {message}")
        self.file, self.line, self.reason = file, line, message


@dataclass
class Heredoc:
    """An inline file: ``<<EOF`` (variables expanded), ``<<"EOF"`` (quoted: kept as written),
    ``<<-EOF`` (leading tabs removed, "chomped"), ``3<<EOF`` (for file descriptor 3)."""

    name: str
    content: str = ""
    expand: bool = True
    chomp: bool = False
    fd: int = 0


@dataclass
class Node:
    """One instruction as written: ``COPY --from=build /app /app`` at lines 7-7."""

    instruction: str  # as written, any case: compare with .lower()
    arguments: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # ["--from=build"]
    json_form: bool = False  # the arguments were a JSON array (the exec form)
    original: str = ""  # the logical line, continuations joined
    start_line: int = 0
    end_line: int = 0
    heredocs: list[Heredoc] = field(default_factory=list)
    trigger: "Node | None" = None  # ONBUILD's instruction
    comments: list[str] = field(default_factory=list)  # the comment lines just above


@dataclass
class Dockerfile:
    """A parsed Dockerfile: its instructions in order, the escape character it uses, and
    warnings (empty continuation lines: allowed today, errors in a future Docker)."""

    file: str
    nodes: list[Node]
    escape_token: str = DEFAULT_ESCAPE
    warnings: list[str] = field(default_factory=list)


def parse_file(path: str | Path) -> Dockerfile:
    """``parse`` of a file on disk; errors name the file (``Dockerfile.dev:3: ...``)."""
    path = Path(path)
    try:
        source = path.read_bytes()
    except OSError as err:
        raise MinidockerError(f"cannot read {path}: {err.strerror}") from None
    return parse(source, file=path.name)


def parse(source: str | bytes, file: str = "Dockerfile") -> Dockerfile:
    """The instructions of a Dockerfile; a ``DockerfileError`` names the line that is wrong."""
    if isinstance(source, bytes):
        source = source.decode("utf-8", errors="surrogateescape")
    reader = _Reader(source.removeprefix("\ufeff"), file)
    nodes = list(reader.instructions())
    if not nodes:
        raise DockerfileError(file, max(reader.line_number, 1),
                              "file with no instructions (a Dockerfile starts with FROM)")
    return Dockerfile(file, nodes, reader.directives.escape, reader.warnings)


class _Directives:
    """The parser directives at the top of the file. The first line that is not one ends
    them: a ``# escape=`` further down is only a comment."""

    def __init__(self):
        self.seen: set[str] = set()
        self.done = False
        self.escape = DEFAULT_ESCAPE
        self.continuation = continuation_pattern(DEFAULT_ESCAPE)

    def read(self, line: str) -> bool:
        """True when ``line`` is a directive (then it is not a comment for the AST)."""
        if self.done:
            return False
        match = DIRECTIVE.fullmatch(go_lstrip(line[1:])) if line.startswith("#") else None
        name = match.group(1).lower() if match else ""
        if name not in DIRECTIVES:
            self.done = True
            return False
        if name in self.seen:
            raise MinidockerError(f"only one {name} parser directive can be used")
        self.seen.add(name)
        if name == "escape":
            self.set_escape(match.group(2))
        return True

    def set_escape(self, token: str) -> None:
        if token not in ("\\", "`"):
            raise MinidockerError(f"invalid escape token '{token}' does not match ` or \\ "
                                  "(write # escape=` or # escape=\\)")
        self.escape = token
        self.continuation = continuation_pattern(token)


def continuation_pattern(escape: str) -> re.Pattern:
    """The escape character ends a line that continues, unless it is escaped itself; it may
    also stand alone on a line. Blanks after it are allowed."""
    e = re.escape(escape)
    return re.compile(rf"([^{e}]){e}[ \t]*\Z|\A{e}[ \t]*\Z")


class _Reader:
    """Walks the physical lines once: directives, comments, continuations, heredoc bodies."""

    def __init__(self, source: str, file: str):
        self.lines = re.findall(r"[^\n]*\n|[^\n]+\Z", source)  # each with its newline
        self.file = file
        self.line_number = 0  # lines read so far: the number of the current line
        self.directives = _Directives()
        self.warnings: list[str] = []

    def next_line(self) -> str | None:
        """The next physical line with its newline, or None at the end of the file."""
        if self.line_number >= len(self.lines):
            return None
        line = self.lines[self.line_number]
        self.line_number += 1
        if len(line.rstrip("\n").encode("utf-8", errors="surrogateescape")) > MAX_LINE:
            raise DockerfileError(self.file, self.line_number,
                                  f"dockerfile line greater than max allowed size of {MAX_LINE}")
        return line

    def instructions(self):
        """Yields one Node per logical line that holds an instruction."""
        comments: list[str] = []
        while (raw := self.next_line()) is not None:
            text = self.directive_or_text(go_lstrip(trim_newline(raw)))
            if text is None:
                continue
            if is_comment(raw):
                comment = raw.strip()[1:].strip()
                comments = comments + [comment] if comment else []
            start = self.line_number
            text, continues = self.trim_continuation(text)
            if not continues and not text:
                continue
            line = text + self.continuation_lines() if continues else text
            node = self.node(line, start, comments)
            self.read_heredocs(node, line)
            node.end_line = self.line_number
            comments = []
            yield node

    def directive_or_text(self, line: str) -> str | None:
        """None for a directive; "" for a comment; else the line itself."""
        try:
            if self.directives.read(line):
                return None
        except MinidockerError as err:
            raise DockerfileError(self.file, self.line_number, str(err)) from None
        return "" if line.startswith("#") else line

    def trim_continuation(self, text: str) -> tuple[str, bool]:
        """``RUN a \\`` -> (``RUN a ``, True): the escape character at the end is removed."""
        trimmed, count = self.directives.continuation.subn(r"\1", text, count=1)
        return trimmed, count > 0

    def continuation_lines(self) -> str:
        """The rest of a logical line; left blanks are kept, comments and empty lines skipped."""
        joined, continues = "", True
        while continues and (raw := self.next_line()) is not None:
            text = trim_newline(raw)
            if is_comment(raw):
                continue
            if not go_lstrip(text):
                self.warnings.append(f"{self.file}:{self.line_number}: empty continuation line "
                                     "(Docker will refuse these in a future release)")
                continue
            text, continues = self.trim_continuation(text)
            joined += text
        return joined

    def node(self, line: str, start: int, comments: list[str]) -> Node:
        try:
            node = node_from_line(line, self.directives.escape)
        except MinidockerError as err:
            raise DockerfileError(self.file, start, str(err)) from None
        node.start_line, node.comments = start, comments
        return node

    def read_heredocs(self, node: Node, line: str) -> None:
        """Reads the body of each heredoc named on the line, in order, up to its delimiter."""
        if not can_contain_heredoc(node) or "<<" not in line:
            return
        try:
            heredocs = heredocs_in(line)
        except ExpansionError as err:
            raise DockerfileError(self.file, node.start_line, str(err)) from None
        for heredoc in heredocs:
            heredoc.content = self.heredoc_body(heredoc, node)
            node.heredocs.append(heredoc)

    def heredoc_body(self, heredoc: Heredoc, node: Node) -> str:
        body = []
        while (raw := self.next_line()) is not None:
            candidate = trim_newline(raw)
            if heredoc.chomp:
                candidate = candidate.lstrip("\t")
            if candidate == heredoc.name:
                return "".join(body)
            body.append(raw)
        raise DockerfileError(self.file, node.start_line,
                              f"unterminated heredoc: no line {heredoc.name} ends it "
                              f"(started by {node.instruction})")


def node_from_line(line: str, escape: str) -> Node:
    """One logical line -> a Node: the instruction, its flags, its arguments by its rule.
    ONBUILD's argument is an instruction itself, parsed the same way."""
    instruction, flags, rest = split_command(line, escape)
    node = Node(instruction, flags=flags, original=line)
    if instruction.lower() == "onbuild":
        node.trigger = node_from_line(rest, escape) if rest else None
    else:
        node.arguments, node.json_form = read_arguments(instruction, rest, escape)
    return node


def can_contain_heredoc(node: Node) -> bool:
    """RUN, COPY and ADD in their shell form (also as an ONBUILD trigger)."""
    if node.instruction.lower() == "onbuild" and node.trigger is not None:
        node = node.trigger
    return node.instruction.lower() in HEREDOC_INSTRUCTIONS and not node.json_form


def heredocs_in(line: str) -> list[Heredoc]:
    """The heredocs a line opens: each word ``[n]<<[-]NAME``, with quotes and escapes kept so
    that a quoted name can be told from a plain one."""
    lexer = Lexer(raw_quotes=True, raw_escapes=True, skip_unset=True)
    try:
        words = lexer.process_words(line, {})
    except ExpansionError:
        return []
    return [heredoc for word in words if (heredoc := heredoc_from_word(word)) is not None]


def heredoc_from_word(word: str) -> Heredoc | None:
    """``<<EOF`` -> Heredoc("EOF"); ``<<-"EOF"`` -> Heredoc("EOF", chomp=True, expand=False).
    None when the word opens no heredoc (``<<`` alone, or a name of several words)."""
    match = HEREDOC.fullmatch(word)
    if not match or not match.group(3):
        return None
    fd, chomp, name = match.groups()
    unquoted = Lexer(skip_unset=True).process_words(name, {})
    if len(unquoted) != 1:
        return None
    raw = Lexer(skip_unset=True, raw_quotes=True).process_words(name, {})
    if len(raw) != 1:
        raise ExpansionError(f"internal lexing of heredoc produced inconsistent results: {name}")
    quotes = sum(unquoted[0].count(q) for q in "'\"")
    raw_quotes = sum(raw[0].count(q) for q in "'\"")
    return Heredoc(unquoted[0], expand=quotes == raw_quotes, chomp=chomp == "-",
                   fd=int(fd) if fd else 0)


def chomp(content: str) -> str:
    """The body of a ``<<-`` heredoc without the tabs that start its lines."""
    return re.sub(r"(?m)^\t+", "", content)


def is_comment(line: str) -> bool:
    return go_lstrip(line).startswith("#")


def go_lstrip(text: str) -> str:
    start = 0
    while start < len(text) and is_space(text[start]):
        start += 1
    return text[start:]


def trim_newline(line: str) -> str:
    return line.rstrip("\r\n")


def dump(tree: Dockerfile | Node) -> str:
    """BuildKit's test format: ``(copy ["--from=build"] "/app" "/app")`` per instruction,
    arguments quoted as Go quotes strings, ONBUILD's trigger nested: ``(onbuild (run "x"))``."""
    if isinstance(tree, Dockerfile):
        return "\n".join(dump(node) for node in tree.nodes)
    parts = [tree.instruction.lower()]
    if tree.flags:
        parts.append("[" + " ".join(go_quote(flag) for flag in tree.flags) + "]")
    parts += [go_quote(argument) for argument in tree.arguments]
    if tree.trigger is not None:
        parts.append(dump(tree.trigger))
    return "(" + " ".join(parts).strip() + ")"
