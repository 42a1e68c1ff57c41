"""report.html (one self-contained page) and report.md, answer first: what to ship on each device.

Order: the recommendation per device with its margins against the budget (or the nearest
miss and why), then accuracy vs latency, a per-layer table for each recommended file, the
MCU memory timeline, run metadata, sources and the estimator's error, and the full
file x device table. The rule is ground.recommend's, the same the console and `check`
use. Sizes: 1 KiB = 1024 bytes (budgets' ram_kb / flash_kb are KiB).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from ground import recommend, rundir
from ground.recommend import size

from . import report_plots as plots

# ----------------------------------------------------------------------------- formatting


def ms(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.4f} ms" if abs(x) < 0.1 else f"{x:.3g} ms" if abs(x) < 100 else f"{x:,.0f} ms"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _ape(loo: dict) -> str:
    return "-" if loo.get("median_ape") is None else f"{loo['median_ape']:.1f}"


def _vs(value, budget, fmt, unit_scale: float = 1.0) -> str:
    """'2.4 ms of 20 ms (88% spare)' or '11 ms over 10 ms (+10%)'."""
    if value is None:
        return "-"
    if budget is None:
        return f"{fmt(value)} (no budget)"
    b = budget * unit_scale
    if value <= b:
        return f"{fmt(value)} of {fmt(b)} ({100 * (b - value) / b:.0f}% spare)"
    return f"{fmt(value)} over {fmt(b)} (+{100 * (value - b) / b:.0f}%)"


# ----------------------------------------------------------------------------- tables


def answer_rows(
    picks: dict[str, recommend.Pick], titles: dict[str, str]
) -> list[tuple[str, list[str]]]:
    """(css class, cells) per device: the first screen."""
    out = []
    for dev, p in picks.items():
        b = p.budget
        if p.fits:
            cls, verdict, file = "ok", "fits", p.recommended
        elif p.file:
            cls, verdict, file = "miss", "nothing fits", f"nearest miss: {p.file}"
        else:
            cls, verdict, file = "none", "not judged", "-"
        why = "; ".join(p.reasons) if not p.fits else f"{p.n_fit} of {p.n_files} files fit"
        out.append(
            (
                cls,
                [
                    f"{dev}" + (f" ({titles[dev]})" if titles.get(dev) else ""),
                    verdict,
                    file,
                    pct(p.accuracy),
                    _vs(p.latency_ms, b.get("latency_ms"), ms),
                    _vs(p.ram_bytes, b.get("ram_kb"), size, 1024),
                    _vs(p.flash_bytes, b.get("flash_kb"), size, 1024),
                    p.method or "-",
                    why,
                ],
            )
        )
    return out


ANSWER_HEAD = [
    "device",
    "verdict",
    "file to ship",
    "holdout accuracy",
    "latency vs budget",
    "RAM vs budget",
    "flash vs budget",
    "latency from",
    "why",
]


def _device(d: dict):
    from .catalog import Device, Figure

    return Device(
        d["name"],
        d["class"],
        d.get("title", ""),
        {
            k: Figure(f.get("value"), f.get("source", ""), f.get("derivation"))
            for k, f in d["figures"].items()
        },
        d.get("formats", []),
        d.get("runtime", {}),
        d.get("budget", {}),
        d.get("published", []),
    )


def op_shares(doc: dict, file: str, device: str) -> list[float] | None:
    """Each operator's share of the estimated latency on ``device`` (the cost model's own per-op terms)."""
    from .analysis import Analysis, OpCost
    from .estimate import Fit

    params = (doc.get("estimator") or {}).get("params")
    dev = next((d for d in doc.get("devices", []) if d["name"] == device), None)
    a = doc["artifacts"].get(file)
    if not params or dev is None or not a or not a.get("ops"):
        return None
    try:
        fit, d = Fit(dict(params), 0, "host"), _device(dev)
        fam = "onnxruntime" if file.endswith(".onnx") else "litert"
        base = {**a, "ops": [], "n_ops": 0}
        call = Fit.predict_s(fit, Analysis(**base), d, fam)
        times = []
        for o in a["ops"]:
            t = fit.predict_s(Analysis(**{**base, "ops": [OpCost(**o)], "n_ops": 1}), d, fam)
            times.append(max((t or 0.0) - (call or 0.0), 0.0))
    except (TypeError, KeyError, ValueError, ZeroDivisionError):
        return None
    total = sum(times)
    return [t / total for t in times] if total > 0 else None


LAYER_HEAD = [
    "#",
    "operator",
    "kind",
    "compute",
    "MACs",
    "weights",
    "activations in",
    "activations out",
    "est. share of time",
]


def layer_rows(doc: dict, file: str, device: str) -> tuple[list[list[str]], str]:
    a = doc["artifacts"][file]
    shares = op_shares(doc, file, device)
    total_macs = sum(o["macs"] for o in a.get("ops", [])) or 1
    rows = []
    for i, o in enumerate(a.get("ops", [])):
        share = (
            f"{100 * shares[i]:.1f}%"
            if shares
            else f"({100 * o['macs'] / total_macs:.1f}% of MACs)"
        )
        rows.append(
            [
                str(o["index"]),
                o["op"],
                o["kind"],
                o["dtype"],
                f"{o['macs']:,}",
                size(o["weight_bytes"]),
                size(o["in_bytes"]),
                size(o["out_bytes"]),
                share,
            ]
        )
    note = (
        f"share of the cost model's estimate on {device} (per-op compute or memory time plus per-op overhead)"
        if shares
        else "the cost model could not be evaluated for this device; share of MACs shown instead"
    )
    return rows, note


def verdict_rows(doc: dict, acc: dict) -> list[tuple[str, list[str]]]:
    out = []
    for r in doc["records"]:
        cls = (
            "ok"
            if r["verdict"] == "fits"
            else "none"
            if r["verdict"] in ("not runnable", "unknown")
            else "miss"
        )
        out.append(
            (
                cls,
                [
                    r["device"],
                    r["artifact"],
                    pct(acc.get(r["artifact"])),
                    r["method"],
                    ms(r["latency_ms"]),
                    _ram(r),
                    size(r["flash_bytes"]),
                    r["verdict"],
                    "; ".join(r.get("reasons") or []),
                ],
            )
        )
    return out


def _ram(r: dict) -> str:
    """A record's RAM, with the audio front-end's share when it is counted in (MCU/PDA classes)."""
    fe = r.get("ram_frontend") or {}
    if r["ram_bytes"] is None or not fe.get("in_ram_bytes"):
        return size(r["ram_bytes"])
    return f"{size(r['ram_bytes'])} (model {size(r['ram_bytes'] - fe['bytes'])} + front-end {size(fe['bytes'])})"


VERDICT_HEAD = [
    "device",
    "file",
    "accuracy",
    "latency from",
    "latency",
    "RAM",
    "flash",
    "verdict",
    "reasons",
]


def metadata(doc: dict, card: dict, exports: dict) -> list[tuple[str, str]]:
    lin = card.get("lineage") or {}
    teacher, student = card.get("teacher") or {}, card.get("student") or {}
    h = (card.get("metrics") or {}).get("holdout") or {}
    versions = lin.get("versions") or {}
    runtimes = sorted({a.get("runtime") for a in exports.get("artifacts", []) if a.get("runtime")})
    return [
        ("run", str(doc.get("run"))),
        ("profiled", str(doc.get("created", "-"))),
        ("student trained", str(lin.get("created", "-"))),
        ("commit", str(lin.get("commit") or doc.get("commit") or _commit())),
        ("recipe", str(lin.get("recipe_path", "-"))),
        ("command", str(lin.get("command", "-"))),
        ("holdout rows", str(h.get("n", "-"))),
        (
            "teacher accuracy",
            f"{pct((h.get('teacher') or {}).get('accuracy'))} ({len(teacher.get('members', []))} members, "
            f"{teacher.get('combine', '?')} mean)",
        ),
        (
            "student accuracy",
            f"{pct((h.get('student') or {}).get('accuracy'))} ({student.get('arch')}, "
            f"{student.get('params') or 0:,} params, {student.get('macs') or 0:,} MACs)",
        ),
        (
            "baseline accuracy",
            f"{pct((h.get('baseline') or {}).get('accuracy'))} (same student on hard labels only)",
        ),
        (
            "measurement",
            ", ".join(f"{k}={doc['settings'].get(k)}" for k in ("threads", "runs", "warmup")),
        ),
        ("tool versions", ", ".join(f"{k} {v}" for k, v in versions.items()) or "-"),
        ("runtimes that checked the files", "; ".join(runtimes) or "-"),
    ]


def _commit() -> str:
    """The git commit of the code writing this report (card.json and profile.json record none)."""
    from ground.provenance import code_commit

    sha = code_commit()
    return f"{sha} (code that wrote this report)" if sha else "not recorded"


# ----------------------------------------------------------------------------- markdown


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    esc = lambda c: str(c).replace("|", "\\|")  # noqa: E731
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + [
        "| " + " | ".join(esc(c) for c in r) + " |" for r in rows
    ]


def markdown(doc: dict, card: dict | None = None, exports: dict | None = None) -> str:
    card, exports = card or {}, exports or {}
    picks = recommend.recommend(doc, exports)
    titles = {d["name"]: d.get("title", "") for d in doc.get("devices", [])}
    acc = recommend.accuracies(exports)
    est, loo = doc["estimator"], doc["estimator"]["loo"]
    lines = [
        f"# tinyship profile: {doc['run']}",
        "",
        "## What to ship on each device",
        "",
        f"Rule: {recommend.RULE}. Sizes in KiB (1024 bytes); budgets from the recipe or the catalog.",
        "",
        *_md_table(ANSWER_HEAD, [r for _, r in answer_rows(picks, titles)]),
        "",
        "## Estimator error (leave-one-out on host measurements)",
        "",
        f"Model: {est['model']}. Median absolute percentage error: **{_ape(loo)} %** "
        f"over {loo['n']} held-out files. {loo['note']}",
        "",
        *_md_table(
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
    sources: dict[str, str] = {}
    for r in doc["records"]:
        if r["method"] == "estimated" and (r.get("latency") or {}).get("efficiency"):
            sources.setdefault(r["device"], r["latency"]["efficiency"])
    if sources:
        lines += ["", "Where each device's efficiencies come from:", ""]
        lines += [f"- {dev}: {src}" for dev, src in sources.items()]
    for file in dict.fromkeys(p.recommended for p in picks.values() if p.recommended):
        dev = next(d for d, p in picks.items() if p.recommended == file)
        rows, note = layer_rows(doc, file, dev)
        lines += [
            "",
            f"## Per layer: {file} (recommended on {', '.join(d for d, p in picks.items() if p.recommended == file)})",
            "",
            note,
            "",
            *_md_table(LAYER_HEAD, rows),
        ]
    if card:
        lines += [
            "",
            "## Run",
            "",
            *_md_table(["", ""], [list(kv) for kv in metadata(doc, card, exports)]),
        ]
    lines += [
        "",
        "## Files (static analysis)",
        "",
        *_md_table(
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
        "",
        "## Every file on every device",
        "",
        *_md_table(VERDICT_HEAD, [r for _, r in verdict_rows(doc, acc)]),
        "",
        "## Not checked",
        "",
        *[f"- {n}" for n in doc["not_checked"]],
        "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- html

CSS = """
:root{--ok:#e3f4e8;--ok-b:#2e7d32;--miss:#fde7e7;--miss-b:#c62828;--none:#eeeeee;--none-b:#757575}
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
tr.miss td{background:var(--miss)}tr.miss td.v{color:var(--miss-b);font-weight:700}
tr.none td{background:var(--none)}tr.none td.v{color:var(--none-b);font-weight:700}
img{max-width:100%;height:auto;display:block}
.rule{background:#f7f7fb;border-left:4px solid #5c6bc0;padding:6px 10px}
.muted{color:#555;font-size:.92em}.t{color:#555;font-size:.9em}
details{margin:.6em 0}summary{cursor:pointer;font-weight:600}
@media (max-width:600px){body{font-size:14px;padding:8px}td,th{padding:3px 5px}table{font-size:12px}.t{display:none}}
"""


class Raw(str):
    """A table cell that is already HTML."""


def _h(x) -> str:
    return x if isinstance(x, Raw) else html.escape(str(x))


def _html_table(
    head: list[str],
    rows: list[tuple[str, list[str]]] | list[list[str]],
    table_id: str | None = None,
    verdict_col: int | None = None,
) -> str:
    ths = "".join(f"<th scope='col'>{_h(c)}</th>" for c in head)
    body = []
    for row in rows:
        cls, cells = row if isinstance(row, tuple) else ("", row)
        tds = "".join(
            f"<td class='v'>{_h(c)}</td>" if i == verdict_col else f"<td>{_h(c)}</td>"
            for i, c in enumerate(cells)
        )
        body.append(f"<tr class='{cls}'>{tds}</tr>" if cls else f"<tr>{tds}</tr>")
    tid = f" id='{table_id}'" if table_id else ""
    return f"<div class='scroll'><table{tid}><thead><tr>{ths}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def _img(name: str, data: bytes | None, alt: str) -> str:
    if not data:
        return ""
    return f"<img alt='{_h(alt)}' src='data:image/png;base64,{base64.b64encode(data).decode()}'>"


def _timeline(doc: dict, picks: dict[str, recommend.Pick]) -> list[tuple[str, str, bytes]]:
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


def page(doc: dict, card: dict, exports: dict, figures: dict[str, bytes | None]) -> str:
    picks = recommend.recommend(doc, exports)
    titles = {d["name"]: d.get("title", "") for d in doc.get("devices", [])}
    acc = recommend.accuracies(exports)
    h = (card.get("metrics") or {}).get("holdout") or {}
    est, loo = doc["estimator"], doc["estimator"]["loo"]
    n_ok = sum(p.fits for p in picks.values())
    parts = [
        f"<h1>tinyship: what to ship for run {_h(doc['run'])}</h1>",
        f"<p class='rule'><b>Rule:</b> {_h(recommend.RULE)}. Where nothing fits, the nearest miss is the runnable "
        "file with the smallest worst overrun of latency, RAM or flash. Sizes in KiB (1 KiB = 1024 bytes). "
        f"{n_ok} of {len(picks)} devices have a file within budget.</p>",
        _html_table(
            ANSWER_HEAD,
            [
                (
                    cls,
                    [
                        Raw(f"<b>{_h(d)}</b><span class='t'><br>{_h(titles.get(d, ''))}</span>"),
                        *cells[1:],
                    ],
                )
                for d, (cls, cells) in zip(picks, answer_rows(picks, titles))
            ],
            table_id="answer",
            verdict_col=1,
        ),
        f"<p class='muted'>Student {_h((card.get('student') or {}).get('arch'))}: holdout accuracy "
        f"{pct((h.get('student') or {}).get('accuracy'))}; teacher {pct((h.get('teacher') or {}).get('accuracy'))}; "
        f"same student on hard labels {pct((h.get('baseline') or {}).get('accuracy'))}. Latency estimates carry at "
        f"least the estimator's error on the host ({_ape(loo)}% "
        "median, below).</p>",
        "<h2>Accuracy vs latency</h2>",
        _img(
            "accuracy_vs_latency",
            figures.get("accuracy_vs_latency.png"),
            "accuracy vs latency per device with budget lines",
        ),
    ]
    for name, title in (("pareto_latency.png", "latency"), ("pareto_ram.png", "RAM")):
        if figures.get(name):  # student search (devices/pareto.py)
            parts += [
                f"<h2>Student search: validation accuracy vs {title}, Pareto front</h2>",
                _img(name[:-4], figures[name], f"pareto {title.lower()}"),
            ]
    for file in dict.fromkeys(p.recommended for p in picks.values() if p.recommended):
        devs = [d for d, p in picks.items() if p.recommended == file]
        rows, note = layer_rows(doc, file, devs[-1])
        a = doc["artifacts"][file]
        parts += [
            f"<h2>Per layer: {_h(file)}</h2>",
            f"<p class='muted'>Recommended on {_h(', '.join(devs))}. {size(a['bytes'])} file, "
            f"{a['macs'] or 0:,} MACs, weights {size(a['weight_bytes'])}, "
            f"arena plan {size(a['peak_activation_bytes'])}. "
            f"Time share: {_h(note)}.</p>",
            _html_table(LAYER_HEAD, rows),
        ]
    tl = _timeline(doc, picks)
    if tl:
        parts.append("<h2>MCU memory timeline</h2>")
        parts.append(
            "<p class='muted'>Activation bytes alive at each operator step (its inputs and the output it writes; in a "
            "sequential graph nothing else is alive) against the greedy arena plan, the arena TFLite Micro measured, "
            "and the RAM budget.</p>"
        )
        for title, caption, png in tl:
            parts += [
                f"<h3>{_h(title)}</h3>",
                _img(title, png, f"memory timeline {title}"),
                f"<p class='muted'>{_h(caption)}</p>",
            ]
    parts += [
        "<h2>Run</h2>",
        _html_table(["", ""], [list(kv) for kv in metadata(doc, card, exports)]),
    ]
    sources: dict[str, str] = {}
    for r in doc["records"]:
        if r["method"] == "estimated" and (r.get("latency") or {}).get("efficiency"):
            sources.setdefault(r["device"], r["latency"]["efficiency"])
    parts += [
        "<h2>Sources and the estimator's error</h2>",
        f"<p>Cost model: <code>{_h(est['model'])}</code>. Leave-one-out on the host measurements: median absolute "
        f"percentage error <b>{_ape(loo)}%</b> over {loo['n']} files. "
        f"{_h(loo['note'])}</p>",
        _html_table(
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
            + "".join(f"<li><b>{_h(d)}</b>: {_h(s)}</li>" for d, s in sources.items())
            + "</ul>"
        )
    fig_rows = []
    for d in doc.get("devices", []):
        for k, f in d.get("figures", {}).items():
            fig_rows.append([d["name"], k, str(f.get("value")), f.get("source", "")])
    parts += [
        "<details><summary>Device figures and their sources</summary>",
        _html_table(["device", "figure", "value", "source"], fig_rows),
        "</details>",
        "<h2>Files</h2>",
        _img("bytes", figures.get("bytes_per_file.png"), "bytes per file"),
        "<details><summary>Every file on every device</summary>",
        _html_table(VERDICT_HEAD, verdict_rows(doc, acc), verdict_col=7),
        "</details>",
        "<h2>Not checked</h2><ul>"
        + "".join(f"<li>{_h(n)}</li>" for n in doc["not_checked"])
        + "</ul>",
    ]
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>tinyship report {_h(doc['run'])}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def write(out: Path, doc: dict, card: dict, exports: dict) -> list[Path]:
    """Write report.md, report.html and plots/*.png into ``out`` (profile/); returns the paths."""
    out = Path(out)
    picks = recommend.recommend(doc, exports)
    acc = recommend.accuracies(exports)
    holdout = (card.get("metrics") or {}).get("holdout") or {}
    figures = {
        "accuracy_vs_latency.png": plots.accuracy_vs_latency(doc["records"], acc, picks, holdout),
        "bytes_per_file.png": plots.bytes_per_file(doc["artifacts"]),
    }
    if doc.get("search"):  # a student search's Pareto fronts (tinyship.search, devices/pareto.py)
        from .pareto import pareto_plots

        figures.update(pareto_plots(doc["search"]))
    written = [rundir.atomic_write_bytes(out / "report.md", markdown(doc, card, exports).encode())]
    for name, data in figures.items():
        if data:
            written.append(rundir.atomic_write_bytes(out / "plots" / name, data))
    for title, _c, png in _timeline(doc, picks):
        safe = "".join(ch if ch.isalnum() or ch in ".-" else "_" for ch in title)
        written.append(rundir.atomic_write_bytes(out / "plots" / f"memory_{safe}.png", png))
    written.append(
        rundir.atomic_write_bytes(out / "report.html", page(doc, card, exports, figures).encode())
    )
    for stale in (out / "plots").glob("*.png"):  # from an earlier `tinyship report` of this run
        if stale not in written:
            stale.unlink()
    return written
