"""Pareto plots of a student search (tinyship.search): accuracy vs latency and vs RAM per device.

The search driver leaves ``search.json`` in each full run; the profile stage copies it into
``profile.json`` (``search``) and the report draws, per budgeted device, every candidate, its
Pareto front, the budget line and the candidate chosen for that device.
"""

from __future__ import annotations

import io


def pareto_plots(search: dict) -> dict[str, bytes]:
    """{'pareto_latency.png': ..., 'pareto_ram.png': ...} for the devices with a budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    devices = list(search.get("budgets") or {})
    rows = search.get("candidates") or []
    if not devices or not rows:
        return {}
    out = {}
    for key, metric, scale, unit, budget_key, front_key in (
        (
            "pareto_latency.png",
            "latency_ms",
            1.0,
            "ms per window (front-end + network)",
            "latency_ms",
            "accuracy_vs_latency",
        ),
        (
            "pareto_ram.png",
            "ram_bytes",
            1 / 1024,
            "KiB RAM (TFLM arena + front-end buffers on MCUs)",
            "ram_kb",
            "accuracy_vs_ram",
        ),
    ):
        fig, axes = plt.subplots(1, len(devices), figsize=(4 * len(devices), 3.6), squeeze=False)
        for ax, dev in zip(axes[0], devices):
            pts = [
                (r["devices"][dev][metric] * scale, r["val_accuracy"], r["name"])
                for r in rows
                if (r["devices"].get(dev) or {}).get(metric) is not None
            ]
            if not pts:
                ax.set_title(f"{dev}: no figure")
                continue
            ax.scatter(
                [p[0] for p in pts], [p[1] for p in pts], s=16, color="grey", label="candidates"
            )
            front = [p for name in search["fronts"][dev][front_key] for p in pts if p[2] == name]
            front.sort()
            ax.plot([p[0] for p in front], [p[1] for p in front], "-o", ms=4, label="Pareto front")
            chosen = (search.get("chosen") or {}).get(dev, {}).get("name")
            for p in pts:
                if p[2] == chosen:
                    ax.scatter(
                        [p[0]],
                        [p[1]],
                        s=80,
                        facecolors="none",
                        edgecolors="green",
                        label=f"chosen {chosen}",
                    )
            limit = (search["budgets"][dev] or {}).get(budget_key)
            if limit:
                ax.axvline(limit, color="red", ls="--", label="budget")
            ax.set_xlabel(unit, fontsize=7)
            ax.set_ylabel("validation accuracy", fontsize=7)
            ax.set_title(dev, fontsize=8)
            ax.legend(fontsize=6)
        fig.suptitle(
            f"student search ({len(rows)} candidates, {search.get('epochs')} epochs each)"
            + (f"\nvalidation: {search['validation']}" if search.get("validation") else ""),
            fontsize=9,
        )
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        out[key] = buf.getvalue()
    return out
