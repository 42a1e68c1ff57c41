"""The Bucilua run's tables and curves, from the per-seed records of its JSON: one problem's
table, its size curve said in words, size and latency, the averages over the problems, the PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks import common, result_record
from benchmarks.bucilua_rule import share


def rmse_of(res: dict, method: str, size: int | None = None) -> float:
    for r in res["rows"]:
        if r["method"] == method and (size is None or r["size"] == size):
            return r["rmse"]
    return float("nan")


def row_of(res: dict, method: str, size: int) -> dict | None:
    return next((r for r in res["rows"] if r["method"] == method and r["size"] == size), None)


def mean_sd(v: list[float]) -> str:
    """A table cell: mean ± sd over the seeds that have a figure, "n/a" when none has."""
    v = [x for x in v if x == x]
    if not v:
        return "n/a"
    return f"{np.mean(v):.4f} ± {np.std(v, ddof=1):.4f}" if len(v) > 1 else f"{v[0]:.4f}"


def _epochs(rows: list[dict]) -> str:
    """How the nets of a table row stopped: best epochs, epochs run, epochs available."""
    best = [r["best_epoch"] for r in rows]
    at_cap = sum(r["best_epoch"] == r["max_epochs"] for r in rows)
    return (
        f"best epoch{'s' * (len(best) > 1)} {', '.join(map(str, best))} (of "
        f"{rows[0]['max_epochs']} available); "
        f"stopped early {sum(r['stopped_early'] for r in rows)}/{len(rows)}"
        + (f"; **best = last available in {at_cap}**" if at_cap else "")
    )


def problem_table(runs: list[dict], sizes: list[int], methods: list[str]) -> str:
    """Ensemble, best single and 4k net, then each method's mimics by transfer size."""
    first = runs[0]
    table = []
    for what in ("ensemble", "best single", "net 4k"):
        r0 = row_of(first, what, first["n"][0])
        table.append([what, first["n"][0], mean_sd([rmse_of(r, what) for r in runs]), r0["note"]])
    for method in methods:
        for s in sizes:
            rows = [x for x in (row_of(r, method, s) for r in runs) if x is not None]
            if not rows:
                continue
            label = f"mimic, {method.upper()} ({len(rows)} seed{'s' * (len(rows) != 1)})"
            table.append([label, s, mean_sd([x["rmse"] for x in rows]), _epochs(rows)])
    return common.table(
        ["model", "train/transfer rows", "test RMSE (mean ± sd)", f"seed {first['seed']} / nets"],
        table,
    )


def curve_line(runs: list[dict], sizes: list[int]) -> str:
    """The MUNGE size curve in words: does the mimic get better from the smallest to the largest
    set, at every step, and did its nets converge within the epochs they had."""
    means = [float(np.mean([rmse_of(r, "munge", s) for r in runs])) for s in sizes]
    pts = ", ".join(f"{s:,} {m:.4f}" for s, m in zip(sizes, means))
    rises = [f"{a:,} -> {b:,}" for a, b, x, y in zip(sizes, sizes[1:], means, means[1:]) if y >= x]
    nets = [row_of(r, "munge", s) for r in runs for s in sizes]
    capped = [n for n in nets if n and n["best_epoch"] == n["max_epochs"]]
    better = means[-1] < means[0]
    return (
        f"MUNGE size curve (seed-mean test RMSE): {pts}. From {sizes[0]:,} to {sizes[-1]:,} rows "
        f"the mimic **{'improves' if better else 'does not improve'}** ({means[0]:.4f} -> "
        f"{means[-1]:.4f}); "
        + ("it improves at every step" if not rises else f"not at every step ({', '.join(rises)})")
        + f"; {len(capped)} of {len(nets)} MUNGE mimics had their best epoch at the last one "
        "available"
        + (" (those had not converged: more epochs could still lower their RMSE)" if capped else "")
        + ".\n"
    )


