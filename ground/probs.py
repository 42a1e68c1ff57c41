"""Probability helpers shared by the stages: one softmax and one negative log-likelihood.

The teacher's members, ensemble selection, the student card and the export stage's
parity checks all turn logits into probabilities here, and every number called "nll"
(card, selection history) is computed the same way, with the same floor.
"""

from __future__ import annotations

import numpy as np

LOG_FLOOR = 1e-12  # probabilities are floored here before a log (geometric mean, nll)
#: A reference row whose two most probable classes are within this of each other is a tie: the
#: reference itself cannot tell them apart (float16 rounding alone moves a probability ~1e-3).
TIE = 1e-3


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable: the row max is subtracted first)."""
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def nll(probs: np.ndarray, labels: np.ndarray, floor: float = LOG_FLOOR) -> float:
    """Mean negative log-likelihood of the true labels (probabilities floored before the log)."""
    p = np.asarray(probs, dtype=np.float64)[np.arange(len(labels)), np.asarray(labels)]
    return float(-np.log(np.maximum(p, floor)).mean())


def top1_agreement(probs: np.ndarray, reference: np.ndarray, tie: float = TIE) -> tuple[float, int]:
    """Share of rows whose most probable class in ``probs`` is the reference's, and how many rows
    were excused as ties: on a row where the reference's two best classes are within ``tie``, a
    file that picks either of them agrees (issue 34: one such row of 600 failed an fp16 file)."""
    probs, reference = np.asarray(probs), np.asarray(reference)
    got, want = probs.argmax(1), reference.argmax(1)
    same = got == want
    if reference.shape[1] < 2:
        return float(same.mean()), 0
    top2 = np.sort(reference, axis=1)[:, -2:]
    runner_up = np.argsort(reference, axis=1)[:, -2]
    excused = ~same & (top2[:, 1] - top2[:, 0] <= tie) & (got == runner_up)
    return float((same | excused).mean()), int(excused.sum())
