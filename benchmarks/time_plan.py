"""The time plan of the issue-40 runs: small pieces measured on this machine, then the projected
wall time of hinton_mnist and bucilua_munge at the epochs and budgets fixed in hinton_rule.py and
bucilua_rule.py, each run alone on 2 cores (two 1-thread workers). Written before any full figure.

Pieces: one teacher epoch and one student epoch of each kind (60,000 MNIST rows), one mimic epoch
at 100k rows per problem width, every library model's fit on 4k rows, and labelling 100k rows.
Each piece records wall and CPU seconds (on a shared machine the CPU seconds are what a process
alone on its core would take; the load average is recorded beside them). The projection assumes
every net runs to its last available epoch (the bound); early stopping can only make it shorter.
"""

from __future__ import annotations

import argparse
import heapq
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common

LIMIT_S = 150 * 60


def timed(fn: Callable[[], Any]) -> dict:
    """Wall and CPU seconds of one call, and the load average while it ran."""
    load0, w, c = os.getloadavg()[0], time.perf_counter(), time.process_time()
    fn()
    return {
        "wall_s": round(time.perf_counter() - w, 2),
        "cpu_s": round(time.process_time() - c, 2),
        "load_before": round(load0, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def hinton_pieces(epochs: int = 1) -> dict:
    """One epoch of the teacher (SGD, dropout, max-norm, fresh jitter), of the hard-label and of
    the distilled student, on all 60,000 rows, and the jitter alone."""
    import torch

    from benchmarks import hinton_units as hu
    from benchmarks.hinton_mnist import run_config
    from distill.train import EpochData

    cfg, _, _ = run_config(argparse.Namespace(seeds=[0], workers=1, quick=False, epochs_scale=1.0,
                                              seed=0, threads=1))  # fmt: skip
    data = hu.load(cfg)
    tcfg = dict(cfg["teacher"], epochs=epochs)
    rng = np.random.default_rng(0)
    out = {"jitter": timed(lambda: data.norm(hu.shift_images(data.x_raw, rng, 2)))}
    opt = {k: v for k, v in cfg["teacher_opt"].items() if k != "lr_end_fraction"}

    sanity: dict[str, Any] = {}

    def teacher() -> None:
        net = hu.teacher_net(tcfg, 0)
        y_t = torch.from_numpy(data.y)
        jit = lambda e: EpochData(  # noqa: E731
            common.shaped_tensor(data.norm(hu.shift_images(data.x_raw, rng, 2)), (784,)), y_t, None
        )
        fit = common.train(net, data.x_tr, data.y, None, data.x_mon, data.y_mon, input_shape=(784,),
                           epochs=epochs, loss="hard", seed=0, epoch_data=jit, keep="last", **opt)  # fmt: skip
        # a check that the learning rate does not diverge, on training rows only (no choice made)
        sanity["train_loss_per_epoch"] = [round(h["train_loss"], 4) for h in fit.history]
        sanity["monitor_errors"] = hu.errors(hu.logits_of(net, data.x_mon), data.y_mon)

    out["teacher_epoch"] = {**timed(teacher), **sanity}
    rows = np.arange(len(data.y))
    out["student_hard_epoch"] = timed(lambda: hu.train_student(data, cfg, 0, rows, epochs))
    fake = torch.log_softmax(
        torch.randn(len(data.y), 10), 1
    )  # the loss costs the same on any targets
    out["student_distilled_epoch"] = timed(
        lambda: hu.train_student(data, cfg, 0, rows, epochs, fake)
    )
    for k in ("teacher_epoch", "student_hard_epoch", "student_distilled_epoch"):
        out[k]["per_epoch_cpu_s"] = round(out[k]["cpu_s"] / epochs, 2)
    return out


def teacher_lr_check(lrs: list[float], epochs: int = 2) -> dict:
    """The teacher's first ``epochs`` epochs at each learning rate (the run's momentum, batch and
    per-epoch decay): its training loss (dropout and jitter on) and its errors on the first 1,000
    training rows. A check that a rate does not diverge, on training rows only: no validation or
    test row is looked at."""
    import torch

    from benchmarks import hinton_units as hu
    from benchmarks.hinton_mnist import run_config
    from distill.train import EpochData

    ns = argparse.Namespace(seeds=[0], workers=1, quick=False, epochs_scale=1.0, seed=0, threads=1)
    cfg, _, _ = run_config(ns)
    data = hu.load(cfg)
    y_t = torch.from_numpy(data.y)
    opt = {k: v for k, v in cfg["teacher_opt"].items() if k != "lr_end_fraction"}
    opt["gamma"] = cfg["teacher_opt"]["lr_end_fraction"] ** (1.0 / cfg["teacher"]["epochs"])
    out = {}
    for lr in lrs:

        def jit(e: int) -> EpochData:
            x = data.norm(hu.shift_images(data.x_raw, np.random.default_rng([0, e]), 2))
            return EpochData(common.shaped_tensor(x, (784,)), y_t, None)

        net = hu.teacher_net(cfg["teacher"], 0)
        fit = common.train(net, data.x_tr, data.y, None, data.x_mon, data.y_mon, input_shape=(784,),
                           epochs=epochs, loss="hard", seed=0, epoch_data=jit, keep="last",
                           **{**opt, "lr": lr})  # fmt: skip
        out[str(lr)] = {
            "train_loss_per_epoch": [round(h["train_loss"], 4) for h in fit.history],
            "monitor_errors": hu.errors(hu.logits_of(net, data.x_mon), data.y_mon),
        }
    return out


def library_pieces(pb, big: np.ndarray) -> tuple[dict, dict]:
    """CPU seconds of every library model's fit on the 4k rows and its prediction of ``big``."""
    from benchmarks.bucilua_library import library_grid

    gamma_scale = 1.0 / (pb.width * max(float(pb.x_tr.var()), 1e-12))
    fits, preds = {}, {}
    for name, est in library_grid(0, False, gamma_scale):
        fits[name] = timed(lambda e=est: e.fit(pb.x_tr, pb.y_tr))["cpu_s"]
        preds[name] = timed(lambda e=est: e.predict_proba(big))["cpu_s"]
    return fits, preds


def bucilua_pieces(pname: str, rows: int = 100_000) -> dict:
    """One problem: MUNGE generating ``rows`` transfer rows, every library model's fit and its
    prediction of them, and one mimic epoch on them."""
    import torch

    from benchmarks.bucilua_data import MIMIC_HIDDEN, PROBLEMS, encoded_problem
    from benchmarks.bucilua_nets import transfer_set
    from benchmarks.bucilua_rule import NET_OPT
    from distill.students import build_student

    pb = encoded_problem(
        PROBLEMS[pname], argparse.Namespace(n_train=4000, n_val=1000, max_test=0), 0
    )
    rec: dict[str, Any] = {"width": pb.width, "rows": rows}
    rec["munge"] = timed(lambda: transfer_set(pb, "munge", rows, 0))
    big = transfer_set(pb, "munge", rows, 0)
    rec["library_fit_cpu_s"], rec["library_predict_cpu_s"] = library_pieces(pb, big)
    p = np.full((rows, 2), 0.5)
    torch.manual_seed(0)
    net = build_student({"kind": "mlp", "hidden": [MIMIC_HIDDEN]}, (pb.width,), 2)
    rec["mimic_epoch"] = timed(
        lambda: common.train(net, big, p.argmax(1), p, pb.x_va, pb.y_va, input_shape=(pb.width,),
                             epochs=1, loss="probs", seed=0, val_metric="rmse", **NET_OPT)
    )  # fmt: skip
    return rec


def schedule(costs: list[float], workers: int = 2) -> float:
    """Wall seconds of jobs taken in order by the first free worker."""
    free = [0.0] * workers
    for c in costs:
        heapq.heappush(free, heapq.heappop(free) + c)
    return max(free)


def hinton_projection(pc: dict) -> dict:
    """hinton_mnist's wall time at the fixed epochs on 2 workers, as its pool runs them: the
    teacher first, the hard-label units beside it (first come, first served), then the units that
    need the teacher once it ends (every unit reloads MNIST)."""
    from benchmarks.hinton_rule import SCARCE, STUDENT, TEACHER

    t, h = pc["teacher_epoch"]["per_epoch_cpu_s"], pc["student_hard_epoch"]["per_epoch_cpu_s"]
    d, load = pc["student_distilled_epoch"]["per_epoch_cpu_s"], pc["load"]["cpu_s"]
    es, sc = STUDENT["epochs"], SCARCE["epochs"] * SCARCE["fraction"]
    teacher = load + TEACHER["epochs"] * t
    free = [load + es * h] * 3 + [load + sc * h] * 3
    after = [load + es * d] * 3 + [load + es * d * 0.81] + [load + sc * d] * 3  # omit3: 81% of rows
    w = [teacher, 0.0]
    for c in free:
        i = int(np.argmin(w))
        w[i] += c
    for c in after:
        i = int(np.argmin(w))
        w[i] = max(w[i], teacher) + c
    return {
        "teacher_s": round(teacher),
        "hard_units_s": round(sum(free)),
        "after_teacher_units_s": round(sum(after)),
        "projected_wall_s": round(max(w)),
        "limit_s": LIMIT_S,
    }


def bucilua_unit_bound(p: dict, methods: list[str], sizes: list[int]) -> dict:
    """One (problem, seed) unit at its bound: every net to its last available epoch, the
    ensemble holding every library model, every transfer set as dear as MUNGE's."""
    from benchmarks.bucilua_data import HARD_HIDDEN
    from benchmarks.bucilua_rule import epochs_for, method_sizes

    per_row = p["mimic_epoch"]["cpu_s"] / p["rows"]
    hard = sum(epochs_for(4000)[0] * 4000 * per_row * max(h, 64) / 256 for h in HARD_HIDDEN)
    mimic_rows = sum(epochs_for(n)[0] * n for m in methods for n in method_sizes(m, sizes))
    labelled = sum(max(method_sizes(m, sizes)) for m in methods) / p["rows"]
    return {
        "library_fit_s": round(sum(p["library_fit_cpu_s"].values())),
        "label_s": round(labelled * sum(p["library_predict_cpu_s"].values())),
        "transfer_s": round(labelled * p["munge"]["cpu_s"]),
        "hard_nets_s": round(hard),
        "mimics_s": round(mimic_rows * per_row),
    }


def bucilua_projection(pc: dict, million: bool = False) -> dict:
    """bucilua_munge's wall time at its bound: the units in the run's order on 2 workers."""
    from benchmarks.bucilua_rule import MILLION, SEEDS, SIZES

    sizes = SIZES + ([MILLION] if million else [])
    units, per_unit = [], {}
    for pname, seeds in SEEDS.items():
        p = pc.get(pname) or pc["letter.p1"]  # letter.p2 has letter.p1's width
        for s in seeds:
            b = bucilua_unit_bound(p, ["munge", "random", "nbe"] if s == 0 else ["munge"], sizes)
            per_unit[f"{pname} seed {s}"] = b
            units.append(((s != 0, pname != "adult"), sum(b.values())))
    units.sort(key=lambda u: u[0])
    return {
        "per_unit_bound_s": per_unit,
        "projected_wall_bound_s": round(schedule([c for _, c in units])),
        "limit_s": LIMIT_S,
    }


def project(out: dict) -> dict:
    """The projections of the pieces in ``out`` at the epochs and budgets fixed now."""
    if "hinton" in out:
        out["hinton"]["projection"] = hinton_projection(out["hinton"]["pieces"])
    if "bucilua" in out:
        pieces = out["bucilua"]["pieces"]
        out["bucilua"]["projection"] = bucilua_projection(pieces)
        out["bucilua"]["projection_1m"] = bucilua_projection(pieces, million=True)
    return out


def measure(args: argparse.Namespace) -> dict:
    """The pieces this invocation asks for, measured now."""
    import torch

    torch.set_num_threads(1)
    out: dict[str, Any] = {"machine": common.machine(), "commit": common.code_commit()}
    if args.teacher_lrs:
        out["teacher_lr_check"] = teacher_lr_check(args.teacher_lrs)
        return out
    if args.only in (None, "hinton"):
        from benchmarks import hinton_units as hu
        from benchmarks.hinton_mnist import run_config

        ns = argparse.Namespace(
            seeds=[0], workers=1, quick=False, epochs_scale=1.0, seed=0, threads=1
        )
        pieces = hinton_pieces()
        pieces["load"] = timed(lambda: hu.load(run_config(ns)[0]))
        out["hinton"] = {"pieces": pieces}
    if args.only in (None, "bucilua"):
        out["bucilua"] = {"pieces": {p: bucilua_pieces(p) for p in args.problems}}
    return out


def main(argv: list[str] | None = None) -> int:
    import json

    from ground import rundir

    ap = argparse.ArgumentParser(prog="python -m benchmarks.time_plan", description=__doc__)
    ap.add_argument("--only", choices=("hinton", "bucilua"), default=None)
    ap.add_argument("--problems", nargs="+", default=["adult", "letter.p1"])
    ap.add_argument("--out", default=str(common.RESULTS / "time_plan.json"))
    ap.add_argument(
        "--teacher-lrs", type=float, nargs="+", default=None,
        help="only the teacher's learning-rate check: 2 epochs at each rate",
    )  # fmt: skip
    ap.add_argument(
        "--project", nargs="+", type=Path, default=None,
        help="measure nothing: project from the pieces in these earlier outputs (merged)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if args.project:
        out: dict[str, Any] = {"measured_by": {}}
        for p in args.project:
            rec = json.loads(p.read_text())
            out["measured_by"][str(p)] = {k: rec.pop(k, None) for k in ("machine", "commit")}
            out.update({k: {"pieces": v["pieces"]} for k, v in rec.items() if "pieces" in v})
            if "teacher_lr_check" in rec:
                out["teacher_lr_check"] = {
                    **out.get("teacher_lr_check", {}),
                    **rec["teacher_lr_check"],
                }
    else:
        out = measure(args)
    rundir.atomic_write_json(args.out, project(out))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
