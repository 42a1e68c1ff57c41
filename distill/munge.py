"""MUNGE (Bucilua et al. 2006 §4.3): synthetic rows from swaps between nearest neighbours.

One of the transfer-set generators that :mod:`distill.transfer` names (``method: munge``).
"""

from __future__ import annotations

import math
import sys

import numpy as np

from ground.errors import UserError

DISTANCE_SCALES = ("minmax", "zscore")


def nearest_neighbours(x: np.ndarray, nominal: np.ndarray, scale: str = "minmax") -> np.ndarray:
    """Index of each row's nearest other row: Euclidean distance on the continuous attributes
    plus Hamming distance on nominal ones (Bucilua 2006 §4.3).

    ``scale`` says how continuous attributes are put on one footing first: ``minmax`` (the
    default) maps each to [0, 1] over the rows given, as the paper does; ``zscore`` divides by
    the standard deviation instead (this module's behaviour before 2026-12-02, kept so older
    figures can be reproduced). The choice changes which row is nearest: with z-scores a
    heavy-tailed column (Adult's capital-gain) has a small sd, so its rare large values
    dominate the distance, and Hamming mismatches weigh less next to the continuous part.

    Nominal columns are one-hot encoded and scaled by 1/sqrt(2), so one mismatch adds
    exactly 1 to the squared Euclidean distance; this lets sklearn's tree/brute-force
    NearestNeighbors do the search (fast enough for 400k-row transfer sets).
    """
    from sklearn.neighbors import NearestNeighbors

    if scale not in DISTANCE_SCALES:
        raise UserError(
            f"MUNGE distance scale must be one of {', '.join(DISTANCE_SCALES)}; got {scale!r}."
        )
    parts = []
    cont = x[:, ~nominal].astype(np.float64)
    if cont.shape[1]:
        if scale == "minmax":
            lo, span = cont.min(axis=0), np.ptp(cont, axis=0)
            parts.append((cont - lo) / np.where(span > 0, span, 1.0))
        else:
            sd = cont.std(axis=0)
            parts.append((cont - cont.mean(axis=0)) / np.where(sd > 0, sd, 1.0))
    for a in np.flatnonzero(nominal):
        _, codes = np.unique(x[:, a], return_inverse=True)
        onehot = np.zeros((len(x), codes.max() + 1))
        onehot[np.arange(len(x)), codes] = 1.0 / math.sqrt(2.0)
        parts.append(onehot)
    z = np.hstack(parts).astype(np.float32)
    _, idx = NearestNeighbors(n_neighbors=2).fit(z).kneighbors(z)
    self_first = idx[:, 0] == np.arange(len(x))
    return np.where(
        self_first, idx[:, 1], idx[:, 0]
    )  # a duplicate row may come before the row itself


def _conflict_free_chunks(neighbour: np.ndarray) -> list[np.ndarray]:
    """Split the visiting order 0..n-1 into consecutive runs whose (e, e') pairs touch distinct rows.

    The paper modifies e and e' in place while it walks over the examples, so a later
    step can see an earlier step's result. Steps that touch disjoint rows commute, so
    each run can be applied at once with numpy and the result equals the sequential walk.
    """
    chunks, start, touched = [], 0, set()
    for i, j in enumerate(neighbour.tolist()):
        if i in touched or j in touched:
            chunks.append(np.arange(start, i))
            start, touched = i, set()
        touched.add(i)
        touched.add(j)
    chunks.append(np.arange(start, len(neighbour)))
    return chunks


def munge_pass(
    t: np.ndarray,
    nominal: np.ndarray,
    neighbour: np.ndarray,
    p: float,
    s: float,
    rng: np.random.Generator,
    chunks: list[np.ndarray] | None = None,
) -> np.ndarray:
    """One pass of MUNGE over a copy ``t`` of the data, in place (Bucilua 2006 §4.3, Fig. 2).

    For each example e (in order) and its nearest neighbour e', each attribute is
    chosen with probability p; a chosen nominal attribute swaps values between e and
    e'; a chosen continuous one sets e_a ~ N(e'_a, sd) and e'_a ~ N(e_a, sd) with
    sd = |e_a - e'_a| / s, both computed from the values before the step.
    """
    if chunks is None:
        chunks = _conflict_free_chunks(neighbour)
    d = t.shape[1]
    for rows in chunks:
        if not len(rows):
            continue
        nbr = neighbour[rows]
        chosen = rng.random((len(rows), d)) < p
        z = rng.standard_normal((2, len(rows), d))
        a, b = t[rows], t[nbr]
        sd = np.abs(a - b) / s
        new_a = np.where(nominal, b, b + sd * z[0])
        new_b = np.where(nominal, a, a + sd * z[1])
        t[rows] = np.where(chosen, new_a, a)
        t[nbr] = np.where(chosen, new_b, b)
    return t


def munge(
    x: np.ndarray, nominal: np.ndarray, n_new: int, cfg: dict, rng: np.random.Generator
) -> np.ndarray:
    """MUNGE: repeat the pass on fresh copies of the data until ``n_new`` rows exist.

    Neighbours are found once on the original data (each pass starts from a fresh
    copy of it, as the paper's T' <- T does); the last pass is truncated to size.
    """
    from tqdm import tqdm

    if len(x) < 2:
        raise UserError(f"MUNGE needs at least 2 training rows to find neighbours; got {len(x)}.")
    neighbour = nearest_neighbours(x, nominal, cfg["distance_scale"])
    chunks = _conflict_free_chunks(neighbour)
    passes = math.ceil(n_new / len(x))
    out = []
    for _ in tqdm(range(passes), desc="munge", unit="pass", file=sys.stderr, disable=None):
        out.append(
            munge_pass(x.astype(np.float64), nominal, neighbour, cfg["p"], cfg["s"], rng, chunks)
        )
    return np.concatenate(out)[:n_new]
