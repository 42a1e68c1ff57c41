"""Ensemble selection from a library of models (Caruana et al., ICML 2004).

This is how the ensembles that Bucilua et al. (2006, §2) compress were built:
start from the best few models (sorted initialization, Caruana §2.2), then
greedily add, with replacement, the model whose addition most improves the
ensemble's metric on a validation split (§2.1 and §2.3: selection with
replacement). The ensemble returned is the best prefix of that sequence, so on
the validation split it is never worse than the best single model. Weights are
the number of times each model was chosen, normalized.

Bagged ensemble selection (Caruana §2.4) runs that selection on random halves of
the library and averages the bags' ensembles, so that no single lucky fit to a small
validation split decides the teacher.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ground.errors import UserError
from ground.probs import nll

from .ensemble import combine_probas


def error_rate(p: np.ndarray, y: np.ndarray) -> float:
    """1 - accuracy, so that every metric is minimized."""
    return float(np.mean(p.argmax(axis=1) != y))


def rmse(p: np.ndarray, y: np.ndarray) -> float:
    """Root mean squared error of the probabilities against one-hot labels (Caruana's RMS)."""
    onehot = np.zeros_like(p, dtype=np.float64)
    onehot[np.arange(len(y)), y] = 1.0
    return float(np.sqrt(np.mean(np.sum((p - onehot) ** 2, axis=1))))


def paired_errors(
    p_teacher: np.ndarray, p_member: np.ndarray, y: np.ndarray, all_members: dict[str, np.ndarray]
) -> dict:
    """Teacher vs one member on the same rows, error by error (McNemar's discordant counts).

    Accuracies alone cannot tell a tie of two different mistakes from one shared mistake. The
    counts say which it is, and for rows both get wrong, how many members of the library agree
    with them: a row nearly every member misreads is one no combination of them can fix.
    """
    t_wrong = p_teacher.argmax(axis=1) != y
    m_wrong = p_member.argmax(axis=1) != y
    both = np.flatnonzero(t_wrong & m_wrong)
    wrong_in = {int(i): sum(int(p[i].argmax() != y[i]) for p in all_members.values()) for i in both}
    return {
        "teacher_errors": int(t_wrong.sum()),
        "member_errors": int(m_wrong.sum()),
        "only_teacher_wrong": int((t_wrong & ~m_wrong).sum()),
        "only_member_wrong": int((m_wrong & ~t_wrong).sum()),
        "both_wrong": {
            "rows": [int(i) for i in both],
            "members_wrong": [wrong_in[int(i)] for i in both],
            "of_members": len(all_members),
        },
    }


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "nll": nll,
    "accuracy": error_rate,
    "rmse": rmse,
}


def _shown(score: float, metric: str) -> float:
    """A minimized score as the card shows it: accuracy as accuracy, the others as they are."""
    return round(1.0 - score if metric == "accuracy" else score, 6)


@dataclass
class SelectionResult:
    """Weights per model (sum 1) and the validation score after each step."""

    weights: dict[str, float]
    counts: dict[str, int]
    metric: str
    history: list[dict] = field(default_factory=list)
    best_step: int = 0
    best_single: dict = field(default_factory=dict)

    method: str = "caruana2004 greedy forward selection with replacement, sorted initialization"
    bags: list[dict] = field(default_factory=list)

    def record(self) -> dict:
        """JSON-ready summary for the card."""
        out = {
            "method": self.method,
            "metric": self.metric,
            "counts": self.counts,
            "best_step": self.best_step,
            "best_single": self.best_single,
            "score": self.history[self.best_step]["score"],
            "history": self.history,
        }
        if self.bags:
            out["weights"] = {n: round(w, 6) for n, w in self.weights.items()}
            out["bags"] = self.bags
        return out


