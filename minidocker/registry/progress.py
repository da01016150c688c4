"""What a pull or push tells its user: Docker's lines, and a progress bar per layer.

Docker's CLI prints one status per layer, keyed by the layer's short digest::

    latest: Pulling from library/busybox
    3f4d90098f5b: Pulling fs layer
    3f4d90098f5b: Download complete
    3f4d90098f5b: Pull complete
    Digest: sha256:...
    Status: Downloaded newer image for busybox:latest

On a terminal each layer's line is a live bar instead (rich); into a pipe or a log, the same
statuses are printed one per line, so scripts and tests read exactly Docker's words.

Used by: ``pull.py``, ``push.py``, ``minidocker pull``/``push``.
"""

import sys
from typing import TextIO


class Report:
    """Statuses as plain lines (a pipe, a log file, a test)."""

    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout

    def line(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def status(self, layer: str, text: str) -> None:
        self.line(f"{layer}: {text}")

    def transfer(self, layer: str, verb: str, total: int) -> None:
        """A download or upload of ``total`` bytes begins (only a bar shows it)."""

    def advance(self, layer: str, size: int) -> None:
        """``size`` more bytes went (only a bar shows it)."""

    def close(self) -> None:
        pass


class BarReport(Report):
    """The same statuses, one live line per layer with a progress bar while it moves."""

    def __init__(self, out: TextIO | None = None):
        super().__init__(out)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 DownloadColumn(), TransferSpeedColumn(),
                                 console=Console(file=self.out), transient=False)
        self.tasks: dict[str, int] = {}
        self.progress.start()

    def line(self, text: str) -> None:
        self.progress.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def status(self, layer: str, text: str) -> None:
        if layer not in self.tasks:
            self.tasks[layer] = self.progress.add_task(f"{layer}: {text}", total=None)
        else:
            self.progress.update(self.tasks[layer], description=f"{layer}: {text}")

    def transfer(self, layer: str, verb: str, total: int) -> None:
        self.status(layer, verb)
        self.progress.update(self.tasks[layer], total=total, completed=0)

    def advance(self, layer: str, size: int) -> None:
        self.progress.advance(self.tasks[layer], size)

    def close(self) -> None:
        self.progress.stop()


def for_stream(out: TextIO | None = None) -> Report:
    """Bars on a terminal, lines everywhere else."""
    out = out or sys.stdout
    return BarReport(out) if out.isatty() else Report(out)
