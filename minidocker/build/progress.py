"""What a build prints: the classic builder's lines, a live view, or nothing but the ID.

``plain`` is the output the seeds show, line by line::

    Step 2/4 : RUN echo hi
     ---> Running in 3f2a1b0c9d8e
    hi
     ---> 5b1c0f4e2a9d
    Removing intermediate container 3f2a1b0c9d8e

``tty`` draws the same steps as a live table (rich): each step, its time, ``CACHED`` on a hit;
a RUN's own output goes to a log shown only if the build fails. ``quiet`` (``-q``) keeps
everything for a failure and prints only the image ID at the end. Each view is one class
with the same few methods; the builder never knows which one it talks to.

Spec: the classic builder's output (moby builder/dockerfile/dispatchers.go, internals.go).
Used by: the builder, ``minidocker build --progress``.
"""

import os
import sys
import tempfile
import time
from typing import TextIO


class Plain:
    """The classic builder's lines on ``out``; a RUN writes straight to the same stream."""

    def __init__(self, out: TextIO = sys.stdout):
        self.out = out

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def step(self, number: int, total: int, text: str) -> None:
        self.say(f"Step {number}/{total} : {text}")

    def cached(self) -> None:
        self.say(" ---> Using cache")

    def done(self, image_id: str) -> None:
        self.say(f" ---> {short(image_id)}")

    def run_output(self) -> int:
        """The file descriptor a RUN's stdout and stderr go to."""
        self.out.flush()
        return self.out.fileno()

    def failed(self) -> None:
        """The build failed: anything held back is shown now."""

    def close(self) -> None:
        self.out.flush()


class Quiet(Plain):
    """``-q``: every line goes to a log file, shown on stderr only if the build fails."""

    def __init__(self):
        self.log = tempfile.TemporaryFile(mode="w+")
        super().__init__(self.log)

    def failed(self) -> None:
        self.log.seek(0)
        sys.stderr.write(self.log.read())

    def close(self) -> None:
        self.log.close()


class Live(Quiet):
    """``--progress=tty``: a live table of the steps (rich), with times and cache hits; the
    classic lines and RUN output are kept for a failure."""

    def __init__(self):
        from rich.console import Console
        from rich.live import Live as RichLive

        super().__init__()
        self.rows: list[list[str]] = []  # [step, instruction, state]
        self.started, self.word = time.monotonic(), "building"
        self.live = RichLive(self.table(), console=Console(stderr=False), auto_refresh=True,
                             refresh_per_second=8, get_renderable=self.table)
        self.live.start()

    def table(self):
        from rich.table import Table

        table = Table(box=None, show_header=False, pad_edge=False)
        for step, text, state in self.rows:
            table.add_row(step, text[:70], state)
        table.caption = f"{self.word} in {time.monotonic() - self.started:.1f}s"
        return table

    def step(self, number: int, total: int, text: str) -> None:
        self.finish_row("done")
        self.rows.append([f"[{number}/{total}]", text, "..."])
        self.step_started = time.monotonic()
        super().step(number, total, text)

    def cached(self) -> None:
        self.finish_row("CACHED")
        super().cached()

    def finish_row(self, state: str) -> None:
        if self.rows and self.rows[-1][2] == "...":
            took = time.monotonic() - self.step_started
            self.rows[-1][2] = state if state == "CACHED" else f"{state} {took:.1f}s"

    def failed(self) -> None:
        self.finish_row("FAILED")
        self.stop("failed")
        super().failed()

    def close(self) -> None:
        self.finish_row("done")
        if self.stop("built"):
            self.log.seek(0)
            sys.stdout.write("".join(line for line in self.log if line.startswith("Success")))
        super().close()

    def stop(self, word: str) -> bool:
        """Draw the table a last time, with the total time; False if already stopped."""
        if not self.live.is_started:
            return False
        self.word = word
        self.live.update(self.table(), refresh=True)
        self.live.stop()
        if not self.live.console.is_terminal:  # rich ends the table's line only on a terminal
            self.live.console.line()
        return True


def short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def choose(progress: str, quiet: bool):
    """The view for ``--progress`` (auto: tty on a terminal, else plain) and ``-q``."""
    if quiet:
        return Quiet()
    if progress == "tty" or (progress == "auto" and os.isatty(sys.stdout.fileno())):
        return Live()
    return Plain()
