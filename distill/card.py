"""The student card (``student/card.json``): holdout metrics, sizes, lineage.

Assembled from the records the distill steps return (distill/records.py), so the
card's shape is read here in one place; its fields are documented in
docs/run-directory.md.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ground import rundir
from ground.probs import nll

from .selection import paired_errors
from .transfer import describe as describe_transfer

if TYPE_CHECKING:
    from .records import Config, Data, Trained
    from .students import Complexity
    from .train import FitResult


@dataclass
class Lineage:
    """How this run was started: command, processes (a DistContext), timings, start time."""

    command: str | None
    dist_ctx: Any
    timings: dict[str, float]
    t0: float


def _accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float((np.asarray(probs).argmax(1) == y).mean())


def _scores(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {"accuracy": _accuracy(p, y), "nll": nll(p, y)}


def holdout_metrics(
    y: np.ndarray,
    teacher_probs: np.ndarray,
    member_probas: dict[str, np.ndarray],
    teacher_record: dict,
    student_probs: np.ndarray,
    student_fit: FitResult,
    baseline_probs: np.ndarray | None,
    baseline_fit: FitResult | None,
) -> dict[str, Any]:
    """``metrics.holdout``: teacher, members, student and baseline on the same rows."""
    agree = teacher_probs.argmax(1)
    metrics: dict[str, Any] = {
        "n": int(len(y)),
        "teacher": _scores(teacher_probs, y),
        "members": {name: _scores(p, y) for name, p in member_probas.items()},
    }
    if metrics["members"]:
        metrics["teacher"].update(_best_member(y, teacher_probs, member_probas, teacher_record))
    if baseline_probs is not None and baseline_fit is not None:
        metrics["baseline"] = {
            **_scores(baseline_probs, y),
            "agreement_with_teacher": float((baseline_probs.argmax(1) == agree).mean()),
            "best_epoch": baseline_fit.best_epoch,
            "epochs_run": baseline_fit.epochs_run,
            "note": "same architecture trained on hard labels only",
        }
    metrics["student"] = {
        **_scores(student_probs, y),
        "agreement_with_teacher": float((student_probs.argmax(1) == agree).mean()),
        "best_epoch": student_fit.best_epoch,
        "epochs_run": student_fit.epochs_run,
        "validation_fidelity": {
            "agreement": student_fit.best_score[0],
            "kl": -student_fit.best_score[1],
        },
    }
    return metrics


def _best_member(
    y: np.ndarray, teacher_probs: np.ndarray, member_probas: dict, teacher_record: dict
) -> dict[str, Any]:
    """Ensemble vs single models: the best on the holdout is picked with hindsight; the honest
    comparison is with the single model validation would have picked (Caruana 2004)."""
    accuracy = {n: _accuracy(p, y) for n, p in member_probas.items()}
    best = max(accuracy, key=lambda n: accuracy[n])
    out: dict[str, Any] = {
        "best_member": {
            "name": best,
            "accuracy": accuracy[best],
            "vs_teacher": paired_errors(teacher_probs, member_probas[best], y, member_probas),
            "note": "best single member on this holdout (hindsight); vs_teacher: errors row by row "
            "(both_wrong.rows index holdout.npz)",
        }
    }
    picked = ((teacher_record.get("selection") or {}).get("best_single") or {}).get("name")
    if picked in accuracy:
        out["validation_pick"] = {
            "name": picked,
            "accuracy": accuracy[picked],
            "note": "the single member ensemble selection ranked best on validation",
        }
    return out


def sizes(teacher_record: dict, complexity: Complexity, student_bytes: int) -> dict[str, Any]:
    """Student and teacher bytes, the compression ratio, and how each was measured."""
    param_bytes = 4 * complexity.params
    teacher_bytes = teacher_record.get("bytes")
    per_member = ", ".join(sorted({m["bytes_method"] for m in teacher_record["members"]}))
    return {
        "student_bytes": student_bytes,
        "student_param_bytes": param_bytes,
        "teacher_bytes": teacher_bytes,
        "ratio": (student_bytes / teacher_bytes) if teacher_bytes else None,
        "ratio_params": (param_bytes / teacher_bytes) if teacher_bytes else None,
        "method": (
            f"student: bytes of student.pt2 (torch.export.save, incl. program and metadata); "
            f"student_param_bytes: {complexity.params} parameters x 4 bytes (fp32); "
            f"teacher: {teacher_record.get('bytes_method', 'sum of the members serialized sizes')}; "
            f"per member: {per_member}"
        ),
    }


def fit_record(res: FitResult | None, cfg: dict) -> dict | None:
    """``training.student`` / ``training.baseline``: budget, epochs run, resume point, history."""
    if res is None:
        return None
    return {
        "loss": cfg["loss"],
        "epochs_budget": cfg["epochs"],
        "epochs_run": res.epochs_run,
        "best_epoch": res.best_epoch,
        "stopped_early": res.stopped_early,
        "resumed_from_epoch": res.resumed_from,
        "history": res.history,
        **({"rows": cfg["rows"]} if "rows" in cfg else {}),
    }


def lineage_record(cfg: Config, lineage: Lineage) -> dict[str, Any]:
    """Where the student came from: recipe, seed, versions, command, processes, timings."""
    ctx = lineage.dist_ctx
    return {
        "recipe_path": cfg.recipe_path,
        "recipe": json.loads(json.dumps(cfg.recipe, default=str)),
        "seed": cfg.seed,
        "versions": rundir.package_versions(),
        "machine": rundir.training_machine(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": lineage.command or "distill.run(...)",
        "processes": {
            "world_size": ctx.world_size,
            "backend": ctx.backend or "none",
            "note": "DDP over rank slices of each global batch; teacher labelling "
            "sharded across ranks"
            if ctx.distributed
            else "one process",
        },
        "timings_s": {
            **{k: round(v, 2) for k, v in lineage.timings.items()},
            "total": round(time.perf_counter() - lineage.t0, 2),
        },
    }


def build_card(
    cfg: Config,
    data: Data,
    teacher_record: dict,
    complexity: Complexity,
    student_bytes: int,
    metrics: dict[str, Any],
    *,
    n_transfer: int,
    student: Trained,
    baseline: Trained | None,
    lineage: Lineage,
) -> dict[str, Any]:
    """The whole card but its sha256s (added once the files are written)."""
    ds = data.dataset
    return {
        "schema": "tinyship.card/1",
        "run": cfg.out.name,
        "task": "classification",
        "input": input_spec(data),
        "output": {"name": "logits", "kind": "logits", "num_classes": ds.num_classes},
        "labels": list(ds.labels),
        "student": {
            "arch": cfg.sections["student"]["kind"],
            "spec": cfg.sections["student"],
            "params": complexity.params,
            "macs": complexity.macs,
            "bytes": student_bytes,
            "layers": complexity.layers,
        },
        "teacher": teacher_record,
        "metrics": {"holdout": metrics},
        "sizes": sizes(teacher_record, complexity, student_bytes),
        "data": {
            "name": ds.name,
            "n_train": int(len(data.x_train)),
            "n_val": int(len(data.x_val)),
            "n_holdout": int(len(data.x_holdout)),
            "n_transfer": int(n_transfer),
            "transfer": describe_transfer(
                cfg.recipe.get("transfer"), ds.image_shape, len(data.x_train)
            ),
            "source": ds.source,
            "warnings": list(ds.warnings),
        },
        "training": {
            "student": fit_record(student.fit, student.config),
            "baseline": fit_record(
                baseline.fit if baseline else None,
                baseline.config if baseline else {**cfg.train, "loss": "hard"},
            ),
        },
        "lineage": lineage_record(cfg, lineage),
    }


def input_spec(data: Data) -> dict[str, Any]:
    """The card's (and the ship manifest's) input contract: everything an app author needs.

    The student takes rows exactly as in the data file; normalization and the one-hot of
    nominal columns are inside its graph.
    """
    ds = data.dataset
    encoding = ds.input_encoding()
    flat = data.layout == "NC"
    return {
        "name": "input",
        "shape": list(data.input_shape),
        "dtype": "float32",
        "layout": data.layout,
        "raw": True,
        "values": "features exactly as in the data file"
        + (" (pixels 0..255 for image folders)" if ds.source.get("grayscale") is not None else "")
        + (
            "; categorical columns as their codes (input.preprocess.columns[].categories: the "
            "code is the position), a missing value as its fill value (input.preprocess)"
            if encoding["nominal"] or ds.preprocess
            else ""
        ),
        "columns": encoding["columns"],
        "nominal": {
            name: {"codes": codes, "one_hot_in_graph": flat}
            for name, codes in encoding["nominal"].items()
        },
        "normalization": {
            **data.normalizer.card(),
            "applied": "inside the model graph (its first op); do not normalize before feeding",
        },
        **{k: ds.source[k] for k in ("frontend", "decision") if k in ds.source},
        "preprocess": ds.preprocess_contract(),
        "network_input_shape": list(data.net_shape),
        "int8_io": "files with int8 input take q = round(x_raw / scale) + zero_point; scale and "
        "zero_point per file in exports.json / manifest files[].input.quantization",
    }
