"""One (problem, seed) unit of the Bucilua run, in two cached stages so that a killed run resumes
and a change to the nets does not refit the library: (1) the teacher: library fitted, ensemble
selected, its test rows scored, its transfer sets labelled (and, for the first seed, its size and
latency); (2) the nets: the 4k hard-label net and every mimic (and the shipped mimic's files)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import common
from benchmarks.bucilua_data import MIMIC_HIDDEN, MUNGE, PROBLEMS, Problem, encoded_problem
from benchmarks.bucilua_library import SELECTION, library_grid, selected_ensemble
from benchmarks.bucilua_nets import (
    Record,
    record_hard_net,
    record_mimics,
    transfer_set,
    unit_methods,
)
from benchmarks.bucilua_rule import NET_OPT, ROW_PASSES, epochs_for, method_sizes


def recorder(out: dict, y_te: np.ndarray) -> Record:
    """A function that appends one table row (test RMSE and accuracy of ``p``) to ``out["rows"]``."""

    def record(method: str, size: int, p: np.ndarray, note: str, **facts) -> None:
        out["rows"].append(
            {
                "method": method,
                "size": size,
                "rmse": common.rmse_binary(p, y_te),
                "accuracy": common.accuracy(p, y_te),
                "note": note,
                **facts,
            }
        )

    return record


def teacher_rows(record: Record, teacher, pb: Problem) -> dict:
    """The ensemble's row and the best single library model's (chosen on validation RMSE);
    returns every model's validation RMSE."""
    w = teacher.weights / teacher.weights.sum()
    record(
        "ensemble",
        len(pb.y_tr),
        teacher.predict_proba(pb.x_te),
        ", ".join(f"{m.name} {v:.2f}" for m, v in zip(teacher.members, w) if v > 0),
    )
    val_p = teacher.member_probas(pb.x_va)
    val_rmse = {k: round(common.rmse_binary(p, pb.y_va), 5) for k, p in val_p.items()}
    best = min(val_rmse, key=val_rmse.get)
    best_member = next(m for m in teacher.members if m.name == best)  # only it sees the test rows
    record("best single", len(pb.y_tr), best_member.predict_proba(pb.x_te), best)
    return val_rmse


def ensemble_size_latency(teacher, x_te: np.ndarray, runs: int) -> dict:
    """Bytes and single-row latency of the selected ensemble as scikit-learn runs it."""
    active = teacher.active()
    x1 = x_te[:1]
    return {
        "members": [m.name for m, _ in active],
        "ensemble_bytes": teacher.describe()["bytes"],
        "ensemble_ms": common.latency_p50_ms(
            lambda: [m.predict_proba(x1) for m, _ in active], runs=runs
        ),
    }


def stage_teacher(pname: str, seed: int, args, methods: list[str], sizes: list[int]) -> dict:
    """Stage 1: the teacher's rows, every model's validation RMSE and fit time, and the
    positive-class probability it gives each method's largest transfer set."""
    from distill.cache import inputs_sha256

    pb = encoded_problem(PROBLEMS[pname], args, seed)
    t0 = time.perf_counter()
    teacher, fit_s = selected_ensemble(pb.x_tr, pb.y_tr, pb.x_va, pb.y_va, seed, args.quick)
    out = {"seed": seed, "n": [len(pb.y_tr), len(pb.y_va), len(pb.y_te)], "rows": []}
    out["library_val_rmse"] = teacher_rows(recorder(out, pb.y_te), teacher, pb)
    out["library_fit_s"], out["library_s"] = fit_s, round(time.perf_counter() - t0, 1)
    labels = {}
    for method in methods:
        t = time.perf_counter()
        big = transfer_set(pb, method, max(method_sizes(method, sizes)), seed)
        labels[method] = teacher.predict_proba(big)[:, 1]
        out[f"transfer_sha256_{method}"] = inputs_sha256(big)  # stage 2 rebuilds the same rows
        out[f"label_s_{method}"] = round(time.perf_counter() - t, 1)
    if seed == args.seeds_of[pname][0]:
        out["size_latency"] = ensemble_size_latency(teacher, pb.x_te, args.latency_runs)
    arrays = {f"labels_{m}": v.astype(np.float32) for m, v in labels.items()}
    return {"record": np.asarray(json.dumps(out)), **arrays}


