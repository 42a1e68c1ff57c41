"""The report's figures (matplotlib Agg, PNG bytes): accuracy vs latency (one panel per device),
memory timeline, bytes per file."""

from __future__ import annotations

import io
import math

FONT = 11


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {"font.size": FONT, "axes.titlesize": FONT + 1, "legend.fontsize": FONT - 1}
    )
    return plt


def _png(fig, plt) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def short(name: str) -> str:
    """model.int8-full.tflite -> int8-full.tflite (the points' labels)."""
    return name[len("model.") :] if name.startswith("model.") else name


_FORMAT_MARKER = {"onnx": "o", "tflite": "s", "coreml": "D"}


def _precision(name: str) -> str:
    """model.int8-full.tflite -> int8-full."""
    parts = short(name).split(".")
    return parts[0] if len(parts) > 1 else name


def _budget_line(ax, xs: list[float], budget: float | None, y: float) -> None:
    """Log latency axis around the points and the budget, the budget as a labelled dashed line
    (label on the side with room), and plain tick labels (no 2x10^1 clutter on a short range)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    lo, hi = min(xs + ([budget] if budget else [])), max(xs + ([budget] if budget else []))
    ax.set_xscale("log")
    ax.set_xlim(lo / 1.8, hi * 1.8)
    subs = (1.0,) if hi / lo > 300 else (1.0, 2.0, 5.0)  # decades only on a long axis
    ax.xaxis.set_major_locator(LogLocator(subs=subs, numticks=8))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    if budget:
        left = math.log(budget / (lo / 1.8)) < math.log((hi * 1.8) / budget)
        ax.axvline(budget, color="#c62828", linestyle="--", linewidth=1.2)
        ax.text(budget, y, f" budget {nice(budget)} ms " , color="#c62828", fontsize=FONT - 3,
                ha="left" if left else "right", va="center")  # fmt: skip


def accuracy_by_device(records: list[dict], acc: dict, picks: dict, holdout: dict) -> bytes | None:
    """Small multiples, one panel per device: latency (log x) vs holdout accuracy of each runnable
    file, the latency budget as a labelled dashed line, a ring around the recommended file.
    Colour = precision, marker = format; axes share the accuracy range so panels compare."""
    pts = [
        r
        for r in records
        if r["latency_ms"] and acc.get(r["artifact"]) is not None and r["verdict"] != "not runnable"
    ]
    if not pts:
        return None
    plt = _plt()
    devs = list(dict.fromkeys(r["device"] for r in pts))
    cols = min(4, len(devs))
    rows = math.ceil(len(devs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.7 * rows + 0.9), squeeze=False)
    precs = list(dict.fromkeys(_precision(r["artifact"]) for r in pts))
    colour = {p: plt.get_cmap("tab10")(i % 10) for i, p in enumerate(precs)}
    ys = [100 * acc[r["artifact"]] for r in pts]
    lo, hi = min(ys), max(ys)
    pad = max(0.2, (hi - lo) * 0.2)
    for ax, dev in zip(axes.flat, devs):
        mine = [r for r in pts if r["device"] == dev]
        for r in mine:
            fmt = r.get("format") or short(r["artifact"]).rsplit(".", 1)[-1]
            ax.scatter(
                r["latency_ms"],
                100 * acc[r["artifact"]],
                color=colour[_precision(r["artifact"])],
                marker=_FORMAT_MARKER.get(fmt, "^"),
                s=28,
                edgecolors="black",
                linewidths=0.3,
                alpha=0.85,
            )
        p = picks.get(dev)
        if p and p.recommended and p.latency_ms:
            ax.scatter(p.latency_ms, 100 * acc.get(p.recommended, 0), s=160,
                       facecolors="none", edgecolors="black", linewidths=1.5)  # fmt: skip
        _budget_line(
            ax,
            [r["latency_ms"] for r in mine],
            mine[0]["budget"].get("latency_ms"),
            hi + pad * 0.55,
        )
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_title(dev + (f": {short(p.recommended)}" if p and p.recommended else ": nothing fits"),
                     fontsize=FONT - 2)  # fmt: skip
        ax.tick_params(labelsize=FONT - 3)
        ax.grid(True, which="both", alpha=0.25)
    for ax in list(axes.flat)[len(devs) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("holdout acc., %", fontsize=FONT - 2)
    for ax in axes[-1, :]:
        ax.set_xlabel("latency, ms (log)", fontsize=FONT - 2)
    handles = [
        plt.Line2D([], [], color=colour[p], marker="o", linestyle="", label=p) for p in precs
    ]
    handles += [plt.Line2D([], [], color="grey", marker=m, linestyle="", label=f)
                for f, m in _FORMAT_MARKER.items() if any(r.get("format") == f for r in pts)]  # fmt: skip
    handles.append(plt.Line2D([], [], color="black", marker="o", markerfacecolor="none",
                              markersize=10, linestyle="", label="recommended"))  # fmt: skip
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), frameon=False,
               fontsize=FONT - 2)  # fmt: skip
    fig.suptitle("accuracy vs latency per device (red dashed: the device's latency budget)")
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def memory_timeline(
    ops: list[dict], arena_plan: int | None, tflm: int | None, ram_budget: int | None, title: str
) -> bytes | None:
    """Bytes alive at each operator step (its activation inputs and outputs) against the arena and budget."""
    if not ops:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(11, 3.8))
    steps = list(range(len(ops)))
    ins = [o["in_bytes"] / 1024 for o in ops]
    outs = [o["out_bytes"] / 1024 for o in ops]
    ax.bar(steps, ins, color="#4c78a8", label="inputs alive")
    ax.bar(steps, outs, bottom=ins, color="#f58518", label="output written")
    if arena_plan:
        ax.axhline(
            arena_plan / 1024,
            color="black",
            linestyle="--",
            label=f"arena plan {arena_plan / 1024:.1f} KiB",
        )
    if tflm:
        ax.axhline(
            tflm / 1024,
            color="purple",
            linestyle="-.",
            label=f"TFLM arena (measured) {tflm / 1024:.1f} KiB",
        )
    if ram_budget and (not arena_plan or ram_budget < 8 * max(arena_plan, tflm or 0)):
        ax.axhline(ram_budget / 1024, color="red", label=f"RAM budget {ram_budget / 1024:.0f} KiB")
    elif ram_budget:
        title += f" (RAM budget {ram_budget / 1024:,.0f} KiB: off this scale)"
    ax.set_xticks(steps)
    ax.set_xticklabels(
        [f"{i} {o['op']}" for i, o in enumerate(ops)], rotation=40, ha="right", fontsize=FONT - 2
    )
    top = max([i + o for i, o in zip(ins, outs)] + [(arena_plan or 0) / 1024, (tflm or 0) / 1024])
    ax.set_ylim(0, top * 1.35 if top > 0 else 1)
    ax.set_ylabel("KiB")
    ax.set_title(title)
    ax.legend(loc="upper right", ncol=3)
    return _png(fig, plt)


def bytes_per_file(artifacts: dict) -> bytes | None:
    if not artifacts:
        return None
    plt = _plt()
    names = list(artifacts)
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(names) + 1.2))
    vals = [artifacts[n]["bytes"] / 1024 for n in names]
    ax.barh([short(n) for n in names], vals, color="#54a24b")
    for y, v in enumerate(vals):
        ax.text(v, y, f" {v:.1f}", va="center", fontsize=FONT - 2)
    ax.set_xlabel("KiB on disk (1 KiB = 1024 bytes)")
    ax.set_xlim(0, max(vals) * 1.15 if vals and max(vals) > 0 else 1)
    ax.set_title("bytes per file")
    return _png(fig, plt)


def nice(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else "-"
