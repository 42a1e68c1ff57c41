"""The report's per-class sections: a confusion matrix and per-class accuracy for the file each
device is recommended, fp32 against its int8 siblings class by class with the rows that changed,
and the measured latency spread (p50/p90/p99). Rows for the HTML and the markdown report alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from ground import recommend

from .report_cells import ms, pct
from .report_predict import Predictions, confusion, per_class, quant_pairs


@dataclass
class ClassTable:
    """One section's table: a title, a caption, a header and rows (cells are strings)."""

    title: str
    caption: str
    head: list[str]
    rows: list[list[str]]
    diagonal: bool = False  # a confusion matrix: cells [i][i + 1] are the correct predictions


def _label(labels: list[str], c: int) -> str:
    return labels[c] if 0 <= c < len(labels) else str(c)


def _n(pred: Predictions) -> int:
    top = max([int(pred.y.max()) + 1 if pred.y is not None and len(pred.y) else 0])
    return max(len(pred.labels), top, *(int(p.max()) + 1 for p in pred.pred.values() if len(p)))


def confusion_tables(picks: dict[str, recommend.Pick], pred: Predictions) -> list[ClassTable]:
    """Per recommended file (with the devices it ships on): confusion matrix + per-class recall."""
    by_file: dict[str, list[str]] = {}
    for dev, p in picks.items():
        if p.recommended:
            by_file.setdefault(p.recommended, []).append(dev)
    out = []
    for file, devs in by_file.items():
        title = f"{file} (recommended on {', '.join(devs)})"
        if file not in pred.pred:
            why = pred.why_not.get(file) or pred.note or "not predicted"
            out.append(ClassTable(title, f"No per-row predictions: {why}.", [], []))
            continue
        n, y, p = _n(pred), pred.y, pred.pred[file]
        m, acc = confusion(y, p, n), per_class(y, p, n)
        head = [
            "true \\ predicted",
            *(_label(pred.labels, c) for c in range(n)),
            "rows",
            "accuracy",
        ]
        rows = [
            [_label(pred.labels, c), *(str(int(v)) if v else "." for v in m[c]), str(k), pct(a)]
            for c, (k, a) in enumerate(acc)
        ]
        wrong = int(len(y) - int(m.trace()))
        cap = (
            f"Holdout rows by true class (row) and predicted class (column); {len(y) - wrong} of "
            f"{len(y)} on the diagonal ({pct((len(y) - wrong) / len(y) if len(y) else None)}), "
            f"{wrong} off it. Accuracy per class = its diagonal cell / its rows."
        )
        out.append(ClassTable(title, cap, head, rows, diagonal=True))
    return out


def quantization_tables(exports: dict, pred: Predictions) -> list[ClassTable]:
    """fp32 against each int8 sibling of the same format: accuracy per class, and the rows whose
    predicted class changed (with the true class and both predictions)."""
    out = []
    for fp32, ints in quant_pairs(exports):
        have = [f for f in ints if f in pred.pred]
        if fp32 not in pred.pred or not have:
            why = pred.why_not.get(fp32) or next(iter(pred.why_not.values()), pred.note)
            out.append(ClassTable(f"{fp32} vs {', '.join(ints)}", f"Not compared: {why}.", [], []))
            continue
        n, y = _n(pred), pred.y
        files = [fp32, *have]
        accs = {f: per_class(y, pred.pred[f], n) for f in files}
        rows = [
            [_label(pred.labels, c), str(accs[fp32][c][0]), *(pct(accs[f][c][1]) for f in files)]
            for c in range(n)
        ]
        rows.append(["all", str(len(y)), *(pct(float((pred.pred[f] == y).mean())) for f in files)])
        changed = [_changed(f, fp32, pred) for f in have]
        cap = "Holdout accuracy per true class. " + "; ".join(changed) + "."
        out.append(ClassTable(f"{fp32} vs its int8 files", cap, ["class", "rows", *files], rows))
    return out


def _changed(f: str, fp32: str, pred: Predictions, limit: int = 20) -> str:
    """'model.int8.onnx: 2 of 359 rows changed: row 17 (true 3): 3 -> 5; ...'."""
    y, a, b = pred.y, pred.pred[fp32], pred.pred[f]
    idx = [int(i) for i in (a != b).nonzero()[0]]
    lbl = lambda v: _label(pred.labels, int(v))  # noqa: E731
    text = f"{f}: {len(idx)} of {len(y)} rows changed"
    if not idx:
        return text
    rows = [f"row {i} (true {lbl(y[i])}): {lbl(a[i])} -> {lbl(b[i])}" for i in idx[:limit]]
    more = f"; and {len(idx) - limit} more" if len(idx) > limit else ""
    return f"{text}: {'; '.join(rows)}{more}"


LATENCY_HEAD = ["device", "file", "runtime", "threads", "runs", "p50", "p90", "p99", "p99 / p50"]


def latency_rows(doc: dict) -> list[list[str]]:
    """The measured records' latency spread: p50, p90 and p99 of the timed runs."""
    rows = []
    for r in doc.get("records", []):
        lat = r.get("latency") or {}
        if r.get("method") != "measured" or lat.get("p50_ms") is None:
            continue
        p50, p99 = lat.get("p50_ms"), lat.get("p99_ms")
        rows.append(
            [
                r["device"],
                r["artifact"],
                str(lat.get("runtime") or "-"),
                str(lat.get("threads") or "-"),
                str(lat.get("runs") or "-"),
                ms(p50),
                ms(lat.get("p90_ms")),
                ms(p99),
                f"{p99 / p50:.2f}x" if p50 and p99 else "-",
            ]
        )
    return rows
