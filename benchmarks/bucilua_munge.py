"""Bucilua, Caruana, Niculescu-Mizil 2006 "Model Compression" on its three public problems.

Problems: Adult (>50K), letter.p1 ('O' vs rest), letter.p2 (A-M vs N-Z). Protocol of the paper:
4,000 training and 1,000 validation points drawn at random (per seed), the rest for test; RMSE
of the predicted positive-class probability against the 0/1 targets (lower is better).

Per problem and seed: a model library (a grid of ~27 models: SVMs over C x gamma, kNN with
k = 1..25, 500-tree random and extra-trees forests, boosted trees over learning rate x depth,
MLPs of three sizes x two seeds, logistic regression) fitted on the 4k points, and ensemble
selection on the 1k by RMSE (Caruana 2004 forward selection with replacement, through
``distill.building.build_teacher``); the best single library model (validation RMSE); the
hard-label net on the 4k real points, its hidden units and its epoch chosen by validation RMSE;
mimic nets (256 hidden units) trained with squared error on the ensemble's probabilities
(Bucilua §3) over MUNGE / RANDOM / NBE transfer sets of growing size (``distill.transfer``),
each stopped early on validation RMSE. Nets see nominal attributes one-hot; MUNGE measures
distances on [0, 1]-scaled continuous attributes, as the paper does.

Size and latency (first seed): the ensemble as scikit-learn runs it vs the largest MUNGE mimic as
ONNX fp32 and int8 files in onnxruntime; each ratio says what it includes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks import common
from benchmarks.bucilua_data import (
    HARD_HIDDEN,
    METHODS,
    MIMIC_HIDDEN,
    MUNGE,
    PATIENCE,
    PROBLEMS,
    OneHot,
    pooled_split,
)
from benchmarks.bucilua_library import library_grid
from benchmarks.bucilua_nets import fit_net, mimic_epochs, unit_methods
from benchmarks.bucilua_report import (
    MIN_GAIN,
    PAPER_AVG,
    PAPER_SHARE,
    RULE,
    add_averages,
    add_problem,
    add_size_latency,
    curves_png,
    evaluate_rule,
    rmse_of,
    share,
)
from benchmarks.bucilua_units import run_problem, run_unit, size_latency

__all__ = [  # the names this module had before it was split, still importable from here
    "HARD_HIDDEN", "METHODS", "MIMIC_HIDDEN", "MIN_GAIN", "MUNGE", "PAPER_AVG", "PAPER_SHARE",
    "PATIENCE", "PROBLEMS", "RULE", "OneHot", "curves_png", "evaluate_rule", "fit_net",
    "library_grid", "main", "mimic_epochs", "pooled_split", "rmse_of", "run_problem", "run_unit",
    "share", "size_latency", "unit_methods",
]  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The flags, then what --quick and the defaults that depend on other flags make of them."""
    ap = common.parser("bucilua_munge", __doc__)
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument(
        "--multipliers",
        type=int,
        nargs="+",
        default=[1, 6, 25, 100],
        help="transfer set = multiplier x 4,000 rows (default 4k, 24k, 100k and the paper's 400k)",
    )
    ap.add_argument("--seeds", type=common.seeds_arg, default=[0, 1, 2], help="default 0,1,2")
    ap.add_argument(
        "--curve-seeds",
        type=common.seeds_arg,
        default=None,
        help="seeds that also run RANDOM and NBE for the curves (default: the first seed); the "
        "others run MUNGE only, which is all the rule and the shares use",
    )
    ap.add_argument(
        "--budget-rows",
        type=float,
        default=1_500_000,
        help="row-passes per net at most (epochs = budget / rows, at least 3); early stopping may end sooner",
    )
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--latency-runs", type=int, default=200)
    ap.add_argument("--max-test", type=int, default=0, help="test rows at most (0 = all the rest)")
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes for the (problem, seed) units, 1 torch thread each (default 2, 1 with --quick)",
    )
    args = common.parse(ap, argv)
    args.hard_hidden = HARD_HIDDEN
    args.workers = args.workers or (1 if args.quick else 2)
    args.curve_seeds = args.curve_seeds or args.seeds[:1]
    if args.quick:
        args.problems, args.seeds, args.hard_hidden = ["adult"], args.seeds[:2], [8, 32]
        args.multipliers, args.budget_rows, args.latency_runs = [1, 3], 12_000, 20
        args.n_train, args.n_val, args.max_test = 800, 400, 4000
    return args


