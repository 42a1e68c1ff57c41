"""Small pieces the format modules share: card metadata and calibration batches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np


def card_metadata(card: dict[str, Any], card_sha256: str) -> dict[str, str]:
    """Card fields embedded in every artifact, so a file found alone still says what it is."""
    return {
        "tinyship.run": str(card.get("run")),
        "tinyship.labels": json.dumps(card.get("labels", [])),
        "tinyship.input_normalization": json.dumps(card.get("input", {}).get("normalization")),
        "tinyship.input_layout": str(card.get("input", {}).get("layout")),
        "tinyship.student_arch": str((card.get("student") or {}).get("arch")),
        "tinyship.card_sha256": card_sha256,
        "tinyship.output_kind": str(card.get("output", {}).get("kind", "logits")),
    }


def batches(x: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for i in range(0, len(x), size):
        yield np.ascontiguousarray(x[i : i + size], dtype=np.float32)


def relative_error(ref: np.ndarray, got: np.ndarray) -> float:
    """||got - ref|| / ||ref||: scale-free, so layers of different range compare."""
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    return float(np.linalg.norm(got - ref) / (np.linalg.norm(ref) + 1e-12))
