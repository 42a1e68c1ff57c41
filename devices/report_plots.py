"""The report's figures (matplotlib Agg, PNG bytes): accuracy vs latency, memory timeline, bytes per file."""

from __future__ import annotations

import io
import math

FONT = 11
MARKERS = "osD^v<>pPX*hH8d"


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


def _device_points(ax, dev: str, mine: list[dict], colour, marker: str, p, acc: dict) -> None:
    """One device's files as points, a ring around its recommended file, its latency budget line."""
    rec = p.recommended if p else None
    ax.scatter(
        [r["latency_ms"] for r in mine],
        [100 * acc[r["artifact"]] for r in mine],
        color=colour,
        marker=marker,
        s=40,
        label=f"{dev}: {short(rec)}" if rec else f"{dev}: nothing fits",
        edgecolors="black",
        linewidths=0.4,
        alpha=0.8,
    )
    if rec and p.latency_ms:  # the recommended file: a ring around its point
        ax.scatter(
            [p.latency_ms],
            [100 * acc.get(rec, 0)],
            s=190,
            facecolors="none",
            edgecolors=colour,
            linewidths=2,
        )
    b = mine[0]["budget"].get("latency_ms")
    if b:
        ax.axvline(b, color=colour, linestyle="--", linewidth=1.1, alpha=0.8)


def _reference_lines(ax, holdout: dict, ys: list[float]) -> None:
    """The teacher's and the hard-label baseline's accuracy as horizontal lines (added to ``ys``)."""
    refs = {k: (holdout.get(k) or {}).get("accuracy") for k in ("teacher", "baseline")}
    for k, v in refs.items():
        if v is not None:
            ax.axhline(100 * v, color="grey", linewidth=1, linestyle=":")
            ax.text(
                0.005,
                100 * v,
                f" {k} {100 * v:.2f}%",
                va="bottom",
                fontsize=FONT - 2,
                transform=ax.get_yaxis_transform(),
            )
            ys.append(100 * v)


def _accuracy_axes(ax, ys: list[float]) -> None:
    """Accuracy limits around the points, log latency, labels and the legend beside the plot."""
    lo, hi = min(ys), max(ys)
    pad = max(0.2, (hi - lo) * 0.15)
    ax.set_ylim(lo - pad, min(100.0, hi + pad) if hi < 100 else 100.05)
    ax.set_xscale("log")
    ax.set_xlabel(
        "latency per inference, ms (log scale; measured on host/ssh/adb, estimated elsewhere)"
    )
    ax.set_ylabel("holdout accuracy, %")
    ax.set_title("accuracy vs latency per device (ring: recommended file; dashed: latency budget)")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(
        loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, title="device: recommended"
    )


def accuracy_vs_latency(records: list[dict], acc: dict, picks: dict, holdout: dict) -> bytes | None:
    """Each runnable file on each device: latency (log x) vs holdout accuracy; budgets as vertical lines."""
    plt = _plt()
    devs = list(dict.fromkeys(r["device"] for r in records))
    pts = [
        r
        for r in records
        if r["latency_ms"] and acc.get(r["artifact"]) is not None and r["verdict"] != "not runnable"
    ]
    if not pts:
        return None
    cmap = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(11, 6.2))
    for i, dev in enumerate(devs):
        mine = [r for r in pts if r["device"] == dev]
        if not mine:
            continue
        colour, marker = cmap(i % 20), MARKERS[i % len(MARKERS)]
        _device_points(ax, dev, mine, colour, marker, picks.get(dev), acc)
    ys = [100 * acc[r["artifact"]] for r in pts]
    _reference_lines(ax, holdout, ys)
    _accuracy_axes(ax, ys)
    return _png(fig, plt)


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