def run_settings(args, sizes: list[int]) -> dict:
    """The settings line of the report and its JSON."""
    return {
        "problems": args.problems,
        "seeds": args.seeds,
        "library": f"{len(library_grid(0, args.quick))} models: "
        + ", ".join(n for n, _ in library_grid(0, args.quick)),
        "selection": "Caruana 2004 forward selection with replacement, RMSE on validation",
        "methods": args.methods,
        "curve_seeds (RANDOM and NBE)": args.curve_seeds,
        "munge": MUNGE,
        "transfer_sizes": sizes,
        "budget_row_passes": args.budget_rows,
        "epochs_scale": args.epochs_scale,
        "hard_net_hidden_grid": args.hard_hidden,
        "mimic": f"mlp [{MIMIC_HIDDEN}], squared error on ensemble probs",
        "early_stopping": f"validation RMSE, patience {PATIENCE}, best epoch kept",
        "optimizer": "adamw lr 3e-3 cosine, batch 256",
        "features": "continuous z-scored, nominal one-hot (nets and library); MUNGE/RANDOM/NBE in raw space",
        "max_test": args.max_test or "all",
        "sha256_verified": True,
    }


def add_preamble(rep: common.Report, args, sizes: list[int]) -> None:
    """What the run compares and the rule, both before any figure."""
    rep.add(
        "## What the run compares\n\nRMSE of the positive-class probability on the test rows (lower is "
        "better); the share recovered is (net 4k - mimic) / (net 4k - ensemble) with the 400k MUNGE mimic, "
        f"not computed when the ensemble gains under {MIN_GAIN} RMSE. Every figure is mean ± sd over seeds "
        f"{', '.join(map(str, args.seeds))} (each seed draws its own 4k / 1k / test split).\n"
    )
    rep.add(
        "## The rule, fixed before the run\n\n"
        + RULE.format(top=sizes[-1], min_gain=MIN_GAIN)
        + "\n"
    )


def run_units(units: list[tuple[str, int]], args, mults: list[int]) -> list[tuple[dict, bool]]:
    """Every (problem, seed) unit, in ``args.workers`` spawned processes when more than one."""
    if args.workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
            return list(pool.map(run_unit, units, [args] * len(units), [mults] * len(units)))
    return [run_unit(u, args, mults) for u in units]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mults = sorted(set(args.multipliers))
    sizes = [args.n_train * m for m in mults]
    settings = run_settings(args, sizes)
    rep = common.Report(
        "bucilua_munge",
        "Bucilua et al. 2006: model compression with MUNGE / RANDOM / NBE",
        common.command_line("bucilua_munge"),
        settings,
    )
    add_preamble(rep, args, sizes)
    units = [(p, seed) for p in args.problems for seed in args.seeds]
    done = run_units(units, args, mults)
    results: dict[str, list[dict]] = {p: [] for p in args.problems}
    sl: dict[str, dict] = {}
    for (pname, _seed), (r, _) in zip(units, done):
        if "size_latency" in r:
            sl[pname] = r.pop("size_latency")
        results[pname].append(r)
    settings["unit_cache_hits"] = f"{sum(h for _, h in done)} of {len(done)}"

    shares: dict[str, list[float]] = {}
    rules: dict[str, dict] = {}
    for pname, runs in results.items():
        shares[pname], rules[pname] = add_problem(rep, pname, runs, args, sizes)
        add_size_latency(rep, pname, sl[pname], runs[0], args)
    if len(results) > 1:
        add_averages(rep, results, shares, args.seeds, sizes[-1])
    png = Path(args.out_dir) / "bucilua_munge.png"
    curves_png(results, sizes, args.methods, png)
    rep.add(
        f"Curves over transfer size: `{png.name}` (mean ± sd over the seeds each label names: RANDOM "
        f"and NBE ran on seed(s) {', '.join(map(str, args.curve_seeds))} only; dashed = ensemble).\n"
    )
    rep.data = {
        "rules": rules,
        "results": results,
        "size_latency": sl,
        "shares": shares,
        "png": png.name,
    }
    rep.write(args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
