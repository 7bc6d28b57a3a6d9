"""Tables and small HTML pieces of the report; every text is escaped here, once."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from chemlm.io import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MISSING = "—"
DPI = 110


@dataclass(frozen=True)
class Table:
    """A table rendered as HTML or Markdown. `bold` holds (row, column) cells to emphasise; `row_classes`
    gives HTML rows a CSS class (e.g. `reference`)."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    bold: frozenset[tuple[int, int]] = frozenset()
    row_classes: Sequence[str] = field(default_factory=tuple)
    html_class: str = ""

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in self.header)
        body = []
        for row_index, row in enumerate(self.rows):
            cells = "".join(
                f"<td><strong>{html.escape(cell)}</strong></td>" if (row_index, column) in self.bold
                else f"<td>{html.escape(cell)}</td>"
                for column, cell in enumerate(row)
            )
            row_class = self.row_classes[row_index] if row_index < len(self.row_classes) else ""
            body.append(f'<tr class="{row_class}">{cells}</tr>' if row_class else f"<tr>{cells}</tr>")
        table_class = f' class="{self.html_class}"' if self.html_class else ""
        return f"<table{table_class}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"

    def markdown(self) -> str:
        def cell_text(row_index: int, column: int, cell: str) -> str:
            text = cell.replace("|", "\\|")
            return f"**{text}**" if (row_index, column) in self.bold else text

        lines = ["| " + " | ".join(cell.replace("|", "\\|") for cell in self.header) + " |"]
        lines.append("| " + " | ".join("---" for _ in self.header) + " |")
        for row_index, row in enumerate(self.rows):
            lines.append("| " + " | ".join(cell_text(row_index, column, cell) for column, cell in enumerate(row)) + " |")
        return "\n".join(lines)


def paragraph(text: str, css_class: str = "") -> str:
    class_attribute = f' class="{css_class}"' if css_class else ""
    return f"<p{class_attribute}>{html.escape(text)}</p>"


def note(text: str) -> str:
    """A line saying that something is absent, and why."""
    return paragraph(text, "note")


def bullet_list(items: Sequence[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"


def heading(text: str, level: int = 3) -> str:
    return f"<h{level}>{html.escape(text)}</h{level}>"


def preformatted(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def details(summary: str, body: str) -> str:
    return f"<details><summary>{html.escape(summary)}</summary>{body}</details>"


def save_figure(figure: Figure, path: str | Path) -> None:
    """A report figure written as a PNG, whole or not at all."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI)


def png_figure(path: Path, caption: str) -> str:
    """A PNG file embedded as a data URI, so the page needs no other file."""
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    alt = html.escape(caption, quote=True)
    return (
        f'<figure><img src="data:image/png;base64,{encoded}" alt="{alt}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def number(value: object, digits: int = 3) -> str:
    """A number as text; None and NaN (undefined metrics) as a dash."""
    if value is None or (isinstance(value, float) and value != value):
        return MISSING
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)
