"""The distill stage end to end: recipe -> teacher -> transfer set -> student -> ``student/``.

Bucilua et al. 2006 §3: fit a cumbersome ensemble, grow a transfer set around the training
data (MUNGE), label it with the ensemble and train a small net to mimic it; Hinton et al.
2015 §2 supplies the soft-target loss. A same-architecture student trained on the hard
labels of the original training data alone is the baseline that shows what the teacher
added. Everything is evaluated on the same holdout split, which nothing was tuned on.

Only :func:`distill` writes: ``out/student`` is built in a temp folder and swapped in when
complete (``tinyship.rundir.staged_dir``); checkpoints and teacher-output caches live in
``out/.work`` so a killed run resumes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinyship import rundir
from tinyship.errors import InternalError, UserError
from tinyship.recipe import load_recipe, validate

from . import data as data_mod
from .probs import nll
from .selection import paired_errors
from .students import build_student, count_params_macs, student_input_shape, validate_spec
from .train import (
    EpochData,
    TrainContext,
    accuracy_score,
    fidelity_score,
    fit,
    log_probs,
    predict_logits,
    train_config,
)

CALIBRATION_ROWS = 1024


@dataclass
class DistillResult:
    """What the stage produced: the card (as written) and where, plus wall-clock timings."""

    run_dir: Path
    card: dict
    timings_s: dict[str, float] = field(default_factory=dict)


def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _accuracy(probs_or_logits: np.ndarray, y: np.ndarray) -> float:
    return float((np.asarray(probs_or_logits).argmax(1) == y).mean())


def _softmax(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits.double(), dim=1).float().numpy()


def _jsonable_recipe(recipe: dict) -> dict:
    return json.loads(json.dumps(recipe, default=str))


def validate_recipe(recipe: dict, teacher_fields: dict, transfer_fields: dict) -> dict[str, dict]:
    """Validate every section distill reads before any work starts; returns them with defaults."""
    return {
        "data": data_mod.validate_section(recipe.get("data")),
        "teacher": validate("teacher", recipe.get("teacher"), teacher_fields),
        "transfer": validate("transfer", recipe.get("transfer"), transfer_fields),
        "student": validate_spec(recipe.get("student"))[1],
        "train": train_config(recipe.get("train")),
    }


def distill(
    recipe: dict | str | Path,
    out: str | Path,
    *,
    force: bool = False,
    resume: bool = False,
    seed: int | None = None,
    epochs: int | None = None,
    trust_pickles: bool = False,
    members: list | None = None,
    command: str | None = None,
    progress: bool = True,
    ctx: TrainContext | None = None,
    dist_ctx: Any = None,
) -> DistillResult:
    """Run the distill stage and write ``out/student`` per docs/run-directory.md.

    ``members`` adds Python-API teacher members (e.g. ``SklearnMember(name, fitted_estimator)``)
    to those the recipe names. ``seed``/``epochs`` override ``train.seed``/``train.epochs``.
    ``dist_ctx`` (a ``distill.distributed.DistContext``, as under torchrun) shards the teacher
    labelling across ranks and trains with DDP; only rank 0 writes ``student/``.
    """
    from .building import TEACHER_FIELDS, build_teacher
    from .cache import TeacherCache
    from .transfer import TRANSFER_FIELDS, hard_labels, jitter, make_transfer

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    recipe_path = None
    base_dir = Path.cwd()  # relative paths in a recipe are relative to the recipe file
    if not isinstance(recipe, dict):
        recipe_path = str(recipe)
        base_dir = Path(recipe).resolve().parent
        recipe = load_recipe(recipe)
    out = Path(out)
    if (out / "student").exists() and not force:
        raise UserError(
            f"'{out / 'student'}' already exists. Pass --force to replace it "
            f"(the old one is kept until the new one is complete)."
        )
    for key in ("data", "student"):
        if key not in recipe:
            raise UserError(f"recipe section '{key}' is required for the distill stage.")
    sections = validate_recipe(recipe, TEACHER_FIELDS, TRANSFER_FIELDS)
    tcfg = dict(sections["train"])
    if seed is not None:
        tcfg["seed"] = int(seed)
    if epochs is not None:
        if epochs < 1:
            raise UserError(f"--epochs must be at least 1; got {epochs}.")
        tcfg["epochs"] = int(epochs)
    seed = tcfg["seed"]
    from .distributed import DistContext, cached_teacher_outputs, train_context

    dist_ctx = dist_ctx or DistContext()
    ctx = ctx or (train_context(dist_ctx) if dist_ctx.distributed else TrainContext())
    work = out / ".work"

    # 1. Data, split train / validation / holdout, normalised with statistics of the training split.
    ds = data_mod.load_data(sections["data"], base_dir)
    in_shape = student_input_shape(sections["student"], ds.n_features, ds.image_shape)
    layout = "NC" if len(in_shape) == 1 else "NCHW"
    if int(np.prod(in_shape)) != ds.n_features:
        raise UserError(
            f"student input shape {list(in_shape)} needs {int(np.prod(in_shape))} features per row; "
            f"data '{ds.name}' has {ds.n_features}."
        )
    norm = data_mod.Normalizer.fit(ds.x_train, sections["data"]["normalize"])
    x_tr, x_val, x_ho = norm(ds.x_train), norm(ds.x_val), norm(ds.x_holdout)
    timings["data"] = time.perf_counter() - t0

    # 2. The cumbersome model: fitted on train, ensemble selection on validation (engineer T's side).
    t = time.perf_counter()
    teacher = build_teacher(
        recipe.get("teacher") or {},
        x_tr,
        ds.y_train,
        x_val,
        ds.y_val,
        seed=seed,
        base_dir=base_dir,
        members=members,
        trust_pickles=trust_pickles,
    )
    timings["teacher"] = time.perf_counter() - t

    # 3. Transfer set grown in raw space (nominal values stay in their set), then normalised and labelled.
    t = time.perf_counter()
    x_transfer_raw = make_transfer(recipe.get("transfer") or {}, ds.x_train, ds.nominal, seed=seed)
    data_mod.check_finite(x_transfer_raw, "the transfer set")
    x_transfer = norm(x_transfer_raw)
    cache = TeacherCache(work / "cache")
    p_transfer, p_val, p_ho = (
        np.array(cached_teacher_outputs(teacher, x, cache, dist_ctx), dtype=np.float32)
        for x in (x_transfer, x_val, x_ho)
    )
    y_transfer = hard_labels(x_transfer, x_tr, ds.y_train, p_transfer)
    timings["transfer_and_labels"] = time.perf_counter() - t

    def shaped(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).reshape(
            len(x), *in_shape
        )

    xt_val, xt_ho = shaped(x_val), shaped(x_ho)
    fp_base = {
        "recipe": _jsonable_recipe(
            {k: recipe.get(k) for k in ("data", "teacher", "transfer", "student")}
        ),
        "train": tcfg,
        "teacher": teacher.fingerprint(),
    }

    # 4. The distilled student: mimic the teacher on the transfer set (jittered afresh each epoch if asked).
    t = time.perf_counter()
    sigma = float(sections["transfer"].get("jitter") or 0.0)
    transfer_in = EpochData(
        shaped(x_transfer), torch.from_numpy(y_transfer.astype(np.int64)), log_probs(p_transfer)
    )

    def student_epoch(epoch: int) -> EpochData:
        if sigma <= 0:
            return transfer_in
        xj = jitter(x_transfer, sigma, np.random.default_rng([seed, epoch]))
        pj = np.asarray(teacher.predict_proba(xj), dtype=np.float32)
        return EpochData(shaped(xj), torch.from_numpy(pj.argmax(1).astype(np.int64)), log_probs(pj))

    torch.manual_seed(seed)
    student = build_student(sections["student"], in_shape, ds.num_classes)
    p_val_t = torch.from_numpy(p_val)
    s_fit = fit(
        student,
        student_epoch,
        lambda lg: fidelity_score(lg, p_val_t),
        xt_val,
        tcfg,
        checkpoint=work / "checkpoints" / "student.pt",
        fingerprint=_fingerprint({**fp_base, "role": "student"}),
        resume=resume,
        ctx=ctx,
        desc="student",
        progress=progress,
    )
    timings["student"] = time.perf_counter() - t

    # 5. The baseline: the same architecture, same seed and budget, on hard labels of the original data only.
    b_fit, baseline = None, None
    if tcfg["baseline"]:
        t = time.perf_counter()
        bcfg = {**tcfg, "loss": "hard"}
        base_in = EpochData(shaped(x_tr), torch.from_numpy(ds.y_train), None)
        torch.manual_seed(seed)
        baseline = build_student(sections["student"], in_shape, ds.num_classes)
        y_val_t = torch.from_numpy(ds.y_val)
        b_fit = fit(
            baseline,
            lambda epoch: base_in,
            lambda lg: accuracy_score(lg, y_val_t),
            xt_val,
            bcfg,
            checkpoint=work / "checkpoints" / "baseline.pt",
            fingerprint=_fingerprint({**fp_base, "role": "baseline"}),
            resume=resume,
            ctx=ctx,
            desc="baseline",
            progress=progress,
        )
        timings["baseline"] = time.perf_counter() - t

    if not ctx.is_main:
        return DistillResult(out, {}, timings)

    # 6. Evaluate everything on the same holdout split.
    t = time.perf_counter()
    y_ho = ds.y_holdout
    member_probas = teacher.member_probas(x_ho)
    student_logits = predict_logits(student, xt_ho)
    metrics: dict[str, Any] = {
        "n": int(len(y_ho)),
        "teacher": {"accuracy": _accuracy(p_ho, y_ho), "nll": nll(p_ho, y_ho)},
        "members": {
            name: {"accuracy": _accuracy(p, y_ho), "nll": nll(p, y_ho)}
            for name, p in member_probas.items()
        },
    }
    describe = teacher.describe()
    if metrics["members"]:
        # Ensemble vs single models: the best on the holdout is picked with hindsight; the honest
        # comparison is with the single model validation would have picked (Caruana 2004).
        best = max(metrics["members"], key=lambda n: metrics["members"][n]["accuracy"])
        metrics["teacher"]["best_member"] = {
            "name": best,
            "accuracy": metrics["members"][best]["accuracy"],
            "vs_teacher": paired_errors(p_ho, member_probas[best], y_ho, member_probas),
            "note": "best single member on this holdout (hindsight); vs_teacher: errors row by row "
            "(both_wrong.rows index holdout.npz)",
        }
        picked = ((describe.get("selection") or {}).get("best_single") or {}).get("name")
        if picked in metrics["members"]:
            metrics["teacher"]["validation_pick"] = {
                "name": picked,
                "accuracy": metrics["members"][picked]["accuracy"],
                "note": "the single member ensemble selection ranked best on validation",
            }
    if baseline is not None:
        bp = _softmax(predict_logits(baseline, xt_ho))
        metrics["baseline"] = {
            "accuracy": _accuracy(bp, y_ho),
            "nll": nll(bp, y_ho),
            "agreement_with_teacher": float((bp.argmax(1) == p_ho.argmax(1)).mean()),
            "best_epoch": b_fit.best_epoch,
            "epochs_run": b_fit.epochs_run,
            "note": "same architecture trained on hard labels only",
        }
    complexity = count_params_macs(student, in_shape)

    # 7. Write student/: export, reload and check, then the card. Swapped in only when complete.
    with rundir.staged_dir(out, "student", force=force) as folder:
        program_probs = _export_and_check(student, xt_ho, student_logits, folder / "student.pt2")
        s_prob = program_probs
        metrics["student"] = {
            "accuracy": _accuracy(s_prob, y_ho),
            "nll": nll(s_prob, y_ho),
            "agreement_with_teacher": float((s_prob.argmax(1) == p_ho.argmax(1)).mean()),
            "best_epoch": s_fit.best_epoch,
            "epochs_run": s_fit.epochs_run,
            "validation_fidelity": {"agreement": s_fit.best_score[0], "kl": -s_fit.best_score[1]},
        }
        rng = np.random.default_rng(seed)
        cal_idx = np.sort(
            rng.choice(len(x_tr), size=min(CALIBRATION_ROWS, len(x_tr)), replace=False)
        )
        rundir.atomic_write_npz(folder / "calibration.npz", x=shaped(x_tr[cal_idx]).numpy())
        rundir.atomic_write_npz(
            folder / "holdout.npz",
            x=xt_ho.numpy(),
            y=y_ho.astype(np.int64),
            teacher_probs=p_ho.astype(np.float32),
            student_probs=s_prob.astype(np.float32),
        )
        student_bytes = rundir.path_bytes(folder / "student.pt2")
        param_bytes = 4 * complexity.params
        teacher_bytes = describe.get("bytes")
        sizes = {
            "student_bytes": student_bytes,
            "student_param_bytes": param_bytes,
            "teacher_bytes": teacher_bytes,
            "ratio": (student_bytes / teacher_bytes) if teacher_bytes else None,
            "ratio_params": (param_bytes / teacher_bytes) if teacher_bytes else None,
            "method": (
                f"student: bytes of student.pt2 (torch.export.save, incl. program and metadata); "
                f"student_param_bytes: {complexity.params} parameters x 4 bytes (fp32); "
                f"teacher: {describe.get('bytes_method', 'sum of the members serialized sizes')}; "
                f"per member: "
                + ", ".join(sorted({m["bytes_method"] for m in describe["members"]}))
            ),
        }
        export_section = recipe.get("export") if isinstance(recipe.get("export"), dict) else {}
        card = {
            "schema": "tinyship.card/1",
            "run": out.name,
            "task": "classification",
            "input": {
                "name": "input",
                "shape": list(in_shape),
                "dtype": "float32",
                "layout": layout,
                "normalization": norm.card(),
            },
            "output": {"name": "logits", "kind": "logits", "num_classes": ds.num_classes},
            "labels": list(ds.labels),
            "student": {
                "arch": sections["student"]["kind"],
                "spec": sections["student"],
                "params": complexity.params,
                "macs": complexity.macs,
                "bytes": student_bytes,
                "layers": complexity.layers,
            },
            "teacher": describe,
            "metrics": {"holdout": metrics},
            "sizes": sizes,
            "data": {
                "name": ds.name,
                "n_train": int(len(x_tr)),
                "n_val": int(len(x_val)),
                "n_holdout": int(len(x_ho)),
                "n_transfer": int(len(x_transfer)),
                "source": ds.source,
            },
            "training": {
                "student": _fit_record(s_fit, tcfg),
                "baseline": _fit_record(b_fit, {**tcfg, "loss": "hard"}),
            },
            "lineage": {
                "recipe_path": recipe_path,
                "recipe": _jsonable_recipe(recipe),
                "seed": seed,
                "versions": rundir.package_versions(),
                "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "command": command or "distill.run.distill(...)",
                "processes": {
                    "world_size": dist_ctx.world_size,
                    "backend": dist_ctx.backend or "none",
                    "note": "DDP over rank slices of each global batch; teacher labelling "
                    "sharded across ranks"
                    if dist_ctx.distributed
                    else "one process",
                },
                "timings_s": {
                    **{k: round(v, 2) for k, v in timings.items()},
                    "total": round(time.perf_counter() - t0, 2),
                },
            },
        }
        if isinstance(export_section.get("thresholds"), dict):
            card["thresholds"] = export_section["thresholds"]
        card["sha256"] = {
            n: rundir.sha256_file(folder / n)
            for n in ("student.pt2", "calibration.npz", "holdout.npz")
        }
        rundir.atomic_write_json(folder / "card.json", card)
    timings["evaluate_and_write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    return DistillResult(out, card, timings)


def _fit_record(res, cfg: dict) -> dict | None:
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
    }


def _export_and_check(
    model: torch.nn.Module, x_ho: torch.Tensor, eager_logits: torch.Tensor, path: Path
) -> np.ndarray:
    """torch.export with a dynamic batch, save, reload, and check it reproduces the eager predictions exactly."""
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=65536)
    example = (
        x_ho[:2].clone(),
    )  # a clone: a view would save the whole holdout storage as the sample input
    try:
        program = torch.export.export(model, example, dynamic_shapes=({0: batch},))
    except Exception as exc:  # an unsupported op in a student is our bug, not the user's
        raise InternalError(f"torch.export failed for the student: {exc}") from exc
    torch.export.save(program, path)
    reloaded = torch.export.load(path).module()
    with torch.no_grad():
        logits = torch.cat([reloaded(x_ho[i : i + 2048]) for i in range(0, len(x_ho), 2048)])
    if not torch.equal(logits.argmax(1), eager_logits.argmax(1)):
        n = int((logits.argmax(1) != eager_logits.argmax(1)).sum())
        raise InternalError(
            f"the reloaded student.pt2 disagrees with the trained student on {n} holdout rows"
        )
    return _softmax(logits)
