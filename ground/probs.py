"""Probability helpers shared by the stages: one softmax and one negative log-likelihood.

The teacher's members, ensemble selection, the student card and the export stage's
parity checks all turn logits into probabilities here, and every number called "nll"
(card, selection history) is computed the same way, with the same floor.
"""

from __future__ import annotations

import numpy as np

LOG_FLOOR = 1e-12  # probabilities are floored here before a log (geometric mean, nll)


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
