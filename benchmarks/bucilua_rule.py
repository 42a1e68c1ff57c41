"""What the Bucilua 2006 run fixed before the issue-40 run: seeds, transfer sizes, how the nets
train, the paper's figures, and the two rules that decide the claims (RESULTS.notes.md, "Issue
40: fixed before the run"). The verdicts are computed here from per-seed test RMSEs."""

from __future__ import annotations

import math

import numpy as np

# ---- the paper ----------------------------------------------------------------------------------
PAPER_AVG = {"mimic": 0.264, "ensemble": 0.263, "net_4k": 0.282, "best_single": 0.274}
# Share of the ensemble's gain over the 4k net that the 400k MUNGE mimic recovers, from the
# paper's per-problem RMSEs; the 3-problem figure is the share of the 3-problem average gain.
PAPER_SHARE = {"adult": 0.29, "letter.p1": 1.01, "letter.p2": 0.98, "3 problems": 0.885}

# ---- fixed before the issue-40 run (2026-12-06) ---------------------------------------------------
SEEDS = {"adult": [0, 1, 2], "letter.p1": [0, 1, 2, 3, 4], "letter.p2": [0, 1, 2]}
SIZES = [25_000, 50_000, 100_000, 200_000, 400_000]  # transfer rows; --million adds 1,000,000
MILLION = 1_000_000
TOP = 400_000  # the paper's largest transfer set: the mimic the rules judge
# Every net (the 4k hard-label net and each mimic) trains with AdamW at a constant rate and is
# stopped by early stopping on validation RMSE: up to ROW_PASSES / rows epochs (at least
# MIN_EPOCHS, at most MAX_EPOCHS), stopping after 10% of that many epochs (at least 10) without a
# better validation RMSE, the best epoch kept. 400k rows: 60 epochs available, patience 10;
# 25k rows: 480 epochs, patience 48. (Sized by benchmarks/time_plan.py to fit 150 minutes.)
ROW_PASSES = 12_000_000
MIN_EPOCHS, MAX_EPOCHS = 60, 2000
NET_OPT = {
    "optimizer": "adamw",
    "lr": 1e-3,
    "schedule": "none",
    "batch_size": 256,
    "weight_decay": 1e-4,
}
MIN_GAIN = 0.005  # a per-seed share is shown as n/a below this ensemble gain (never in a verdict)
BOOTSTRAP = {"resamples": 2000, "seed": 0, "interval": 0.90}

RULE_PROBLEM = (
    "**Rule B40a, per problem (fixed before the run).** The paper's claim that a mimic trained on "
    "a large MUNGE transfer set beats a net of the same kind trained on the 4k real points holds "
    "on a problem when the {top:,}-row MUNGE mimic has a lower test RMSE than the hard-label 4k "
    "net **in every seed** and the mean paired gap (net - mimic) exceeds 2 standard deviations of "
    "the paired gaps (sample sd). PASS or FAIL; the ensemble's gain is reported beside it."
)
RULE_SHARE = (
    "**Rule B40b, the three problems (fixed before the run).** The share of the ensemble's gain "
    "that the {top:,}-row MUNGE mimic recovers, computed as the paper does from seed-mean RMSEs "
    "(each problem's test RMSEs averaged over its seeds, then over adult, letter.p1 and letter.p2; "
    "share = (net 4k - mimic) / (net 4k - ensemble)), reaches the paper's **{paper:.3f}**: PASS "
    "if it is >= {paper:.3f}, FAIL otherwise. Per-seed shares and a {pct:.0%} bootstrap interval "
    "over seeds are reported beside it, never instead."
)


def method_sizes(method: str, sizes: list[int]) -> list[int]:
    """The transfer sizes a method's curve has: every size for MUNGE (the rules' method); every
    other size up to 400k, and 400k, for RANDOM and NBE (their curves, on the curve seeds only)."""
    if method == "munge":
        return list(sizes)
    upto = [s for s in sizes if s <= TOP] or sizes[:1]
    return sorted(set(upto[::2] + upto[-1:]))


def epochs_for(rows: int) -> tuple[int, int]:
    """(epochs available, patience) for a net trained on ``rows`` rows."""
    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(ROW_PASSES / rows)))
    return epochs, max(10, math.ceil(epochs / 10))


