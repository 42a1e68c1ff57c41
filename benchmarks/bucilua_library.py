"""Bucilua 2006's teacher: a grid of scikit-learn models fitted on the 4k rows, combined by
ensemble selection on validation RMSE through the distill stage's build_teacher."""

from __future__ import annotations

import numpy as np

from benchmarks import common


def library_grid(
    seed: int, quick: bool = False, gamma_scale: float = 1.0
) -> list[tuple[str, object]]:
    """The model library: (name, unfitted scikit-learn estimator) over a small grid per kind.

    SVM gammas are multiples of ``gamma_scale``, sklearn's ``gamma="scale"`` value for the
    training features (1 / (width * variance)), so the grid follows each problem's encoding.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    if quick:
        return [
            ("knn_k5", KNeighborsClassifier(5, weights="distance")),
            ("rf_50", RandomForestClassifier(50, random_state=seed, n_jobs=1)),
            ("logreg", LogisticRegression(max_iter=1000)),
        ]
    grid: list[tuple[str, object]] = []
    for c in (1.0, 10.0, 100.0):
        for g in (0.5, 2.0):
            svc = SVC(C=c, gamma=g * gamma_scale, random_state=seed)
            grid.append((f"svm_C{c:g}_g{g:g}", CalibratedClassifierCV(svc, ensemble=False, cv=3)))
    for k in (1, 3, 5, 9, 15, 25):
        grid.append((f"knn_k{k}", KNeighborsClassifier(k, weights="distance")))
    grid.append(("rf_500", RandomForestClassifier(500, random_state=seed, n_jobs=1)))
    grid.append(("extra_trees_500", ExtraTreesClassifier(500, random_state=seed, n_jobs=1)))
    for lr in (0.05, 0.2):
        for depth in (2, 4, 8):
            grid.append(
                (
                    f"boost_lr{lr:g}_d{depth}",
                    HistGradientBoostingClassifier(
                        learning_rate=lr, max_depth=depth, max_iter=300, random_state=seed
                    ),
                )
            )
    for hidden in ((32,), (128,), (256, 128)):
        for s in (seed, seed + 1000):
            grid.append(
                (
                    f"mlp_{'x'.join(map(str, hidden))}_s{s}",
                    MLPClassifier(
                        hidden,
                        alpha=1e-3,
                        max_iter=300,
                        early_stopping=True,
                        n_iter_no_change=15,
                        random_state=s,
                    ),
                )
            )
    grid.append(("logreg", LogisticRegression(C=1.0, max_iter=1000)))
    return grid


def selected_ensemble(
    x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray, seed: int, quick: bool
):
    """Every library model fitted on the training rows, then Caruana 2004 forward selection with
    replacement on validation RMSE (``build_teacher``); returns the teacher."""
    from distill.building import build_teacher
    from distill.members import SklearnMember

    members = []
    gamma_scale = 1.0 / (x_tr.shape[1] * max(float(x_tr.var()), 1e-12))
    for name, est in library_grid(seed, quick, gamma_scale):
        est.fit(x_tr, y_tr)
        members.append(SklearnMember(name, est, 2))
    return build_teacher(
        {"selection_metric": "rmse"},
        x_tr,
        y_tr,
        x_va,
        y_va,
        seed=seed,
        base_dir=common.ROOT,
        members=members,
    )
