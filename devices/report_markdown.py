"""report.md: the same answer-first report as report.html, as markdown tables, one function per section."""

from __future__ import annotations

from ground import recommend
from ground.recommend import size

from .report_cells import ape
from .report_extras import Extras, compute
from .report_extras import markdown as extras_markdown
from .report_layers import LAYER_HEAD, layer_rows
from .report_provenance import efficiency_sources, metadata
from .report_verdicts import ANSWER_HEAD, VERDICT_HEAD, answer_rows, verdict_rows


def md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    esc = lambda c: str(c).replace("|", "\\|")  # noqa: E731
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + [
        "| " + " | ".join(esc(c) for c in r) + " |" for r in rows
    ]


def _answer(
    doc: dict, picks: dict[str, recommend.Pick], titles: dict[str, str], tol: float
) -> list[str]:
    """The title and what to ship on each device."""
    return [
        f"# tinyship profile: {doc['run']}",
        "",
        "## What to ship on each device",
        "",
        f"Rule: {recommend.rule(tol)}. Sizes in KiB (1024 bytes); budgets from the recipe or the catalog.",
        "",
        *md_table(ANSWER_HEAD, [r for _, r in answer_rows(picks, titles)]),
    ]


def _estimator(doc: dict, est: dict, loo: dict) -> list[str]:
    """The estimator's leave-one-out error per file, and where each device's efficiencies come from."""
    lines = [
        "",
        "## Estimator error (leave-one-out on host measurements)",
        "",
        f"Model: {est['model']}. Median absolute percentage error: **{ape(loo)} %** "
        f"over {loo['n']} held-out files. {loo['note']}",
        "",
        *md_table(
            ["file", "runtime", "measured ms", "predicted ms", "APE %"],
            [
                [
                    r["artifact"],
                    r["runtime_family"],
                    f"{r['measured_ms']:.4g}",
                    f"{r['predicted_ms']:.4g}",
                    f"{r['ape_pct']:.1f}",
                ]
                for r in loo["per_artifact"]
            ],
        ),
    ]
    sources = efficiency_sources(doc)
    if sources:
        lines += ["", "Where each device's efficiencies come from:", ""]
        lines += [f"- {dev}: {src}" for dev, src in sources.items()]
    return lines


def _layers(doc: dict, picks: dict[str, recommend.Pick]) -> list[str]:
    """A per-layer table for each recommended file, shares on the first device it is recommended on."""
    lines: list[str] = []
    for file in dict.fromkeys(p.recommended for p in picks.values() if p.recommended):
        dev = next(d for d, p in picks.items() if p.recommended == file)
        rows, note = layer_rows(doc, file, dev)
        lines += [
            "",
            f"## Per layer: {file} (recommended on {', '.join(d for d, p in picks.items() if p.recommended == file)})",
            "",
            note,
            "",
            *md_table(LAYER_HEAD, rows),
        ]
    return lines


def _run(doc: dict, card: dict, exports: dict) -> list[str]:
    """The run's metadata (only with a student card)."""
    if not card:
        return []
    return [
        "",
        "## Run",
        "",
        *md_table(["", ""], [list(kv) for kv in metadata(doc, card, exports)]),
    ]


def _files(doc: dict) -> list[str]:
    """Each file's static analysis: bytes, params, MACs, weights and arenas."""
    return [
        "",
        "## Files (static analysis)",
        "",
        *md_table(
            [
                "file",
                "bytes",
                "params",
                "MACs",
                "weight bytes",
                "arena plan",
                "TFLM arena",
                "delta",
            ],
            [
                [
                    n,
                    f"{a['bytes']:,}",
                    "-" if a["params"] is None else f"{a['params']:,}",
                    "-" if a["macs"] is None else f"{a['macs']:,}",
                    size(a["weight_bytes"]),
                    size(a["peak_activation_bytes"]),
                    size(a["tflm_arena_bytes"]),
                    "-" if a["arena_delta_bytes"] is None else f"{a['arena_delta_bytes']:,} B",
                ]
                for n, a in doc["artifacts"].items()
            ],
        ),
    ]


def _verdicts(doc: dict, acc: dict) -> list[str]:
    """Every file on every device, then what was not checked."""
    return [
        "",
        "## Every file on every device",
        "",
        *md_table(VERDICT_HEAD, [r for _, r in verdict_rows(doc, acc)]),
        "",
        "## Not checked",
        "",
        *[f"- {n}" for n in doc["not_checked"]],
        "",
    ]


def markdown(
    doc: dict, card: dict | None = None, exports: dict | None = None, ex: Extras | None = None
) -> str:
    card, exports = card or {}, exports or {}
    ex = ex or compute(doc, card, exports, None)
    picks = ex.picks
    titles = {d["name"]: d.get("title", "") for d in doc.get("devices", [])}
    acc = recommend.accuracies(exports)
    est, loo = doc["estimator"], doc["estimator"]["loo"]
    lines = [
        *_answer(doc, picks, titles, ex.tolerance),
        *extras_markdown(ex),
        *_estimator(doc, est, loo),
        *_layers(doc, picks),
        *_run(doc, card, exports),
        *_files(doc),
        *_verdicts(doc, acc),
    ]
    return "\n".join(lines)
