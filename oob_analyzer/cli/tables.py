"""Plain-text tables that fit an 80-column terminal: long cells are cut with an ellipsis.

Cells hold what attackers sent, so control characters are shown escaped: a payload must not
be able to drive the terminal that displays it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Column", "printable", "render_table"]

Column = tuple[str, int]  # header, width


def render_table(columns: Sequence[Column], rows: Sequence[Sequence[object]]) -> str:
    lines = [_render_row([header for header, _ in columns], columns)]
    lines += [_render_row(row, columns) for row in rows]
    return "\n".join(lines)


def _render_row(cells: Sequence[object], columns: Sequence[Column]) -> str:
    parts = [_fit(str(cell), width) for cell, (_, width) in zip(cells, columns, strict=True)]
    return " ".join(parts).rstrip()


def printable(text: str) -> str:
    """`text` with every control (non-printable) character shown as its escape."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _fit(text: str, width: int) -> str:
    text = printable(text)
    if len(text) > width:
        return text[: width - 1] + "…"
    return text.ljust(width)
