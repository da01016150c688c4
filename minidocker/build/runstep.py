"""How a RUN instruction becomes a process: its argv, and a script for its stdin.

The exec form (``RUN ["make", "all"]``) is the argv itself; the shell form (``RUN make all``)
is given to the SHELL (``/bin/sh -c`` unless SHELL says otherwise), which is the difference
between the two: only the shell form has ``$VAR``, pipes and ``&&``. Heredocs follow
BuildKit's rule (dockerfile2llb ``dispatchRun``): a RUN that is *only* a heredoc runs its
content — by the interpreter of its ``#!`` line if it has one, else by the shell — and any
other heredoc is handed to the shell with the command line, as a shell would read it.

Spec: moby/buildkit frontend/dockerfile/docs/reference.md ("RUN", "Here-Documents").
Used by: the builder, notebook 10-builds.
"""

import contextlib
import os
import tempfile

from minidocker.build.commands import Run
from minidocker.build.parser import heredoc_from_word


def run_command(command: Run, shell: list[str]) -> tuple[list[str], str]:
    """What a RUN executes, and a script for its stdin. The exec form is the argv; the shell
    form goes to SHELL. A RUN that is only a heredoc runs its content (BuildKit's rule): with
    a ``#!`` line, by that interpreter reading the script (given as /dev/stdin, as the kernel
    would give a script's path); else by the shell. Other heredocs go to the shell whole."""
    if not command.shell_form:
        return list(command.command), ""
    line = command.command[0] if command.command else ""
    if len(command.heredocs) == 1 and heredoc_from_word(line.strip()) is not None:
        content = command.heredocs[0].content
        if content.startswith("#!"):
            interpreter = content[2:].partition("\n")[0].split()
            return [*interpreter, "/dev/stdin"], content
        return [*shell, content], ""
    for heredoc in command.heredocs:
        line += f"\n{heredoc.content}{heredoc.name}"
    return [*shell, line], ""


@contextlib.contextmanager
def stdin_of(script: str):
    """``with stdin_of(script) as fd``: a RUN's stdin, the script if there is one, else
    /dev/null (a build step reads no terminal)."""
    with tempfile.TemporaryFile() if script else open(os.devnull, "rb") as file:
        if script:
            os.fchmod(file.fileno(), 0o644)  # /dev/stdin reopens it, maybe as USER's uid
            file.write(script.encode())
            file.seek(0)
        yield file.fileno()
