"""Budgets per device (latency_ms, ram_kb, flash_kb) and the verdict of one artifact on one device."""

from __future__ import annotations

import math
from typing import Any

from ground.errors import UserError
from ground.recipe import Field, validate

from .frontend import MODES as FRONTEND_MODES

BUDGET_KEYS = ("latency_ms", "ram_kb", "flash_kb")
# the largest budget each key takes: an hour, 4 TiB (past these a figure only overflows later)
BUDGET_MAX = {"latency_ms": 3_600_000.0, "ram_kb": float(2**32), "flash_kb": float(2**32)}
_RANGE = "a finite positive number up to {hi:g} (not NaN, inf, 0 or below)"


def _positive(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _in_range(k: str, x: Any) -> bool:
    return _positive(x) and x <= BUDGET_MAX.get(k, math.inf)


def _check_budgets(v: Any) -> str | None:
    if not isinstance(v, dict):
        return "must map device name -> {latency_ms, ram_kb, flash_kb}"
    for dev, b in v.items():
        if not isinstance(b, dict):
            return f"budget of '{dev}' must be a mapping"
        for k, x in b.items():
            if k not in BUDGET_KEYS:
                return f"budget key '{dev}.{k}' unknown (allowed: {', '.join(BUDGET_KEYS)})"
            if not _in_range(k, x):
                return f"budget '{dev}.{k}' must be " + _RANGE.format(hi=BUDGET_MAX[k])
    return None


RECIPE_FIELDS = {
    "targets": Field(
        (list, type(None)), None, doc="device names from the catalog to profile (default: all)"
    ),
    "budgets": Field(
        dict, {}, check=_check_budgets, doc="device -> {latency_ms, ram_kb, flash_kb}"
    ),
    "stack": Field(
        str,
        None,
        doc="MCU inference stack that MCU latencies (and so the budgets' verdicts) model, a name "
        "from the catalog's 'stacks:' (default: the catalog's default); --stack overrides",
    ),
    "frontend": Field(
        str,
        "window",
        choices=FRONTEND_MODES,
        doc="how an audio front-end is costed on the device: window = every frame recomputed "
        "from the window's samples before each inference; streaming = one frame per hop as the "
        "audio arrives, into a ring (devices/frontend.py)",
    ),
    "allow_within_error": Field(
        bool,
        False,
        doc="whether a file whose latency fits the budget only within its error band ('fits within "
        "error': the central figure fits, the band's upper edge does not) passes `tinyship check` "
        "and may be recommended where no file fits outright; false: it fails check (issue 37)",
    ),
    "threads": Field(int, 1, min=1, max=64, doc="threads for measured runs"),
    "runs": Field(int, 30, min=1, max=100000, doc="timed runs per artifact"),
    "warmup": Field(int, 5, min=0, max=10000, doc="untimed runs before timing"),
}


def recipe_devices_section(card: dict) -> dict:
    """The recipe's validated ``devices`` section from ``card.lineage.recipe``."""
    recipe = (card.get("lineage") or {}).get("recipe") or {}
    return validate("devices", recipe.get("devices"), RECIPE_FIELDS)


def parse_budget_flag(text: str) -> tuple[str, dict[str, float]]:
    """``device:latency_ms=10,ram_kb=256`` -> ('device', {...})."""
    dev, sep, rest = text.rpartition(":")
    if not sep or not dev or not rest:
        raise UserError(
            f"--budget '{text}' must look like DEVICE:latency_ms=100,ram_kb=256,flash_kb=1024."
        )
    out: dict[str, float] = {}
    for part in rest.split(","):
        k, eq, v = part.partition("=")
        k = k.strip()
        if not eq or k not in BUDGET_KEYS:
            raise UserError(
                f"--budget '{text}': '{part}' is not KEY=VALUE with KEY one of {', '.join(BUDGET_KEYS)}."
            )
        try:
            out[k] = float(v)
        except ValueError as exc:
            raise UserError(f"--budget '{text}': value '{v}' of {k} is not a number.") from exc
        if not _in_range(k, out[k]):
            raise UserError(
                f"--budget '{text}': {k} must be {_RANGE.format(hi=BUDGET_MAX[k])}; got {v.strip()}."
            )
    return dev, out


def verdict(
    latency_ms: float | None,
    ram_bytes: int | None,
    flash_bytes: int | None,
    runnable: str | None,
    budget: dict[str, float],
    band: dict | None = None,
) -> tuple[str, list[str]]:
    """'fits', 'fits within error', 'too slow', 'too big (RAM)', 'too big (flash)', 'not runnable'
    or 'unknown', with reasons.

    ``band`` ({low_ms, high_ms}, devices/latency_bands.py): the latency's error band. 'fits' needs
    its upper edge within the latency budget; a central figure that fits with an upper edge over it
    is 'fits within error'; a lower edge over the budget is 'too slow' whatever the central figure.

    A budget or figure that is not a finite number (NaN compares false with everything,
    so it would always "fit") is refused: it can only come from a hand-edited file.
    """
    for k, x in budget.items():
        if k not in BUDGET_KEYS or not _in_range(k, x):
            raise UserError(
                f"budget {k}={x!r} must be one of {', '.join(BUDGET_KEYS)} with a finite positive "
                "number (not NaN, inf, 0 or below). Fix the recipe, catalog or --budget value."
            )
    for k, x in (
        ("latency_ms", latency_ms),
        ("ram_bytes", ram_bytes),
        ("flash_bytes", flash_bytes),
        *(
            (f"latency_band.{e}", (band or {}).get(e, -1.0) if band else None)
            for e in ("low_ms", "high_ms")
        ),
    ):
        if x is not None and not (_positive(x) or x == 0):
            raise UserError(
                f"figure {k}={x!r} is not a finite non-negative number (a corrupt profile.json?). "
                "Re-run: tinyship profile --run RUN --force."
            )
    if runnable:
        return "not runnable", [runnable]
    reasons, fails = [], []
    if latency_ms is None:
        reasons.append("latency unknown (no measurement and no estimate)")
    elif "latency_ms" in budget and latency_ms > budget["latency_ms"]:
        fails.append("too slow")
        reasons.append(f"latency {latency_ms:.3g} ms > budget {budget['latency_ms']:g} ms")
    elif "latency_ms" in budget and band and band["low_ms"] > budget["latency_ms"]:
        fails.append("too slow")
        reasons.append(
            f"latency {latency_ms:.3g} ms, but its error band starts at {band['low_ms']:.3g} ms > "
            f"budget {budget['latency_ms']:g} ms"
        )
    within = bool(
        band and latency_ms is not None and not fails and "latency_ms" in budget
        and band["high_ms"] > budget["latency_ms"]
    )  # fmt: skip
    if within:
        reasons.append(
            f"latency {latency_ms:.3g} ms fits budget {budget['latency_ms']:g} ms only within error: "
            f"its band reaches {band['high_ms']:.3g} ms ({band.get('source', 'error band')})"
        )
    if ram_bytes is not None and "ram_kb" in budget and ram_bytes > budget["ram_kb"] * 1024:
        fails.append("too big (RAM)")
        reasons.append(f"RAM {ram_bytes / 1024:.1f} KiB > budget {budget['ram_kb']:g} KiB")
    if flash_bytes is not None and "flash_kb" in budget and flash_bytes > budget["flash_kb"] * 1024:
        fails.append("too big (flash)")
        reasons.append(f"flash {flash_bytes / 1024:.1f} KiB > budget {budget['flash_kb']:g} KiB")
    if fails:
        return "; ".join(fails), reasons
    if latency_ms is None:
        return "unknown", reasons
    return ("fits within error" if within else "fits"), reasons
