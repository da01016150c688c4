"""Run commands from a notebook and show them as a terminal would: the command line after a
``$``, what it printed (stdout and stderr interleaved, as on a screen), and its exit status when
that is not 0.

``minidocker("run --rm busybox ps")`` runs the real command line tool, as a separate process,
with the notebook kernel's own Python (``sys.executable -m minidocker.cli``): it works whether
or not a ``minidocker`` command is on ``$PATH``. ``host("ps -o pid,comm -p 1")`` runs a program
of the host the same way.

A command that hangs is stopped after its ``timeout`` and the cell fails naming it. The default,
``DEFAULT_TIMEOUT``, is generous: each command of these notebooks takes seconds here and
several times that in a student's slow VM; the emulated VM that tests the classroom
(tools/v2vm, ~10x slower still) says by how much more in ``MINIDOCKER_TEST_TIMEOUT_SCALE``,
which stretches every timeout given here (``patience``), as it does the tests' waits.
Man pages: none of its own (subprocess, pipes); what it runs names them.
Used by: every notebook, 00-tour to 09-security (``minidocker(...)``, ``host(...)``).
"""

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass

MINIDOCKER = [sys.executable, "-m", "minidocker.cli"]
DEFAULT_TIMEOUT = 300  # seconds: a hung command is named after 5 minutes, not a slow one


def patience(seconds: float) -> float:
    """``seconds``, stretched on a machine that says it is slower (the emulated VM's test
    run sets ``MINIDOCKER_TEST_TIMEOUT_SCALE``, e.g. 10)."""
    return seconds * float(os.environ.get("MINIDOCKER_TEST_TIMEOUT_SCALE") or 1)


@dataclass
class Transcript:
    """One command and what it printed, shown like a terminal session."""

    command: list[str]  # as the user would type it (``minidocker`` rather than the python path)
    output: str  # stdout and stderr, in the order they were written
    returncode: int
    note: str = ""  # shown as a shell comment after the command

    def __repr__(self) -> str:
        note = f"  # {self.note}" if self.note else ""
        text = "$ " + shlex.join(self.command) + note + "\n" + self.output
        if text and not text.endswith("\n"):
            text += "\n"
        if self.returncode:
            text += f"[exit status {self.returncode}]\n"
        return text.rstrip("\n")

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines()

    def grep(self, word: str) -> "Transcript":
        """Keep the first line (a table's header) and the lines that contain ``word``, a bit
        like ``| grep``; the comment after the command says so."""
        kept = self.lines[:1] + [line for line in self.lines[1:] if word in line]
        return Transcript(self.command, "".join(f"{line}\n" for line in kept), self.returncode,
                          f"only the header and the lines with {word!r}")


def _argv(args: tuple[str, ...]) -> list[str]:
    """One string is split like a shell would (``"run --rm busybox ps"``); several are taken
    as they are (``"run", "busybox", "sh", "-c", "echo $$"``)."""
    return shlex.split(args[0]) if len(args) == 1 else list(args)


def _run(shown: list[str], argv: list[str], input: str | None, timeout: float) -> Transcript:
    result = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=None if input is not None else subprocess.DEVNULL,
                            text=True, timeout=patience(timeout))
    return Transcript(shown, result.stdout, result.returncode)


def minidocker(*args: str, input: str | None = None,
               timeout: float = DEFAULT_TIMEOUT) -> Transcript:
    """Run ``minidocker ARGS`` and return its transcript (the cell shows it)."""
    argv = _argv(args)
    return _run(["minidocker", *argv], [*MINIDOCKER, *argv], input, timeout)


def host(*args: str, input: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> Transcript:
    """Run a program on the host (outside any container) and return its transcript."""
    argv = _argv(args)
    return _run(argv, argv, input, timeout)
