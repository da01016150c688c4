"""A lab check as a table, for a notebook: ``minidocker.labs.table("01")`` in a cell's last line.

The same verdicts as ``minidocker lab check`` prints (PASS, FAIL, TODO with what the kernel
showed), one row per step. In JupyterLab the table is HTML (``_repr_html_``); ``print()`` and
a terminal get plain text; ``rich()`` gives a rich ``Table`` for ``rich.print``.

Used by: notebooks (any lab's "check it here" cell), tests/test_lab_ux.py.
"""

import html
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from minidocker.labs.framework import FAIL, PASS, TODO, Lab, Result

COLOURS = {PASS: "#2e7d32", FAIL: "#c62828", TODO: "#b26a00"}
RICH = {PASS: "bold green", FAIL: "bold red", TODO: "bold yellow"}


@dataclass
class CheckTable:
    lab: Lab
    file: Path
    results: list[Result]

    @property
    def passed(self) -> int:
        return sum(r.status == PASS for r in self.results)

    @property
    def summary(self) -> str:
        done = self.passed == len(self.results)
        return (f"Lab {self.lab.number} — {self.lab.title}: {self.passed} of "
                f"{len(self.results)} steps pass" + (" (done)." if done else "."))

    def rows(self) -> list[tuple[str, str, str]]:
        """(status, "Step N: title", what the checker saw), one per step."""
        return [(r.status, f"Step {r.step.number}: {r.step.title}", r.detail)
                for r in self.results]

    def _repr_html_(self) -> str:
        cell = 'style="text-align:left; vertical-align:top; padding:4px 8px"'
        body = "".join(
            f'<tr><td {cell}><b style="color:{COLOURS[status]}">{status}</b></td>'
            f"<td {cell}>{html.escape(step)}</td><td {cell}>{html.escape(detail)}</td></tr>"
            for status, step, detail in self.rows())
        return (f'<table class="minidocker-lab-check"><caption style="text-align:left">'
                f"{html.escape(self.summary)}<br><code>{html.escape(str(self.file))}</code>"
                f"</caption><thead><tr><th {cell}>status</th><th {cell}>step</th>"
                f"<th {cell}>what the kernel showed, or what to do</th></tr></thead>"
                f"<tbody>{body}</tbody></table>")

    def rich(self) -> Table:
        table = Table(title=self.summary, show_lines=True)
        table.add_column("status")
        table.add_column("step")
        table.add_column("what the kernel showed, or what to do")
        for status, step, detail in self.rows():
            table.add_row(f"[{RICH[status]}]{status}[/]", step, detail)
        return table

    def __str__(self) -> str:
        lines = [self.summary, str(self.file), ""]
        lines += [f"{status:4}  {step}\n      {detail}" for status, step, detail in self.rows()]
        return "\n".join(lines)
