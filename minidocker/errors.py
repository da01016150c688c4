"""The one error family of minidocker.

Every error a user can cause is a ``MinidockerError`` whose message says what went wrong and
what to do next. The CLI prints it as one line and exits non-zero; it never shows a traceback
for a user's mistake. ``exit_code`` is what ``run`` and ``create`` exit with, as Docker's:
125 when minidocker itself failed, 126 when the command cannot be run, 127 when the command
was not found. Every other command exits 1 on an error (the CLI decides, see cli/__init__.py).
Docker docs: ``docker run`` reference, "Exit status" (125, 126, 127).
Used by: every stage; the lab checkers print its message as a step's FAIL.
"""


class MinidockerError(Exception):
    """Something the user can fix; the message says how."""

    exit_code = 125

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class NotFound(MinidockerError):
    """An image, container or file the user named does not exist."""


class Conflict(MinidockerError):
    """A name is taken, or an object is in use."""
