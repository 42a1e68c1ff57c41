"""Ensemble selection (Caruana et al. 2004): it must beat its best single model on validation."""

from __future__ import annotations

import numpy as np
import pytest

from distill.ensemble import combine_probas
from distill.selection import METRICS, bagged_ensemble_selection, ensemble_selection
from ground.errors import UserError


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def experts(n: int = 3000, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Three experts, each right (0.9) on its own class and claiming its own class (0.8) elsewhere,
    so any single one has accuracy 1/3 while their equal mix is always right; plus a noise model."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    probas = {}
    for k in range(3):
        p = np.zeros((n, 3))
        own = y == k
        p[own] = 0.05
        p[own, k] = 0.9
        p[~own, k] = 0.8
        p[np.flatnonzero(~own), y[~own]] = 0.2
        probas[f"expert{k}"] = p
    probas["noise"] = rng.dirichlet(np.ones(3), n)
    return probas, y


@pytest.mark.parametrize("metric", list(METRICS))
@pytest.mark.parametrize("combine", ["mean", "geometric"])
def test_selection_finds_the_complementary_experts(metric, combine):
    probas, y = experts()
    r = ensemble_selection(probas, y, metric=metric, init_k=1, max_iter=20, combine=combine)
    fn = METRICS[metric]
    best_single = min(fn(p, y) for p in probas.values())
    chosen = combine_probas(
        [probas[n] for n in r.weights], np.array(list(r.weights.values())), combine
    )
    assert fn(chosen.astype(np.float64), y) < best_single - 0.1
    assert r.weights["noise"] < 0.05
    if (
        metric != "accuracy"
    ):  # accuracy is flat: under the geometric mean two experts already reach 1.0
        for k in range(3):
            assert abs(r.weights[f"expert{k}"] - 1 / 3) < 0.1, r.weights
    assert abs(sum(r.weights.values()) - 1) < 1e-9
    assert r.history[0]["added"] and len(r.history) == 21
    assert r.record()["score"] == r.history[r.best_step]["score"]


def test_sorted_initialization_starts_from_the_k_best():
    probas, y = experts()
    probas["good"] = np.where(np.eye(3)[y] > 0, 0.7, 0.15)
    r = ensemble_selection(probas, y, metric="nll", init_k=2, max_iter=1)
    assert r.history[0]["added"][0] == "good" and len(r.history[0]["added"]) == 2
    assert r.best_single["name"] == "good"


def test_never_worse_than_the_best_single_model():
    """A library where mixing only hurts: the best model alone is returned."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 500)
    perfect = np.eye(4)[y] * 0.97 + 0.01
    probas = {
        "bad": rng.dirichlet(np.ones(4), 500),
        "perfect": perfect,
        "bad2": rng.dirichlet(np.ones(4), 500),
    }
    r = ensemble_selection(probas, y, metric="nll", init_k=3, max_iter=10)
    assert r.weights == {"bad": 0.0, "perfect": 1.0, "bad2": 0.0}


def test_selection_beats_best_single_member_on_digits():
    """On real models: the selected ensemble's validation nll is clearly below every member's."""
    from sklearn.datasets import load_digits

    from distill.library import build_library
    from distill.selection import nll

    d = load_digits()
    x, y = (d.data / 16.0).astype(np.float32), d.target
    lib = build_library(["knn", "logreg", "extra_trees", "mlp_small"], x[:900], y[:900], seed=0)
    probas = {n: m.predict_proba(x[900:1350]) for n, m in lib.items()}
    r = ensemble_selection(probas, y[900:1350], metric="nll", init_k=1, max_iter=25)
    single = {n: nll(p, y[900:1350]) for n, p in probas.items()}
    ens = combine_probas([probas[n] for n in r.weights], np.array(list(r.weights.values())), "mean")
    assert nll(ens.astype(np.float64), y[900:1350]) < 0.85 * min(single.values()), (
        single,
        r.counts,
    )
    assert sum(c > 0 for c in r.counts.values()) >= 2


def test_bagged_selection_averages_its_bags_and_keeps_the_experts():
    """Caruana §2.4: each bag sees half the library; the average still mixes the three experts."""
    probas, y = experts()
    probas.update(
        {f"noise{i}": np.random.default_rng(i).dirichlet(np.ones(3), len(y)) for i in range(3)}
    )
    r = bagged_ensemble_selection(
        probas, y, bags=30, fraction=0.5, seed=0, metric="nll", init_k=1, max_iter=15
    )
    assert abs(sum(r.weights.values()) - 1) < 1e-9
    assert len(r.bags) == 30 and all(len(b["models"]) == 4 for b in r.bags)
    # a model's weight is the mean over bags of its weight there, zero in bags that did not draw it
    for name in probas:
        drawn = [b for b in r.bags if name in b["models"]]
        assert (r.weights[name] > 0) == any(b["counts"].get(name) for b in drawn)
    assert sum(r.weights[f"expert{k}"] for k in range(3)) > 0.6, r.weights  # 3 of 7 models
    chosen = combine_probas(
        [probas[n] for n in r.weights], np.array(list(r.weights.values())), "mean"
    )
    assert METRICS["nll"](chosen.astype(np.float64), y) < min(
        METRICS["nll"](p, y) for p in probas.values()
    )
    assert r.record()["score"] == r.history[0]["score"] and "bagged" in r.record()["method"]
    again = bagged_ensemble_selection(
        probas, y, bags=30, fraction=0.5, seed=0, metric="nll", init_k=1, max_iter=15
    )
    assert again.weights == r.weights


def test_errors():
    probas, y = experts(30)
    with pytest.raises(UserError, match=r"metric must be one of nll, accuracy, rmse; got 'auc'"):
        ensemble_selection(probas, y, metric="auc")
    with pytest.raises(UserError, match=r"needs at least one model"):
        ensemble_selection({}, y)
    with pytest.raises(UserError, match=r"0 < fraction <= 1; got 0.0"):
        bagged_ensemble_selection(probas, y, fraction=0.0)


def test_paired_errors_counts_discordant_and_shared_rows():
    from distill.selection import paired_errors

    y = np.array([0, 1, 1, 0])
    onehot = lambda labels: np.eye(2)[labels]  # noqa: E731
    teacher = onehot([0, 1, 0, 1])  # wrong on rows 2, 3
    member = onehot([1, 1, 0, 0])  # wrong on rows 0, 2
    other = onehot([0, 0, 0, 0])  # wrong on rows 1, 2
    out = paired_errors(teacher, member, y, {"member": member, "other": other})
    assert out["teacher_errors"] == 2 and out["member_errors"] == 2
    assert out["only_teacher_wrong"] == 1 and out["only_member_wrong"] == 1
    assert out["both_wrong"] == {"rows": [2], "members_wrong": [2], "of_members": 2}
