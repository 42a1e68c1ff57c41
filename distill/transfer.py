"""Transfer sets: the inputs the teacher labels for the student (Bucilua et al. 2006 §4).

A small student mimics the teacher well only where it sees the teacher's
function, so the paper enlarges the training data with synthetic points. Three
generators are compared there (§4.1-4.3), all registered here by name, plus the
training data itself:

- ``original``: the training rows only;
- ``random`` (§4.1): every attribute drawn independently from its marginal
  distribution (uniform sampling of the values observed for that attribute);
- ``nbe`` (§4.2): samples from a naive-Bayes mixture density fitted to the data
  (see :func:`nbe`);
- ``munge`` (§4.3): the paper's algorithm, exactly (see :func:`munge`).

Every generator works in raw feature space (nominal attributes as integer codes,
so nominal values stay in their observed set), returns the original rows first,
then synthetic rows up to ``size_multiplier * n``, and is seeded through one
``np.random.Generator``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import numpy as np

from ground.errors import UserError
from ground.recipe import Field, validate

Generator = Callable[[np.ndarray, np.ndarray, int, dict, np.random.Generator], np.ndarray]
GENERATORS: dict[str, Generator] = {}
IMAGE_ONLY = {"shift_mix"}  # generators that need image-shaped rows ([C, H, W]), not any table
DEFAULT_MULTIPLIER = 10


def register(name: str) -> Callable[[Generator], Generator]:
    """Add a generator ``(x, nominal, n_new, cfg, rng) -> n_new synthetic rows`` under ``name``."""

    def deco(fn: Generator) -> Generator:
        GENERATORS[name] = fn
        return fn

    return deco


@register("original")
def original(
    x: np.ndarray, nominal: np.ndarray, n_new: int, cfg: dict, rng: np.random.Generator
) -> np.ndarray:
    """The training data alone: nothing synthetic."""
    return np.empty((0, x.shape[1]))


# ---------------------------------------------------------------- MUNGE (§4.3)


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


@register("munge")
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


# ---------------------------------------------------------------- RANDOM (§4.1)


@register("random")
def random_marginals(
    x: np.ndarray, nominal: np.ndarray, n_new: int, cfg: dict, rng: np.random.Generator
) -> np.ndarray:
    """RANDOM: each attribute independently, uniformly from the values observed for it."""
    n, d = x.shape
    cols = [x[rng.integers(0, n, size=n_new), a] for a in range(d)]
    return np.stack(cols, axis=1).astype(np.float64)


# ---------------------------------------------------------------- NBE (§4.2)


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


@register("nbe")
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


# ---------------------------------------------------------------- time shift + mixing (audio)


@register("shift_mix")
def shift_mix(
    x: np.ndarray, nominal: np.ndarray, n_new: int, cfg: dict, rng: np.random.Generator
) -> np.ndarray:
    """Augmented copies of image-shaped rows (MFCC / log-mel maps, time along the last axis).

    Each synthetic row is a training row shifted in time by up to ``shift_frames`` frames
    (edge frames repeated, so padding stays silence-like), with ``warp`` > 0 warped in
    frequency by a factor in [1 - warp, 1 + warp] (a longer or shorter vocal tract:
    :func:`warp_maps`), with probability ``mix_prob`` blended with another row (weight of the
    other row uniform in [0, ``mix_weight``]), plus Gaussian noise of ``noise`` x each feature's
    standard deviation. MUNGE swaps single attributes between neighbours, which on a
    spectrogram tears its time structure apart; shifts are what a keyword spotter meets (the
    word anywhere in the window), warps what a new voice brings, and mixtures probe the teacher
    between the classes, where its soft targets carry the most (Hinton §2).
    """
    shape = cfg.get("image_shape")
    if not shape or len(shape) != 3:
        raise UserError(
            "transfer.method 'shift_mix' needs image-shaped rows ([C, H, W] with time along W, "
            "e.g. data.name: audio_folder); this data set's rows are flat. Use 'munge'."
        )
    n, w = len(x), int(shape[-1])
    maps = np.asarray(x, dtype=np.float32).reshape(n, -1, w)
    k = int(cfg["shift_frames"])
    src = rng.integers(0, n, n_new)
    shift = rng.integers(-k, k + 1, n_new)
    mixed = rng.random(n_new) < cfg["mix_prob"]
    partner = rng.integers(0, n, n_new)
    weight = rng.uniform(0.0, cfg["mix_weight"], n_new) * mixed
    sd = x.std(axis=0).astype(np.float32).reshape(1, -1, w)
    if cfg["warp"] > 0 and not cfg.get("frontend"):
        raise UserError(
            "transfer.warp needs the audio front-end's settings (data.name: audio_folder); "
            "this data set has none. Set transfer.warp: 0."
        )
    # quantized to steps of 0.01 so rows sharing a factor share one warp matrix; drawn only
    # when asked, so warp: 0 leaves the random stream (and the transfer set) as it was
    alpha = (
        np.round(1.0 + rng.uniform(-cfg["warp"], cfg["warp"], n_new), 2)
        if cfg["warp"] > 0
        else None
    )
    out = np.empty((n_new, maps.shape[1], w), np.float32)
    t = np.arange(w)
    for s in range(0, n_new, 4096):
        sl = slice(s, min(s + 4096, n_new))
        idx = np.clip(t[None, :] - shift[sl, None], 0, w - 1)  # [b, W]
        a = np.take_along_axis(maps[src[sl]], idx[:, None, :], axis=2)
        if alpha is not None:
            a = warp_maps(a, alpha[sl], cfg["frontend"])
        lam = weight[sl, None, None].astype(np.float32)
        b = (1 - lam) * a + lam * maps[partner[sl]]
        if cfg["noise"] > 0:
            b += cfg["noise"] * sd * rng.standard_normal(b.shape, dtype=np.float32)
        out[sl] = b
    return out.reshape(n_new, -1)


def warp_matrix(frontend: dict, alpha: float) -> np.ndarray:
    """Linear map of one frame's features for a frequency warp f -> alpha f (VTLP, Jaitly &
    Hinton 2013), done on the features because the transfer stage has no waveforms.

    Log-mel: the warped band centred at f reads the original log-mel envelope at f / alpha,
    interpolated linearly between band centres on the mel axis (clamped at the edges). MFCC:
    the same on the smooth envelope the kept coefficients describe, D W D^T with D the
    front-end's orthonormal DCT rows (so the map is n_mfcc x n_mfcc and exact for alpha = 1),
    between undoing and redoing the front-end's lifter.
    """
    from .audio import FrontEnd

    fe = FrontEnd.from_card(frontend)
    centres = fe.mel_edges_hz()[1:-1]
    n = len(centres)
    pos = np.interp(fe.hz_to_mel(centres / alpha), fe.hz_to_mel(centres), np.arange(n))
    lo = np.floor(pos).astype(int)  # the warped band reads between bands lo and hi
    hi = np.minimum(lo + 1, n - 1)
    frac = pos - lo
    w = np.zeros((n, n))
    w[np.arange(n), lo] += 1.0 - frac
    w[np.arange(n), hi] += frac
    if fe.features != "mfcc":
        return w
    d, lift = fe.dct_matrix(), fe.lifter_weights()
    return (lift[:, None] * (d @ w @ d.T)) / lift[None, :]  # unlifter, warp, lifter again


def warp_maps(maps: np.ndarray, alpha: np.ndarray, frontend: dict) -> np.ndarray:
    """Apply :func:`warp_matrix` to feature maps [b, coefficients, frames], row by row."""
    out = np.empty_like(maps)
    for a in np.unique(alpha):
        rows = alpha == a
        m = warp_matrix(frontend, float(a)).astype(np.float32)
        out[rows] = np.einsum("ij,bjt->bit", m, maps[rows])
    return out


# ---------------------------------------------------------------- recipe and entry point

TRANSFER_FIELDS: dict[str, Field] = {
    "method": Field(
        str, default="original", choices=tuple(GENERATORS), doc="transfer-set generator"
    ),
    "size_multiplier": Field(
        int,
        default=None,
        min=1,
        max=10_000,
        doc=f"transfer set = multiplier x training rows (default 1 for original, "
        f"{DEFAULT_MULTIPLIER} otherwise)",
    ),
    "p": Field(
        float, default=0.5, min=0.0, max=1.0, doc="MUNGE: probability of swapping each attribute"
    ),
    "s": Field(
        float, default=10.0, min=1e-6, doc="MUNGE: spread; sd = |a - b| / s (smaller s -> wider)"
    ),
    "distance_scale": Field(
        str,
        default="minmax",
        choices=DISTANCE_SCALES,
        doc="MUNGE: continuous attributes scaled to [0, 1] (the paper) or z-scored before the "
        "nearest-neighbour search",
    ),
    "jitter": Field(
        float, default=0.0, min=0.0, doc="sd of Gaussian noise added per epoch in model-ready space"
    ),
    "nbe_components": Field(
        int, default=0, min=0, max=1024, doc="NBE: mixture components (0 = choose on held-out rows)"
    ),
    "nbe_iters": Field(int, default=100, min=1, doc="NBE: EM iterations at most"),
    "shift_frames": Field(
        int, default=4, min=0, doc="shift_mix: largest time shift (frames, along the last axis)"
    ),
    "mix_prob": Field(
        float, default=0.5, min=0.0, max=1.0, doc="shift_mix: share of rows blended with another"
    ),
    "mix_weight": Field(
        float, default=0.4, min=0.0, max=1.0, doc="shift_mix: largest weight of the other row"
    ),
    "noise": Field(
        float, default=0.0, min=0.0, doc="shift_mix: Gaussian noise sd, in each feature's sd"
    ),
    "warp": Field(
        float,
        default=0.0,
        min=0.0,
        max=0.3,
        doc="shift_mix: largest frequency warp (vocal tract length), alpha in [1 - w, 1 + w]",
    ),
}


def check_raw(x_raw: np.ndarray, nominal: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Raw features must be a finite 2-D numeric array; ``nominal`` a bool mask of its columns."""
    x = np.asarray(x_raw)
    if x.ndim != 2 or len(x) == 0 or not np.issubdtype(x.dtype, np.number):
        raise UserError(
            f"transfer set: raw features must be a non-empty numeric array [n, d]; got "
            f"shape {x.shape}, dtype {x.dtype}. Flatten images to [n, features] first."
        )
    if not np.isfinite(x).all():
        r, c = np.argwhere(~np.isfinite(x))[0]
        raise UserError(
            f"transfer set: raw feature at row {r}, column {c} is {x[r, c]}; MUNGE, RANDOM and NBE "
            "need complete data. Impute or drop missing values first."
        )
    if nominal is None:
        nominal = np.zeros(x.shape[1], dtype=bool)
    nominal = np.asarray(nominal)
    if nominal.dtype != bool or nominal.shape != (x.shape[1],):
        raise UserError(
            f"transfer set: 'nominal' must be a bool array with one entry per column "
            f"({x.shape[1]}); got dtype {nominal.dtype}, shape {nominal.shape}."
        )
    return x, nominal


