"""One (problem, seed) unit of the Bucilua run: every table row as data, then size and latency
for the first seed, cached by content so a killed run resumes; runs in a worker or in-process."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks import common
from benchmarks.bucilua_data import (
    MIMIC_HIDDEN,
    MUNGE,
    PATIENCE,
    PROBLEMS,
    Problem,
    encoded_problem,
)
from benchmarks.bucilua_library import library_grid, selected_ensemble
from benchmarks.bucilua_nets import Record, record_hard_net, record_mimics, unit_methods


def recorder(out: dict, y_te: np.ndarray) -> Record:
    """A function that appends one table row (test RMSE and accuracy of ``p``) to ``out["rows"]``."""

    def record(method: str, size: int, p: np.ndarray, note: str) -> None:
        out["rows"].append(
            {
                "method": method,
                "size": size,
                "rmse": common.rmse_binary(p, y_te),
                "accuracy": common.accuracy(p, y_te),
                "note": note,
            }
        )

    return record


def record_teacher_rows(record: Record, teacher, pb: Problem) -> None:
    """The ensemble's row (its members' weights as the note) and the best single library model's,
    chosen on validation RMSE."""
    w = teacher.weights / teacher.weights.sum()
    record(
        "ensemble",
        len(pb.y_tr),
        teacher.predict_proba(pb.x_te),
        ", ".join(f"{m.name} {v:.2f}" for m, v in zip(teacher.members, w) if v > 0),
    )
    val_p = teacher.member_probas(pb.x_va)
    best = min(val_p, key=lambda k: common.rmse_binary(val_p[k], pb.y_va))
    best_member = next(m for m in teacher.members if m.name == best)  # only it sees the test rows
    record("best single", len(pb.y_tr), best_member.predict_proba(pb.x_te), best)


def run_problem(pname: str, section: dict, args, seed: int, mults: list[int]) -> dict:
    """One problem, one seed: every row of the tables as data."""
    pb = encoded_problem(section, args, seed)
    teacher = selected_ensemble(pb.x_tr, pb.y_tr, pb.x_va, pb.y_va, seed, args.quick)
    out = {"seed": seed, "n": [len(pb.y_tr), len(pb.y_va), len(pb.y_te)], "rows": [], "nets": {}}
    record = recorder(out, pb.y_te)
    record_teacher_rows(record, teacher, pb)
    record_hard_net(record, pb, args, seed)
    shipped = record_mimics(record, pb, teacher, args, seed, mults)
    out["shipped"], out["teacher"], out["x_te"], out["y_te"] = shipped, teacher, pb.x_te, pb.y_te
    return out


def size_latency(res: dict, work: Path, runs: int) -> dict:
    """Bytes and single-row latency of the ensemble (scikit-learn) and the shipped mimic (ONNX)."""
    teacher, x_te, y_te = res["teacher"], res["x_te"], res["y_te"]
    st = common.onnx_int8(res["shipped"], (x_te.shape[1],), work, "mimic")
    s32, s8 = common.ort_session(st.fp32_path), common.ort_session(st.int8_path)

    def probs(sess) -> np.ndarray:
        z = common.ort_predict(sess, x_te)[0]
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    x1 = x_te[:1]
    active = teacher.active()
    desc = teacher.describe()
    return {
        "members": [m.name for m, _ in active],
        "ensemble_bytes": desc["bytes"],
        "student_fp32_bytes": st.fp32_bytes,
        "student_int8_bytes": st.int8_bytes,
        "int8_rmse": common.rmse_binary(probs(s8), y_te),
        "fp32_rmse": common.rmse_binary(probs(s32), y_te),
        "ensemble_ms": common.latency_p50_ms(
            lambda: [m.predict_proba(x1) for m, _ in active], runs=runs
        ),
        "fp32_ms": common.latency_p50_ms(lambda: common.ort_predict(s32, x1), runs=runs),
        "int8_ms": common.latency_p50_ms(lambda: common.ort_predict(s8, x1), runs=runs),
    }


def run_unit(unit: tuple[str, int], args, mults: list[int]) -> tuple[dict, bool]:
    """One problem and seed (plus size and latency for the first seed), cached by content so a
    killed run resumes where it stopped; runs in a worker process or in this one."""
    import json

    import sklearn
    import torch

    pname, seed = unit
    key = {
        "what": "bucilua_munge unit",
        "version": 1,
        "unit": [pname, seed],
        "size_latency": seed == args.seeds[0],
        "mults": mults,
        "args": {
            k: getattr(args, k)
            for k in ("n_train", "n_val", "max_test", "quick", "hard_hidden", "budget_rows",
                      "epochs_scale", "methods", "latency_runs", "threads")
        },
        "unit_methods": unit_methods(args, seed),
        "fixed": [MUNGE, MIMIC_HIDDEN, PATIENCE, [n for n, _ in library_grid(seed, args.quick)]],
        "versions": [sklearn.__version__, torch.__version__],
    }  # fmt: skip

    def compute() -> dict[str, np.ndarray]:
        torch.set_num_threads(args.threads)
        r = run_problem(pname, PROBLEMS[pname], args, seed, mults)
        if key["size_latency"]:
            with tempfile.TemporaryDirectory(prefix="tinyship-bucilua-") as tmp:
                r["size_latency"] = size_latency(r, Path(tmp), args.latency_runs)
        for k in ("shipped", "teacher", "x_te", "y_te"):
            r.pop(k)
        return {"record": np.asarray(json.dumps(r))}

    arrays, hit = common.cached_arrays("bucilua_unit", key, compute)
    return json.loads(str(arrays["record"])), hit
