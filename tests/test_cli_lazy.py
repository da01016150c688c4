"""The CLI imports a command's module only when the command is used (cli/__init__.py's
``COMMAND_MODULES``): the table must name, for every command, each module that defines it
or adds a subcommand to it, or that command would be missing or incomplete.

The check runs in a fresh interpreter (this test process may have imported every module
already), which forks once per command: each child loads that command's modules alone and
compares what it sees with what the CLI has once every module is loaded.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHECK = textwrap.dedent("""
    import os, sys
    import minidocker.cli as cli

    def tree(group):
        return {name: tree(command) if hasattr(command, "commands") else None
                for name, command in group.commands.items()}

    loaded = sorted(m for m in sys.modules if m.startswith("minidocker.cli."))
    print("loaded at start-up:", loaded, flush=True)  # before the forks: printed once
    problems = []
    pid = os.fork()
    if pid == 0:
        cli.load_commands()
        print("everything:", sorted(cli.main.commands), flush=True)  # os._exit flushes nothing
        os._exit(0)
    os.waitpid(pid, 0)
    for name in sorted({n for names in cli.COMMAND_MODULES.values() for n in names}
                       | set(cli.main.commands)):
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(reader)
            cli.load_commands(name)
            alone = tree(cli.main).get(name, "missing")
            cli.load_commands()
            whole = tree(cli.main).get(name, "missing")
            os.write(writer, b"" if alone == whole else
                     f"{name}: alone {alone}, with every module {whole}".encode())
            os._exit(0)
        os.close(writer)
        with os.fdopen(reader, "rb") as answer:
            report = answer.read().decode()
        os.waitpid(pid, 0)
        if report:
            problems.append(report)
    print("problems:", problems)
""")


def run_check() -> str:
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_each_command_loads_with_its_own_modules_and_nothing_else_at_start_up():
    out = run_check()
    assert "loaded at start-up: ['minidocker.cli.flags']" in out, out
    assert "'run'" in out and "'compose'" in out and "'swarm'" in out, out
    assert "problems: []" in out, out


def test_every_command_module_is_in_the_table():
    """A new module in minidocker/cli/ that adds commands must be listed, or its commands
    would never be found."""
    import pathlib

    import minidocker.cli as cli

    folder = pathlib.Path(cli.__file__).parent
    helpers = {"__init__", "__main__", "flags", "formatting", "templates"}
    modules = {path.stem for path in folder.glob("*.py")} - helpers
    assert modules == set(cli.COMMAND_MODULES), (
        f"add {sorted(modules - set(cli.COMMAND_MODULES))} to COMMAND_MODULES in "
        "minidocker/cli/__init__.py")


HELP_AFTER = "import importlib, sys; import minidocker.cli as cli; " \
             "[importlib.import_module(m) for m in sys.argv[1:]]; cli.main(['--help'])"


def help_sections(text: str) -> dict[str, list[str]]:
    """``--help``'s command sections: title -> the names listed, in order."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.endswith("Commands:"):
            current = sections[line[:-1]] = []
        elif current is not None and line.startswith("  "):
            current.append(line.split()[0].rstrip("*"))  # docker marks a CLI plugin with *
        else:
            current = None
    return sections


DOCKER_28 = "/usr/local/bin/docker"  # docker 28's help has the sections; Debian's 20.10's not


@pytest.mark.skipif(not Path(DOCKER_28).exists(), reason="needs the docker CLI 28")
def test_help_lists_docker_helps_sections_whatever_was_imported_first():
    """The listing once depended on which command modules were imported first (a sort on
    ``Command.__module__``, which is click's); docker --help itself is the reference."""
    listings = {subprocess.run([sys.executable, "-c", HELP_AFTER, *first], capture_output=True,
                               text=True, timeout=60, check=True).stdout
                for first in [(), ("minidocker.cli.lifecycle",), ("minidocker.cli.swarm",
                                                                   "minidocker.cli.registry")]}
    assert len(listings) == 1, listings
    ours = help_sections(listings.pop())
    docker = help_sections(subprocess.run([DOCKER_28, "--help"],
                                          capture_output=True, text=True, timeout=60).stdout)
    assert list(ours) == list(docker) == ["Common Commands", "Management Commands",
                                          "Swarm Commands", "Commands"], (ours, docker)
    everything = {name for names in ours.values() for name in names}
    assert ours["Common Commands"] == [n for n in docker["Common Commands"] if n in everything]
    for title in list(ours)[1:]:
        assert ours[title] == sorted(ours[title]), title
        theirs = {name for other in docker if other != title for name in docker[other]}
        assert not theirs & set(ours[title]), f"docker lists {theirs & set(ours[title])} " \
                                              f"elsewhere than under {title}"
    assert sum(map(len, ours.values())) == len(everything), "a command listed twice"
