"""Export formats looked up by name (timm-style registry, STYLE.md).

Adding a format is adding one module under ``export/formats/`` that calls
:func:`register`; the pipeline never switches on a format name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyship.errors import UserError

#: Convert one precision: (program, card, calibration, precision, out_path, exclude) -> ArtifactRecord.
Convert = Callable[..., Any]
#: Run a file on float inputs and return float32 logits; the runtime's quantization is handled inside.
Predict = Callable[[Path, np.ndarray], np.ndarray]

#: Which threshold (recipe ``export.thresholds``) gates each precision.
THRESHOLD_FAMILY = {
    "fp32": "fp32",
    "fp16": "fp16",
    "int8": "int8",
    "int8-dynamic": "int8",
    "int8-full": "int8",
    "int8-weights": "int8",
    "palette6": "palette",
    "palette4": "palette",
}


@dataclass(frozen=True)
class Format:
    """One export format: how to convert each precision and how to run the result here."""

    name: str
    ext: str
    precisions: tuple[str, ...]
    convert: Convert
    predict: Predict
    runtime: Callable[[], str | None]
    #: Why this format cannot be run on this machine (None when it can).
    cannot_run: Callable[[], str | None] = lambda: None
    #: (student, precision, out_path, excluded) -> [{"layer", "error"}], worst first; for the int8 fallback.
    layer_errors: Callable[..., list[dict[str, Any]]] | None = None
    #: Precisions the layer-by-layer fallback applies to.
    fallback_precisions: tuple[str, ...] = ()
    #: Precisions also run in TFLite Micro (arena bytes and a second parity figure).
    micro_precisions: tuple[str, ...] = ()

    def filename(self, precision: str) -> str:
        return f"model.{precision}.{self.ext}"


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    if fmt.name in FORMATS:
        raise ValueError(f"export format {fmt.name!r} registered twice")
    FORMATS[fmt.name] = fmt
    return fmt


def formats() -> dict[str, Format]:
    """All registered formats (importing their modules registers them; heavy deps stay lazy)."""
    from . import formats as _  # noqa: F401  (registers onnx, tflite, coreml)

    return FORMATS


def get(name: str) -> Format:
    table = formats()
    if name not in table:
        raise UserError(
            f"export format '{name}' is not known. Allowed formats: {', '.join(table)}. "
            f"Fix --formats or recipe export.formats."
        )
    return table[name]


def plan(format_names: list[str] | None, precisions: list[str] | None) -> list[tuple[Format, str]]:
    """The (format, precision) pairs to export: every pair the formats support among those asked for."""
    table = formats()
    names = list(table) if not format_names else list(dict.fromkeys(format_names))
    chosen = [get(n) for n in names]
    if precisions:
        known = {p for f in table.values() for p in f.precisions}
        for p in precisions:
            if p not in known:
                raise UserError(
                    f"precision '{p}' is not known. Allowed precisions: "
                    + "; ".join(f"{f.name}: {', '.join(f.precisions)}" for f in table.values())
                    + ". Fix --precisions or recipe export.precisions."
                )
        pairs = [(f, p) for f in chosen for p in f.precisions if p in precisions]
        if not pairs:
            raise UserError(
                f"no format among {names} supports precisions {precisions}. Supported: "
                + "; ".join(f"{f.name}: {', '.join(f.precisions)}" for f in chosen)
                + "."
            )
        return pairs
    return [(f, p) for f in chosen for p in f.precisions]
