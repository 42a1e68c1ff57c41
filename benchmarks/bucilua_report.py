"""The markdown of the Bucilua run, rendered from its JSON result file alone: rules B40b and
B40a as fixed and their verdicts (per seed where the rule is per seed) first, then provenance,
then per problem the table, the size curve, the share, size and latency, and the averages.

``python -m benchmarks.bucilua_report [bucilua_munge.json]`` renders it again from a result file.
Verdicts are recomputed from the per-seed RMSEs in the file and must equal the stored ones.
"""

from __future__ import annotations

import numpy as np

from benchmarks import common, result_record
from benchmarks.bucilua_rule import (
    PAPER_AVG,
    PAPER_SHARE,
    RULE_PROBLEM,
    RULE_SHARE,
    evaluate_problem,
    evaluate_share,
    share,
)
from benchmarks.bucilua_tables import (
    averages_section,
    curve_line,
    mean_sd,
    problem_table,
    rmse_of,
    size_latency_section,
)


def per_problem_rmses(results: dict, top: int) -> dict[str, dict[str, list]]:
    """{problem: {seeds, net, ens, mimic}}: the per-seed test RMSEs every rule reads."""
    return {
        p: {
            "seeds": [r["seed"] for r in v["runs"]],
            "net": [rmse_of(r, "net 4k") for r in v["runs"]],
            "ens": [rmse_of(r, "ensemble") for r in v["runs"]],
            "mimic": [rmse_of(r, "munge", top) for r in v["runs"]],
        }
        for p, v in results["problems"].items()
    }


def rules_of(results: dict, top: int) -> dict:
    """Both rules from the per-seed RMSEs (B40b only when the run has the three problems)."""
    rm = per_problem_rmses(results, top)
    out = {
        "B40a": {
            p: evaluate_problem(v["seeds"], v["net"], v["mimic"], v["ens"])
            for p, v in rm.items()
            if len(v["seeds"]) >= 2
        }
    }
    if set(rm) == set(PAPER_SHARE) - {"3 problems"}:
        out["B40b"] = evaluate_share(rm)
    return out


def checked_rules(rec: dict) -> dict:
    """The rules recomputed from the file's figures; a stored verdict that disagrees is an error."""
    top = rec["settings"]["judged_size"]
    rules = rules_of(rec["results"], top)
    if rules != rec["results"]["rules"]:
        raise ValueError(
            "the stored verdicts do not follow from the per-seed RMSEs in the file; rerun the "
            "benchmark (or render the file it was written with)"
        )
    return rules


