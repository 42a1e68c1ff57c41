"""How the summaries write numbers and tables: percentages, KiB, milliseconds, aligned columns.

Shared by the run summary (tinyship.summary) and the search summary (tinyship.search_summary).
A table given a ``width`` fits it: long text columns wrap first (down to ``MIN_WRAP``
characters), then columns are hidden from the right with a line naming them; ``--wide``
(``width=None``) prints every column unwrapped, for scripts that cut columns.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap

MIN_WRAP = 18  # a wrapped column never gets narrower than this
DEFAULT_WIDTH = 120  # stdout is a file or a pipe and COLUMNS is not set


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def kb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:,.1f} KiB"


def ms(x: float | None) -> str:
    return "-" if x is None else (f"{x:.4f} ms" if x < 1 else f"{x:.2f} ms")


def console_width() -> int:
    """The terminal's columns (``COLUMNS`` first, as shutil reads it), else DEFAULT_WIDTH."""
    if os.environ.get("COLUMNS", "").isdigit() or sys.stdout.isatty():
        return max(40, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)
    return DEFAULT_WIDTH


def wrap(text: str, width: int | None, indent: str = "  ") -> str:
    """A free-text line wrapped at ``width`` (continuation lines indented); unchanged without one."""
    if width is None or len(text) <= width:
        return text
    return "\n".join(
        textwrap.wrap(text, width, subsequent_indent=indent, break_on_hyphens=False) or [text]
    )


Plan = list[tuple[str, int]]  # ("wrap", column) or ("drop", column), tried in order


def _fit(widths: list[int], width: int, plan: Plan) -> tuple[list[int], list[int]]:
    """Column widths and the columns shown after the ``plan``'s steps, taken until the table
    fits ``width``: a "wrap" narrows a column down to MIN_WRAP, a "drop" hides it."""
    shown = list(range(len(widths)))
    widths = list(widths)

    def total() -> int:
        return sum(widths[i] for i in shown) + 2 * (len(shown) - 1)

    for step, i in plan:
        if total() <= width:
            break
        if step == "drop" and i in shown and len(shown) > 1:
            shown.remove(i)
        elif step == "wrap" and i in shown and widths[i] > MIN_WRAP:
            widths[i] = max(MIN_WRAP, widths[i] - (total() - width))
    return widths, shown


def table(
    rows: list[list[str]], header: list[str], width: int | None = None, plan: Plan | None = None
) -> str:
    """Aligned columns; with ``width``, the ``plan`` (default: wrap the last column, then hide
    columns from the right) is followed until the table fits."""
    rows = [[str(c) for c in r] for r in rows]
    n = len(header)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(n)]
    shown = list(range(n))
    if width is not None:
        plan = (
            [("wrap", n - 1), *(("drop", i) for i in range(n - 1, 0, -1))] if plan is None else plan
        )
        widths, shown = _fit(widths, width, plan)

    def lines(r: list[str]) -> list[str]:
        cells = [textwrap.wrap(r[i], widths[i], break_on_hyphens=False) or [""] for i in shown]
        out = []
        for k in range(max(len(c) for c in cells)):
            parts = [(c[k] if k < len(c) else "").ljust(widths[i]) for c, i in zip(cells, shown)]
            out.append("  ".join(parts).rstrip())
        return out

    out = [*lines(header), "  ".join("-" * widths[i] for i in shown)]
    for r in rows:
        out += lines(r)
    if len(shown) < n:
        hidden = ", ".join(h for i, h in enumerate(header) if i not in shown)
        out.append(
            wrap(f"(hidden to fit {width} columns: {hidden}; --wide shows every column)", width)
        )
    return "\n".join(out)
