"""report.html's building blocks: the style sheet, escaped cells, tables, inline images, the page shell."""

from __future__ import annotations

import base64
import html

CSS = """
:root{--ok:#e3f4e8;--ok-b:#2e7d32;--warn:#fff3cd;--warn-b:#b26a00;--miss:#fde7e7;--miss-b:#c62828;--none:#eeeeee;--none-b:#757575}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:15px;line-height:1.45;
margin:0 auto;max-width:1400px;padding:12px 16px;color:#1a1a1a}
h1{font-size:1.5em;margin:.3em 0}h2{font-size:1.2em;margin:1.4em 0 .4em;border-bottom:1px solid #ddd}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.4em 0}
table{border-collapse:collapse;font-size:13px;min-width:100%}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.ok td{background:var(--ok)}tr.ok td.v{color:var(--ok-b);font-weight:700}
tr.warn td{background:var(--warn)}tr.warn td.v{color:var(--warn-b);font-weight:700}
tr.miss td{background:var(--miss)}tr.miss td.v{color:var(--miss-b);font-weight:700}
tr.none td{background:var(--none)}tr.none td.v{color:var(--none-b);font-weight:700}
img{max-width:100%;height:auto;display:block}
.rule{background:#f7f7fb;border-left:4px solid #5c6bc0;padding:6px 10px}
.muted{color:#555;font-size:.92em}.t{color:#555;font-size:.9em}
details{margin:.6em 0}summary{cursor:pointer;font-weight:600}
b.diag{color:var(--ok-b)}b.off{color:var(--miss-b)}
details.node{border:1px solid #ddd;border-radius:4px;padding:2px 8px;margin:.3em 0}
details.node summary{font-weight:400}h4{margin:.6em 0 .2em;font-size:.95em;color:#333}
dl{display:grid;grid-template-columns:max-content 1fr;gap:0 12px;margin:.2em 0}dd{margin:0}dt{color:#555}
@media (max-width:600px){body{font-size:14px;padding:8px}td,th{padding:3px 5px}table{font-size:12px}.t{display:none}
table.cards,table.cards tbody,table.cards tr,table.cards td{display:block;min-width:0}
table.cards thead{display:none}table.cards tr{margin:0 0 8px;border:1px solid #ccc}
table.cards td{border:0;border-bottom:1px solid #e4e4e4}
table.cards td::before{content:attr(data-label);display:block;font-size:11px;color:#555;font-weight:600}
img.wide{max-width:none;width:900px}}
"""


class Raw(str):
    """A table cell that is already HTML."""


def esc(x) -> str:
    """``x`` escaped for HTML, unless it is already HTML (Raw)."""
    return x if isinstance(x, Raw) else html.escape(str(x))


def html_table(
    head: list[str],
    rows: list[tuple[str, list[str]]] | list[list[str]],
    table_id: str | None = None,
    verdict_col: int | None = None,
    cards: bool = False,
) -> str:
    """A table in a sideways-scrolling box; ``cards``: on a narrow screen each row becomes a card
    with every cell under its column's name, so no column is off-screen."""
    ths = "".join(f"<th scope='col'>{esc(c)}</th>" for c in head)
    body = []
    for row in rows:
        cls, cells = row if isinstance(row, tuple) else ("", row)
        label = lambda i: f" data-label='{esc(head[i])}'" if cards and i < len(head) else ""  # noqa: E731
        tds = "".join(
            f"<td class='v'{label(i)}>{esc(c)}</td>"
            if i == verdict_col
            else f"<td{label(i)}>{esc(c)}</td>"
            for i, c in enumerate(cells)
        )
        body.append(f"<tr class='{cls}'>{tds}</tr>" if cls else f"<tr>{tds}</tr>")
    tid = (f" id='{table_id}'" if table_id else "") + (" class='cards'" if cards else "")
    return f"<div class='scroll'><table{tid}><thead><tr>{ths}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def img(name: str, data: bytes | None, alt: str) -> str:
    if not data:
        return ""
    return f"<img alt='{esc(alt)}' src='data:image/png;base64,{base64.b64encode(data).decode()}'>"


def shell(run, parts: list[str]) -> str:
    """The self-contained page around the sections: head, style sheet, body."""
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>tinyship report {esc(run)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
