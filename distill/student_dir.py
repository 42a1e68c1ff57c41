"""The last steps of a run: export the trained student, score it on the holdout, write ``student/``.

Only :func:`write_student_dir` writes ``student/``: built in a temp folder and swapped in when
complete (``ground.rundir.staged_dir``); the exported program waits in ``out/.work`` until then.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ground import rundir
from ground.errors import InternalError
from ground.probs import softmax

from .card import Lineage, build_card, holdout_metrics
from .records import Config, Data, Exported, Labels, Trained
from .students import count_params_macs
from .train import predict_logits

CALIBRATION_ROWS = 1024
RAW_HOLDOUT = "holdout_raw.csv"


def export_student(cfg: Config, data: Data, student: Trained) -> Exported:
    """torch.export the student (dynamic batch) into the work folder, reload it, check it
    reproduces the eager predictions; its holdout probabilities are what the card reports."""
    path = cfg.work / "student.pt2"
    path.parent.mkdir(parents=True, exist_ok=True)
    x_ho = data.shaped(data.x_holdout)
    probs = _export_and_check(student.model, x_ho, predict_logits(student.model, x_ho), path)
    return Exported(path, probs)


def evaluate(
    data: Data,
    teacher: Any,
    labels: Labels,
    exported: Exported,
    student: Trained,
    baseline: Trained | None,
) -> dict[str, Any]:
    """Teacher, members, student (the exported program) and baseline on the same holdout split."""
    baseline_probs = None
    if baseline is not None:
        baseline_probs = _probs(predict_logits(baseline.model, data.shaped(data.x_holdout)))
    return holdout_metrics(
        data.dataset.y_holdout,
        labels.holdout,
        teacher.member_probas(data.x_holdout),
        teacher.describe(),
        exported.probs,
        student.fit,
        baseline_probs,
        baseline.fit if baseline is not None else None,
    )


def write_student_dir(
    cfg: Config,
    data: Data,
    teacher: Any,
    n_transfer: int,
    labels: Labels,
    exported: Exported,
    student: Trained,
    baseline: Trained | None,
    metrics: dict[str, Any],
    *,
    force: bool,
    lineage: Lineage,
) -> dict:
    """Write student/ (student.pt2, calibration.npz, holdout.npz, then card.json), swapped in
    only when complete; returns the card."""
    with rundir.staged_dir(cfg.out, "student", force=force) as folder:
        shutil.copy2(exported.path, folder / "student.pt2")
        rng = np.random.default_rng(cfg.seed)
        n_cal = min(CALIBRATION_ROWS, len(data.x_train))
        cal_idx = np.sort(rng.choice(len(data.x_train), size=n_cal, replace=False))
        rundir.atomic_write_npz(
            folder / "calibration.npz", x=data.shaped(data.x_train[cal_idx]).numpy()
        )
        rundir.atomic_write_npz(
            folder / "holdout.npz",
            x=data.shaped(data.x_holdout).numpy(),
            y=data.dataset.y_holdout.astype(np.int64),
            teacher_probs=labels.holdout.astype(np.float32),
            student_probs=exported.probs.astype(np.float32),
        )
        card = build_card(
            cfg,
            data,
            teacher.describe(),
            count_params_macs(student.model.net, data.net_shape),
            rundir.path_bytes(folder / "student.pt2"),
            metrics,
            n_transfer=n_transfer,
            student=student,
            baseline=baseline,
            lineage=lineage,
        )
        names = ["student.pt2", "calibration.npz", "holdout.npz"]
        if data.dataset.raw_holdout is not None:  # the shipped examples are run on these rows
            names.append(write_raw_holdout(folder, data.dataset))
        card["sha256"] = {n: rundir.sha256_file(folder / n) for n in names}
        rundir.atomic_write_json(folder / "card.json", card)
    return card


def write_raw_holdout(folder: Path, ds: Any) -> str:
    """``holdout_raw.csv``: the holdout rows as the data file has them, label column left out,
    in holdout.npz's order, written in the file's own encoding and delimiter."""
    import csv
    import io

    dialect = ds.preprocess.get("csv") or {}
    buf = io.StringIO(newline="")
    w = csv.writer(buf, delimiter=dialect.get("delimiter", ","), lineterminator="\n")
    w.writerow(ds.raw_holdout["header"])
    w.writerows(ds.raw_holdout["rows"])
    data = buf.getvalue().encode(dialect.get("encoding", "utf-8"))
    rundir.atomic_write_bytes(folder / RAW_HOLDOUT, data)
    return RAW_HOLDOUT


def _probs(logits: torch.Tensor) -> np.ndarray:
    return softmax(logits.double().numpy()).astype(np.float32)


def _export_and_check(
    model: torch.nn.Module, x_ho: torch.Tensor, eager_logits: torch.Tensor, path: Path
) -> np.ndarray:
    """torch.export with a dynamic batch, save, reload, and check it reproduces the eager
    predictions exactly; returns the reloaded program's holdout probabilities."""
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=65536)
    example = (x_ho[:2].clone(),)  # a clone: a view would save the whole holdout storage
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
    return _probs(logits)
