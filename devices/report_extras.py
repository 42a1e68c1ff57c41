"""The report's integrator sections, computed once for report.html and report.md: confusion
matrix and per-class accuracy of each recommended file, fp32 against int8 class by class,
the measured latency spread, and a graph view of each recommended file.

Per-row predictions are made here, at report time, from the run's holdout and exported files
(devices/report_predict.py); the graph views read the files (devices/report_graph.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ground import recommend

from .report_classes import (
    LATENCY_HEAD,
    ClassTable,
    confusion_tables,
    latency_rows,
    quantization_tables,
)
from .report_graph import Graph, graph
from .report_predict import predict, quant_pairs

MAX_GRAPHS = 3  # graph views of at most this many distinct recommended files


@dataclass
class Extras:
    tolerance: float
    picks: dict[str, recommend.Pick]
    confusion: list[ClassTable] = field(default_factory=list)
    quantization: list[ClassTable] = field(default_factory=list)
    latency: list[list[str]] = field(default_factory=list)
    graphs: list[Graph | tuple[str, str]] = field(default_factory=list)  # or (file, why not)


def compute(doc: dict, card: dict, exports: dict, run_dir: Path | None) -> Extras:
    """Everything the integrator sections show; without ``run_dir`` no file is run or read."""
    tol = recommend.tolerance(card)
    picks = recommend.recommend(doc, exports, tol)
    ex = Extras(tol, picks, latency=latency_rows(doc))
    if run_dir is None:
        return ex
    rec = list(dict.fromkeys(p.recommended for p in picks.values() if p.recommended))
    files = rec + [f for fp32, ints in quant_pairs(exports) for f in (fp32, *ints)]
    labels = [str(x) for x in (card.get("labels") or [])]
    pred = predict(run_dir, exports, files, labels)
    ex.confusion = confusion_tables(picks, pred)
    ex.quantization = quantization_tables(exports, pred)
    for f in rec[:MAX_GRAPHS]:
        g = graph(run_dir / "export" / f)
        ex.graphs.append(g if isinstance(g, Graph) else (f, g))
    return ex


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    esc = lambda c: str(c).replace("|", "\\|")  # noqa: E731
    return ["| " + " | ".join(map(esc, head)) + " |", "|" + "---|" * len(head)] + [
        "| " + " | ".join(esc(c) for c in r) + " |" for r in rows
    ]


def _md_class_tables(title: str, tables: list[ClassTable]) -> list[str]:
    lines = ["", f"## {title}"]
    for t in tables:
        lines += ["", f"### {t.title}", "", t.caption]
        if t.head:
            lines += ["", *_md_table(t.head, t.rows)]
    return lines


def _md_graph(g: Graph | tuple[str, str]) -> list[str]:
    if not isinstance(g, Graph):
        return ["", f"### {g[0]}", "", f"No graph view: {g[1]}."]
    rows = []
    for n in g.nodes:
        out = n.outputs[0] if n.outputs else None
        weights = [t for t in n.inputs if t.const]
        rows.append(
            [
                str(n.index),
                n.op,
                ", ".join(f"{t.type}" for t in n.inputs if not t.const) or "-",
                out.type if out else "-",
                (out.quant if out else "") or "-",
                "; ".join(f"{t.role} {t.type}" for t in weights) or "-",
            ]
        )
    props = ", ".join(f"{k}: {v}" for k, v in g.properties)
    io_ = "; ".join(f"{t.role} {t.name} {t.type} {t.quant}".strip() for t in g.inputs + g.outputs)
    return [
        "",
        f"### {g.file}",
        "",
        f"{props}. {io_}.",
        "",
        *_md_table(["#", "op", "inputs", "output", "output quantization", "constants"], rows),
    ]


def markdown(ex: Extras) -> list[str]:
    """The integrator sections as report.md lines."""
    lines = _md_class_tables("Confusion matrix of each recommended file", ex.confusion)
    lines += _md_class_tables("fp32 vs int8, class by class", ex.quantization)
    lines += ["", "## Latency spread where measured", ""]
    lines += _md_table(LATENCY_HEAD, ex.latency) if ex.latency else ["No measured latency."]
    lines += ["", "## Graph of each recommended file"]
    for g in ex.graphs:
        lines += _md_graph(g)
    return lines
