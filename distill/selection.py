"""Ensemble selection from a library of models (Caruana et al., ICML 2004).

This is how the ensembles that Bucilua et al. (2006, §2) compress were built:
start from the best few models (sorted initialization, Caruana §2.2), then
greedily add, with replacement, the model whose addition most improves the
ensemble's metric on a validation split (§2.1 and §2.3: selection with
replacement). The ensemble returned is the best prefix of that sequence, so on
the validation split it is never worse than the best single model. Weights are
the number of times each model was chosen, normalized.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from tinyship.errors import UserError

from .teachers import LOG_FLOOR, combine_probas


def nll(p: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels (lower is better)."""
    return float(-np.mean(np.log(np.maximum(p[np.arange(len(y)), y], LOG_FLOOR))))


def error_rate(p: np.ndarray, y: np.ndarray) -> float:
    """1 - accuracy, so that every metric is minimized."""
    return float(np.mean(p.argmax(axis=1) != y))


def rmse(p: np.ndarray, y: np.ndarray) -> float:
    """Root mean squared error of the probabilities against one-hot labels (Caruana's RMS)."""
    onehot = np.zeros_like(p, dtype=np.float64)
    onehot[np.arange(len(y)), y] = 1.0
    return float(np.sqrt(np.mean(np.sum((p - onehot) ** 2, axis=1))))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {"nll": nll, "accuracy": error_rate, "rmse": rmse}


@dataclass
class SelectionResult:
    """Weights per model (sum 1) and the validation score after each step."""

    weights: dict[str, float]
    counts: dict[str, int]
    metric: str
    history: list[dict] = field(default_factory=list)
    best_step: int = 0
    best_single: dict = field(default_factory=dict)

    def record(self) -> dict:
        """JSON-ready summary for the card."""
        return {"method": "caruana2004 greedy forward selection with replacement, sorted initialization",
                "metric": self.metric, "counts": self.counts, "best_step": self.best_step,
                "best_single": self.best_single, "score": self.history[self.best_step]["score"],
                "history": self.history}


def ensemble_selection(probas: dict[str, np.ndarray], y: np.ndarray, *, metric: str = "nll", init_k: int = 3,
                       max_iter: int = 50, combine: str = "mean") -> SelectionResult:
    """Greedy forward selection with replacement, from a sorted initialization of the ``init_k`` best models.

    ``probas`` holds each model's validation probabilities; ``combine`` is how the
    chosen bag of models is turned into one prediction (``mean`` or ``geometric``).
    Scores are minimized (accuracy is scored as error rate); the history records
    ``accuracy`` as accuracy for readability.
    """
    if metric not in METRICS:
        raise UserError(f"ensemble selection metric must be one of {', '.join(METRICS)}; got {metric!r}.")
    if not probas:
        raise UserError("ensemble selection needs at least one model in the library.")
    score_fn = METRICS[metric]
    names = list(probas)
    y = np.asarray(y).astype(np.int64)
    P = [np.asarray(probas[n], dtype=np.float64) for n in names]

    def show(s: float) -> float:
        return round(1.0 - s if metric == "accuracy" else s, 6)

    single = np.array([score_fn(p, y) for p in P])
    order = np.argsort(single, kind="stable")
    counts = np.zeros(len(names), dtype=np.int64)
    init = order[:max(1, min(init_k, len(names)))]
    counts[init] = 1

    def score_of(c: np.ndarray) -> float:
        idx = np.flatnonzero(c)
        return score_fn(combine_probas([P[i] for i in idx], c[idx].astype(float), combine).astype(np.float64), y)

    current = score_of(counts)
    history = [{"step": 0, "added": [names[i] for i in init], "score": show(current)}]  # best first
    best_counts, best_score, best_step = counts.copy(), current, 0
    for step in range(1, max_iter + 1):
        trial = []
        for i in range(len(names)):
            c = counts.copy()
            c[i] += 1
            trial.append(score_of(c))
        i = int(np.argmin(trial))  # ties: the earlier model in the library
        counts[i] += 1
        current = trial[i]
        history.append({"step": step, "added": [names[i]], "score": show(current)})
        if current < best_score - 1e-12:
            best_counts, best_score, best_step = counts.copy(), current, step
    # The best single model is a valid ensemble too: never return something worse on validation.
    b = int(order[0])
    if single[b] < best_score - 1e-12:
        best_counts = np.zeros_like(counts)
        best_counts[b] = 1
        best_score = single[b]
        history.append({"step": len(history), "added": [names[b]], "score": show(best_score),
                        "note": "best single model beats every greedy prefix"})
        best_step = len(history) - 1
    total = best_counts.sum()
    return SelectionResult(
        weights={n: float(c) / total for n, c in zip(names, best_counts)},
        counts={n: int(c) for n, c in zip(names, best_counts)},
        metric=metric, history=history, best_step=best_step,
        best_single={"name": names[b], "score": show(single[b])})