def mimic_size_latency(net, x_te: np.ndarray, y_te: np.ndarray, runs: int) -> dict:
    """The shipped mimic as ONNX fp32 and int8 files: bytes, test RMSE, single-row latency."""
    with tempfile.TemporaryDirectory(prefix="tinyship-bucilua-") as tmp:
        st = common.onnx_int8(net, (x_te.shape[1],), Path(tmp), "mimic")
        s32, s8 = common.ort_session(st.fp32_path), common.ort_session(st.int8_path)

        def probs(sess) -> np.ndarray:
            z = common.ort_predict(sess, x_te)[0]
            e = np.exp(z - z.max(1, keepdims=True))
            return e / e.sum(1, keepdims=True)

        x1 = x_te[:1]
        return {
            "student_fp32_bytes": st.fp32_bytes,
            "student_int8_bytes": st.int8_bytes,
            "fp32_rmse": common.rmse_binary(probs(s32), y_te),
            "int8_rmse": common.rmse_binary(probs(s8), y_te),
            "fp32_ms": common.latency_p50_ms(lambda: common.ort_predict(s32, x1), runs=runs),
            "int8_ms": common.latency_p50_ms(lambda: common.ort_predict(s8, x1), runs=runs),
        }


def stage_nets(pname: str, seed: int, args, teacher: dict, sizes: list[int]) -> dict:
    """Stage 2: the 4k hard-label net and the mimics, on the labels stage 1 stored."""
    pb = encoded_problem(PROBLEMS[pname], args, seed)
    out = {"seed": seed, "rows": []}
    record = recorder(out, pb.y_te)
    t0 = time.perf_counter()
    record_hard_net(record, pb, args.hard_hidden, seed, args.epochs_scale)
    labels = {k[len("labels_") :]: v for k, v in teacher.items() if k.startswith("labels_")}
    stage1 = json.loads(str(teacher["record"]))
    hashes = {m: stage1[f"transfer_sha256_{m}"] for m in labels}
    shipped = record_mimics(record, pb, labels, hashes, sizes, seed, args.epochs_scale)
    out["nets_s"] = round(time.perf_counter() - t0, 1)
    if seed == args.seeds_of[pname][0]:
        out["size_latency"] = mimic_size_latency(shipped, pb.x_te, pb.y_te, args.latency_runs)
    return {"record": np.asarray(json.dumps(out))}


def unit_keys(pname: str, seed: int, args, sizes: list[int]) -> tuple[dict, dict]:
    """What each stage's cached result depends on."""
    import sklearn
    import torch

    split = {k: getattr(args, k) for k in ("n_train", "n_val", "max_test", "quick")}
    teacher = {
        "what": "bucilua_munge teacher",
        "version": 2,
        "unit": [pname, seed],
        "split": split,
        "methods": unit_methods(args.methods, args.curve_seeds, seed),
        "sizes": {
            m: method_sizes(m, sizes) for m in unit_methods(args.methods, args.curve_seeds, seed)
        },
        "munge": MUNGE,
        "library": [[n, repr(e)] for n, e in library_grid(seed, args.quick)],
        "selection": SELECTION,
        "size_latency": [seed == args.seeds_of[pname][0], args.latency_runs],
        "versions": [sklearn.__version__, np.__version__],
    }
    nets = {
        "what": "bucilua_munge nets",
        "version": 2,
        "teacher": common.content_key(teacher),
        "sizes": sizes,
        "hard_hidden": args.hard_hidden,
        "mimic_hidden": MIMIC_HIDDEN,
        "opt": NET_OPT,
        "epochs": [ROW_PASSES, [epochs_for(n) for n in sizes], args.epochs_scale],
        "threads": args.threads,
        "torch": torch.__version__,
    }
    return teacher, nets


def run_unit(unit: tuple[str, int], args, sizes: list[int]) -> tuple[dict, list[bool]]:
    """One problem and seed, both stages cached by content; returns its record (stage 1's rows
    and facts joined with stage 2's) and the two stages' cache hits."""
    import torch

    torch.set_num_threads(args.threads)
    pname, seed = unit
    t_key, n_key = unit_keys(pname, seed, args, sizes)
    methods = t_key["methods"]
    teacher, t_hit = common.cached_arrays(
        "bucilua_teacher", t_key, lambda: stage_teacher(pname, seed, args, methods, sizes)
    )
    nets, n_hit = common.cached_arrays(
        "bucilua_nets", n_key, lambda: stage_nets(pname, seed, args, teacher, sizes)
    )
    rec = json.loads(str(teacher["record"]))
    more = json.loads(str(nets["record"]))
    rec["rows"] += more.pop("rows")
    if "size_latency" in more:
        rec["size_latency"].update(more.pop("size_latency"))
    rec.update(more)
    return rec, [t_hit, n_hit]
