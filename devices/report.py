"""report.html (one self-contained page) and report.md, answer first: what to ship on each device.

Order: the recommendation per device with its margins against the budget (or the nearest
miss and why) and which part of the rule chose it, then accuracy vs latency (one panel per
device), the integrator sections (report_extras: confusion matrix of each recommended file,
fp32 vs int8 per class, latency p50/p90/p99 where measured, a graph view of each recommended
file), a per-layer table, the MCU memory timeline, run metadata, sources and the estimator's
error, and the full file x device table. The rule is ground.recommend's, the same the console and `check`
use. Sizes: 1 KiB = 1024 bytes (budgets' ram_kb / flash_kb are KiB).

The sections live in report_verdicts, report_layers, report_provenance (the tables' rows),
report_markdown (report.md), report_page and report_html (report.html); this module writes
the files and keeps their names importable from ``devices.report``.
"""

from __future__ import annotations

from pathlib import Path

from ground import recommend, rundir

from . import report_extras as extras
from . import report_plots as plots
from .report_cells import ms, pct
from .report_html import CSS, Raw
from .report_layers import LAYER_HEAD, layer_rows, op_shares
from .report_markdown import markdown
from .report_page import page, timeline
from .report_provenance import metadata
from .report_verdicts import ANSWER_HEAD, VERDICT_HEAD, answer_rows, verdict_rows

__all__ = [
    "ANSWER_HEAD",
    "CSS",
    "LAYER_HEAD",
    "VERDICT_HEAD",
    "Raw",
    "answer_rows",
    "layer_rows",
    "markdown",
    "metadata",
    "ms",
    "op_shares",
    "page",
    "pct",
    "verdict_rows",
    "write",
]


def write(
    out: Path, doc: dict, card: dict, exports: dict, run_dir: Path | None = None
) -> list[Path]:
    """Write report.md, report.html and plots/*.png into ``out`` (profile/, or the folder being
    staged inside the run directory, whose parent is then the run); returns the paths."""
    out = Path(out)
    run_dir = Path(run_dir) if run_dir is not None else out.parent
    ex = extras.compute(doc, card, exports, run_dir if (run_dir / "export").is_dir() else None)
    picks = ex.picks
    acc = recommend.accuracies(exports)
    holdout = (card.get("metrics") or {}).get("holdout") or {}
    figures = {
        "accuracy_vs_latency.png": plots.accuracy_by_device(doc["records"], acc, picks, holdout),
        "bytes_per_file.png": plots.bytes_per_file(doc["artifacts"]),
    }
    if doc.get("search"):  # a student search's Pareto fronts (tinyship.search, devices/pareto.py)
        from .pareto import pareto_plots

        figures.update(pareto_plots(doc["search"]))
    md = markdown(doc, card, exports, ex)
    written = [rundir.atomic_write_bytes(out / "report.md", md.encode())]
    for name, data in figures.items():
        if data:
            written.append(rundir.atomic_write_bytes(out / "plots" / name, data))
    for title, _c, png in timeline(doc, picks):
        safe = "".join(ch if ch.isalnum() or ch in ".-" else "_" for ch in title)
        written.append(rundir.atomic_write_bytes(out / "plots" / f"memory_{safe}.png", png))
    html = page(doc, card, exports, figures, ex)
    written.append(rundir.atomic_write_bytes(out / "report.html", html.encode()))
    for stale in (out / "plots").glob("*.png"):  # from an earlier `tinyship report` of this run
        if stale not in written:
            stale.unlink()
    return written
