"""Bucilua 2006's problems and fixed settings: which rows train, validate and test, and how they are encoded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

PROBLEMS = {
    "adult": {"name": "adult"},
    "letter.p1": {"name": "letter", "task": "p1"},
    "letter.p2": {"name": "letter", "task": "p2"},
}
METHODS = ["munge", "random", "nbe"]
MUNGE = {"p": 0.5, "s": 10.0, "distance_scale": "minmax"}
HARD_HIDDEN = [32, 128, 256, 512]  # the hard-label net's hidden units, chosen on validation RMSE
MIMIC_HIDDEN = 256


class OneHot:
    """Model-ready features for every net and library model: continuous attributes z-scored on
    the training rows, nominal ones one-hot over the values seen there (an unseen value is all
    zeros). Transfer sets are generated in raw space and encoded with the same fit."""

    def __init__(self, x: np.ndarray, nominal: np.ndarray) -> None:
        self.nominal = np.asarray(nominal, bool)
        cont = x[:, ~self.nominal].astype(np.float64)
        self.mean, sd = cont.mean(0), cont.std(0)
        self.sd = np.where(sd > 0, sd, 1.0)
        self.values = [np.unique(x[:, a]) for a in np.flatnonzero(self.nominal)]

    @property
    def width(self) -> int:
        return int((~self.nominal).sum()) + sum(len(v) for v in self.values)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        parts = [(x[:, ~self.nominal] - self.mean) / self.sd]
        for v, a in zip(self.values, np.flatnonzero(self.nominal)):
            parts.append((x[:, a : a + 1] == v[None, :]).astype(np.float64))
        return np.hstack(parts).astype(np.float32)


def pooled_split(section: dict, n_train: int, n_val: int, seed: int, max_test: int = 0):
    """All rows of the data set pooled, then 4k train / 1k validation / the rest test (the paper's protocol)."""
    from distill.data import load_data

    ds = load_data({**section, "verify_sha256": True})
    x = np.concatenate([ds.x_train, ds.x_val, ds.x_holdout])
    y = np.concatenate([ds.y_train, ds.y_val, ds.y_holdout])
    idx = np.random.default_rng(seed).permutation(len(x))
    tr, va, te = idx[:n_train], idx[n_train : n_train + n_val], idx[n_train + n_val :]
    te = te[:max_test] if max_test else te
    return ds, (x[tr], y[tr]), (x[va], y[va]), (x[te], y[te])


@dataclass
class Problem:
    """One problem at one seed: the raw training rows (transfer sets start from them), the
    encoder fitted on them, and the encoded train / validation / test rows."""

    ds: Any
    x_tr_raw: np.ndarray
    enc: OneHot
    x_tr: np.ndarray
    y_tr: np.ndarray
    x_va: np.ndarray
    y_va: np.ndarray
    x_te: np.ndarray
    y_te: np.ndarray

    @property
    def width(self) -> int:
        """The encoded feature count: every net's input shape is (width,)."""
        return self.x_tr.shape[1]


def encoded_problem(section: dict, args, seed: int) -> Problem:
    """The paper's split of one problem for ``seed``, one-hot encoded on its training rows."""
    ds, (x_tr_raw, y_tr), (x_va_raw, y_va), (x_te_raw, y_te) = pooled_split(
        section, args.n_train, args.n_val, seed, args.max_test
    )
    enc = OneHot(x_tr_raw, ds.nominal)
    x_tr, x_va, x_te = enc(x_tr_raw), enc(x_va_raw), enc(x_te_raw)
    return Problem(ds, x_tr_raw, enc, x_tr, y_tr, x_va, y_va, x_te, y_te)