def _f(v: float | None, nd: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"


def share_verdict(b: dict | None, top: int) -> str:
    """Rule B40b as fixed, its verdict, the per-seed shares and the interval beside it."""
    text = RULE_SHARE.format(top=top, paper=PAPER_SHARE["3 problems"], pct=0.9) + "\n\n"
    if b is None:
        return (
            text
            + "**Verdict (rule B40b): not evaluated** (this run does not have the three problems).\n"
        )
    boot = b["bootstrap"]
    return text + (
        f"**Verdict (rule B40b): {b['verdict']}**: the 3-problem share from seed-mean RMSEs is "
        f"**{_f(b['share'])}** against the paper's {b['paper']:.3f}.\n\n"
        "Beside it, not part of the verdict: per seed (the seeds the three problems share) "
        + ", ".join(f"seed {r['seed']} {_f(r['share'], 2)}" for r in b["per_seed"])
        + f"; 90% bootstrap interval over seeds {_f(boot['low'], 2)} to {_f(boot['high'], 2)} "
        f"({boot['resamples']} resamples with a gain"
        + (f", {boot['no_gain']} without" if boot["no_gain"] else "")
        + ").\n"
    )


def problem_verdicts(a: dict, top: int) -> str:
    """Rule B40a as fixed, each problem's verdict and each seed's comparison."""
    rows, heads = [], []
    for p, r in a.items():
        heads.append(f"{p} **{r['verdict']}**")
        for s in r["per_seed"]:
            rows.append(
                [p, s["seed"], f"{s['net_4k']:.4f}", f"{s['mimic']:.4f}", f"{s['gap']:+.4f}",
                 f"**{s['verdict']}**"]
            )  # fmt: skip
        rows.append(
            [p, "all", "", "", f"mean {r['gap_mean']:+.4f}, 2 sd {2 * r['gap_sd']:.4f}",
             f"**{r['verdict']}**"]
        )  # fmt: skip
    gains = ", ".join(f"{p} {r['ensemble_gain']:.4f}" for p, r in a.items())
    return (
        RULE_PROBLEM.format(top=top)
        + f"\n\n**Verdicts (rule B40a):** {'; '.join(heads) or 'not evaluated (one seed)'}.\n\n"
        + common.table(
            [
                "problem",
                "seed",
                "net 4k RMSE",
                f"{top:,}-row MUNGE mimic RMSE",
                "net - mimic",
                "verdict",
            ],
            rows,
        )  # fmt: skip
        + f"\nBeside it: the ensemble's gain over the 4k net (seed-mean RMSE) {gains}.\n"
    )


def problem_section(rec: dict, pname: str, top: int) -> str:
    """One problem: its table, its size curve, its share (seed means and per seed)."""
    v, st = rec["results"]["problems"][pname], rec["settings"]
    runs = v["runs"]
    means = {
        k: float(np.mean([rmse_of(r, *key) for r in runs]))
        for k, key in {"net": ("net 4k",), "ens": ("ensemble",), "mimic": ("munge", top)}.items()
    }
    per = [
        share(rmse_of(r, "net 4k"), rmse_of(r, "ensemble"), rmse_of(r, "munge", top)) for r in runs
    ]
    seeds = v["seeds"]
    return (
        f"## {pname}: {v['n'][0]} train / {v['n'][1]} validation / {v['n'][2]} test rows per seed "
        f"(seeds {', '.join(map(str, seeds))})\n\n"
        + problem_table(runs, st["sizes"], st["methods"])
        + result_record.stamp(rec, seeds)
        + "\n"
        + curve_line(runs, st["sizes"])
        + f"\nShare of the ensemble's gain recovered by the {top:,}-row MUNGE mimic, from seed-mean "
        f"RMSEs: **{_f(share(means['net'], means['ens'], means['mimic']))}** (the paper: "
        f"{PAPER_SHARE[pname]}); per seed: "
        + ", ".join(f"seed {s} {_f(x, 2)}" for s, x in zip(seeds, per))
        + (
            f" (n/a: the ensemble gains < {st['min_gain_per_seed']} in that seed)"
            if None in per
            else ""
        )
        + ".\n"
    )


def render(rec: dict) -> str:
    """The whole markdown from a result file: verdicts first, then provenance, then figures."""
    st, res = rec["settings"], rec["results"]
    top = st["judged_size"]
    rules = checked_rules(rec)
    parts = [
        "# Bucilua et al. 2006: model compression with MUNGE / RANDOM / NBE\n",
        share_verdict(rules.get("B40b"), top),
        problem_verdicts(rules["B40a"], top),
        result_record.provenance(rec),
        "- settings: " + ", ".join(f"{k}={v}" for k, v in st.items()) + "\n",
        "RMSE of the positive-class probability on the test rows (lower is better); every figure "
        "is mean ± sd over the seeds a row names, each seed its own 4k / 1k / test draw.\n",
    ]
    for pname in res["problems"]:
        parts.append(problem_section(rec, pname, top))
        if pname in res["size_latency"]:
            parts.append(size_latency_section(rec, pname))
    if len(res["problems"]) > 1:
        parts.append(averages_section(rec, top, PAPER_AVG))
    parts.append(
        f"Curves over transfer size: `{res['png']}` (mean ± sd over the seeds each label names; "
        f"RANDOM and NBE ran on seed(s) {', '.join(map(str, st['curve_seeds']))} only).\n"
    )
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    return result_record.rerender("bucilua_munge", "bucilua_report", render, argv)


__all__ = ["mean_sd", "render", "rules_of"]

if __name__ == "__main__":
    from ground.cli import run_cli

    raise SystemExit(run_cli(main))
