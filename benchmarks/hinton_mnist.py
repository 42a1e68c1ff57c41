"""Hinton, Vinyals, Dean 2015 on MNIST: §3 (distillation at T=20, the omitted-3 experiment) and §6
(soft targets as a regularizer when data are scarce), with a rule fixed before the run.

§3: teacher 784-1200-1200-10 regularized as in the paper (dropout 0.2 on the inputs, 0.5 on the
hidden layers, a max-norm constraint on every unit's incoming weights, inputs jittered by up to
±2 pixels) on all 59,000 training rows (1,000 are the validation split); its logits are cached
under build/bench-cache keyed by the data and its configuration, so a rerun skips it. Student
784-800-800-10 without dropout, on hard labels and distilled at T from the teacher's soft targets,
paired by seed (same initialisation and batch order), the last epoch kept (no early stopping, no
choice on validation). Test errors are counts of misclassified images of the 10,000 MNIST test
images, printed beside the paper's 67 / 146 / 74.

The rule that decides the §3 claim (RULE below) and T and alpha are fixed here, in the code,
before the full run; the verdict is computed from the figures and printed before them.
"""

from __future__ import annotations

import argparse
import time

from benchmarks import common
from benchmarks.hinton_report import add_omit3, add_pair, add_scarce, arch, mean_sd
from benchmarks.hinton_rule import (
    ALPHA,
    BIAS_ROWS,
    OPT,
    PAPER,
    RULE,
    SCARCE,
    SEEDS,
    STUDENT,
    TEACHER,
    TEACHER_MARGIN,
    TEMPERATURE,
    RuleOutcome,
    evaluate_rule,
)
from benchmarks.hinton_units import (
    UNITS,
    Setup,
    distill_on,
    errors,
    logits_of,
    prepare,
    run_unit,
    shift_images,
    student_net,
    teacher_net,
    unit_omit3,
    unit_pair,
    unit_scarce,
)

__all__ = [  # the names this module had before it was split, still importable from here
    "ALPHA", "BIAS_ROWS", "OPT", "PAPER", "RULE", "SCARCE", "SEEDS", "STUDENT", "TEACHER",
    "TEACHER_MARGIN", "TEMPERATURE", "UNITS", "RuleOutcome", "Setup", "arch", "distill_on",
    "errors", "evaluate_rule", "logits_of", "main", "mean_sd", "prepare", "run_unit",
    "shift_images", "student_net", "teacher_net", "unit_omit3", "unit_pair", "unit_scarce",
]  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = common.parser("hinton_mnist", __doc__)
    ap.add_argument(
        "--seeds", type=common.seeds_arg, default=SEEDS, help="paired student seeds (default 0,1,2)"
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes for the students after the teacher (1 torch thread each; default 2, "
        "1 with --quick)",
    )
    return common.parse(ap, argv)


def run_config(args) -> tuple[dict, list[int], int]:
    """The configuration every unit is keyed by (--quick shrinks it, --epochs-scale scales its
    epochs), the student seeds and the worker count."""
    teacher_cfg, student_cfg, scarce_cfg = dict(TEACHER), dict(STUDENT), dict(SCARCE)
    seeds, bias_rows, n_max, workers = args.seeds, BIAS_ROWS, None, args.workers or 2
    if args.quick:  # an end-to-end check of every path, nothing more
        teacher_cfg.update(hidden=[64, 64], epochs=1)
        student_cfg.update(hidden=[32, 32], epochs=1)
        scarce_cfg.update(epochs=2)
        seeds, bias_rows, n_max = seeds[:2] if len(seeds) > 1 else [0, 1], 500, 3000
        workers = args.workers or 1
    teacher_cfg["epochs"] = common.scaled(teacher_cfg["epochs"], args.epochs_scale)
    student_cfg["epochs"] = common.scaled(student_cfg["epochs"], args.epochs_scale)
    scarce_cfg["epochs"] = common.scaled(scarce_cfg["epochs"], args.epochs_scale)
    cfg = {
        "teacher": teacher_cfg,
        "teacher_seed": args.seed,
        "student": student_cfg,
        "scarce": scarce_cfg,
        "T": TEMPERATURE,
        "alpha": ALPHA,
        "bias_rows": bias_rows,
        "n_max": n_max,
        "threads": args.threads,
    }
    return cfg, seeds, workers


def run_units(
    cfg: dict, st: Setup, units: list[tuple[str, int]], workers: int
) -> list[tuple[dict, bool]]:
    """Every unit after the teacher, in ``workers`` spawned processes when more than one."""
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            return list(pool.map(run_unit, [cfg] * len(units), units))
    return [run_unit(cfg, u, st) for u in units]


def run_settings(
    st: Setup, cfg: dict, seeds: list[int], done: list[tuple[dict, bool]], workers: int
) -> dict:
    """The settings line of the report and its JSON, cache hits included."""
    return {
        "n_train": len(st.x_tr),
        "n_val": len(st.x_val),
        "n_test": len(st.x_te),
        **{k: v for k, v in cfg.items() if k not in ("n_max", "threads")},
        "seeds": seeds,
        "optimizer": "adamw lr 1e-3 cosine, batch 128, no weight decay",
        "sha256_verified": True,
        "teacher_cache": f"{'hit' if st.teacher_hit else 'miss'} "
        f"{common.content_key(st.teacher_key)[:20]}",
        "unit_cache_hits": f"{sum(h for _, h in done)} of {len(done)}",
        "workers": workers,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    cfg, seeds, workers = run_config(args)
    st = prepare(cfg)  # the teacher first: every unit needs its logits
    teacher_val = errors(st.t_logits["val"], st.y_val)
    teacher_test = errors(st.t_logits["test"], st.y_te)
    units = [("pair", s) for s in seeds] + [("omit3", seeds[0])] + [("scarce", s) for s in seeds]
    done = run_units(cfg, st, units, workers)
    out = dict(zip(units, (d for d, _ in done)))
    rep = common.Report(
        "hinton_mnist",
        "Hinton et al. 2015 on MNIST (§3, §6)",
        common.command_line("hinton_mnist"),
        run_settings(st, cfg, seeds, done, workers),
    )
    rep.started = started  # the wall time covers the teacher and every unit
    rep.add(
        "## §3: the rule, fixed before the run\n\n"
        + RULE.format(T=cfg["T"], alpha=cfg["alpha"])
        + "\n"
    )
    res = add_pair(rep, st, seeds, out, teacher_val, teacher_test)
    res["omit3"] = out[("omit3", seeds[0])]
    add_omit3(rep, res["omit3"], seeds[0])
    res["scarce"] = [out[("scarce", s)] for s in seeds]
    add_scarce(rep, st, seeds, res["scarce"])
    rep.data = res
    rep.write(args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
