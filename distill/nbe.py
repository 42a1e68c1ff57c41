"""NBE (Bucilua et al. 2006 §4.2): synthetic rows sampled from a naive-Bayes mixture density.

One of the transfer-set generators that :mod:`distill.transfer` names (``method: nbe``).
"""

from __future__ import annotations

import numpy as np


class NaiveBayesMixture:
    """p(x) = sum_k pi_k prod_a p(x_a | k): a naive-Bayes mixture fitted by EM.

    This is the model class of NBE (Lowd & Domingos 2005, "Naive Bayes models for
    probability estimation"), which Bucilua et al. (§4.2) sample from. What we
    implement: nominal attributes are categorical per component (Laplace-smoothed),
    continuous attributes are Gaussian per component (variance floored); EM starts
    from k-means clusters. Where NBE grows the number of components incrementally
    and prunes them by held-out likelihood, we pick the count from a grid
    (1, 2, 4, ..., 64) by held-out log-likelihood on 10% of the rows, then refit on
    all rows. Sampled continuous values are clipped to the observed range.
    """

    def __init__(
        self, n_components: int, nominal: np.ndarray, max_iter: int = 100, seed: int = 0
    ) -> None:
        self.k, self.nominal, self.max_iter, self.seed = n_components, nominal, max_iter, seed

    def _encode(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        cont = (x[:, ~self.nominal] - self.mean) / self.std
        codes = [
            np.searchsorted(v, x[:, a]) for v, a in zip(self.values, np.flatnonzero(self.nominal))
        ]
        return cont, codes

    def _log_joint(self, cont: np.ndarray, codes: list[np.ndarray]) -> np.ndarray:
        lj = np.tile(np.log(self.pi), (len(cont), 1))
        if cont.shape[1]:
            lj += -0.5 * (
                np.log(2 * np.pi * self.var).sum(1)
                + ((cont**2) @ (1 / self.var).T)
                - 2 * cont @ (self.mu / self.var).T
                + (self.mu**2 / self.var).sum(1)
            )
        for c, th in zip(codes, self.theta):
            lj += np.log(th).T[c]  # log once per (component, value), then gather rows
        return lj

    def fit(self, x: np.ndarray) -> NaiveBayesMixture:
        from sklearn.cluster import KMeans

        self.mean = x[:, ~self.nominal].mean(0)
        self.std = np.where(x[:, ~self.nominal].std(0) > 0, x[:, ~self.nominal].std(0), 1.0)
        self.lo, self.hi = x[:, ~self.nominal].min(0), x[:, ~self.nominal].max(0)
        self.values = [np.unique(x[:, a]) for a in np.flatnonzero(self.nominal)]
        cont, codes = self._encode(x)
        n = len(x)
        onehots = [np.eye(len(v))[c] for v, c in zip(self.values, codes)]
        feats = np.hstack([cont] + onehots)
        k = min(self.k, n)
        labels = (
            KMeans(k, n_init=1, random_state=self.seed).fit_predict(feats)
            if k > 1
            else np.zeros(n, int)
        )
        r = np.eye(k)[labels]
        prev = -np.inf
        for _ in range(self.max_iter):
            nk = r.sum(0) + 1e-9
            self.pi = (nk + 1e-3) / (n + 1e-3 * k)
            self.mu = (r.T @ cont) / nk[:, None]
            self.var = np.maximum((r.T @ cont**2) / nk[:, None] - self.mu**2, 1e-3)
            self.theta = [((r.T @ oh) + 1.0) / (nk[:, None] + oh.shape[1]) for oh in onehots]
            lj = self._log_joint(cont, codes)
            m = lj.max(1, keepdims=True)
            ll = float((m[:, 0] + np.log(np.exp(lj - m).sum(1))).sum())
            r = np.exp(lj - m)
            r /= r.sum(1, keepdims=True)
            if ll - prev < 1e-5 * n:
                break
            prev = ll
        return self

    def score(self, x: np.ndarray) -> float:
        """Mean log-likelihood per row (of the standardized continuous part)."""
        cont, codes = self._encode(x)
        codes = [np.clip(c, 0, len(v) - 1) for c, v in zip(codes, self.values)]
        lj = self._log_joint(cont, codes)
        m = lj.max(1, keepdims=True)
        return float((m[:, 0] + np.log(np.exp(lj - m).sum(1))).mean())

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        comp = rng.choice(len(self.pi), size=n, p=self.pi / self.pi.sum())
        out = np.empty((n, len(self.nominal)))
        cont = self.mu[comp] + np.sqrt(self.var[comp]) * rng.standard_normal((n, self.mu.shape[1]))
        out[:, ~self.nominal] = np.clip(cont * self.std + self.mean, self.lo, self.hi)
        for v, th, a in zip(self.values, self.theta, np.flatnonzero(self.nominal)):
            cdf = np.cumsum(th[comp], axis=1)
            u = rng.random((n, 1)) * cdf[:, -1:]
            out[:, a] = v[np.minimum((u > cdf).sum(1), len(v) - 1)]
        return out


def nbe(
    x: np.ndarray, nominal: np.ndarray, n_new: int, cfg: dict, rng: np.random.Generator
) -> np.ndarray:
    """NBE: fit a naive-Bayes mixture (components chosen on held-out rows) and sample from it."""
    x = x.astype(np.float64)
    seed = int(rng.integers(2**31))
    k = cfg["nbe_components"]
    if k == 0:
        perm = rng.permutation(len(x))
        n_val = max(1, len(x) // 10)
        val, fit = x[perm[:n_val]], x[perm[n_val:]]
        grid = [g for g in (1, 2, 4, 8, 16, 32, 64) if g <= max(1, len(fit) // 10)]
        scores = {
            g: NaiveBayesMixture(g, nominal, cfg["nbe_iters"], seed).fit(fit).score(val)
            for g in grid
        }
        k = max(scores, key=scores.get)
    model = NaiveBayesMixture(k, nominal, cfg["nbe_iters"], seed).fit(x)
    return model.sample(n_new, rng)
