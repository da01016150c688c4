"""Variable expansion: ``$variables`` in exactly the instructions Docker expands.

The reference lists them: ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME,
WORKDIR (and ONBUILD's trigger, expanded when it runs in the child build); BuildKit also
expands ARG's defaults. RUN, CMD and ENTRYPOINT are left to the shell in the container. Each
command's words go through the shell lexer (shell.py), which also removes their quotes:
``ENV msg="hello world"`` stores ``hello world``. All the variables of one instruction take
their values from before it — ``ENV a=1 b=$a`` sees the old ``a`` — so ``expand`` takes
the environment once per command. A FROM line sees only the meta args (ARGs before the first
FROM). Heredoc contents of COPY/ADD expand too, unless their delimiter was quoted.

Spec: moby/buildkit frontend/dockerfile/docs/reference.md, "Environment replacement",
"Understand how ARG and FROM interact".
Used by: the builder (and its cache key: ``variables_used``), notebook 10-builds.
"""

from collections.abc import Mapping
from dataclasses import replace

from minidocker.build.commands import (
    Add,
    Arg,
    Command,
    Copy,
    Env,
    Expose,
    FileCopy,
    From,
    Label,
    Stopsignal,
    User,
    Volume,
    Workdir,
)
from minidocker.build.parser import DockerfileError, Heredoc
from minidocker.build.shell import ExpansionError, Lexer
from minidocker.errors import MinidockerError

EXPANDED_FIELDS = {
    From: ("image", "platform"),
    Copy: ("sources", "dest", "chown", "chmod"),
    Add: ("sources", "dest", "chown", "chmod", "checksum"),
    Env: ("pairs",),
    Label: ("pairs",),
    Arg: ("pairs",),
    Expose: ("ports",),
    Volume: ("paths",),
    Workdir: ("path",),
    User: ("user",),
    Stopsignal: ("signal",),
}


def expand(command: Command, env: Mapping[str, str], escape: str = "\\") -> Command:
    """The command with its variables replaced and quotes removed, all with the values of
    ``env`` before it; commands Docker does not expand come back unchanged. For FROM, ``env``
    is the meta args."""
    names = EXPANDED_FIELDS.get(type(command))
    if names is None:
        return command
    lexer = Lexer(escape)
    try:
        changes = {name: expand_value(lexer, getattr(command, name), env, name == "ports")
                   for name in names}
        if isinstance(command, FileCopy):
            changes["contents"] = tuple(expand_inline_file(h, env) for h in command.contents)
        if isinstance(command, Copy):
            check_copy_from(lexer, command.from_)
    except MinidockerError as err:
        raise DockerfileError(command.file, command.line, str(err)) from None
    return replace(command, **changes)


def expand_value(lexer: Lexer, value, env: Mapping[str, str], split: bool):
    """A string, a tuple of strings, or a tuple of pairs (None stays None). ``split``: each
    word may expand to several (``EXPOSE $PORTS``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return lexer.process_word(value, env)
    if split:
        return tuple(word for item in value for word in lexer.process_words(item, env))
    return tuple(expand_value(lexer, item, env, False) for item in value)


def expand_inline_file(heredoc: Heredoc, env: Mapping[str, str]) -> Heredoc:
    """A heredoc's content is expanded unless its delimiter was quoted; quotes in it stay."""
    if not heredoc.expand:
        return heredoc
    return replace(heredoc, content=Lexer(skip_quotes=True).process_word(heredoc.content, env))


def check_copy_from(lexer: Lexer, source: str) -> None:
    if source and lexer.process_word(source, {}) != source:
        raise ExpansionError("variable expansion is not supported for --from; define a stage "
                             "with FROM using a global ARG instead")


def variables_used(command: Command, env: Mapping[str, str], escape: str = "\\") -> set[str]:
    """The names in ``env`` that expanding ``command`` reads (a cache key includes their values)."""
    used: set[str] = set()
    lexer = Lexer(escape)
    for name in EXPANDED_FIELDS.get(type(command), ()):
        for word in flatten(getattr(command, name)):
            used |= lexer.expand(word, env).matched
    return used


def flatten(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [word for item in value for word in flatten(item)]

