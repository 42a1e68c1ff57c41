"""The recipe's ``export`` section: which formats and precisions, and the parity gates.

Read from ``card.lineage.recipe.export`` unless ``--recipe`` names a file;
validated with :func:`ground.recipe.validate` so a bad key names itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ground.recipe import Field, load_recipe, validate

from .int8_io import MODES
from .parity import DEFAULT_THRESHOLDS


def _check_thresholds(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be a mapping such as {int8: 0.99, fp16: 0.999, fp32: 0.999}"
    for k, v in value.items():
        if k not in (*DEFAULT_THRESHOLDS, "agreement"):
            return f"key '{k}' is not known (allowed: agreement, {', '.join(DEFAULT_THRESHOLDS)})"
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            return f"'{k}' must be a number in [0, 1] (a top-1 agreement)"
    return None


def _check_names(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return "must be a list of names such as [onnx, tflite]"
    return None


FIELDS = {
    "formats": Field(
        (list, type(None)), None, check=_check_names, doc="formats to export (default: all)"
    ),
    "precisions": Field(
        (list, type(None)), None, check=_check_names, doc="precisions to export (default: all)"
    ),
    "thresholds": Field(
        (dict, type(None)),
        None,
        check=_check_thresholds,
        doc="minimum top-1 agreement with the student: 'agreement' for all, or per family",
    ),
    "keep_going": Field(bool, False, doc="write exports.json even when an artifact fails its gate"),
    "fallback": Field(bool, True, doc="retry failing int8 files with the worst layers kept float"),
    "max_excluded_layers": Field(
        int, 8, min=0, max=1000, doc="how many layers the int8 fallback may keep float"
    ),
    "int8_io": Field(
        str,
        "auto",
        choices=MODES,
        doc="I/O of the static int8 files (tflite int8-full, onnx int8): auto = float32 raw input "
        "and logits where the features have scales of their own (per-column normalization or "
        "nominal columns), int8 where one scale fits; int8 or float force one",
    ),
}


def export_settings(card: dict[str, Any], recipe_path: str | Path | None = None) -> dict[str, Any]:
    """The validated export section, from ``recipe_path`` or the recipe recorded in the card."""
    if recipe_path is not None:
        section = load_recipe(recipe_path).get("export")
    else:
        section = ((card.get("lineage") or {}).get("recipe") or {}).get("export")
    out = validate("export", section, FIELDS)
    out["thresholds"] = resolve_thresholds(out["thresholds"])
    return out


def resolve_thresholds(
    given: dict[str, float] | None, base: dict[str, float] | None = None
) -> dict[str, float]:
    """Per-family thresholds: ``agreement`` sets every family, a family key (int8, fp16, ...) overrides it."""
    given = dict(given or {})
    out = dict(base or DEFAULT_THRESHOLDS)
    if "agreement" in given:
        everyone = float(given.pop("agreement"))
        out = {k: everyone for k in out}
    out.update({k: float(v) for k, v in given.items()})
    return out
