"""Typed commands, stages and variable expansion: what a builder reads from a Dockerfile."""

import re

import pytest

from minidocker.build import commands as cmd
from minidocker.build.expansion import expand, variables_used
from minidocker.build.instructions import (
    go_duration,
    instructions,
    meta_args,
    parse_trigger,
    stages,
)
from minidocker.build.parser import DockerfileError, Heredoc, parse

MULTI_STAGE = """\
ARG VERSION=1.0
ARG BASE
FROM golang:${VERSION} AS Build
WORKDIR /src
COPY --chown=1000:1000 --link . .
RUN go build -o /app
FROM ${BASE:-busybox}
COPY --from=build /app /usr/local/bin/app
ENTRYPOINT ["app"]
CMD ["--help"]
"""


def commands_of(text: str) -> list:
    return instructions(parse(text))


def test_a_multi_stage_dockerfile_becomes_its_stages():
    build, final = stages(parse(MULTI_STAGE))
    assert (build.index, build.name, build.base) == (0, "build", "golang:${VERSION}")
    assert build.commands == [cmd.Workdir("/src"),
                              cmd.Copy((".",), ".", chown="1000:1000", link=True),
                              cmd.Run(("go build -o /app",))]
    assert (final.index, final.name, final.base) == (1, "", "${BASE:-busybox}")
    assert final.commands == [cmd.Copy(("/app",), "/usr/local/bin/app", from_="build"),
                              cmd.Entrypoint(("app",), shell_form=False),
                              cmd.Cmd(("--help",), shell_form=False)]
    assert [c.line for c in final.commands] == [8, 9, 10]
    assert final.commands[0].text == "COPY --from=build /app /usr/local/bin/app"


def test_args_before_from_are_meta_args_seen_only_by_from():
    dockerfile = parse(MULTI_STAGE)
    assert meta_args(dockerfile) == [cmd.Arg((("VERSION", "1.0"),)), cmd.Arg((("BASE", None),))]
    build, final = stages(dockerfile)
    assert expand(build.from_, {"VERSION": "1.22"}).image == "golang:1.22"
    assert expand(final.from_, {}).image == "busybox"


def test_only_arg_may_come_before_from():
    with pytest.raises(DockerfileError, match="^Dockerfile:2: RUN before the first FROM"):
        stages(parse("ARG A\nRUN echo\nFROM x\n"))


def test_env_both_forms_and_their_expansion():
    new, old = commands_of('FROM x\nENV A=1 B="two words" C=$A\nENV D the old  form\n')[1:]
    assert new == cmd.Env((("A", "1"), ("B", '"two words"'), ("C", "$A")))
    assert old == cmd.Env((("D", "the old  form"),))
    # every variable of one instruction has its value from before the instruction
    assert expand(new, {"A": "0"}) == cmd.Env((("A", "1"), ("B", "two words"), ("C", "0")))
    assert variables_used(new, {"A": "0", "Z": "9"}) == {"A"}


def test_healthcheck_none_and_options():
    none, shell, exec_ = commands_of(
        "FROM x\nHEALTHCHECK NONE\n"
        "HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --start-interval=1s "
        "--retries=3 CMD curl -f http://localhost/ || exit 1\n"
        'HEALTHCHECK CMD ["/bin/check", "-q"]\n')[1:]
    assert none == cmd.Healthcheck(("NONE",))
    assert shell == cmd.Healthcheck(("CMD-SHELL", "curl -f http://localhost/ || exit 1"),
                                interval=90_000_000_000, timeout=500_000_000,
                                start_period=2_000_000_000, start_interval=1_000_000_000,
                                retries=3)
    assert exec_ == cmd.Healthcheck(("CMD", "/bin/check", "-q"))


@pytest.mark.parametrize("line,message", [
    ("HEALTHCHECK NONE now", "HEALTHCHECK NONE takes no arguments"),
    ("HEALTHCHECK CHECK x", "Unknown type 'CHECK' in HEALTHCHECK (try CMD)"),
    ("HEALTHCHECK --interval=1us CMD x", "Interval 'interval' cannot be less than 1ms"),
    ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
    ("HEALTHCHECK --interval=5 CMD x", "time: invalid duration '5'"),
])
def test_healthcheck_mistakes(line, message):
    with pytest.raises(DockerfileError, match=r"^Dockerfile:2: " + message.replace("(", r"\(")
                       .replace(")", r"\)")):
        commands_of(f"FROM x\n{line}\n")


def test_go_durations():
    assert go_duration("1h2m3.5s") == 3_723_500_000_000
    assert go_duration("0") == 0 and go_duration("-1.5ms") == -1_500_000
    assert go_duration("10\u00b5s") == go_duration("10us") == 10_000


