"""What each instruction means: typed commands, grouped into build stages.

The parser gives nodes (an instruction name and words); a builder needs meaning: that ``COPY
--from=build /app /srv`` copies ``/app`` of stage ``build`` to ``/srv``, that ``CMD echo hi``
is the shell form and ``CMD ["echo", "hi"]`` the exec form, that ``HEALTHCHECK
--interval=5s`` is 5 000 000 000 ns. Each node becomes one frozen dataclass of commands.py named
after its instruction (``Run``, ``Copy``, ``Env``...), checked as Docker checks it: the number of
arguments, the flags each instruction knows, a stage name's grammar, the triggers ONBUILD
refuses. An unknown instruction is refused here with the closest known name.

A ``FROM`` starts a *stage*: ``stages()`` groups the commands under their FROM.  ARGs before
the first FROM are *meta args* (``meta_args()``): they are visible only in FROM lines.

Nothing is expanded when reading: the builder calls ``expansion.expand(command, env)`` with
the variables of the moment.

Spec: moby/buildkit frontend/dockerfile/docs/reference.md (each instruction's section,
"Environment replacement", "Understand how ARG and FROM interact");
frontend/dockerfile/instructions (parse.go, bflag.go).
Used by: the builder, notebook 10-builds, lab 10-build.
"""

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import replace

from minidocker.build.commands import (
    Add,
    Arg,
    Cmd,
    Command,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    Stage,
    Stopsignal,
    User,
    Volume,
    Workdir,
)
from minidocker.build.parser import (
    Dockerfile,
    DockerfileError,
    Heredoc,
    Node,
    chomp,
    heredoc_from_word,
    parse,
)
from minidocker.container.health import go_duration  # HEALTHCHECK's --interval=1m30s
from minidocker.errors import MinidockerError

# Build args every build knows without an ARG line (reference: "Predefined ARGs")
PREDEFINED_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
                   "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")

STAGE_NAME = re.compile(r"[a-z][a-z0-9_.-]*")


def instructions(dockerfile: Dockerfile) -> list[Command]:
    """Every node of the Dockerfile as its typed command, in order."""
    return [instruction(node, dockerfile.file) for node in dockerfile.nodes]


def meta_args(dockerfile: Dockerfile) -> list[Arg]:
    """The ARGs before the first FROM: the only variables a FROM line sees."""
    found = []
    for command in instructions(dockerfile):
        if isinstance(command, From):
            break
        if isinstance(command, Arg):
            found.append(command)
    return found


def stages(dockerfile: Dockerfile) -> list[Stage]:
    """The build stages, each FROM with its commands. Only ARG may come before the first FROM."""
    result: list[Stage] = []
    for command in instructions(dockerfile):
        if isinstance(command, From):
            result.append(Stage(len(result), command.name, command))
        elif result:
            result[-1].commands.append(command)
        elif not isinstance(command, Arg):
            raise DockerfileError(command.file, command.line,
                                  f"{command.keyword} before the first FROM: only ARG may come "
                                  "before FROM (a Dockerfile's first stage starts with FROM)")
    if not result:
        raise DockerfileError(dockerfile.file, dockerfile.nodes[-1].end_line,
                              "no FROM: a Dockerfile needs at least one stage (FROM image)")
    return result


def parse_trigger(onbuild: Onbuild) -> Command:
    """An ONBUILD trigger as the command it runs in the child build."""
    return instructions(parse(onbuild.trigger, onbuild.file))[0]


def instruction(node: Node, file: str = "Dockerfile") -> Command:
    """One node as its typed command; a ``DockerfileError`` says what is wrong on its line."""
    reader = COMMAND_READERS.get(node.instruction.lower())
    if reader is None:
        raise DockerfileError(file, node.start_line, unknown_instruction(node.instruction))
    try:
        command = reader(node)
    except MinidockerError as err:
        raise DockerfileError(file, node.start_line, str(err)) from None
    return replace(command, file=file, line=node.start_line, text=node.original)


def unknown_instruction(written: str) -> str:
    close = difflib.get_close_matches(written.upper(), [n.upper() for n in COMMAND_READERS], 1)
    hint = f" (did you mean {close[0]}?)" if close else " (see the Dockerfile reference)"
    return f"unknown instruction: {written}{hint}"


# --- flags: --name=value, --flag (a bool), repeatable ones -----------------------------------

