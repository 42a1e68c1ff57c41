"""Step 4 (verify): run an artifact on holdout.npz and compare it with the torch student.

Figures: top-1 agreement with the student, max absolute error of probabilities,
holdout accuracy, and the runtime (name and version) that produced them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ground.probs import softmax, top1_agreement

from . import tflm
from .program import StudentRun
from .records import ArtifactRecord, Parity
from .registry import THRESHOLD_FAMILY, Format

DEFAULT_THRESHOLDS = {"fp32": 0.999, "fp16": 0.999, "int8": 0.99, "palette": 0.95}


def compare(probs: np.ndarray, reference: np.ndarray, threshold: float) -> Parity:
    """Top-1 agreement and max abs probability error of ``probs`` against the student's (a row
    the student itself calls a tie, two classes within ground.probs.TIE, agrees on either)."""
    agreement, ties = top1_agreement(probs, reference)
    # a NaN output is as wrong as a probability can be (1.0), and stays JSON-writable
    err = float(np.nan_to_num(np.abs(probs - reference), nan=1.0, posinf=1.0).max())
    return Parity(
        n=int(len(probs)),
        agreement=round(agreement, 6),
        max_abs_prob_err=round(err, 6),
        threshold=threshold,
        passed=bool(agreement >= threshold),
        ties_excused=ties,
    )


def threshold_for(precision: str, thresholds: dict[str, float]) -> float:
    return float(thresholds[THRESHOLD_FAMILY.get(precision, precision)])


def verify(
    fmt: Format,
    path: Path,
    record: ArtifactRecord,
    student: StudentRun,
    thresholds: dict[str, float],
) -> ArtifactRecord:
    """Fill ``record``'s parity, accuracy and runtime (or say why no runtime could check it)."""
    why_not = fmt.cannot_run()
    if why_not is not None:
        record.parity, record.accuracy, record.runtime = None, None, None
        if why_not not in record.not_checked:
            record.not_checked.append(why_not)
        return record
    limit = threshold_for(record.precision, thresholds)
    probs = softmax(fmt.predict(path, student.holdout_x))
    record.parity = compare(probs, student.student_probs, limit)
    record.accuracy = round(float((probs.argmax(1) == student.holdout_y).mean()), 6)
    record.runtime = fmt.runtime()
    if record.precision in fmt.micro_precisions:
        result = tflm.run(path, student.holdout_x)
        record.tflm_arena_bytes = result.arena_bytes
        record.tflm_parity = compare(softmax(result.logits), student.student_probs, limit)
        record.runtime = f"{record.runtime} + {result.runtime}"
    return record
