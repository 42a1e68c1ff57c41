"""``data.name: mnist``: MNIST from its four idx.gz files, checked against pinned checksums."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ground.errors import UserError

from ..data_files import _verify, resolve_path
from ..dataset import Dataset
from ..splits import from_train_test

_MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise UserError(
            f"'{path}' is not an idx file of unsigned bytes; restore the original MNIST file."
        )
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(cfg: dict) -> Dataset:
    """MNIST from its four idx.gz files (sha256 checked); the official test set is the holdout."""
    root = resolve_path(cfg["path"] or "../shared/data/mnist", "data.path")
    arrays = {}
    for fname, sha in _MNIST_SHA256.items():
        p = root / fname
        if not p.is_file():
            raise UserError(
                f"MNIST file '{p}' is missing. data.path must be the folder holding the four idx.gz files "
                f"({', '.join(_MNIST_SHA256)})."
            )
        _verify(p, sha, cfg["verify_sha256"])
        arrays[fname] = _read_idx(p)
    x = arrays["train-images-idx3-ubyte.gz"].reshape(-1, 784).astype(np.float32)
    y = arrays["train-labels-idx1-ubyte.gz"].astype(np.int64)
    xt = arrays["t10k-images-idx3-ubyte.gz"].reshape(-1, 784).astype(np.float32)
    yt = arrays["t10k-labels-idx1-ubyte.gz"].astype(np.int64)
    return from_train_test(
        "mnist",
        x,
        y,
        xt,
        yt,
        [str(i) for i in range(10)],
        np.zeros(784, bool),
        (1, 28, 28),
        cfg,
        {"path": str(root), "sha256_verified": cfg["verify_sha256"]},
    )