def read_flags(node: Node, **kinds: str) -> dict[str, object]:
    """The node's flags checked against those its instruction knows, by kind: "string"
    (``--from=x``), "bool" (``--link``, ``--link=false``), "strings" (repeatable)."""
    values: dict[str, object] = {}
    for flag in node.flags:
        if flag == "--":
            break
        if not flag.startswith("--"):
            raise MinidockerError(f"arg should start with -- : {flag}")
        written, has_value, value = flag.partition("=")
        name = written[2:]
        kind = kinds.get(name)
        if kind is None:
            raise MinidockerError(unknown_flag(node, written, kinds))
        if name in values and kind != "strings":
            raise MinidockerError(f"duplicate flag specified: {written}")
        if (kind != "bool" and not has_value) or (kind == "bool" and has_value and not value):
            raise MinidockerError(f"missing a value on flag: {written}")
        if kind == "bool":
            if value.lower() not in ("", "true", "false"):
                raise MinidockerError(f"expecting boolean value for flag {written}, not: {value}")
            values[name] = value.lower() != "false"
        elif kind == "strings":
            values[name] = (*values.get(name, ()), value)
        else:
            values[name] = value
    return values


def unknown_flag(node: Node, written: str, kinds: Mapping[str, str]) -> str:
    keyword = node.instruction.upper()
    if not kinds:
        return (f"unknown flag: {written} ({keyword} takes no flags; an argument that starts "
                f'with -- needs the JSON form: {keyword} ["{written}", ...])')
    known = ", ".join(f"--{k}" for k in kinds)
    return f"unknown flag: {written} ({keyword} knows: {known})"


# --- one reader per instruction ----------------------------------------------------------------

def exactly_one(node: Node) -> str:
    if len(node.arguments) != 1:
        raise MinidockerError(f"{node.instruction.upper()} requires exactly one argument")
    return node.arguments[0]


def at_least_one(node: Node) -> list[str]:
    if not node.arguments:
        raise MinidockerError(f"{node.instruction.upper()} requires at least one argument")
    return node.arguments


def command_line(node: Node) -> tuple[tuple[str, ...], bool]:
    """The exec form's argv, or the shell form's words joined into one command line."""
    if node.json_form:
        return tuple(node.arguments), False
    return ((" ".join(node.arguments),) if node.arguments else ()), True


def read_from(node: Node) -> From:
    flags = read_flags(node, platform="string")
    args = node.arguments
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not STAGE_NAME.fullmatch(name):
            raise MinidockerError(f"invalid name for build stage: {args[2]!r}, name can't "
                                  "start with a number or contain symbols")
        return From(args[0], name, flags.get("platform", ""))
    if len(args) != 1:
        raise MinidockerError("FROM requires either one or three arguments (FROM image [AS name])")
    return From(args[0], "", flags.get("platform", ""))


def read_run(node: Node) -> Run:
    flags = read_flags(node, mount="strings", network="string", security="string",
                       device="strings")
    at_least_one(node)  # a RUN with nothing to run is a typo, as BuildKit says
    command, shell_form = command_line(node)
    return Run(command, shell_form, inline_files(node), flags.get("mount", ()),
               flags.get("network", ""), flags.get("security", ""))


def read_cmd(node: Node) -> Cmd:
    read_flags(node)
    return Cmd(*command_line(node))


def read_entrypoint(node: Node) -> Entrypoint:
    read_flags(node)
    return Entrypoint(*command_line(node))


def inline_files(node: Node) -> tuple[Heredoc, ...]:
    return tuple(replace(h, content=chomp(h.content) if h.chomp else h.content)
                 for h in node.heredocs)


def sources_and_dest(node: Node) -> tuple[tuple[str, ...], str, tuple[Heredoc, ...]]:
    """The last argument is the destination; ``<<NAME`` sources are the heredocs' contents."""
    if len(node.arguments) < 2:
        raise MinidockerError(f"{node.instruction.upper()} requires at least two arguments, but "
                              "only one was provided. Destination could not be determined")
    *sources, dest = node.arguments
    if heredoc_from_word(dest):
        raise MinidockerError(f"{node.instruction.upper()} cannot accept a heredoc as a destination")
    files = {h.name: h for h in inline_files(node)}
    paths, contents = [], []
    for source in sources:
        heredoc = heredoc_from_word(source)
        if heredoc is None:
            paths.append(source)
        else:
            contents.append(files.get(heredoc.name, heredoc))
    return tuple(paths), dest, tuple(contents)


def read_copy(node: Node) -> Copy:
    flags = read_flags(node, chown="string", chmod="string", link="bool", parents="bool",
                       exclude="strings", **{"from": "string"})
    sources, dest, contents = sources_and_dest(node)
    return Copy(sources, dest, flags.get("chown", ""), flags.get("chmod", ""),
                flags.get("link", False), flags.get("exclude", ()), contents,
                from_=flags.get("from", ""), parents=flags.get("parents", False))


def read_add(node: Node) -> Add:
    flags = read_flags(node, chown="string", chmod="string", link="bool", checksum="string",
                       unpack="bool", exclude="strings", **{"keep-git-dir": "bool"})
    sources, dest, contents = sources_and_dest(node)
    return Add(sources, dest, flags.get("chown", ""), flags.get("chmod", ""),
               flags.get("link", False), flags.get("exclude", ()), contents,
               checksum=flags.get("checksum", ""), keep_git_dir=flags.get("keep-git-dir"),
               unpack=flags.get("unpack"))


