"""report.html's sections, answer first, and the MCU memory timelines they and report.write share."""

from __future__ import annotations

from ground import recommend
from ground.recommend import size

from . import report_plots as plots
from .report_cells import ape, ms, pct
from .report_extras import Extras, compute
from .report_extras_html import sections
from .report_html import Raw, esc, html_table, img, shell
from .report_layers import LAYER_HEAD, layer_rows
from .report_provenance import efficiency_sources, metadata
from .report_verdicts import ANSWER_HEAD, VERDICT_HEAD, answer_rows, verdict_rows


def timeline(doc: dict, picks: dict[str, recommend.Pick]) -> list[tuple[str, str, bytes]]:
    """(title, caption, png) per file recommended (or nearest miss) on an MCU/PDA-class device."""
    by_file: dict[str, list[recommend.Pick]] = {}
    for p in picks.values():
        if p.device_class in ("mcu", "pda") and p.file:
            by_file.setdefault(p.file, []).append(p)
    out = []
    for file, ps in by_file.items():
        a = doc["artifacts"].get(file) or {}
        budgets = [p.budget.get("ram_kb") for p in ps if p.budget.get("ram_kb")]
        png = plots.memory_timeline(
            a.get("ops") or [],
            a.get("peak_activation_bytes"),
            a.get("tflm_arena_bytes"),
            int(min(budgets) * 1024) if budgets else None,
            f"{plots.short(file)}: activation bytes alive per operator step",
        )
        if png:
            need = ", ".join(f"{p.device} {size(p.ram_bytes)}" for p in ps)
            verb = "recommended" if all(p.fits for p in ps) else "recommended or nearest miss"
            out.append(
                (
                    file,
                    f"{verb} on {', '.join(p.device for p in ps)}; RAM needed there: {need}",
                    png,
                )
            )
    return out


def _answer(
    doc: dict,
    card: dict,
    picks: dict[str, recommend.Pick],
    titles: dict[str, str],
    loo: dict,
    tol: float = recommend.DEFAULT_TOLERANCE,
) -> list[str]:
    """The title, the rule, the answer per device and the student's accuracy against its references."""
    h = (card.get("metrics") or {}).get("holdout") or {}
    n_ok = sum(p.fits for p in picks.values())
    return [
        f"<h1>tinyship: what to ship for run {esc(doc['run'])}</h1>",
        f"<p class='rule'><b>Rule:</b> {esc(recommend.rule(tol))}. Where nothing fits, the "
        "nearest miss is the runnable file with the smallest worst overrun of latency, RAM or "
        "flash. Sizes in KiB (1 KiB = 1024 bytes). "
        f"{n_ok} of {len(picks)} devices have a file within budget.</p>",
        html_table(
            ANSWER_HEAD,
            [
                (
                    cls,
                    [
                        Raw(f"<b>{esc(d)}</b><span class='t'><br>{esc(titles.get(d, ''))}</span>"),
                        *cells[1:],
                    ],
                )
                for d, (cls, cells) in zip(picks, answer_rows(picks, titles))
            ],
            table_id="answer",
            verdict_col=1,
            cards=True,
        ),
        f"<p class='muted'>Student {esc((card.get('student') or {}).get('arch'))}: holdout accuracy "
        f"{pct((h.get('student') or {}).get('accuracy'))}; teacher {pct((h.get('teacher') or {}).get('accuracy'))}; "
        f"same student on hard labels {pct((h.get('baseline') or {}).get('accuracy'))}. Latency estimates carry at "
        f"least the estimator's error on the host ({ape(loo)}% "
        "median, below).</p>",
    ]


def _accuracy(figures: dict[str, bytes | None]) -> list[str]:
    """Accuracy vs latency per device, and a student search's Pareto fronts when there was one."""
    parts = [
        "<h2 id='accuracy'>Accuracy vs latency, per device</h2>",
        "<div class='scroll'>"  # on a phone the panels keep a readable size and scroll sideways
        + img(
            "accuracy_by_device",
            figures.get("accuracy_vs_latency.png"),
            "accuracy vs latency, one panel per device, with its labelled latency budget",
        ).replace("<img ", "<img class='wide' ", 1)
        + "</div>",
    ]
    for name, title in (("pareto_latency.png", "latency"), ("pareto_ram.png", "RAM")):
        if figures.get(name):  # student search (devices/pareto.py)
            parts += [
                f"<h2>Student search: validation accuracy vs {title}, Pareto front</h2>",
                img(name[:-4], figures[name], f"pareto {title.lower()}"),
            ]
    return parts


