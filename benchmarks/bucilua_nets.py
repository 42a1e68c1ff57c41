"""Bucilua 2006's nets: the hard-label net on the 4k real rows and the mimics trained on the
ensemble's probabilities over MUNGE / RANDOM / NBE transfer sets, each stopped on validation RMSE."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmarks import common
from benchmarks.bucilua_data import MIMIC_HIDDEN, MUNGE, PATIENCE, Problem

Record = Callable[[str, int, np.ndarray, str], None]  # (method, size, test probs, note) -> a row


def mimic_epochs(size: int, budget_rows: float) -> int:
    """Same optimisation budget (row-passes) for every transfer-set size, at least 3 epochs."""
    return max(3, int(round(budget_rows / size)))


def fit_net(x_tr, y_tr, x_va, y_va, hidden: int, epochs: int, seed: int, teacher_probs=None):
    """An MLP on hard labels (cross-entropy) or on the ensemble's probabilities (squared error),
    the epoch kept and the stop chosen by validation RMSE."""
    import torch

    from distill.students import build_student

    torch.manual_seed(seed)
    net = build_student({"kind": "mlp", "hidden": [hidden]}, (x_tr.shape[1],), 2)
    fit = common.train(
        net,
        x_tr,
        y_tr,
        teacher_probs,
        x_va,
        y_va,
        input_shape=(x_tr.shape[1],),
        epochs=epochs,
        loss="hard" if teacher_probs is None else "probs",
        seed=seed,
        val_metric="rmse",
        keep="best",
        patience=PATIENCE,
        lr=3e-3,
        batch_size=256,
    )
    return net, fit


def unit_methods(args, seed: int) -> list[str]:
    """The transfer methods one seed runs: all of them on the curve seeds, MUNGE alone on the
    others (the rule and the shares need only the MUNGE mimics; RANDOM / NBE feed the curves)."""
    if seed in args.curve_seeds:
        return list(args.methods)
    return [m for m in args.methods if m == "munge"] or list(args.methods)


def record_hard_net(record: Record, pb: Problem, args, seed: int) -> None:
    """The hard-label net: hidden units and epoch by validation RMSE."""
    e4k = common.scaled(mimic_epochs(len(pb.y_tr), args.budget_rows), args.epochs_scale)
    tried = {}
    for h in args.hard_hidden:
        net, fit = fit_net(pb.x_tr, pb.y_tr, pb.x_va, pb.y_va, h, e4k, seed)
        tried[h] = (-fit.best_score[0], fit.best_epoch, net)
    h_best = min(tried, key=lambda h: tried[h][0])
    val_rmse, ep_best, net = tried[h_best]
    record(
        "net 4k",
        len(pb.y_tr),
        common.predict_proba(net, pb.x_te, (pb.width,)),
        f"{h_best} hidden (of {list(tried)}), epoch {ep_best} of {e4k} (validation RMSE {val_rmse:.4f})",
    )


def record_mimics(record: Record, pb: Problem, teacher, args, seed: int, mults: list[int]):
    """Mimics over growing transfer sets of each method (prefixes of the largest, labelled once);
    returns the largest MUNGE mimic, the one shipped."""
    from distill.transfer import make_transfer

    shipped, top = None, max(mults)
    for method in unit_methods(args, seed):
        cfg = {"method": method, "size_multiplier": top, **(MUNGE if method == "munge" else {})}
        big = pb.enc(make_transfer(cfg, pb.x_tr_raw, pb.ds.nominal, seed=seed))
        p_big = teacher.predict_proba(big)  # labelled once; smaller sets are prefixes
        for mult in mults:
            if mult == 1 and method != unit_methods(args, seed)[0]:
                continue  # size 4k = the original rows only: the same for every method
            n = len(pb.y_tr) * mult
            ep = common.scaled(mimic_epochs(n, args.budget_rows), args.epochs_scale)
            mimic, fit = fit_net(
                big[:n], p_big[:n].argmax(1), pb.x_va, pb.y_va, MIMIC_HIDDEN, ep, seed, p_big[:n]
            )
            record(
                "original" if mult == 1 else method,
                n,
                common.predict_proba(mimic, pb.x_te, (pb.width,)),
                f"epoch {fit.best_epoch} of {ep}",
            )
            if method == "munge" and mult == top:
                shipped = mimic
    return shipped
