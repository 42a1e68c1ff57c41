"""The Dataset every loader returns and the Normalizer fitted on its training split.

Kept apart from the loaders so each loader, the registry and the pipeline can import the
type without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ground.errors import UserError

MAX_CLASSES = 10_000  # labels are indices; a stray 2**62 must not allocate or loop
#: Fewer training rows than this in a class: the teacher library's cross-validated members
#: (3 folds, distill/library.py) cannot see the class in every fold, and its scores are noise.
MIN_CLASS_ROWS = 3


@dataclass
class Dataset:
    """Raw splits plus what the card needs to describe the input."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_holdout: np.ndarray
    y_holdout: np.ndarray
    labels: list[str]
    nominal: np.ndarray  # bool [d]
    image_shape: tuple[int, ...] | None  # [C, H, W] when rows are images, else None
    source: dict = field(default_factory=dict)
    columns: list[str] | None = None  # feature names, when the file has them (CSV header)
    categories: dict[int, list[str]] = field(default_factory=dict)  # nominal column -> code order
    #: The preprocessing contract of a loader that reads text (CSV: code maps, fill values,
    #: policies, holdout counts); other loaders get :meth:`preprocess_contract`'s default.
    preprocess: dict = field(default_factory=dict)
    #: The holdout's rows as the file has them ({"header", "rows"} of strings), when they are
    #: text: the shipped examples are run on them (student/holdout_raw.csv).
    raw_holdout: dict | None = None
    warnings: list[str] = field(default_factory=list)  # said on the console and in the card

    def input_encoding(self) -> dict:
        """How a raw row is laid out: per nominal column the value each integer code stands for."""
        cols = self.columns or [str(i) for i in range(self.n_features)]
        return {
            "columns": cols if self.image_shape is None else None,
            "nominal": {
                cols[j]: (self.categories.get(j) or "integer codes")
                for j in np.flatnonzero(self.nominal)
            },
        }

    def preprocess_contract(self) -> dict:
        """What an application does to its raw input before the model (ship/preprocess.json).

        Arrays (npz, images, built-in sets) go in as they are: no fill values were learned, so
        a missing value (NaN) is refused rather than fed (it would give NaN outputs).
        """
        if self.preprocess:
            return self.preprocess
        enc = self.input_encoding()
        kind = "array"
        if self.image_shape is not None and self.source.get("grayscale") is not None:
            kind = "image_folder"
        return {
            "kind": kind,
            "columns": [
                {"name": n, "kind": "categorical" if self.nominal[j] else "numeric", "fill": None}
                for j, n in enumerate(enc["columns"])
            ]
            if enc["columns"]
            else None,
            "missing": "error",
            "unseen": "error",
            **(
                {"image": {"size": self.source.get("size"), "grayscale": self.source["grayscale"]}}
                if kind == "image_folder"
                else {}
            ),
            "holdout": {"rows": int(len(self.y_holdout)), "filled": {}, "unseen": {}},
        }

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


@dataclass
class Normalizer:
    """x_model = (x_raw - mean) / std, fitted on the training split (scalar or per column)."""

    mean: np.ndarray | float
    std: np.ndarray | float
    mode: str

    @classmethod
    def fit(cls, x: np.ndarray, mode: str) -> Normalizer:
        if mode == "none":
            return cls(0.0, 1.0, mode)
        if mode == "scalar":
            std = float(x.std())
            return cls(float(x.mean()), std if std > 0 else 1.0, mode)
        mean = x.mean(axis=0).astype(np.float32)
        std = x.std(axis=0).astype(np.float32)
        # A constant column (up to float rounding: std ~1e-22 on padded silence) keeps std 1, or
        # a row that differs there would be scaled by 1e22.
        std[std <= 1e-6 * np.maximum(1.0, np.abs(mean))] = 1.0
        return cls(mean, std, mode)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """x_raw from x_model (e.g. rows jittered in model-ready space)."""
        return (np.asarray(x) * self.std + self.mean).astype(np.float32)

    def card(self) -> dict:
        as_json = (
            (lambda v: float(v)) if self.mode != "column" else (lambda v: [float(a) for a in v])
        )
        return {
            "mean": as_json(self.mean),
            "std": as_json(self.std),
            "mode": self.mode,
            "note": "x_model = (x_raw - mean) / std"
            + (", per feature column" if self.mode == "column" else ""),
        }


def check_finite(x: np.ndarray, what: str) -> None:
    """NaN or inf in the features is the user's data problem: name the count and the first place."""
    bad = ~np.isfinite(x)
    if bad.any():
        first = np.argwhere(bad)[0]
        raise UserError(
            f"{what} has {int(bad.sum())} NaN/inf values (first at row {int(first[0])}"
            + (f", column {int(first[1])}" if len(first) > 1 else "")
            + "). Impute or drop those rows before distilling."
        )


def small_classes(ds: Dataset, k: int = MIN_CLASS_ROWS) -> str | None:
    """A warning naming each class with fewer than ``k`` training rows, with its counts."""
    counts = np.bincount(ds.y_train, minlength=ds.num_classes)
    few = [(ds.labels[c], int(counts[c])) for c in np.flatnonzero(counts < k)]
    if not few:
        return None
    shown = ", ".join(f"{name!r}: {n}" for name, n in few[:10])
    return (
        f"data '{ds.name}': {len(few)} class(es) have fewer than {k} training rows ({shown}"
        f"{', ...' if len(few) > 10 else ''}); the teacher's cross-validated members need {k} "
        "per class and the student learns such a class from almost nothing. Add rows of those "
        "classes, merge them into a neighbour, or drop them."
    )
