"""Transfer sets: the inputs the teacher labels for the student (Bucilua et al. 2006 §4).

A small student mimics the teacher well only where it sees the teacher's
function, so the paper enlarges the training data with synthetic points. Three
generators are compared there (§4.1-4.3), all registered here by name (each in its own
module: :mod:`distill.munge`, :mod:`distill.nbe`, and :mod:`distill.shift_mix` for audio),
plus the training data itself:

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

The default method depends on the rows (:func:`default_method`): ``munge`` at the paper's
settings for tabular rows, where it beat the training rows alone on every tabular benchmark
this project ran (benchmarks/RESULTS.md, RESULTS.notes.md); ``original`` for image and audio
rows, where MUNGE's attribute swaps make no images and a recipe picks its own augmentation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ground.errors import UserError
from ground.recipe import Field, validate

from .munge import (
    DISTANCE_SCALES,
    _conflict_free_chunks,
    munge,
    munge_pass,
    nearest_neighbours,
)
from .nbe import NaiveBayesMixture, nbe
from .shift_mix import shift_mix, warp_maps, warp_matrix

Generator = Callable[[np.ndarray, np.ndarray, int, dict, np.random.Generator], np.ndarray]
IMAGE_ONLY = {"shift_mix"}  # generators that need image-shaped rows ([C, H, W]), not any table
DEFAULT_MULTIPLIER = 10
#: Why each default was chosen; the card records the one a run used (``data.transfer``).
DEFAULT_WHY = {
    "munge": "default for tabular rows: MUNGE at the paper's settings (Bucilua et al. 2006 §4.3, "
    "p 0.5, s 10, min-max distances) beat the training rows alone on adult, letter.p1 and "
    "letter.p2 in every seed (benchmarks/RESULTS.md)",
    "original": "default for image and audio rows: the training rows (MUNGE swaps pixels or "
    "frames one by one; set transfer.method to enlarge the set)",
}


def original(
    x: np.ndarray, nominal: np.ndarray, n_new: int, cfg: dict, rng: np.random.Generator
) -> np.ndarray:
    """The training data alone: nothing synthetic."""
    return np.empty((0, x.shape[1]))


# ---------------------------------------------------------------- RANDOM (§4.1)


def random_marginals(
    x: np.ndarray, nominal: np.ndarray, n_new: int, cfg: dict, rng: np.random.Generator
) -> np.ndarray:
    """RANDOM: each attribute independently, uniformly from the values observed for it."""
    n, d = x.shape
    cols = [x[rng.integers(0, n, size=n_new), a] for a in range(d)]
    return np.stack(cols, axis=1).astype(np.float64)


# ---------------------------------------------------------------- the generators by name

GENERATORS: dict[str, Generator] = {
    "original": original,
    "munge": munge,  # §4.3, distill/munge.py
    "random": random_marginals,  # §4.1
    "nbe": nbe,  # §4.2, distill/nbe.py
    "shift_mix": shift_mix,  # audio, distill/shift_mix.py
}


def register(name: str) -> Callable[[Generator], Generator]:
    """Add a generator ``(x, nominal, n_new, cfg, rng) -> n_new synthetic rows`` under ``name``."""

    def deco(fn: Generator) -> Generator:
        GENERATORS[name] = fn
        return fn

    return deco


__all__ = [
    "DEFAULT_MULTIPLIER",
    "DISTANCE_SCALES",
    "GENERATORS",
    "IMAGE_ONLY",
    "TRANSFER_FIELDS",
    "NaiveBayesMixture",
    "_conflict_free_chunks",
    "check_raw",
    "default_method",
    "describe",
    "hard_labels",
    "jitter",
    "make_transfer",
    "munge",
    "munge_pass",
    "nbe",
    "nearest_neighbours",
    "original",
    "random_marginals",
    "register",
    "resolve",
    "shift_mix",
    "transfer_seed",
    "warp_maps",
    "warp_matrix",
]


# ---------------------------------------------------------------- recipe and entry point

TRANSFER_FIELDS: dict[str, Field] = {
    "method": Field(
        str,
        default=None,
        choices=tuple(GENERATORS),
        doc="transfer-set generator; default: munge for tabular rows (the generator that won on "
        "the project's tabular benchmarks), original for image and audio rows",
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
    "seed": Field(
        int,
        default=None,
        min=0,
        doc="seed of the synthetic rows (default: train.seed); fixed, runs at other train.seed "
        "values share one transfer set, which the teacher labels once (tinyship.search)",
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


def default_method(image_shape: tuple[int, ...] | None) -> str:
    """``munge`` for tabular rows (no image shape), ``original`` for image and audio rows."""
    return "munge" if image_shape is None else "original"


def resolve(section: dict | None, image_shape: tuple[int, ...] | None = None) -> dict:
    """The validated transfer section with its method and size filled in, and ``default_why``
    saying which default was taken (None when the recipe named the method)."""
    cfg = validate("transfer", section, TRANSFER_FIELDS)
    why = None
    if cfg["method"] is None:
        cfg["method"] = default_method(image_shape)
        why = DEFAULT_WHY[cfg["method"]]
    return {**cfg, "default_why": why}


def describe(section: dict | None, image_shape: tuple[int, ...] | None, n_train: int) -> dict:
    """The card's ``data.transfer``: which generator made the transfer set, how large, and why."""
    cfg = resolve(section, image_shape)
    mult = 1 if cfg["method"] == "original" else cfg["size_multiplier"] or DEFAULT_MULTIPLIER
    out = {"method": cfg["method"], "size_multiplier": mult, "rows": mult * int(n_train)}
    if cfg["seed"] is not None:
        out["seed"] = cfg["seed"]
    if cfg["method"] == "munge":
        out.update({k: cfg[k] for k in ("p", "s", "distance_scale")})
    out["default"] = cfg["default_why"]
    return out


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
    ``input.frontend``) for its frequency warp. ``seed`` is the run's; the section's own
    ``seed``, when set, takes its place (:func:`transfer_seed`)."""
    cfg = {**resolve(section, image_shape), "image_shape": image_shape, "frontend": frontend}
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
    rng = np.random.default_rng(transfer_seed(cfg, seed))
    n_new = (mult - 1) * len(x)
    synth = (
        GENERATORS[cfg["method"]](x, nominal, n_new, cfg, rng)
        if n_new
        else np.empty((0, x.shape[1]))
    )
    return np.concatenate([x.astype(np.float32), synth.astype(np.float32)])


def transfer_seed(section: dict | None, seed: int) -> int:
    """The seed the synthetic rows are drawn with: ``transfer.seed`` when the recipe fixes it
    (so runs at several training seeds share one transfer set, labelled once), else the run's."""
    fixed = (section or {}).get("seed")
    return int(seed if fixed is None else fixed)


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
