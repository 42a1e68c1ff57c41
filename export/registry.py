"""Export formats looked up by name (timm-style registry, STYLE.md).

Adding a format is adding one module ``export/formats/<name>_format.py`` that calls
:func:`register` (found automatically), or calling :func:`register` from your own code
before ``export.run``; the pipeline never switches on a format name, and the devices
stage reads what it needs from the facts each format writes into exports.json.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ground.errors import InternalError, UserError

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


#: Device classes the catalog knows; a format's facts say which of them run it.
DEVICE_CLASSES = ("host", "sbc", "phone", "mcu", "pda", "apple")


@dataclass(frozen=True)
class DeviceRuntime:
    """A runtime on some device classes that runs a format (optionally only some precisions)."""

    classes: tuple[str, ...]
    runtime: str
    precisions: tuple[str, ...] | None = None  # None: every precision of the format


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
    #: Static int8 precisions whose convert and layer_errors take ``float_input`` (bool): float32
    #: raw input with the input encoding kept float, for inputs one int8 scale cannot hold
    #: (export/int8_io.py). Other formats' converts are called without it.
    float_input_precisions: tuple[str, ...] = ()
    #: Precisions also run in TFLite Micro (arena bytes and a second parity figure).
    micro_precisions: tuple[str, ...] = ()
    #: The runtime family that runs the files on a device (exports.json ``runtime_family``).
    runtime_family: str = ""
    #: Which device classes run the files, with which runtime (exports.json ``runs_on``).
    device_runtimes: tuple[DeviceRuntime, ...] = ()
    #: Why the other device classes cannot (exports.json ``not_on``).
    not_on_reason: str = ""
    #: Place in the table (exports.json, summary); ties keep registration order.
    rank: int = 100

    def filename(self, precision: str) -> str:
        return f"model.{precision}.{self.ext}"

    def facts(self, precision: str) -> dict[str, Any]:
        """The format facts written into exports.json, so the devices stage never switches on a name."""
        runs_on: list[str] = []
        not_on: dict[str, str] = {}
        for dr in self.device_runtimes:
            if dr.precisions is None or precision in dr.precisions:
                runs_on += [c for c in dr.classes if c not in runs_on]
            else:
                for c in dr.classes:
                    not_on[c] = (
                        f"{dr.runtime} has no kernels for '{precision}' "
                        f"(runs {', '.join(dr.precisions)})"
                    )
        default = self.not_on_reason or f"no {self.runtime_family} runtime on this device class"
        for c in DEVICE_CLASSES:
            if c not in runs_on and c not in not_on:
                not_on[c] = default
        return {"runtime_family": self.runtime_family, "runs_on": runs_on, "not_on": not_on}


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add ``fmt`` to the table (order of registration is the order of exports.json)."""
    if fmt.name in FORMATS:
        raise InternalError(f"export format {fmt.name!r} registered twice")
    if not fmt.runtime_family or not fmt.device_runtimes:
        raise InternalError(f"export format {fmt.name!r} has no runtime_family or device_runtimes")
    FORMATS[fmt.name] = fmt
    return fmt


def formats() -> dict[str, Format]:
    """All registered formats (importing their modules registers them; heavy deps stay lazy)."""
    from . import formats as _  # noqa: F401  (registers every *_format module)

    return dict(sorted(FORMATS.items(), key=lambda kv: kv[1].rank))


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
