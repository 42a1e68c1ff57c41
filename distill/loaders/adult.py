"""``data.name: adult``: UCI Adult, continuous and nominal attributes (the MUNGE paper's tabular set)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ground.errors import UserError

from ..data_files import _verify, resolve_path
from ..dataset import Dataset
from ..splits import from_train_test

_ADULT_COLUMNS = [
    ("age", False),
    ("workclass", True),
    ("fnlwgt", False),
    ("education", True),
    ("education-num", False),
    ("marital-status", True),
    ("occupation", True),
    ("relationship", True),
    ("race", True),
    ("sex", True),
    ("capital-gain", False),
    ("capital-loss", False),
    ("hours-per-week", False),
    ("native-country", True),
]
_ADULT_SHA256 = {
    "adult.data": "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
    "adult.test": "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
}


def _adult_rows(path: Path) -> list[list[str]]:
    rows = []
    for line in path.read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 15:  # blank lines and the test file's '|1x3 Cross validator' header
            continue
        parts[14] = parts[14].rstrip(".")  # the test file's labels end in a dot
        rows.append(parts)
    return rows


def load_adult(cfg: dict) -> Dataset:
    """UCI Adult: 6 continuous + 8 nominal attributes; '?' is its own nominal code, labels <=50K / >50K."""
    root = resolve_path(cfg["path"] or "../shared/data/uci_adult", "data.path")
    files = {}
    for fname, sha in _ADULT_SHA256.items():
        p = root / fname
        if not p.is_file():
            raise UserError(
                f"UCI Adult file '{p}' is missing. data.path must be the folder holding adult.data and adult.test."
            )
        _verify(p, sha, cfg["verify_sha256"])
        files[fname] = _adult_rows(p)
    train, test = files["adult.data"], files["adult.test"]
    nominal = np.array([nom for _, nom in _ADULT_COLUMNS])
    vocab = [
        sorted({r[j] for r in train} | {"?"}) if nom else None
        for j, (_, nom) in enumerate(_ADULT_COLUMNS)
    ]

    def encode(rows: list[list[str]]) -> np.ndarray:
        x = np.zeros((len(rows), 14), np.float32)
        for j, (_, nom) in enumerate(_ADULT_COLUMNS):
            if nom:
                codes = {v: i for i, v in enumerate(vocab[j])}
                x[:, j] = [
                    codes.get(r[j], codes["?"]) for r in rows
                ]  # a value unseen in training counts as missing
            else:
                col = [r[j] for r in rows]
                x[:, j] = [float(v) if v != "?" else np.nan for v in col]
        return x

    x, xt = encode(train), encode(test)
    for j, (_, nom) in enumerate(
        _ADULT_COLUMNS
    ):  # continuous '?' (none in the release) -> training median
        if not nom:
            med = np.nanmedian(x[:, j])
            x[np.isnan(x[:, j]), j] = med
            xt[np.isnan(xt[:, j]), j] = med
    labels = ["<=50K", ">50K"]
    y = np.array([labels.index(r[14]) for r in train], np.int64)
    yt = np.array([labels.index(r[14]) for r in test], np.int64)
    return from_train_test(
        "adult",
        x,
        y,
        xt,
        yt,
        labels,
        nominal,
        None,
        cfg,
        {
            "path": str(root),
            "columns": [c for c, _ in _ADULT_COLUMNS],
            "sha256_verified": cfg["verify_sha256"],
        },
    )
