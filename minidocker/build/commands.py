"""The typed commands of a Dockerfile: one frozen dataclass per instruction, and the stage.

These are the words a builder works with. ``Run`` knows whether it is the shell form (one
command line for the SHELL) or the exec form (an argv); ``Copy`` its sources, destination and
flags; ``Healthcheck`` its test in the image config's form and its durations in nanoseconds.
Every command also carries where it was written (file, line, text as written) for error
messages, the ``Step N/M : ...`` lines and the build cache's key; those fields take no part
in equality, so that a test can compare ``Run(("echo hi",))`` with a parsed one.

Spec: moby/buildkit frontend/dockerfile/docs/reference.md (each instruction's section);
frontend/dockerfile/instructions/commands.go (the same commands in Go).
Used by: instructions.py (which makes them), the builder, notebook 10-builds.
"""

from dataclasses import dataclass, field

from minidocker.build.parser import Heredoc


@dataclass(frozen=True, kw_only=True)
class Command:
    """What every instruction carries besides its meaning: where it was written."""

    file: str = field(default="Dockerfile", compare=False, repr=False)
    line: int = field(default=0, compare=False, repr=False)
    text: str = field(default="", compare=False, repr=False)  # the logical line as written

    @property
    def name(self) -> str:
        """The instruction's keyword: ``RUN``, ``COPY``..."""
        return type(self).__name__.upper()


@dataclass(frozen=True)
class From(Command):
    image: str
    name: str = ""  # the stage name of ``FROM image AS name``, lower-cased
    platform: str = ""


@dataclass(frozen=True)
class Run(Command):
    """``command`` is one string in the shell form (run by SHELL), the argv in the exec form."""

    command: tuple[str, ...]
    shell_form: bool = True
    heredocs: tuple[Heredoc, ...] = ()  # content already without leading tabs for <<-
    mounts: tuple[str, ...] = ()  # --mount=... as written
    network: str = ""
    security: str = ""


@dataclass(frozen=True)
class Cmd(Command):
    command: tuple[str, ...]
    shell_form: bool = True


@dataclass(frozen=True)
class Entrypoint(Command):
    command: tuple[str, ...]
    shell_form: bool = True


@dataclass(frozen=True)
class Copy(Command):
    """``contents`` are heredoc sources: inline files named by their delimiter."""

    sources: tuple[str, ...]
    dest: str
    from_: str = ""
    chown: str = ""
    chmod: str = ""
    link: bool = False
    parents: bool = False
    exclude: tuple[str, ...] = ()
    contents: tuple[Heredoc, ...] = ()


@dataclass(frozen=True)
class Add(Command):
    sources: tuple[str, ...]
    dest: str
    chown: str = ""
    chmod: str = ""
    link: bool = False
    checksum: str = ""
    keep_git_dir: bool | None = None
    unpack: bool | None = None
    exclude: tuple[str, ...] = ()
    contents: tuple[Heredoc, ...] = ()


@dataclass(frozen=True)
class Env(Command):
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Arg(Command):
    """``ARG a b=2``: one pair per name; the default is None when none is given."""

    pairs: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class Label(Command):
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Expose(Command):
    ports: tuple[str, ...]


@dataclass(frozen=True)
class Volume(Command):
    paths: tuple[str, ...]


@dataclass(frozen=True)
class Workdir(Command):
    path: str


@dataclass(frozen=True)
class User(Command):
    user: str


@dataclass(frozen=True)
class Onbuild(Command):
    """The trigger as text: it is parsed again when a child image's build runs it."""

    trigger: str


@dataclass(frozen=True)
class Stopsignal(Command):
    signal: str


@dataclass(frozen=True)
class Shell(Command):
    shell: tuple[str, ...]


@dataclass(frozen=True)
class Healthcheck(Command):
    """``test`` as in the image config: ``("NONE",)``, ``("CMD", argv...)`` or
    ``("CMD-SHELL", command)``; durations in nanoseconds, 0 meaning Docker's default."""

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True)
class Maintainer(Command):
    maintainer: str


@dataclass
class Stage:
    """One ``FROM`` and the commands up to the next: ``FROM golang AS build`` ... ."""

    index: int
    from_: From
    commands: list[Command] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.from_.name

    @property
    def base(self) -> str:
        return self.from_.image