def size_latency_section(rec: dict, pname: str) -> str:
    """The ensemble (scikit-learn) and the shipped mimic (ONNX fp32 and int8), like with like."""
    s, seed0 = rec["results"]["size_latency"][pname], rec["results"]["problems"][pname]["seeds"][0]
    ens_rmse = rmse_of(rec["results"]["problems"][pname]["runs"][0], "ensemble")
    rows = [
        [f"ensemble ({len(s['members'])} members)", s["ensemble_bytes"], s["ensemble_ms"]["p50_ms"],
         s["ensemble_ms"]["p90_ms"], ens_rmse,
         "len(pickle.dumps) of each member with weight > 0; one predict_proba per member, 1 row"],
        ["mimic fp32 (ONNX)", s["student_fp32_bytes"], s["fp32_ms"]["p50_ms"], s["fp32_ms"]["p90_ms"],
         s["fp32_rmse"], "ONNX file; onnxruntime, 1 thread, 1 row"],
        ["mimic int8 (ONNX, quantize_dynamic)", s["student_int8_bytes"], s["int8_ms"]["p50_ms"],
         s["int8_ms"]["p90_ms"], s["int8_rmse"], "ONNX file (int8 weights); onnxruntime, 1 thread, 1 row"],
    ]  # fmt: skip
    return (
        f"### {pname}: size and single-row latency (seed {seed0})\n\n"
        + common.table(
            ["model", "bytes", "latency p50 (ms)", "p90 (ms)", "test RMSE", "what it includes"],
            rows,
        )
        + result_record.stamp(rec, [seed0])
        + f"\nensemble / mimic fp32 = {s['ensemble_bytes'] / s['student_fp32_bytes']:.1f}x the bytes "
        f"(float64 members vs float32 weights is part of it) and "
        f"{s['ensemble_ms']['p50_ms'] / s['fp32_ms']['p50_ms']:.1f}x the latency (scikit-learn vs "
        f"onnxruntime, {len(s['members'])} calls); int8 / fp32 mimic = "
        f"{s['student_int8_bytes'] / s['student_fp32_bytes']:.2f} the bytes, "
        f"{s['int8_ms']['p50_ms'] / s['fp32_ms']['p50_ms']:.2f} the latency.\n"
    )


def averages_section(rec: dict, top: int, paper_avg: dict) -> str:
    """Seed-mean RMSEs averaged over the problems beside the paper's, and each problem's share
    from seed means (the paper's way) beside the paper's."""
    probs = rec["results"]["problems"]
    keys = {"ensemble": ("ensemble",), "best_single": ("best single",), "net_4k": ("net 4k",),
            "mimic": ("munge", top)}  # fmt: skip
    seed_mean = {
        p: {k: float(np.mean([rmse_of(r, *key) for r in v["runs"]])) for k, key in keys.items()}
        for p, v in probs.items()
    }
    avg = {k: float(np.mean([m[k] for m in seed_mean.values()])) for k in keys}
    shares = [
        [p, share(m["net_4k"], m["ensemble"], m["mimic"]), rec["settings"]["paper_share"].get(p)]
        for p, m in seed_mean.items()
    ]
    shares.append(["3 problems", share(avg["net_4k"], avg["ensemble"], avg["mimic"]),
                   rec["settings"]["paper_share"]["3 problems"]])  # fmt: skip
    return (
        f"## Average test RMSE over our {len(probs)} problems (seed means first)\n\n"
        + common.table(
            ["", "ours", "paper (its 8 problems)"], [[k, v, paper_avg[k]] for k, v in avg.items()]
        )
        + "\n"
        + common.table(
            ["share of the ensemble's gain recovered (from seed means)", "ours", "paper"],
            [[p, "n/a" if v is None else v, pv] for p, v, pv in shares],
        )
        + "\nThe paper's averages cover eight problems, five of them not public; its shares come "
        "from its own RMSEs on these three. Adult was the paper's failure case for MUNGE.\n"
    )


def curves_png(problems: dict, sizes: list[int], methods: list[str], path: Path) -> None:
    """Test RMSE over transfer-set size per method (mean ± sd over seeds), one panel per problem."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(problems), figsize=(5.5 * len(problems), 4.5), squeeze=False)
    for ax, (pname, v) in zip(axes[0], problems.items()):
        runs = v["runs"]
        for method in methods:
            have = [r for r in runs if any(x["method"] == method for x in r["rows"])]
            xs = [s for s in sizes if row_of(have[0], method, s)] if have else []
            if not xs:
                continue
            ys, n = np.array([[rmse_of(r, method, s) for s in xs] for r in have]), len(have)
            sd = ys.std(0, ddof=1) if n > 1 else None
            label = f"{method.upper()} ({n} seed{'s' * (n != 1)})"
            ax.errorbar(xs, ys.mean(0), yerr=sd, marker="o", capsize=3, label=label)
        for what, style in (("ensemble", "--"), ("net 4k", ":"), ("best single", "-.")):
            ax.axhline(np.mean([rmse_of(r, what) for r in runs]), ls=style, c="k", lw=1, label=what)
        ax.set_xscale("log")
        ax.set_title(pname)
        ax.set_xlabel("transfer set size (rows)")
        ax.set_ylabel("test RMSE")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
