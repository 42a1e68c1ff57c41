"""Bucilua, Caruana, Niculescu-Mizil 2006 "Model Compression" on its three public problems, as
the paper ran it, judged by rules B40a and B40b fixed before the run (bucilua_rule.py).

Problems: Adult (>50K), letter.p1 ('O' vs rest), letter.p2 (A-M vs N-Z); 4,000 training and
1,000 validation points drawn at random per seed, the rest for test; RMSE of the predicted
positive-class probability against the 0/1 targets (lower is better). Seeds: 3 for adult and
letter.p2, 5 for letter.p1, whose ensemble gain is small.

Per problem and seed: a library of 60+ scikit-learn models of the paper's kinds (bagged trees,
random forests, boosted stumps and gradient boosting from depth 1 to unlimited with 500
iterations, RBF / linear / polynomial SVMs, kNN, logistic regression, naive Bayes, neural nets,
decision trees) fitted on the 4k points, and Caruana 2004 forward selection with replacement on
the 1k by RMSE; the best single library model (validation RMSE); the hard-label net on the 4k
real points (hidden units by validation RMSE); mimic nets (256 hidden units) trained with squared
error on the ensemble's probabilities (Bucilua §3) over MUNGE transfer sets of 25k to 400k rows
(1M with --million), RANDOM and NBE on the curve seeds. Every net trains to convergence: early
stopping on validation RMSE with 60+ epochs available at 400k rows (bucilua_rule.epochs_for).

The JSON is written first (benchmarks/results/bucilua_munge.json); the markdown is rendered
from it (benchmarks/bucilua_report.py), the verdicts first.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks import common, result_record
from benchmarks.bucilua_data import HARD_HIDDEN, METHODS, PROBLEMS, OneHot, pooled_split
from benchmarks.bucilua_library import library_grid
from benchmarks.bucilua_report import render, rules_of
from benchmarks.bucilua_rule import MILLION, MIN_GAIN, PAPER_SHARE, SEEDS, SIZES, TOP
from benchmarks.bucilua_tables import curves_png
from benchmarks.bucilua_units import run_unit

__all__ = ["OneHot", "main", "pooled_split"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The flags, then what --quick and the defaults that depend on other flags make of them."""
    ap = common.parser("bucilua_munge", __doc__)
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument(
        "--million", action="store_true", help="add a 1,000,000-row transfer set to the curve"
    )
    ap.add_argument(
        "--seeds", type=common.seeds_arg, default=None,
        help="the same seeds for every problem (default: 0,1,2; 0-4 for letter.p1)",
    )  # fmt: skip
    ap.add_argument(
        "--curve-seeds", type=common.seeds_arg, default=[0],
        help="seeds that also run RANDOM and NBE (default 0); the others run MUNGE only",
    )  # fmt: skip
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--latency-runs", type=int, default=200)
    ap.add_argument("--max-test", type=int, default=0, help="test rows at most (0 = all the rest)")
    ap.add_argument(
        "--workers", type=int, default=None,
        help="processes for the (problem, seed) units, 1 torch thread each (default 2)",
    )  # fmt: skip
    args = common.parse(ap, argv)
    args.hard_hidden = HARD_HIDDEN
    args.workers = args.workers or 2
    args.seeds_of = {p: args.seeds or SEEDS[p] for p in args.problems}
    args.sizes = SIZES + ([MILLION] if args.million else [])
    if args.quick:  # every path at toy size; letter.p1 keeps one more seed than the others
        args.seeds_of = {p: [0, 1, 2] if p == "letter.p1" else [0, 1] for p in args.problems}
        args.hard_hidden, args.sizes, args.latency_runs = [8, 32], [1600, 3200], 20
        args.n_train, args.n_val, args.max_test = 800, 400, 3000
        args.epochs_scale = min(args.epochs_scale, 0.01)  # 20 epochs, patience 2 at 1,600 rows
    return args


def run_settings(args) -> dict:
    """The settings line of the report and its JSON."""
    lib = library_grid(0, args.quick)
    return {
        "problems": args.problems,
        "seeds": args.seeds_of,
        "curve_seeds": args.curve_seeds,
        "methods": args.methods,
        "sizes": args.sizes,
        "judged_size": TOP if TOP in args.sizes else max(args.sizes),
        "library": f"{len(lib)} models: " + ", ".join(n for n, _ in lib),
        "hard_net_hidden_grid": args.hard_hidden,
        "epochs_scale": args.epochs_scale,
        "min_gain_per_seed": MIN_GAIN,
        "paper_share": PAPER_SHARE,
        "max_test": args.max_test or "all",
        "workers": args.workers,
        "threads_per_worker": args.threads,
        "sha256_verified": True,
    }


def ordered_units(args) -> list[tuple[str, int]]:
    """Every (problem, seed), the heaviest first (curve seeds, then adult) so two workers end
    together."""
    units = [(p, s) for p in args.problems for s in args.seeds_of[p]]
    return sorted(units, key=lambda u: (u[1] not in args.curve_seeds, u[0] != "adult"))


def run_units(units: list[tuple[str, int]], args) -> list[tuple[dict, list[bool]]]:
    """Every (problem, seed) unit, in ``args.workers`` spawned processes when more than one."""
    if args.workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
            n = len(units)
            return list(pool.map(run_unit, units, [args] * n, [args.sizes] * n))
    return [run_unit(u, args, args.sizes) for u in units]


def results_of(units: list[tuple[str, int]], done: list, args, png: str) -> dict:
    """The per-seed records by problem (seed order), size and latency, and both rules."""
    problems: dict[str, dict] = {}
    size_latency: dict[str, dict] = {}
    by_unit = dict(zip(units, (r for r, _ in done)))
    for p in args.problems:
        runs = [by_unit[(p, s)] for s in args.seeds_of[p]]
        for r in runs:
            if "size_latency" in r:
                size_latency[p] = r.pop("size_latency")
        problems[p] = {"seeds": args.seeds_of[p], "n": runs[0]["n"], "runs": runs}
    res = {"problems": problems, "size_latency": size_latency, "png": png}
    res["rules"] = rules_of(res, TOP if TOP in args.sizes else max(args.sizes))
    return res


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    settings = run_settings(args)
    units = ordered_units(args)
    done = run_units(units, args)
    settings["cache_hits (teacher, nets)"] = [sum(h[i] for _, h in done) for i in (0, 1)]
    settings["units"] = len(done)
    rec = result_record.new_record(
        "bucilua_munge", common.command_line("bucilua_munge"), settings, started
    )
    png = Path(args.out_dir) / "bucilua_munge.png"
    rec["results"] = results_of(units, done, args, png.name)
    curves_png(rec["results"]["problems"], args.sizes, args.methods, png)
    result_record.write(rec, args.out_dir, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
