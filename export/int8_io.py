"""Which static int8 files take float32 raw input, and why (recipe ``export.int8_io``).

A static int8 file with int8 input quantizes the raw features with ONE scale and zero point.
That fits inputs whose features share a scale (pixels 0..255 normalized by one mean and std,
spectrogram features) and is what a microcontroller's firmware wants. It cannot hold tabular
columns: wine's run from 0.1 to 1,680, so one scale leaves the small columns a level or two and
the file collapses (issue 34: 0.41 agreement on wine, majority class on adult). There the file
takes float32 raw features, the graph normalizes per column in float (and one-hots nominal
codes), quantizes after that, and returns float32 logits: TFLite full-integer inside with float
I/O, ONNX QDQ with the normalization left float. The agreement gate is the same for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: ``export.int8_io``: auto decides from the card; int8 / float force one for every static int8 file.
MODES = ("auto", "int8", "float")


@dataclass(frozen=True)
class IoChoice:
    """The I/O of the static int8 files of one export: float32 or int8, and the reason in words."""

    float_io: bool
    why: str


def _column_spread(norm: dict[str, Any]) -> tuple[float, float] | None:
    """The smallest and largest per-feature std the card records (constant features left out)."""
    std = norm.get("std")
    if not isinstance(std, list):
        return None
    values = [float(s) for s in std if isinstance(s, (int, float)) and float(s) not in (0.0, 1.0)]
    return (min(values), max(values)) if values else None


def heterogeneous(card: dict[str, Any]) -> str | None:
    """Why one int8 scale on the raw input cannot hold this card's features, or None when it can.

    Per-column normalization (``input.normalization.mode: column``) says the features have
    scales of their own; nominal columns are category codes, not magnitudes.
    """
    inp = card.get("input") or {}
    norm = inp.get("normalization") or {}
    reasons = []
    if norm.get("mode") == "column":
        spread = _column_spread(norm)
        reasons.append(
            "the features are normalized per column"
            + (
                f" (training std from {spread[0]:.3g} to {spread[1]:.3g})"
                if spread and spread[1] > spread[0]
                else ""
            )
        )
    nominal = inp.get("nominal") or {}
    if nominal:
        reasons.append(
            f"{len(nominal)} column(s) are category codes ({', '.join(map(str, nominal))})"
        )
    return "; ".join(reasons) or None


def choose(card: dict[str, Any], mode: str = "auto") -> IoChoice:
    """The I/O of the static int8 files (TFLite int8-full, ONNX int8) for this card and setting."""
    why_not = heterogeneous(card)
    mode_text = ((card.get("input") or {}).get("normalization") or {}).get("mode", "none")
    if mode == "float" or (mode == "auto" and why_not):
        return IoChoice(
            True,
            "float32 raw input and float32 logits: "
            + (why_not or "export.int8_io: float asked")
            + ", so one int8 scale on the raw input cannot hold them; the graph normalizes in "
            "float, then quantizes, and dequantizes the logits",
        )
    if why_not:
        return IoChoice(
            False,
            f"int8 input and output as export.int8_io: int8 asked (for firmware that wants int8 I/O), "
            f"although {why_not}: one int8 scale on the raw input may not hold every feature",
        )
    return IoChoice(
        False,
        "int8 input and output: q = round(x_raw / scale) + zero_point with one scale for every "
        f"feature, which fits here (normalization: {mode_text}, one mean and std for all features)",
    )
