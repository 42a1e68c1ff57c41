"""Bucilua, Caruana, Niculescu-Mizil 2006 "Model Compression" on its public problems, CPU-scaled.

Problems: Adult (>50K), letter.p1 ('O' vs rest), letter.p2 (A-M vs N-Z). Protocol of the paper:
4,000 training and 1,000 validation points drawn at random, the rest for test; RMSE of the
predicted positive-class probability against the 0/1 targets (lower is better).

Rows per problem: the model library fitted on the 4k points and ensemble selection on the 1k
(Caruana 2004 forward selection with replacement, RMSE metric — engineer T's ``build_teacher``);
the best single library model (chosen on validation); an MLP with 256 hidden units trained on
the 4k real points; mimic MLPs (256 hidden units) trained with squared error on the ensemble's
probabilities (Bucilua §3) over transfer sets from MUNGE, RANDOM and NBE (T's ``make_transfer``)
of growing size. The shipped student (the largest MUNGE mimic) is exported to ONNX, quantized to
int8 with onnxruntime's ``quantize_dynamic``, and its bytes and single-sample latency are
measured beside the ensemble's (the paper's "1000 times smaller and faster" claim).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks import common

PAPER_AVG = {"mimic": 0.264, "ensemble": 0.263, "net_4k": 0.282, "best_single": 0.274}
PROBLEMS = {
    "adult": {"name": "adult"},
    "letter.p1": {"name": "letter", "task": "p1"},
    "letter.p2": {"name": "letter", "task": "p2"},
}
LIBRARY = ["rf", "extra_trees", "hgb", "knn", "svm", "logreg", "mlp_small"]


def pooled_split(section: dict, n_train: int, n_val: int, seed: int):
    """All rows of the data set pooled, then 4k train / 1k validation / the rest test (the paper's protocol)."""
    from distill.data import load_data

    ds = load_data({**section, "verify_sha256": True})
    x = np.concatenate([ds.x_train, ds.x_val, ds.x_holdout])
    y = np.concatenate([ds.y_train, ds.y_val, ds.y_holdout])
    idx = np.random.default_rng(seed).permutation(len(x))
    tr, va, te = idx[:n_train], idx[n_train : n_train + n_val], idx[n_train + n_val :]
    return ds, (x[tr], y[tr]), (x[va], y[va]), (x[te], y[te])


def mimic_epochs(size: int, budget_rows: float) -> int:
    """Same optimisation budget (row-passes) for every transfer-set size, at least 3 epochs."""
    return max(3, int(round(budget_rows / size)))


def run_problem(
    pname: str, section: dict, args, multipliers: list[int], rep: common.Report, work: Path
) -> dict:
    import torch

    from distill.building import build_teacher
    from distill.data import Normalizer
    from distill.students import build_student
    from distill.transfer import make_transfer

    ds, (x_tr_raw, y_tr), (x_va_raw, y_va), (x_te_raw, y_te) = pooled_split(
        section, args.n_train, args.n_val, args.seed
    )
    norm = Normalizer.fit(x_tr_raw, "column")
    x_tr, x_va, x_te = norm(x_tr_raw), norm(x_va_raw), norm(x_te_raw)
    d = x_tr.shape[1]
    shape = (d,)
    teacher = build_teacher(
        {"library": args.library, "selection_metric": "rmse"},
        x_tr,
        y_tr,
        x_va,
        y_va,
        seed=args.seed,
        base_dir=common.ROOT,
    )
    rows, out = (
        [],
        {
            "n_train": len(y_tr),
            "n_val": len(y_va),
            "n_test": len(y_te),
            "positive_rate_test": float(y_te.mean()),
        },
    )

    def record(method: str, p: np.ndarray, size: int | str, note: str) -> None:
        r = {
            "method": method,
            "size": size,
            "rmse": common.rmse_binary(p, y_te),
            "accuracy": common.accuracy(p, y_te),
            "note": note,
        }
        out.setdefault("rows", []).append(r)
        rows.append([method, size, r["rmse"], r["accuracy"], note])

    p_ens = teacher.predict_proba(x_te)
    weights = {
        m.name: round(float(w), 3)
        for m, w in zip(teacher.members, teacher.weights / teacher.weights.sum())
    }
    record(
        "ensemble (selection)",
        p_ens,
        4000,
        "weights " + ", ".join(f"{k} {v}" for k, v in weights.items() if v > 0),
    )
    val_p = teacher.member_probas(x_va)
    best = min(val_p, key=lambda k: common.rmse_binary(val_p[k], y_va))
    record(
        f"best single model ({best})",
        teacher.member_probas(x_te)[best],
        4000,
        "chosen by validation RMSE",
    )

    opt = {"lr": 3e-3, "batch_size": 256}
    torch.manual_seed(args.seed)
    net = build_student({"kind": "mlp", "hidden": [256]}, shape, 2)
    e4k = common.scaled(mimic_epochs(len(y_tr), args.budget_rows), args.epochs_scale)
    common.train(
        net,
        x_tr,
        y_tr,
        None,
        x_va,
        y_va,
        input_shape=shape,
        epochs=e4k,
        loss="hard",
        seed=args.seed,
        **opt,
    )
    record(
        "MLP 256 on the 4k real points",
        common.predict_proba(net, x_te, shape),
        4000,
        f"{e4k} epochs, cross-entropy on hard labels",
    )

    p_va = teacher.predict_proba(x_va)
    shipped = None
    top = max(multipliers)
    for method in args.methods:
        big_raw = make_transfer(
            {"method": method, "size_multiplier": top}, x_tr_raw, ds.nominal, seed=args.seed
        )
        big = norm(big_raw)
        p_big = teacher.predict_proba(
            big
        )  # labelled once; smaller sets are prefixes (originals first, then synthetic)
        for mult in multipliers:
            if mult == 1 and method != args.methods[0]:
                continue  # size 4k = the original rows only: the same for every method
            n = len(y_tr) * mult
            ep = common.scaled(mimic_epochs(n, args.budget_rows), args.epochs_scale)
            torch.manual_seed(args.seed)
            mimic = build_student({"kind": "mlp", "hidden": [256]}, shape, 2)
            common.train(
                mimic,
                big[:n],
                p_big[:n].argmax(1),
                p_big[:n],
                x_va,
                y_va,
                input_shape=shape,
                epochs=ep,
                loss="probs",
                seed=args.seed,
                val_teacher_probs=p_va,
                **opt,
            )
            label = (
                "mimic, original 4k (ensemble labels)" if mult == 1 else f"mimic, {method.upper()}"
            )
            record(
                label,
                common.predict_proba(mimic, x_te, shape),
                n,
                f"{ep} epochs, squared error on ensemble probs",
            )
            if method == "munge" and mult == top:
                shipped = mimic
    shipped = shipped or mimic

    # size and single-sample latency: the ensemble (sklearn predict_proba of its members) vs the int8 student
    st = common.onnx_int8(shipped, shape, work / pname, "mimic")
    sess = common.ort_session(st.int8_path)
    logits_int8 = common.ort_predict(sess, x_te)[0]
    p_int8 = np.exp(logits_int8 - logits_int8.max(1, keepdims=True))
    p_int8 /= p_int8.sum(1, keepdims=True)
    record(
        "shipped student, int8 ONNX (onnxruntime)",
        p_int8,
        len(y_tr) * (top if "munge" in args.methods else 1),
        "the largest MUNGE mimic after quantize_dynamic",
    )
    x1 = x_te[:1]
    active = teacher.active()
    ens_lat = common.latency_p50_ms(
        lambda: [m.predict_proba(x1) for m, _ in active], runs=args.latency_runs
    )
    stu_lat = common.latency_p50_ms(lambda: common.ort_predict(sess, x1), runs=args.latency_runs)
    desc = teacher.describe()
    out["size_latency"] = {
        "ensemble_bytes": desc["bytes"],
        "ensemble_bytes_method": desc["bytes_method"],
        "ensemble_members": [m.name for m, _ in active],
        "student_int8_bytes": st.int8_bytes,
        "student_fp32_bytes": st.fp32_bytes,
        "student_method": st.method,
        "ensemble_latency": ens_lat,
        "student_latency": stu_lat,
    }
    rep.add(
        f"## {pname}: {len(y_tr)} train / {len(y_va)} validation / {len(y_te)} test "
        f"(positive rate {y_te.mean():.3f}; transfer sizes {[len(y_tr) * m for m in multipliers]})\n\n"
        + common.table(
            ["method", "train/transfer rows", "test RMSE", "test accuracy", "settings"], rows
        )
        + "\n"
        + common.table(
            ["", "bytes", "single-sample latency p50 (ms)", "p90 (ms)", "how"],
            [
                [
                    f"ensemble ({len(active)} members: {', '.join(m.name for m, _ in active)})",
                    desc["bytes"],
                    ens_lat["p50_ms"],
                    ens_lat["p90_ms"],
                    "sum of members' serialized bytes; sklearn predict_proba, 1 row",
                ],
                [
                    "student int8 (ONNX, quantize_dynamic)",
                    st.int8_bytes,
                    stu_lat["p50_ms"],
                    stu_lat["p90_ms"],
                    "file bytes; onnxruntime 1 thread, 1 row",
                ],
                [
                    "ratio ensemble / student",
                    f"{desc['bytes'] / st.int8_bytes:.1f}",
                    f"{ens_lat['p50_ms'] / stu_lat['p50_ms']:.1f}",
                    "",
                    "",
                ],
            ],
        )
    )
    return out


def _per_problem(results: dict, top: int) -> dict[str, dict[str, float]]:
    out = {}
    for name, p in results.items():
        out[name] = {
            "ens": next(r["rmse"] for r in p["rows"] if r["method"].startswith("ensemble")),
            "net": next(r["rmse"] for r in p["rows"] if r["method"].startswith("MLP 256")),
            "mimic": next(
                (
                    r["rmse"]
                    for r in p["rows"]
                    if r["method"] == "mimic, MUNGE" and r["size"] == top
                ),
                float("nan"),
            ),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = common.parser("bucilua_munge", __doc__)
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    ap.add_argument(
        "--methods",
        nargs="+",
        default=["munge", "random", "nbe"],
        choices=["munge", "random", "nbe"],
    )
    ap.add_argument(
        "--multipliers",
        type=int,
        nargs="+",
        default=[1, 6, 25, 100],
        help="transfer set = multiplier x 4,000 rows (default 4k, 24k, 100k and the paper's 400k)",
    )
    ap.add_argument("--library", nargs="+", default=LIBRARY)
    ap.add_argument(
        "--budget-rows",
        type=float,
        default=1_500_000,
        help="row-passes per mimic (epochs = budget / transfer size, at least 3)",
    )
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--latency-runs", type=int, default=200)
    args = common.parse(ap, argv)
    if args.quick:
        args.problems, args.library = ["letter.p1"], ["rf", "logreg"]
        args.multipliers, args.budget_rows, args.latency_runs = [1, 3], 12_000, 30
    mults = sorted(set(args.multipliers))
    settings = {
        "problems": args.problems,
        "library": args.library,
        "methods": args.methods,
        "transfer_sizes": [args.n_train * m for m in mults],
        "budget_row_passes": args.budget_rows,
        "epochs_scale": args.epochs_scale,
        "student": "mlp [256]",
        "optimizer": "adamw lr 3e-3 cosine, batch 256",
        "seed": args.seed,
        "sha256_verified": True,
    }
    rep = common.Report(
        "bucilua_munge",
        "Bucilua et al. 2006: model compression with MUNGE / RANDOM / NBE",
        common.command_line("bucilua_munge"),
        settings,
    )
    results = {}
    with tempfile.TemporaryDirectory(prefix="tinyship-bucilua-") as tmp:
        for pname in args.problems:
            results[pname] = run_problem(pname, PROBLEMS[pname], args, mults, rep, Path(tmp))

    # averages over our problems, beside the paper's averages over its eight
    def avg(pred) -> float:
        vals = [r["rmse"] for p in results.values() for r in p["rows"] if pred(r)]
        return float(np.mean(vals)) if vals else float("nan")

    top = len(next(iter(results.values()))["rows"]) and max(mults) * args.n_train
    ours = {
        "ensemble": avg(lambda r: r["method"].startswith("ensemble")),
        "best_single": avg(lambda r: r["method"].startswith("best single")),
        "net_4k": avg(lambda r: r["method"].startswith("MLP 256")),
        "mimic": avg(lambda r: r["method"] == "mimic, MUNGE" and r["size"] == top),
    }
    gain = ours["net_4k"] - ours["ensemble"]
    recovered = (ours["net_4k"] - ours["mimic"]) / gain if gain >= 0.005 else float("nan")
    rep.add(
        f"## Average test RMSE over our {len(results)} problems vs the paper's average over its eight\n\n"
        + common.table(
            ["", "ours", "paper (8 problems)"],
            [
                ["ensemble", ours["ensemble"], PAPER_AVG["ensemble"]],
                ["best single model", ours["best_single"], PAPER_AVG["best_single"]],
                ["net trained on 4k real points", ours["net_4k"], PAPER_AVG["net_4k"]],
                [f"mimic (MUNGE, {top} rows)", ours["mimic"], PAPER_AVG["mimic"]],
                [
                    "share of the ensemble's gain over the 4k net recovered by the mimic",
                    round(recovered, 3)
                    if recovered == recovered
                    else f"n/a (the ensemble beats the 4k net by only {gain:.4f} RMSE)",
                    0.97,
                ],
            ],
        )
        + "\nPer problem, the share recovered is (net 4k - mimic) / (net 4k - ensemble) in RMSE: "
        + ", ".join(
            f"{k} "
            + (
                f"{(p['net'] - p['mimic']) / (p['net'] - p['ens']):.2f}"
                if p["net"] - p["ens"] >= 0.005
                else f"n/a (gain {p['net'] - p['ens']:.4f})"
            )
            for k, p in _per_problem(results, top).items()
        )
        + ".\nThe paper's averages cover eight problems (three public, five not) with transfer sets up to "
        "400k and much larger model libraries; ours cover the three public ones at CPU scale. Adult was "
        "the paper's failure case for MUNGE.\n"
    )
    results["averages"] = {**ours, "share_of_gain_recovered": recovered}
    rep.data = results
    rep.write(args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
