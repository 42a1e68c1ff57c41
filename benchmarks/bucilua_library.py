"""Bucilua 2006's teacher: a library of scikit-learn models of every kind the paper used (its §2:
bagged and boosted trees, SVMs, kNN, logistic regression, naive Bayes, neural nets, decision
trees), fitted on the 4k rows and combined by Caruana 2004 forward selection with replacement on
validation RMSE through the distill stage's build_teacher."""

from __future__ import annotations

import time

import numpy as np

from benchmarks import common

SELECTION = {"selection_metric": "rmse", "selection": "greedy", "selection_iters": 100}


def _svms(seed: int, gamma_scale: float) -> list[tuple[str, object]]:
    """RBF SVMs over C x gamma, linear and polynomial ones; Platt-calibrated (3-fold) for
    probabilities. Gammas are multiples of sklearn's ``gamma="scale"`` for the features."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC, LinearSVC

    def cal(est) -> object:
        return CalibratedClassifierCV(est, ensemble=False, cv=3)

    out = [
        (f"svm_rbf_C{c:g}_g{g:g}", cal(SVC(C=c, gamma=g * gamma_scale, random_state=seed)))
        for c in (0.1, 1.0, 10.0, 100.0)
        for g in (0.25, 1.0, 4.0)
    ]
    out += [
        (f"svm_linear_C{c:g}", cal(LinearSVC(C=c, random_state=seed))) for c in (0.01, 0.1, 1.0)
    ]
    out += [
        (f"svm_poly{d}_C{c:g}", cal(SVC(C=c, kernel="poly", degree=d, gamma=gamma_scale, random_state=seed)))
        for d in (2, 3)
        for c in (0.1, 1.0)
    ]  # fmt: skip
    return out


def _trees(seed: int) -> list[tuple[str, object]]:
    """Single trees, bagged trees, random forests, extra trees, boosted stumps and gradient
    boosting from depth 1 to unlimited with 500+ iterations (no early stopping)."""
    from sklearn.ensemble import (
        AdaBoostClassifier,
        BaggingClassifier,
        ExtraTreesClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.tree import DecisionTreeClassifier

    out: list[tuple[str, object]] = [
        (f"tree_d{d or 'full'}", DecisionTreeClassifier(max_depth=d, random_state=seed))
        for d in (4, 8, None)
    ]
    out += [
        (f"bagged_trees_{n}_d{d or 'full'}",
         BaggingClassifier(DecisionTreeClassifier(max_depth=d), n_estimators=n, random_state=seed, n_jobs=1))
        for n, d in ((100, None), (100, 8))
    ]  # fmt: skip
    out += [
        (f"rf_500_mf{mf}", RandomForestClassifier(500, max_features=mf, random_state=seed, n_jobs=1))
        for mf in ("sqrt", 0.5)
    ]  # fmt: skip
    out.append(("extra_trees_500", ExtraTreesClassifier(500, random_state=seed, n_jobs=1)))
    out.append(
        ("boosted_stumps_500",
         AdaBoostClassifier(DecisionTreeClassifier(max_depth=1), n_estimators=500, random_state=seed))
    )  # fmt: skip
    for depth in (1, 2, 4, 8, None):
        for lr in (0.05, 0.2):
            hgb = HistGradientBoostingClassifier(
                learning_rate=lr, max_depth=depth, max_iter=500, early_stopping=False,
                max_leaf_nodes=None if depth is None else 31, random_state=seed,
            )  # fmt: skip
            out.append((f"boosted_d{depth or 'unlimited'}_lr{lr:g}_500", hgb))
    return out


def _others(seed: int) -> list[tuple[str, object]]:
    """kNN, logistic regression, naive Bayes and neural nets."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import BernoulliNB, GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier

    out: list[tuple[str, object]] = [
        (f"knn_k{k}_{w}", KNeighborsClassifier(k, weights=w))
        for k in (1, 5, 15, 25, 50, 100)
        for w in ("uniform", "distance")
        if not (k == 1 and w == "distance")  # the same model as k=1 uniform
    ]
    out.append(("knn_k3_distance", KNeighborsClassifier(3, weights="distance")))
    out += [
        (f"logreg_C{c:g}", LogisticRegression(C=c, max_iter=2000))
        for c in (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
    ]
    out += [
        ("naive_bayes_gaussian", GaussianNB()),
        ("naive_bayes_gaussian_smooth", GaussianNB(var_smoothing=1e-3)),
        ("naive_bayes_bernoulli", BernoulliNB()),
    ]
    for hidden in ((8,), (32,), (128,), (256, 128)):
        for s in (seed, seed + 1000):
            mlp = MLPClassifier(
                hidden, alpha=1e-3, max_iter=300, early_stopping=True, n_iter_no_change=15,
                random_state=s,
            )  # fmt: skip
            out.append((f"mlp_{'x'.join(map(str, hidden))}_s{s}", mlp))
    return out


def library_grid(
    seed: int, quick: bool = False, gamma_scale: float = 1.0
) -> list[tuple[str, object]]:
    """The model library: (name, unfitted scikit-learn estimator), 60+ models of 7 kinds (3 with
    ``quick``: a check of the path, not a library)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    if quick:
        return [
            ("knn_k5_distance", KNeighborsClassifier(5, weights="distance")),
            ("rf_50", RandomForestClassifier(50, random_state=seed, n_jobs=1)),
            ("logreg_C1", LogisticRegression(max_iter=1000)),
        ]
    return _svms(seed, gamma_scale) + _trees(seed) + _others(seed)


def selected_ensemble(
    x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray, seed: int, quick: bool
):
    """Every library model fitted on the training rows, then Caruana 2004 forward selection with
    replacement on validation RMSE (``build_teacher``); returns the teacher and each model's fit
    seconds."""
    from distill.building import build_teacher
    from distill.members import SklearnMember

    members, fit_s = [], {}
    gamma_scale = 1.0 / (x_tr.shape[1] * max(float(x_tr.var()), 1e-12))
    for name, est in library_grid(seed, quick, gamma_scale):
        t = time.perf_counter()
        est.fit(x_tr, y_tr)
        fit_s[name] = round(time.perf_counter() - t, 2)
        members.append(SklearnMember(name, est, 2))
    teacher = build_teacher(
        SELECTION, x_tr, y_tr, x_va, y_va, seed=seed, base_dir=common.ROOT, members=members
    )
    return teacher, fit_s
