"""``data.name: npz``: the user's own arrays in one .npz, pooled or already split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ground.errors import UserError

from ..data_files import resolve_path
from ..dataset import MAX_CLASSES, Dataset, check_finite
from ..splits import from_pool, from_splits


def _read_npz(p: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:
        raise UserError(
            f"'{p}' cannot be read as an .npz without pickles ({exc}). Save it with numpy.savez."
        ) from exc


def _npz_pair(arrays: dict, xk: str, yk: str, p: Path) -> tuple[np.ndarray, np.ndarray]:
    x, y = arrays[xk], arrays[yk]
    if x.ndim < 2 or x.ndim > 4 or len(x) != len(y) or y.ndim != 1:
        raise UserError(
            f"'{p}': {xk} must be [n, d], [n, H, W] or [n, C, H, W] and {yk} [n] with the same n; "
            f"got {xk} {list(x.shape)} and {yk} {list(y.shape)}."
        )
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise UserError(
            f"'{p}': {yk} must hold class indices 0..C-1 as integers; got dtype {y.dtype}"
            + (f" with minimum {y.min()}" if len(y) and np.issubdtype(y.dtype, np.number) else "")
            + "."
        )
    if len(y) == 0:
        raise UserError(f"'{p}': {yk} holds 0 rows; a data set needs rows.")
    if int(y.max()) >= MAX_CLASSES:
        raise UserError(
            f"'{p}': {yk} holds the label {int(y.max())}; labels are class indices 0..C-1 with "
            f"C at most {MAX_CLASSES}. Re-encode the labels as 0..C-1."
        )
    return x, y.astype(np.int64)


_NPZ_SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def _split_keys(arrays: dict[str, np.ndarray], p: Path) -> list[str]:
    """The given split arrays (x_train ...), after checking the file holds exactly one layout."""
    split_keys = [k for k in _NPZ_SPLITS if k in arrays]
    if split_keys and ("x" in arrays or "y" in arrays):
        raise UserError(
            f"'{p}' holds both x/y and {split_keys}; keep either x and y (split by data.val_fraction "
            "and data.holdout_fraction) or x_train, y_train [x_val, y_val] [x_test, y_test]."
        )
    for a, b in (("x_train", "y_train"), ("x_val", "y_val"), ("x_test", "y_test")):
        if (a in arrays) != (b in arrays):
            raise UserError(f"'{p}' has '{a if a in arrays else b}' without its pair; add both.")
    if split_keys and "x_train" not in arrays:
        raise UserError(f"'{p}' has {split_keys} but no x_train and y_train; add them.")
    if not split_keys and ("x" not in arrays or "y" not in arrays):
        raise UserError(
            f"'{p}' must hold arrays 'x' and 'y', or 'x_train' and 'y_train'; it has {sorted(arrays)}."
        )
    return split_keys


def load_npz(cfg: dict) -> Dataset:
    """A user's .npz: ``x`` and ``y`` (split here), or ``x_train``/``y_train`` with optional
    ``x_val``/``y_val`` and ``x_test``/``y_test``.

    x is ``[n, d]``, ``[n, H, W]`` or ``[n, C, H, W]``; y integer class indices. A given test
    split is the holdout (never trained or selected on); a given validation split is used for
    ensemble selection and early stopping. Optional: ``labels`` (class names, in index order)
    and ``nominal`` (bool per feature).
    """
    if not cfg["path"]:
        raise UserError(
            "recipe key 'data.path' is required for data.name: npz (an .npz file with arrays x and y, "
            "or x_train, y_train and optionally x_val, y_val, x_test, y_test)."
        )
    p = resolve_path(cfg["path"], "data.path")
    arrays = _read_npz(p)
    split_keys = _split_keys(arrays, p)
    parts = {
        s: _npz_pair(arrays, f"x_{s}", f"y_{s}", p)
        for s in (("train", "val", "test") if split_keys else ())
        if f"x_{s}" in arrays
    } or {"pool": _npz_pair(arrays, "x", "y", p)}
    shapes = {s: x.shape[1:] for s, (x, _) in parts.items()}
    if len(set(shapes.values())) > 1:
        raise UserError(f"'{p}': the splits' per-row shapes differ: {shapes}; they must match.")
    x0 = next(iter(parts.values()))[0]
    image_shape = (
        None if x0.ndim == 2 else ((1, *x0.shape[1:]) if x0.ndim == 3 else tuple(x0.shape[1:]))
    )
    flat = {}
    for s, (x, y) in parts.items():
        x = x.reshape(len(x), -1).astype(np.float32)
        check_finite(x, f"'{p}' array {'x' if s == 'pool' else 'x_' + s}")
        flat[s] = (x, y)
    d = next(iter(flat.values()))[0].shape[1]
    n_classes = max(int(y.max()) for _, y in flat.values() if len(y)) + 1
    labels = (
        [str(v) for v in arrays["labels"].tolist()]
        if "labels" in arrays
        else [str(i) for i in range(n_classes)]
    )
    if len(labels) < n_classes:
        raise UserError(
            f"'{p}': 'labels' names {len(labels)} classes but y holds class indices up to "
            f"{n_classes - 1}; give one name per class, in index order."
        )
    nominal = arrays["nominal"].astype(bool) if "nominal" in arrays else np.zeros(d, bool)
    if nominal.shape != (d,):
        raise UserError(
            f"'{p}': nominal must be a bool array of length {d} (one per feature); "
            f"got shape {list(nominal.shape)}."
        )
    source = {"path": str(p), "arrays": sorted(arrays)}
    if "pool" in flat:
        x, y = flat["pool"]
        return from_pool(p.stem, x, y, labels, nominal, image_shape, cfg, source)
    return from_splits(p.stem, flat, labels, nominal, image_shape, cfg, source)
