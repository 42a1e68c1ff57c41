"""Hinton, Vinyals, Dean 2015 on MNIST: §3 (distillation at T=20, the omitted-3 experiment) and §6
(soft targets as a regularizer when data are scarce), judged by rule H40, fixed before the run.

§3: teacher 784-1200-1200-10 trained as the dropout paper trained its MNIST nets (SGD with
momentum and a high learning rate, dropout 0.2 on the inputs and 0.5 on the hidden layers,
max-norm on the hidden units, inputs jittered by up to ±2 pixels) on all 60,000 training rows
for the epochs the time budget allows, its last epoch kept. Its logits are cached under
build/bench-cache keyed by the data and its configuration, and its training resumes from a
checkpoint if the run is killed. Students 784-800-800-10 without dropout, on hard labels and
distilled at T from the teacher's soft targets, paired by seed (same initialisation and batch
order), the last epoch kept. Test errors are counts of the 10,000 MNIST test images.

Order of work on 2 cores: the teacher on one, the hard-label students (which need no teacher) on
the other; then the distilled, omitted-3 and soft-target students on both. The JSON is written
first; the markdown is rendered from it (benchmarks/hinton_report.py), the verdict first.
"""

from __future__ import annotations

import argparse
import time

from benchmarks import common, result_record
from benchmarks.hinton_report import render
from benchmarks.hinton_rule import (
    ALPHA,
    BIAS_ROWS,
    MONITOR_ROWS,
    SCARCE,
    SEEDS,
    STUDENT,
    STUDENT_OPT,
    TEACHER,
    TEACHER_OPT,
    TEMPERATURE,
    TIME_BUDGET_S,
    evaluate_rule,
    gap_recovery,
)
from benchmarks.hinton_units import run_teacher, run_unit, shift_images

__all__ = ["evaluate_rule", "main", "run_config", "shift_images"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = common.parser("hinton_mnist", __doc__)
    ap.add_argument(
        "--seeds", type=common.seeds_arg, default=SEEDS, help="paired student seeds (default 0,1,2)"
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes (1 torch thread each; default 2, 1 with --quick): the teacher on one, "
        "the hard-label students beside it",
    )
    return common.parse(ap, argv)


def run_config(args) -> tuple[dict, list[int], int]:
    """The configuration every unit is keyed by (--quick shrinks it, --epochs-scale scales its
    epochs), the student seeds and the worker count."""
    teacher, student, scarce = dict(TEACHER), dict(STUDENT), dict(SCARCE)
    seeds, bias_rows, n_max, monitor = args.seeds, BIAS_ROWS, None, MONITOR_ROWS
    workers = args.workers or 2
    if args.quick:  # an end-to-end check of every path, nothing more
        teacher.update(hidden=[64, 64], epochs=2)
        student.update(hidden=[32, 32], epochs=1)
        scarce.update(epochs=2, val_rows=200)
        seeds, bias_rows, n_max, monitor = seeds[:2] if len(seeds) > 1 else [0, 1], 500, 3000, 200
        workers = args.workers or 1
    for c in (teacher, student, scarce):
        c["epochs"] = common.scaled(c["epochs"], args.epochs_scale)
    cfg = {
        "teacher": teacher,
        "teacher_opt": dict(TEACHER_OPT),
        "teacher_seed": args.seed,
        "student": student,
        "scarce": scarce,
        "T": TEMPERATURE,
        "alpha": ALPHA,
        "bias_rows": bias_rows,
        "monitor_rows": monitor,
        "n_max": n_max,
        "threads": args.threads,
    }
    return cfg, seeds, workers


def unit_lists(seeds: list[int]) -> tuple[list, list]:
    """The units that need no teacher (run beside it) and those that learn from it."""
    free = [("hard", s) for s in seeds] + [("scarce_hard", s) for s in seeds]
    after = [("distilled", s) for s in seeds] + [("omit3", seeds[0])]
    after += [("scarce_soft", s) for s in seeds]
    return free, after


def run_all(cfg: dict, seeds: list[int], workers: int) -> tuple[tuple[dict, bool], dict]:
    """The teacher and every unit; with 2+ workers the hard-label units run beside the teacher."""
    free, after = unit_lists(seeds)
    if workers == 1:
        teacher = run_teacher(cfg)
        return teacher, {u: run_unit(cfg, u) for u in free + after}
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        t_future = pool.submit(run_teacher, cfg)
        futures = {u: pool.submit(run_unit, cfg, u) for u in free}
        teacher = t_future.result()
        futures.update({u: pool.submit(run_unit, cfg, u) for u in after})
        return teacher, {u: f.result() for u, f in futures.items()}


def results_of(teacher: dict, out: dict, seeds: list[int]) -> dict:
    """Every figure the markdown shows, with rule H40's verdict computed from them."""
    per_seed = [
        {
            "seed": s,
            "hard_test": out[("hard", s)][0]["hard_test"],
            "distilled_test": out[("distilled", s)][0]["distilled_test"],
        }
        for s in seeds
    ]
    shares = [
        gap_recovery(r["hard_test"], r["distilled_test"], teacher["test_errors"]) for r in per_seed
    ]
    return {
        "teacher": teacher,
        "per_seed": per_seed,
        "rule": evaluate_rule(
            [r["hard_test"] for r in per_seed], [r["distilled_test"] for r in per_seed], seeds
        ),
        "gap_recovery": [{"seed": s, "share": v} for s, v in zip(seeds, shares)],
        "omit3": out[("omit3", seeds[0])][0],
        "scarce": [{**out[("scarce_hard", s)][0], **out[("scarce_soft", s)][0]} for s in seeds],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    cfg, seeds, workers = run_config(args)
    (teacher, t_hit), out = run_all(cfg, seeds, workers)
    n_train = cfg["n_max"] or 60000
    settings = {
        "n_train": n_train,
        "n_test": 10000,
        **{k: v for k, v in cfg.items() if k not in ("n_max", "threads")},
        "student_opt": STUDENT_OPT,
        "seeds": seeds,
        "time_budget_s": TIME_BUDGET_S,
        "sha256_verified": True,
        "teacher_cache": f"{'hit' if t_hit else 'miss'} {teacher['cache']}",
        "unit_cache_hits": f"{sum(h for _, h in out.values())} of {len(out)}",
        "workers": workers,
        "threads_per_worker": args.threads,
    }
    rec = result_record.new_record(
        "hinton_mnist", common.command_line("hinton_mnist"), settings, started
    )
    rec["results"] = results_of(teacher, out, seeds)
    result_record.write(rec, args.out_dir, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