def ensemble_selection(
    probas: dict[str, np.ndarray],
    y: np.ndarray,
    *,
    metric: str = "nll",
    init_k: int = 3,
    max_iter: int = 50,
    combine: str = "mean",
) -> SelectionResult:
    """Greedy forward selection with replacement, from a sorted initialization of the ``init_k`` best models.

    ``probas`` holds each model's validation probabilities; ``combine`` is how the
    chosen bag of models is turned into one prediction (``mean`` or ``geometric``).
    Scores are minimized (accuracy is scored as error rate); the history records
    ``accuracy`` as accuracy for readability.
    """
    if metric not in METRICS:
        raise UserError(
            f"ensemble selection metric must be one of {', '.join(METRICS)}; got {metric!r}."
        )
    if not probas:
        raise UserError("ensemble selection needs at least one model in the library.")
    score_fn = METRICS[metric]
    names = list(probas)
    y = np.asarray(y).astype(np.int64)
    P = [np.asarray(probas[n], dtype=np.float64) for n in names]

    single = np.array([score_fn(p, y) for p in P])
    order = np.argsort(single, kind="stable")
    counts = np.zeros(len(names), dtype=np.int64)
    init = order[: max(1, min(init_k, len(names)))]
    counts[init] = 1

    def score_of(c: np.ndarray) -> float:
        idx = np.flatnonzero(c)
        return score_fn(
            combine_probas([P[i] for i in idx], c[idx].astype(float), combine).astype(np.float64), y
        )

    current = score_of(counts)
    history = [
        {"step": 0, "added": [names[i] for i in init], "score": _shown(current, metric)}
    ]  # best first
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
        history.append({"step": step, "added": [names[i]], "score": _shown(current, metric)})
        if current < best_score - 1e-12:
            best_counts, best_score, best_step = counts.copy(), current, step
    # The best single model is a valid ensemble too: never return something worse on validation.
    b = int(order[0])
    if single[b] < best_score - 1e-12:
        best_counts = np.zeros_like(counts)
        best_counts[b] = 1
        best_score = single[b]
        history.append(
            {
                "step": len(history),
                "added": [names[b]],
                "score": _shown(best_score, metric),
                "note": "best single model beats every greedy prefix",
            }
        )
        best_step = len(history) - 1
    total = best_counts.sum()
    return SelectionResult(
        weights={n: float(c) / total for n, c in zip(names, best_counts)},
        counts={n: int(c) for n, c in zip(names, best_counts)},
        metric=metric,
        history=history,
        best_step=best_step,
        best_single={"name": names[b], "score": _shown(single[b], metric)},
    )


def bagged_ensemble_selection(
    probas: dict[str, np.ndarray],
    y: np.ndarray,
    *,
    bags: int = 20,
    fraction: float = 0.5,
    seed: int = 0,
    metric: str = "nll",
    init_k: int = 3,
    max_iter: int = 50,
    combine: str = "mean",
) -> SelectionResult:
    """Caruana §2.4: select from ``bags`` random samples of ``fraction`` of the library; average their weights.

    The returned history is the final ensemble's validation score alone (step 0); each
    bag's models and counts are in ``bags``.
    """
    if not 0.0 < fraction <= 1.0:
        raise UserError(f"bagged ensemble selection needs 0 < fraction <= 1; got {fraction!r}.")
    if bags < 1:
        raise UserError(f"bagged ensemble selection needs at least 1 bag; got {bags!r}.")
    names = list(probas)
    if len(names) < 2:
        return ensemble_selection(
            probas, y, metric=metric, init_k=init_k, max_iter=max_iter, combine=combine
        )
    rng = np.random.default_rng(seed)
    size = max(2, int(round(fraction * len(names))))
    weights = dict.fromkeys(names, 0.0)
    records = []
    for _ in range(bags):
        picked = sorted(rng.choice(len(names), size=size, replace=False))
        sub = {names[i]: probas[names[i]] for i in picked}
        r = ensemble_selection(
            sub, y, metric=metric, init_k=init_k, max_iter=max_iter, combine=combine
        )
        for n, w in r.weights.items():
            weights[n] += w / bags
        records.append({"models": list(sub), "counts": {n: c for n, c in r.counts.items() if c}})
    score_fn = METRICS[metric]
    y = np.asarray(y).astype(np.int64)
    idx = [n for n in names if weights[n] > 0]
    final = score_fn(
        combine_probas(
            [np.asarray(probas[n], np.float64) for n in idx],
            np.array([weights[n] for n in idx]),
            combine,
        ).astype(np.float64),
        y,
    )
    single = {n: score_fn(np.asarray(probas[n], np.float64), y) for n in names}
    best = min(single, key=single.get)
    return SelectionResult(
        weights=weights,
        counts={n: sum(b["counts"].get(n, 0) for b in records) for n in names},
        metric=metric,
        history=[{"step": 0, "added": idx, "score": _shown(final, metric)}],
        best_step=0,
        best_single={"name": best, "score": _shown(single[best], metric)},
        method=f"caruana2004 bagged ensemble selection: {bags} bags of {size} of {len(names)} models, "
        "greedy selection with replacement and sorted initialization in each, weights averaged",
        bags=records,
    )
