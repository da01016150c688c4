"""Helpers the labs give the student ready-made, so that each lab is only about its lesson.

``from minidocker.labs.given import exec_command, wait_for`` in a lab's starter file.

Man pages: execve(2), waitpid(2).
Used by: the labs' starter files (labs/NN-topic/starter.py) and their solutions.
"""

import os
from typing import NoReturn


def exec_command(argv: list[str]) -> NoReturn:
    """Replace this (child) process with the command ``argv``, found on $PATH. Never returns:
    if the command cannot be run, say why and exit with 127, as a shell does."""
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, f"{argv[0]}: {exc.strerror}\n".encode())
    os._exit(127)


def wait_for(pid: int) -> int:
    """Wait for the child ``pid`` to end and return its exit code (128+N if signal N
    killed it), as a shell's ``$?`` shows it."""
    status = os.waitpid(pid, 0)[1]
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code
