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


def channel_error(ref: np.ndarray, got: np.ndarray) -> float:
    """The mean over channels (axis 1) of each channel's relative error.

    One outlier channel sets a per-tensor int8 scale that crushes every other channel to a few
    levels, yet dominates ||ref||, so the whole-tensor relative error of that layer stays small
    and the fallback blamed the layers downstream instead (sometimes every layer). Per channel,
    the crushed channels each count. A channel whose reference is near zero (a dead ReLU unit) is
    measured against a floor of 1e-3 of the tensor's per-channel RMS norm, not against zero.
    """
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    if ref.ndim < 2 or ref.shape[1] < 2:
        return relative_error(ref, got)
    r = np.moveaxis(ref, 1, 0).reshape(ref.shape[1], -1)
    g = np.moveaxis(got, 1, 0).reshape(ref.shape[1], -1)
    norms = np.linalg.norm(r, axis=1)
    floor = 1e-3 * float(np.sqrt(np.mean(norms**2))) + 1e-12
    return float(np.mean(np.linalg.norm(g - r, axis=1) / np.maximum(norms, floor)))
