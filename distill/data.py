"""Data sets for distillation, looked up by name, split deterministically.

Every loader returns raw features ``x_raw`` (float32 ``[n, d]``; nominal attributes
label-encoded as integer codes, marked in ``nominal``) and three splits: train (the
teacher is fitted on it and the transfer set grows from it), validation (ensemble
selection and early stopping) and holdout (the test set the card's metrics come from;
nothing is ever tuned on it). Normalization is fitted on the training split only.

Loaders are listed by name in :mod:`distill.data_registry` (one module each under
``distill/loaders/``, imported when a recipe names it), each with the recipe keys it adds;
another module adds its own with :func:`register_loader`. Relative paths in a recipe are
resolved against the recipe file's folder before a loader sees them. This module checks a
recipe's data section and loads it; the names other modules import from here are kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ground.errors import UserError
from ground.recipe import validate

from .data_files import REPO_ROOT, resolve_path
from .data_registry import DATA_FIELDS, LOADER_FIELDS, LOADERS, register_loader
from .dataset import MAX_CLASSES, Dataset, Normalizer, check_finite, small_classes
from .splits import MIN_ROWS, _limit, _split, from_pool, from_splits, from_train_test

__all__ = [
    "DATA_FIELDS",
    "LOADERS",
    "LOADER_FIELDS",
    "MAX_CLASSES",
    "MIN_ROWS",
    "PATH_KEYS",
    "REPO_ROOT",
    "Dataset",
    "Normalizer",
    "from_pool",
    "from_splits",
    "from_train_test",
    "_limit",
    "_split",
    "check_finite",
    "load_data",
    "register_loader",
    "resolve_path",
    "validate_section",
]

PATH_KEYS = ("path", "test_path")  # resolved against the recipe's folder before a loader runs


def validate_section(section: dict | None) -> dict:
    """The recipe's data section with defaults filled in (UserError naming a bad key or value)."""
    name = section.get("name") if isinstance(section, dict) else None
    return validate("data", section, {**DATA_FIELDS, **LOADER_FIELDS.get(name, {})})


def load_data(section: dict, base_dir: str | Path | None = None) -> Dataset:
    """Validate the recipe's data section and load the named data set, checked for NaN/inf.

    ``base_dir``: the folder relative paths are resolved against (the recipe file's folder;
    default the current working directory).
    """
    cfg = validate_section(section)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    for key in PATH_KEYS:
        if cfg.get(key):
            cfg[key] = str(resolve_path(cfg[key], f"data.{key}", base).resolve())
    ds = LOADERS[cfg["name"]](cfg)
    for split in ("train", "val", "holdout"):
        check_finite(getattr(ds, f"x_{split}"), f"data '{ds.name}' {split} split")
    top = max((int(y.max()) for y in (ds.y_train, ds.y_val, ds.y_holdout) if len(y)), default=-1)
    if ds.num_classes > MAX_CLASSES:  # every loader, not only npz: a class per row is a mistake
        raise UserError(
            f"data '{ds.name}' has {ds.num_classes} classes; at most {MAX_CLASSES} are supported. "
            "Check that data.label names the label column (not an ID or a continuous value)."
        )
    if ds.num_classes < 2 or top >= ds.num_classes:
        raise UserError(
            f"data '{ds.name}' must have at least 2 classes with labels 0..C-1; got labels up to "
            f"{top} for {ds.num_classes} names."
        )
    unseen = sorted(set(np.unique(ds.y_holdout).tolist()) - set(np.unique(ds.y_train).tolist()))
    if unseen:
        names = [ds.labels[i] for i in unseen[:5]]
        raise UserError(
            f"data '{ds.name}': the holdout split has labels {names} that the training split never "
            "has, so no model can learn them. Add training rows of those classes, or change "
            "data.split_seed / data.holdout_fraction."
        )
    small = small_classes(ds)
    if small:
        ds.warnings.append(small)
        print(f"warning: {small}", file=sys.stderr)
    return ds