def share(net: float, ens: float, mimic: float) -> float | None:
    """(net 4k - mimic) / (net 4k - ensemble) in RMSE; None when the ensemble gains < MIN_GAIN."""
    gain = net - ens
    return (net - mimic) / gain if gain >= MIN_GAIN else None


def evaluate_problem(
    seeds: list[int], net: list[float], mimic: list[float], ens: list[float]
) -> dict:
    """Rule B40a on one problem from per-seed test RMSEs of the 4k net, the top MUNGE mimic and
    the ensemble; each seed's comparison and the problem's verdict."""
    if not len(seeds) == len(net) == len(mimic) == len(ens) or len(seeds) < 2:
        raise ValueError(
            f"rule B40a needs >= 2 paired seeds; got {len(net)} net, {len(mimic)} mimic, "
            f"{len(ens)} ensemble RMSEs for seeds {seeds}"
        )
    gaps = [n - m for n, m in zip(net, mimic)]
    mean, sd = float(np.mean(gaps)), float(np.std(gaps, ddof=1))
    every = all(g > 0 for g in gaps)
    return {
        "rule": "B40a",
        "per_seed": [
            {"seed": s, "net_4k": n, "mimic": m, "gap": g, "verdict": "PASS" if g > 0 else "FAIL"}
            for s, n, m, g in zip(seeds, net, mimic, gaps)
        ],
        "gap_mean": mean,
        "gap_sd": sd,
        "every_seed_better": every,
        "ensemble_gain": float(np.mean(net) - np.mean(ens)),
        "verdict": "PASS" if every and mean > 2 * sd else "FAIL",
    }


def share_from_means(per_problem: dict[str, dict[str, list]]) -> float | None:
    """The paper's share: RMSEs averaged over each problem's seeds, then over the problems."""
    avg = {
        k: float(np.mean([np.mean(v[k]) for v in per_problem.values()]))
        for k in ("net", "ens", "mimic")
    }
    gain = avg["net"] - avg["ens"]
    return (avg["net"] - avg["mimic"]) / gain if gain > 0 else None


def bootstrap_share(per_problem: dict[str, dict[str, list]]) -> dict:
    """Percentile interval of share_from_means over resampled seeds (each problem's seeds drawn
    with replacement, its three RMSEs kept together); resamples with no gain are counted apart."""
    rng = np.random.default_rng(BOOTSTRAP["seed"])
    vals, undefined = [], 0
    for _ in range(BOOTSTRAP["resamples"]):
        draw = {}
        for p, v in per_problem.items():
            idx = rng.integers(0, len(v["net"]), len(v["net"]))
            draw[p] = {k: [v[k][i] for i in idx] for k in ("net", "ens", "mimic")}
        s = share_from_means(draw)
        if s is None:
            undefined += 1
        else:
            vals.append(s)
    tail = (1 - BOOTSTRAP["interval"]) / 2 * 100
    lo, hi = (float(v) for v in np.percentile(vals, [tail, 100 - tail])) if vals else (None, None)
    return {"low": lo, "high": hi, "resamples": len(vals), "no_gain": undefined}


def evaluate_share(per_problem: dict[str, dict[str, list]]) -> dict:
    """Rule B40b from each problem's per-seed RMSEs ({problem: {seeds, net, ens, mimic}}), with
    the share of each seed the three problems share shown beside it."""
    if set(per_problem) != set(SEEDS):
        raise ValueError(
            f"rule B40b needs the three problems {sorted(SEEDS)}; got {sorted(per_problem)}"
        )
    value = share_from_means(per_problem)
    shared = sorted(set.intersection(*(set(v["seeds"]) for v in per_problem.values())))
    per_seed = []
    for s in shared:
        one = {}
        for p, v in per_problem.items():
            i = v["seeds"].index(s)
            one[p] = {k: [v[k][i]] for k in ("net", "ens", "mimic")}
        per_seed.append({"seed": s, "share": share_from_means(one)})
    return {
        "rule": "B40b",
        "share": value,
        "paper": PAPER_SHARE["3 problems"],
        "per_seed": per_seed,
        "bootstrap": bootstrap_share(per_problem),
        "verdict": "PASS" if value is not None and value >= PAPER_SHARE["3 problems"] else "FAIL",
    }