def make_transfer(
    section: dict | None,
    x_raw: np.ndarray,
    nominal: np.ndarray | None,
    *,
    seed: int,
    image_shape: tuple[int, ...] | None = None,
    frontend: dict | None = None,
) -> np.ndarray:
    """The transfer set in raw space: the original rows first, then synthetic rows,
    ``size_multiplier * n`` rows in all (float32). ``image_shape`` ([C, H, W]) is for
    generators that need the rows' layout (shift_mix); ``frontend`` (the card's
    ``input.frontend``) for its frequency warp."""
    cfg = {
        **validate("transfer", section, TRANSFER_FIELDS),
        "image_shape": image_shape,
        "frontend": frontend,
    }
    x, nominal = check_raw(x_raw, nominal)
    mult = cfg["size_multiplier"]
    if cfg["method"] == "original":
        if mult not in (None, 1):
            raise UserError(
                f"recipe key 'transfer.size_multiplier' is {mult}, but method 'original' adds no rows. "
                "Use method 'munge', 'random' or 'nbe' to enlarge the transfer set, or set it to 1."
            )
        return np.ascontiguousarray(x, dtype=np.float32)
    mult = mult or DEFAULT_MULTIPLIER
    rng = np.random.default_rng(seed)
    n_new = (mult - 1) * len(x)
    synth = (
        GENERATORS[cfg["method"]](x, nominal, n_new, cfg, rng)
        if n_new
        else np.empty((0, x.shape[1]))
    )
    return np.concatenate([x.astype(np.float32), synth.astype(np.float32)])


def hard_labels(
    x_transfer: np.ndarray, x_train: np.ndarray, y_train: np.ndarray, teacher_probs: np.ndarray
) -> np.ndarray:
    """Hard targets for the transfer set: the true labels where its rows are the training rows
    (make_transfer puts them first), the teacher's argmax on the synthetic rest."""
    n = len(x_train)
    if len(x_transfer) >= n and np.array_equal(x_transfer[:n], x_train):
        return np.concatenate([y_train, teacher_probs[n:].argmax(1)])
    return teacher_probs.argmax(1)


def jitter(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise in model-ready space, drawn afresh each epoch (never cached)."""
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
        raise UserError(f"transfer.jitter must be a finite number >= 0; got {sigma!r}.")
    x = np.asarray(x, dtype=np.float32)
    if sigma == 0:
        return x
    return (x + sigma * rng.standard_normal(x.shape)).astype(np.float32)