def _layers(doc: dict, picks: dict[str, recommend.Pick]) -> list[str]:
    """A per-layer table for each recommended file, shares on the last device it is recommended on."""
    parts: list[str] = []
    for file in dict.fromkeys(p.recommended for p in picks.values() if p.recommended):
        devs = [d for d, p in picks.items() if p.recommended == file]
        rows, note = layer_rows(doc, file, devs[-1])
        a = doc["artifacts"][file]
        parts += [
            f"<h2>Per layer: {esc(file)}</h2>",
            f"<p class='muted'>Recommended on {esc(', '.join(devs))}. {size(a['bytes'])} file, "
            f"{a['macs'] or 0:,} MACs, weights {size(a['weight_bytes'])}, "
            f"arena plan {size(a['peak_activation_bytes'])}. "
            f"Time share: {esc(note)}.</p>",
            html_table(LAYER_HEAD, rows),
        ]
    return parts


def _memory(doc: dict, picks: dict[str, recommend.Pick]) -> list[str]:
    """The MCU memory timeline of each file recommended (or nearest miss) on an MCU/PDA."""
    tl = timeline(doc, picks)
    if not tl:
        return []
    parts = [
        "<h2>MCU memory timeline</h2>",
        "<p class='muted'>Activation bytes alive at each operator step (its inputs and the output it writes; in a "
        "sequential graph nothing else is alive) against the greedy arena plan, the arena TFLite Micro measured, "
        "and the RAM budget.</p>",
    ]
    for title, caption, png in tl:
        parts += [
            f"<h3>{esc(title)}</h3>",
            img(title, png, f"memory timeline {title}"),
            f"<p class='muted'>{esc(caption)}</p>",
        ]
    return parts


def _sources(doc: dict, est: dict, loo: dict) -> list[str]:
    """The cost model, its leave-one-out error on the host, and where each device's efficiencies come from."""
    sources = efficiency_sources(doc)
    parts = [
        "<h2>Sources and the estimator's error</h2>",
        f"<p>Cost model: <code>{esc(est['model'])}</code>. Leave-one-out on the host measurements: median absolute "
        f"percentage error <b>{ape(loo)}%</b> over {loo['n']} files. "
        f"{esc(loo['note'])}</p>",
        html_table(
            ["file", "runtime", "measured", "predicted", "APE"],
            [
                [
                    r["artifact"],
                    r["runtime_family"],
                    ms(r["measured_ms"]),
                    ms(r["predicted_ms"]),
                    f"{r['ape_pct']:.1f}%",
                ]
                for r in loo["per_artifact"]
            ],
        ),
    ]
    if sources:
        parts.append(
            "<p>Where each device's efficiencies come from:</p><ul>"
            + "".join(f"<li><b>{esc(d)}</b>: {esc(s)}</li>" for d, s in sources.items())
            + "</ul>"
        )
    return parts


def _device_figures(doc: dict) -> list[str]:
    """Every catalog figure of every device with its source, folded away."""
    fig_rows = []
    for d in doc.get("devices", []):
        for k, f in d.get("figures", {}).items():
            fig_rows.append([d["name"], k, str(f.get("value")), f.get("source", "")])
    return [
        "<details><summary>Device figures and their sources</summary>",
        html_table(["device", "figure", "value", "source"], fig_rows),
        "</details>",
    ]


def _files(doc: dict, figures: dict[str, bytes | None], acc: dict) -> list[str]:
    """Bytes per file, every file on every device (folded away), and what was not checked."""
    return [
        "<h2>Files</h2>",
        img("bytes", figures.get("bytes_per_file.png"), "bytes per file"),
        "<details><summary>Every file on every device</summary>",
        html_table(VERDICT_HEAD, verdict_rows(doc, acc), verdict_col=7),
        "</details>",
        "<h2>Not checked</h2><ul>"
        + "".join(f"<li>{esc(n)}</li>" for n in doc["not_checked"])
        + "</ul>",
    ]


def page(
    doc: dict,
    card: dict,
    exports: dict,
    figures: dict[str, bytes | None],
    ex: Extras | None = None,
) -> str:
    ex = ex or compute(doc, card, exports, None)
    picks = ex.picks
    titles = {d["name"]: d.get("title", "") for d in doc.get("devices", [])}
    acc = recommend.accuracies(exports)
    est, loo = doc["estimator"], doc["estimator"]["loo"]
    parts = [
        *_answer(doc, card, picks, titles, loo, ex.tolerance),
        *_accuracy(figures),
        *sections(ex),
        *_layers(doc, picks),
        *_memory(doc, picks),
        "<h2>Run</h2>",
        html_table(["", ""], [list(kv) for kv in metadata(doc, card, exports)]),
        *_sources(doc, est, loo),
        *_device_figures(doc),
        *_files(doc, figures, acc),
    ]
    return shell(doc["run"], parts)
