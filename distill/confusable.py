"""§5.2 of Hinton, Vinyals, Dean 2015: which classes each specialist covers.

The generalist's confusions, clustered into subsets; :mod:`distill.specialists` trains one
specialist per subset (the module docstring there says why the diagonal is zeroed).
"""

from __future__ import annotations

import numpy as np

from ground.errors import UserError


def confusable_subsets(
    generalist_probs: np.ndarray, n_specialists: int, *, seed: int
) -> list[list[int]]:
    """Partition the classes by k-means on the columns of the covariance of the generalist's predictions."""
    from sklearn.cluster import KMeans

    n_classes = generalist_probs.shape[1]
    if not 1 <= n_specialists <= n_classes:
        raise UserError(
            f"recipe key 'specialists.n_specialists' must be between 1 and the number of classes "
            f"({n_classes}); got {n_specialists}."
        )
    cov = np.cov(generalist_probs.astype(np.float64), rowvar=False)
    np.fill_diagonal(
        cov, 0.0
    )  # a class's own variance says how often it is predicted, not with what
    assign = KMeans(n_clusters=n_specialists, n_init=10, random_state=seed).fit_predict(cov.T)
    subsets = [sorted(np.flatnonzero(assign == k).tolist()) for k in range(n_specialists)]
    return sorted((s for s in subsets if s), key=lambda s: s[0])