def key_value_pairs(node: Node) -> tuple[tuple[str, str], ...]:
    """ENV and LABEL: the parser gives key, value, separator triples."""
    read_flags(node)
    args = at_least_one(node)
    pairs = tuple((args[i], args[i + 1]) for i in range(0, len(args), 3))
    if any(not key for key, _ in pairs):
        raise MinidockerError(f"{node.instruction.upper()} names can not be blank")
    return pairs


def read_arg(node: Node) -> Arg:
    read_flags(node)
    pairs = []
    for word in at_least_one(node):
        name, has_default, default = word.partition("=")
        if not name:
            raise MinidockerError("ARG names can not be blank")
        pairs.append((name, default if has_default else None))
    return Arg(tuple(pairs))


def read_volume(node: Node) -> Volume:
    read_flags(node)
    paths = tuple(path.strip() for path in at_least_one(node))
    if "" in paths:
        raise MinidockerError("VOLUME specified can not be an empty string")
    return Volume(paths)


def read_onbuild(node: Node) -> Onbuild:
    read_flags(node)
    if node.trigger is None:
        raise MinidockerError("ONBUILD requires at least one argument")
    trigger = node.trigger.instruction.upper()
    if trigger == "ONBUILD":
        raise MinidockerError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("FROM", "MAINTAINER"):
        raise MinidockerError(f"{trigger} isn't allowed as an ONBUILD trigger")
    text = re.sub(r"(?i)^\s*ONBUILD\s*", "", node.original)
    text += "".join(f"\n{h.content}{h.name}" for h in node.heredocs)
    return Onbuild(text)


def read_shell(node: Node) -> Shell:
    read_flags(node)
    at_least_one(node)
    if not node.json_form:
        raise MinidockerError("SHELL requires the arguments to be in JSON form: "
                              'SHELL ["executable", "parameters"]')
    return Shell(tuple(node.arguments))


def read_healthcheck(node: Node) -> Healthcheck:
    flags = read_flags(node, interval="string", timeout="string", retries="string",
                       **{"start-period": "string", "start-interval": "string"})
    kind, *rest = at_least_one(node)
    if kind.upper() == "NONE":
        if rest:
            raise MinidockerError("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(("NONE",))
    if kind.upper() != "CMD":
        raise MinidockerError(f"Unknown type {kind.upper()!r} in HEALTHCHECK (try CMD)")
    if not rest:
        raise MinidockerError("Missing command after HEALTHCHECK CMD")
    test = ("CMD", *rest) if node.json_form else ("CMD-SHELL", " ".join(rest))
    return Healthcheck(test, *(interval(flags, name) for name in
                               ("interval", "timeout", "start-period", "start-interval")),
                       retries(flags))


def interval(flags: Mapping[str, object], name: str) -> int:
    """A HEALTHCHECK duration in nanoseconds; 0 (the default) or at least 1ms."""
    text = flags.get(name, "")
    nanoseconds = go_duration(text) if text else 0
    if 0 < nanoseconds < 1_000_000 or nanoseconds < 0:
        raise MinidockerError(f"Interval {name!r} cannot be less than 1ms")
    return nanoseconds


def retries(flags: Mapping[str, object]) -> int:
    text = flags.get("retries", "")
    if not text:
        return 0
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise MinidockerError(f"--retries={text}: not a number")
    if int(text) < 0:
        raise MinidockerError(f"--retries cannot be negative ({int(text)})")
    return int(text)


def read_simple(kind: type, read: Callable[[Node], object]) -> Callable[[Node], Command]:
    """Instructions that take no flags and one kind of argument."""

    def reader(node: Node) -> Command:
        read_flags(node)
        return kind(read(node))

    return reader


COMMAND_READERS: dict[str, Callable[[Node], Command]] = {
    "add": read_add,
    "arg": read_arg,
    "cmd": read_cmd,
    "copy": read_copy,
    "entrypoint": read_entrypoint,
    "env": lambda node: Env(key_value_pairs(node)),
    "expose": read_simple(Expose, lambda node: tuple(at_least_one(node))),
    "from": read_from,
    "healthcheck": read_healthcheck,
    "label": lambda node: Label(key_value_pairs(node)),
    "maintainer": read_simple(Maintainer, exactly_one),
    "onbuild": read_onbuild,
    "run": read_run,
    "shell": read_shell,
    "stopsignal": read_simple(Stopsignal, exactly_one),
    "user": read_simple(User, exactly_one),
    "volume": read_volume,
    "workdir": read_simple(Workdir, exactly_one),
}
