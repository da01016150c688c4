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
    def keyword(self) -> str:
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
    """The container's default command, or ENTRYPOINT's default arguments."""

    command: tuple[str, ...]
    shell_form: bool = True


@dataclass(frozen=True)
class Entrypoint(Command):
    """The container's command; CMD (or ``docker run`` arguments) are appended to it."""

    command: tuple[str, ...]
    shell_form: bool = True


@dataclass(frozen=True)
class FileCopy(Command):
    """What COPY and ADD share: sources (paths in the context, or another stage for
    ``COPY --from``), a destination in the image, the new files' owner and mode.
    ``contents`` are heredoc sources: inline files named by their delimiter."""

    sources: tuple[str, ...]
    dest: str
    chown: str = ""
    chmod: str = ""
    link: bool = False
    exclude: tuple[str, ...] = ()
    contents: tuple[Heredoc, ...] = ()


@dataclass(frozen=True)
class Copy(FileCopy):
    """``COPY [--from=stage] src... dest``."""

    from_: str = ""
    parents: bool = False


@dataclass(frozen=True)
class Add(FileCopy):
    """``ADD src... dest``: like COPY, and a URL is downloaded, a local archive unpacked."""

    checksum: str = ""
    keep_git_dir: bool | None = None
    unpack: bool | None = None


@dataclass(frozen=True)
class Env(Command):
    """``ENV key=value ...``: variables for the later instructions and the container."""

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Arg(Command):
    """``ARG a b=2``: one pair per name; the default is None when none is given."""

    pairs: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class Label(Command):
    """``LABEL key=value ...``: metadata in the image config."""

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Expose(Command):
    """``EXPOSE 80/tcp``: ports the container listens on (documentation, not publishing)."""

    ports: tuple[str, ...]


@dataclass(frozen=True)
class Volume(Command):
    """``VOLUME /data``: mount points that get a volume in every container of the image;
    later build steps do not change their content."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class Workdir(Command):
    """``WORKDIR /app``: the directory later instructions and the container start in;
    created if missing, relative to the previous WORKDIR."""

    path: str


@dataclass(frozen=True)
class User(Command):
    """``USER name[:group]`` or ``uid[:gid]``: who runs the later RUNs and the container."""

    user: str


@dataclass(frozen=True)
class Onbuild(Command):
    """``ONBUILD RUN make``: a trigger kept in the image config as text, parsed and run at
    the start of a build whose FROM is this image (parse_trigger)."""

    trigger: str


@dataclass(frozen=True)
class Stopsignal(Command):
    """``STOPSIGNAL SIGTERM`` (or a number): what ``docker stop`` sends first, before
    SIGKILL after the timeout."""

    signal: str


@dataclass(frozen=True)
class Shell(Command):
    """``SHELL ["/bin/sh", "-c"]``: what runs the shell form of RUN, CMD, ENTRYPOINT."""

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
    """``MAINTAINER name`` (deprecated): the image's author field."""

    maintainer: str


@dataclass
class Stage:
    """One ``FROM`` and the commands up to the next: ``FROM golang AS build`` ... ."""

    index: int
    name: str  # "" without ``AS name``: then ``COPY --from=0`` names it by its index
    from_: From
    commands: list[Command] = field(default_factory=list)

    @property
    def base(self) -> str:
        """The image or earlier stage it starts from, as written (expand it with the meta args)."""
        return self.from_.image
