"""report.md and a single-file report.html (plots embedded as base64 PNG, matplotlib Agg)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from tinyship import rundir


def _plots(doc: dict, exports: dict) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = {a["file"]: a.get("accuracy") for a in exports.get("artifacts", [])}
    recs = doc["records"]
    out = {}
    fig, ax = plt.subplots(figsize=(8, 5))
    for dev in sorted({r["device"] for r in recs}):
        pts = [
            (r["latency_ms"], acc.get(r["artifact"]))
            for r in recs
            if r["device"] == dev and r["latency_ms"] and acc.get(r["artifact"]) is not None
        ]
        if pts:
            ax.scatter(*zip(*pts), label=dev, s=18)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log; measured on host/ssh/adb, estimated elsewhere)")
    ax.set_ylabel("holdout accuracy")
    ax.set_title("accuracy vs latency per device")
    ax.legend(fontsize=6, ncol=2)
    out["accuracy_vs_latency.png"] = _png(fig, plt)
    fig, ax = plt.subplots(figsize=(8, 4))
    arts = doc["artifacts"]
    names = list(arts)
    ax.barh(names, [arts[n]["bytes"] / 1024 for n in names])
    ax.set_xlabel("KB on disk")
    ax.set_title("bytes per artifact")
    out["bytes_per_artifact.png"] = _png(fig, plt)
    fig, ax = plt.subplots(figsize=(8, 4))
    mcu = [
        r
        for r in recs
        if r["device_class"] in ("mcu", "pda")
        and r["ram_bytes"] is not None
        and r["verdict"] != "not runnable"
    ]
    labels = [f"{r['artifact']} @ {r['device']}" for r in mcu]
    ax.barh(labels, [r["ram_bytes"] / 1024 for r in mcu], label="RAM needed")
    ax.scatter(
        [r["budget"].get("ram_kb", 0) for r in mcu],
        labels,
        color="red",
        marker="|",
        s=200,
        label="RAM budget",
    )
    ax.set_xlabel("KB")
    ax.set_title("RAM vs budget (microcontroller/PDA devices)")
    ax.tick_params(axis="y", labelsize=6)
    ax.legend(fontsize=7)
    out["ram_vs_budget.png"] = _png(fig, plt)
    return out


def _png(fig, plt) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _fmt(x, spec=".3g"):
    return "-" if x is None else format(x, spec)


def markdown(doc: dict) -> str:
    est = doc["estimator"]
    loo = est["loo"]
    lines = [
        f"# tinyship profile: {doc['run']}",
        "",
        f"Settings: threads={doc['settings']['threads']}, runs={doc['settings']['runs']}, "
        f"warmup={doc['settings']['warmup']}.",
        "",
        "## Estimator error (leave-one-out on host measurements)",
        "",
        f"Model: `{est['model']}`. Median absolute percentage error: **{_fmt(loo['median_ape'], '.1f')} %** "
        f"over {loo['n']} held-out artifacts. {loo['note']}",
        "",
        "| artifact | runtime | measured ms | predicted ms | APE % |",
        "|---|---|---|---|---|",
    ]
    for r in loo["per_artifact"]:
        lines.append(
            f"| {r['artifact']} | {r['runtime_family']} | {r['measured_ms']:.4g} "
            f"| {r['predicted_ms']:.4g} | {r['ape_pct']:.1f} |"
        )
    sources: dict[str, str] = {}
    for r in doc["records"]:
        if r["method"] == "estimated" and (r.get("latency") or {}).get("efficiency"):
            sources.setdefault(r["device"], r["latency"]["efficiency"])
    if sources:
        lines += ["", "Where each device's efficiencies come from:", ""]
        lines += [f"- {dev}: {src}" for dev, src in sources.items()]
    lines += [
        "",
        "## Artifacts (static analysis)",
        "",
        "| artifact | bytes | params | MACs | weight bytes | arena plan bytes | TFLM arena | delta |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, a in doc["artifacts"].items():
        lines.append(
            f"| {name} | {a['bytes']} | {_fmt(a['params'], 'd') if a['params'] is not None else '-'} | "
            f"{_fmt(a['macs'], 'd') if a['macs'] is not None else '-'} | {a['weight_bytes']} | "
            f"{_fmt(a['peak_activation_bytes'], 'd') if a['peak_activation_bytes'] is not None else '-'} | "
            f"{a['tflm_arena_bytes'] if a['tflm_arena_bytes'] is not None else '-'} | "
            f"{a['arena_delta_bytes'] if a['arena_delta_bytes'] is not None else '-'} |"
        )
    lines += [
        "",
        "## Verdicts (artifact x device)",
        "",
        "| artifact | device | method | latency ms | RAM KB | flash KB | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in doc["records"]:
        lines.append(
            f"| {r['artifact']} | {r['device']} | {r['method']} | {_fmt(r['latency_ms'])} | "
            f"{_fmt(r['ram_bytes'] and r['ram_bytes'] / 1024, '.1f')} | "
            f"{_fmt(r['flash_bytes'] and r['flash_bytes'] / 1024, '.1f')} | {r['verdict']} |"
        )
    lines += ["", "## Not checked", ""] + [f"- {n}" for n in doc["not_checked"]] + [""]
    return "\n".join(lines)


def _md_to_html(md: str) -> str:
    """Just enough Markdown for our own report: headings, pipe tables, bullets, paragraphs."""
    out, table = [], []

    def flush():
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= set("-")]
            cells = [
                [html.escape(c.strip()) for c in r.strip().strip("|").split("|")] for r in rows
            ]
            head = "".join(f"<th>{c}</th>" for c in cells[0])
            body = "".join(
                "<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in cells[1:]
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("# "):
            continue  # the page has its own title
        if line.startswith("## "):
            out.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("- "):
            out.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.strip():
            out.append(f"<p>{html.escape(line).replace('**', '')}</p>")
    flush()
    return "\n".join(out)


def write(out: Path, doc: dict, card: dict, exports: dict) -> None:
    md = markdown(doc)
    rundir.atomic_write_bytes(out / "report.md", md.encode())
    plots = _plots(doc, exports)
    for name, data in plots.items():
        rundir.atomic_write_bytes(out / "plots" / name, data)
    imgs = "\n".join(
        f'<h2>{html.escape(n[:-4].replace("_", " "))}</h2><img alt="{html.escape(n)}" '
        f'src="data:image/png;base64,{base64.b64encode(d).decode()}">'
        for n, d in plots.items()
    )
    body = _md_to_html(md)
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>tinyship profile {html.escape(doc['run'])}</title>"
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}img{max-width:100%}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}</style>"
        f"</head><body><h1>tinyship profile: {html.escape(doc['run'])}</h1>{imgs}{body}</body></html>"
    )
    rundir.atomic_write_bytes(out / "report.html", page.encode())
