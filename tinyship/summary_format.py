"""How the summaries write numbers and tables: percentages, KiB, milliseconds, aligned columns.

Shared by the run summary (tinyship.summary) and the search summary (tinyship.search_summary).
"""

from __future__ import annotations


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def kb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:,.1f} KiB"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def ms(x: float | None) -> str:
    return "-" if x is None else (f"{x:.4f} ms" if x < 1 else f"{x:.2f} ms")
