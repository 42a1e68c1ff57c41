"""``data.name: letter``: UCI Letter, all 26 classes or Bucilua 2006's binary tasks p1 and p2."""

from __future__ import annotations

import numpy as np

from ground.errors import UserError

from ..data_files import _verify, resolve_path
from ..dataset import Dataset
from ..splits import from_pool

_LETTER_SHA256 = "2b89f3602cf768d3c8355267d2f13f2417809e101fc2b5ceee10db19a60de6e2"


def load_letter(cfg: dict) -> Dataset:
    """UCI Letter: 26 classes, or Bucilua 2006's binary tasks p1 ('O' vs rest) and p2 (A-M vs N-Z)."""
    root = resolve_path(cfg["path"] or "../shared/data/uci_letter", "data.path")
    p = root / "letter-recognition.data" if root.is_dir() else root
    if not p.is_file():
        raise UserError(
            f"UCI Letter file '{p}' is missing. data.path must be the folder holding letter-recognition.data."
        )
    _verify(p, _LETTER_SHA256, cfg["verify_sha256"])
    rows = [line.split(",") for line in p.read_text().splitlines() if line.strip()]
    letters = np.array([r[0] for r in rows])
    x = np.array([[float(v) for v in r[1:]] for r in rows], np.float32)
    task = cfg["task"] or "letters"
    if task == "letters":
        labels = [chr(ord("A") + i) for i in range(26)]
        y = np.array([ord(c) - ord("A") for c in letters], np.int64)
    elif task == "p1":
        labels, y = ["not-O", "O"], (letters == "O").astype(np.int64)
    elif task == "p2":
        labels, y = ["A-M", "N-Z"], (letters >= "N").astype(np.int64)
    else:
        raise UserError(
            f"recipe key 'data.task' for letter must be one of 'letters', 'p1', 'p2'; got {task!r}."
        )
    return from_pool(
        f"letter-{task}",
        x,
        y,
        labels,
        np.zeros(16, bool),
        None,
        cfg,
        {"path": str(p), "task": task, "sha256_verified": cfg["verify_sha256"]},
    )
