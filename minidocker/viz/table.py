"""A small table that shows well in both places a notebook is read: as aligned plain text (a
terminal, a diff, nbval's comparison) and as an HTML table (JupyterLab).

Every notebook helper that shows rows of evidence returns a ``Table``; the notebook displays it
by leaving it as the cell's last expression.
Spec: IPython's rich display protocol (``_repr_html_``), which JupyterLab calls.
Used by: every notebook, through the helpers of viz/ (``Table`` in notebooks 02 and 05 directly).
"""

import html
from dataclasses import dataclass, field


@dataclass
class Table:
    header: tuple[str, ...]
    rows: list[tuple] = field(default_factory=list)
    title: str = ""

    def text(self) -> str:
        """The table as aligned columns, one row a line (no trailing spaces)."""
        cells = [tuple(str(c) for c in self.header)] + [tuple(str(c) for c in r) for r in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.header))]
        lines = [self.title] if self.title else []
        for row in cells:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        def row(cells, tag):
            return "<tr>" + "".join(f"<{tag} style='text-align:left'>{html.escape(str(c))}"
                                    f"</{tag}>" for c in cells) + "</tr>"

        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        body = "".join(row(r, "td") for r in self.rows)
        return f"<table>{caption}<thead>{row(self.header, 'th')}</thead><tbody>{body}</tbody></table>"
