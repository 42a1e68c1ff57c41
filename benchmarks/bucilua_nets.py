"""Bucilua 2006's nets: the hard-label net on the 4k real rows and the mimics trained on the
ensemble's probabilities over MUNGE / RANDOM / NBE transfer sets of growing size, each trained to
convergence: early stopping on validation RMSE (bucilua_rule.epochs_for), the best epoch kept."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmarks import common
from benchmarks.bucilua_data import MIMIC_HIDDEN, MUNGE, Problem
from benchmarks.bucilua_rule import NET_OPT, epochs_for, method_sizes

Record = Callable[..., None]  # (method, size, test probs, note, **training facts) -> a table row


def fit_net(x_tr, y_tr, x_va, y_va, hidden: int, seed: int, teacher_probs=None, scale: float = 1.0):
    """An MLP on hard labels (cross-entropy) or on the ensemble's probabilities (squared error,
    Bucilua §3), stopped on validation RMSE with the epochs and patience its row count gets."""
    import torch

    from distill.students import build_student

    epochs, patience = (common.scaled(v, scale) for v in epochs_for(len(x_tr)))
    torch.manual_seed(seed)
    net = build_student({"kind": "mlp", "hidden": [hidden]}, (x_tr.shape[1],), 2)
    fit = common.train(
        net, x_tr, y_tr, teacher_probs, x_va, y_va, input_shape=(x_tr.shape[1],), epochs=epochs,
        loss="hard" if teacher_probs is None else "probs", seed=seed, val_metric="rmse",
        keep="best", patience=min(patience, epochs), **NET_OPT,
    )  # fmt: skip
    facts = {
        "best_epoch": fit.best_epoch,
        "epochs_run": fit.epochs_run,
        "max_epochs": epochs,
        "patience": min(patience, epochs),
        "stopped_early": fit.stopped_early,
        "val_rmse": -fit.best_score[0],
        "train_s": round(sum(sum(v for k, v in s.items() if k != "epoch") for s in fit.seconds), 1),
    }
    return net, facts


def unit_methods(methods: list[str], curve_seeds: list[int], seed: int) -> list[str]:
    """The transfer methods one seed runs: all of them on the curve seeds, MUNGE alone on the
    others (the rules and the shares need only the MUNGE mimics; RANDOM / NBE feed the curves)."""
    if seed in curve_seeds:
        return list(methods)
    return [m for m in methods if m == "munge"] or list(methods)


def record_hard_net(record: Record, pb: Problem, hidden_grid: list[int], seed: int, scale: float):
    """The hard-label net: hidden units by validation RMSE, each size stopped on it."""
    tried = {}
    for h in hidden_grid:
        net, facts = fit_net(pb.x_tr, pb.y_tr, pb.x_va, pb.y_va, h, seed, scale=scale)
        tried[h] = (facts, net)
    h_best = min(tried, key=lambda h: tried[h][0]["val_rmse"])
    facts, net = tried[h_best]
    record(
        "net 4k",
        len(pb.y_tr),
        common.predict_proba(net, pb.x_te, (pb.width,)),
        f"{h_best} hidden (of {list(tried)}, by validation RMSE)",
        hidden=h_best,
        **facts,
    )


def transfer_set(pb: Problem, method: str, rows: int, seed: int) -> np.ndarray:
    """The largest transfer set of ``method`` in model-ready features (smaller ones are its
    prefixes: the original rows first, then whole generator passes)."""
    from distill.transfer import make_transfer

    mult = -(-rows // len(pb.y_tr))
    cfg = {"method": method, "size_multiplier": mult, **(MUNGE if method == "munge" else {})}
    return pb.enc(make_transfer(cfg, pb.x_tr_raw, pb.ds.nominal, seed=seed))[:rows]


def record_mimics(
    record: Record, pb: Problem, labels: dict[str, np.ndarray], hashes: dict[str, str],
    sizes: list[int], seed: int, scale: float,
):  # fmt: skip
    """Mimics over growing transfer sets of each method (bucilua_rule.method_sizes), labelled once
    by the ensemble at the method's largest size (``labels``: method -> positive-class
    probability; ``hashes``: the sha256 of the rows it labelled); returns the largest MUNGE
    mimic, the one shipped."""
    from distill.cache import inputs_sha256

    shipped = None
    for method, p1 in labels.items():
        mine = method_sizes(method, sizes)
        big = transfer_set(pb, method, max(mine), seed)
        if inputs_sha256(big) != hashes[method]:
            raise RuntimeError(
                f"the {method} transfer set differs from the one the ensemble labelled (stage 1 "
                "is cached from other code); delete build/bench-cache/bucilua_teacher-* and rerun"
            )
        p_big = np.stack([1.0 - p1, p1], 1).astype(np.float64)
        for n in mine:
            mimic, facts = fit_net(
                big[:n], p_big[:n].argmax(1), pb.x_va, pb.y_va, MIMIC_HIDDEN, seed, p_big[:n], scale
            )
            note = f"best epoch {facts['best_epoch']} of {facts['epochs_run']} run ({facts['max_epochs']} available)"
            record(method, n, common.predict_proba(mimic, pb.x_te, (pb.width,)), note, **facts)
            if method == "munge" and n == max(sizes):
                shipped = mimic
    return shipped