def test_every_instruction_of_the_reference():
    commands = commands_of(
        "FROM --platform=linux/amd64 busybox\n"
        "MAINTAINER me <me@example.com>\n"
        "RUN --mount=type=cache,target=/c --network=none echo hi\n"
        "ADD --chmod=644 --checksum=sha256:abc https://example.com/a.tgz /a/\n"
        "LABEL a=b\n"
        "EXPOSE 80/tcp 53/udp\n"
        'VOLUME ["/data", "/logs"]\n'
        "USER nobody:nogroup\n"
        "ONBUILD COPY . /app\n"
        "STOPSIGNAL SIGTERM\n"
        'SHELL ["/bin/sh", "-ec"]\n')
    assert commands == [
        cmd.From("busybox", platform="linux/amd64"),
        cmd.Maintainer("me <me@example.com>"),
        cmd.Run(("echo hi",), mounts=("type=cache,target=/c",), network="none"),
        cmd.Add(("https://example.com/a.tgz",), "/a/", chmod="644", checksum="sha256:abc"),
        cmd.Label((("a", "b"),)),
        cmd.Expose(("80/tcp", "53/udp")),
        cmd.Volume(("/data", "/logs")),
        cmd.User("nobody:nogroup"),
        cmd.Onbuild("COPY . /app"),
        cmd.Stopsignal("SIGTERM"),
        cmd.Shell(("/bin/sh", "-ec")),
    ]
    assert [c.keyword for c in commands][:3] == ["FROM", "MAINTAINER", "RUN"]


def test_onbuild_trigger_runs_later_as_its_own_command():
    onbuild = commands_of("FROM x\nONBUILD RUN echo $HOME\n")[1]
    assert parse_trigger(onbuild) == cmd.Run(("echo $HOME",))
    assert expand(onbuild, {"HOME": "/root"}) == onbuild  # expanded in the child build


@pytest.mark.parametrize("line,message", [
    ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
    ("FROM x AS 1st", "invalid name for build stage: '1st'"),
    ("FROM x y", "FROM requires either one or three arguments"),
    ("COPY onlyone", "COPY requires at least two arguments"),
    ("COPY --form=x a b", "unknown flag: --form (COPY knows: --chown"),
    ("CMD --help", 'unknown flag: --help (CMD takes no flags; an argument that starts with -- '
                   'needs the JSON form: CMD ["--help", ...])'),
    ("COPY --link=maybe a b", "expecting boolean value for flag --link, not: maybe"),
    ("COPY --from a b", "missing a value on flag: --from"),
    ("COPY --chown=a --chown=b a b", "duplicate flag specified: --chown"),
    ("COPY a <<EOF", "COPY cannot accept a heredoc as a destination"),
    ("WORKDIR", "WORKDIR requires exactly one argument"),
    ("SHELL /bin/sh -c", "SHELL requires the arguments to be in JSON form"),
    ("ARG =x", "ARG names can not be blank"),
    ("ENV", "ENV requires at least one argument"),
    ("RUN", "RUN requires at least one argument"),
    ("VOLUME [\"\"]", "VOLUME specified can not be an empty string"),
])
def test_instruction_mistakes_name_the_line(line, message):
    text = f"FROM x\n{line}\n" + ("EOF\n" if "<<" in line else "")
    with pytest.raises(DockerfileError, match="^Dockerfile:2: " + re.escape(message)):
        commands_of(text)


def test_copy_heredoc_sources_are_inline_files():
    copy = commands_of('FROM x\nCOPY <<-"CONF" app.py /srv/\n\tkey=$V\n\tCONF\n')[1]
    assert copy == cmd.Copy(("app.py",), "/srv/",
                        contents=(Heredoc("CONF", "key=$V\n", expand=False, chomp=True),))
    assert expand(copy, {"V": "1"}).contents[0].content == "key=$V\n"
    plain = commands_of("FROM x\nCOPY <<CONF /srv/c\nkey=$V \"q\"\nCONF\n")[1]
    assert expand(plain, {"V": "1"}).contents[0].content == 'key=1 "q"\n'


def test_expansion_applies_to_exactly_the_instructions_docker_expands():
    env = {"D": "/data", "U": "app", "P": "80 443"}
    expanded = [expand(c, env) for c in commands_of(
        "FROM x\nWORKDIR $D\nUSER ${U}\nVOLUME $D/logs\nEXPOSE $P\nRUN echo $D\n"
        "CMD echo $D\nCOPY \\$D ${D:-/none}\nLABEL \"path\"=\"$D\"\nSTOPSIGNAL ${SIG:-9}\n")[1:]]
    assert expanded == [cmd.Workdir("/data"), cmd.User("app"), cmd.Volume(("/data/logs",)),
                        cmd.Expose(("80", "443")), cmd.Run(("echo $D",)), cmd.Cmd(("echo $D",)),
                        cmd.Copy(("$D",), "/data"), cmd.Label((("path", "/data"),)), cmd.Stopsignal("9")]


def test_copy_from_is_not_expanded():
    copy = commands_of("FROM x\nCOPY --from=$STAGE a b\n")[1]
    with pytest.raises(DockerfileError, match="variable expansion is not supported for --from"):
        expand(copy, {"STAGE": "build"})


def test_an_expansion_error_names_the_line():
    workdir = commands_of("FROM x\nWORKDIR ${HOME:?must be set}\n")[1]
    with pytest.raises(DockerfileError, match=r'^Dockerfile:2: failed to process '
                                              r'"\$\{HOME:\?must be set\}": HOME: must be set$'):
        expand(workdir, {})
