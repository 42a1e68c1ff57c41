"""Train / validation / holdout splits: how a loader's arrays become a Dataset, deterministically.

Every loader ends in one of these, so split sizes, seeds and caps mean the same whatever the
data's source.
"""

from __future__ import annotations

import numpy as np

from ground.errors import UserError

from .dataset import Dataset

MIN_ROWS = 20


def _split(
    n: int, val_fraction: float, holdout_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic permutation split into train / validation / holdout indices."""
    if n < MIN_ROWS:
        raise UserError(
            f"data set of {n} rows is too small: tinyship needs at least {MIN_ROWS} rows (train, "
            "validation and holdout splits, and cross-validated teacher members). Add rows."
        )
    idx = np.random.default_rng(seed).permutation(n)
    n_ho = int(round(n * holdout_fraction))
    n_val = int(round(n * val_fraction))
    if n - n_ho - n_val < 2 or n_val < 1 or n_ho < 1:
        raise UserError(
            f"data set of {n} rows is too small for data.val_fraction={val_fraction} and "
            f"data.holdout_fraction={holdout_fraction}; each split needs rows."
        )
    return idx[n_ho + n_val :], idx[n_ho : n_ho + n_val], idx[:n_ho]


def from_pool(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    labels: list[str],
    nominal: np.ndarray,
    image_shape,
    cfg: dict,
    source: dict,
) -> Dataset:
    """One pool of rows split by ``data.split_seed`` into train / validation / holdout.

    ``nominal`` marks the categorical columns (bool per column), ``image_shape`` is the
    per-row shape the student sees (None for tabular rows), ``cfg`` the validated ``data``
    section, ``source`` what the card records about where the rows came from. A plug-in
    loader ends here too (docs/architecture.md).
    """
    tr, va, ho = _split(len(x), cfg["val_fraction"], cfg["holdout_fraction"], cfg["split_seed"])
    return _limit(
        Dataset(
            name, x[tr], y[tr], x[va], y[va], x[ho], y[ho], labels, nominal, image_shape, source
        ),
        cfg,
    )


def from_train_test(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    labels: list[str],
    nominal: np.ndarray,
    image_shape,
    cfg: dict,
    source: dict,
) -> Dataset:
    """Official test set = holdout; the validation split is carved from the official training set."""
    idx = np.random.default_rng(cfg["split_seed"]).permutation(len(x))
    n_val = max(1, int(round(len(x) * cfg["val_fraction"])))
    va, tr = idx[:n_val], idx[n_val:]
    return _limit(
        Dataset(
            name, x[tr], y[tr], x[va], y[va], x_test, y_test, labels, nominal, image_shape, source
        ),
        cfg,
    )


def _limit(ds: Dataset, cfg: dict) -> Dataset:
    """Cap split sizes (first rows of the already shuffled splits) to keep runs small."""
    for split, key in (("train", "max_train"), ("val", "max_val"), ("holdout", "max_holdout")):
        cap = cfg[key]
        if cap is not None:
            setattr(ds, f"x_{split}", getattr(ds, f"x_{split}")[:cap])
            setattr(ds, f"y_{split}", getattr(ds, f"y_{split}")[:cap])
    return ds


def from_splits(
    name: str,
    flat: dict[str, tuple[np.ndarray, np.ndarray]],
    labels: list[str],
    nominal: np.ndarray,
    image_shape,
    cfg: dict,
    source: dict,
    **extra,
) -> Dataset:
    """Given train [val] [test] splits: missing ones are carved from train, given ones kept."""
    x, y = flat["train"]
    if "test" in flat and "val" in flat:
        ds = Dataset(name, x, y, *flat["val"], *flat["test"], labels, nominal, image_shape, source)
        return _limit(_with(ds, extra), cfg)
    if "test" in flat:
        ds = from_train_test(name, x, y, *flat["test"], labels, nominal, image_shape, cfg, source)
        return _with(ds, extra)
    idx = np.random.default_rng(cfg["split_seed"]).permutation(len(x))
    if "val" in flat:  # only the holdout is carved from train
        n_ho = int(round(len(x) * cfg["holdout_fraction"]))
        if n_ho < 1 or len(x) - n_ho < 2:
            raise UserError(
                f"training split of {len(x)} rows is too small for data.holdout_fraction="
                f"{cfg['holdout_fraction']}; add a test split."
            )
        ho, tr = idx[:n_ho], idx[n_ho:]
        ds = Dataset(
            name, x[tr], y[tr], *flat["val"], x[ho], y[ho], labels, nominal, image_shape, source
        )
        return _limit(_with(ds, extra), cfg)
    return _with(from_pool(name, x, y, labels, nominal, image_shape, cfg, source), extra)


def _with(ds: Dataset, extra: dict) -> Dataset:
    for k, v in extra.items():
        setattr(ds, k, v)
    return ds
