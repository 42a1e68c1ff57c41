"""``data.name: digits``: scikit-learn's bundled 8x8 digits, the demo's data set."""

from __future__ import annotations

import numpy as np

from ..dataset import Dataset
from ..splits import from_pool


def load_digits_data(cfg: dict) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images, values 0..16)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.data.astype(np.float32)
    y = d.target.astype(np.int64)
    return from_pool(
        "digits",
        x,
        y,
        [str(i) for i in range(10)],
        np.zeros(64, bool),
        (1, 8, 8),
        cfg,
        {"loader": "sklearn.datasets.load_digits"},
    )
