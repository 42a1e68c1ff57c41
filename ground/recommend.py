"""Which file to ship on each device: one rule, shared by the summary, the report and `check`.

The rule: among the files that fit the device's budget, take the most accurate on the
holdout; every fitting file within ``recommend.tolerance`` points of holdout accuracy of it
(default 0.5, the recipe's ``recommend`` section) is as good, and the fastest of those
ships, ties broken by lower RAM, then flash, then the file name. With tolerance 0 this is
"most accurate, then fastest". A file that fits only within its latency error band ('fits
within error', issue 37) is never recommended over one that fits: the same rule runs over those
files only where no file fits outright, and its pick ships only where the recipe allows it
(``devices.allow_within_error``, recorded on each record); otherwise it is shown as the nearest
candidate, amber, not recommended. Where nothing fits, the nearest miss is the runnable file
whose worst budget overrun (value / budget) is smallest, with the reasons it misses. Reads
only profile.json records, exports.json accuracies and the card's recipe.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .recipe import Field, validate

DEFAULT_TOLERANCE = 0.5  # points of holdout accuracy (0.5 = half a percentage point)
FIELDS = {
    "tolerance": Field(
        float,
        DEFAULT_TOLERANCE,
        min=0.0,
        max=100.0,
        doc="points of holdout accuracy: every file that fits within this of the most accurate "
        "file that fits counts as equally good, and the fastest of them is recommended (then lower "
        "RAM, then flash); 0 = the most accurate file always wins",
    ),
}


def rule(tolerance: float = DEFAULT_TOLERANCE) -> str:
    """The rule in one sentence, with its tolerance (the report and summary print it)."""
    return (
        f"the fastest file that fits the budget among those within {tolerance:g} points of holdout "
        "accuracy of the most accurate one that fits (recommend.tolerance); ties broken by lower "
        "RAM, then flash; a file that fits only within its latency error band is considered only "
        "where none fits outright, and ships only where devices.allow_within_error allows it"
    )


RULE = rule()
WITHIN = "fits within error"  # the verdict of a file whose latency band reaches past the budget
_DIMS = (("latency_ms", "latency_ms", 1.0), ("ram_bytes", "ram_kb", 1024.0))
_DIMS += (("flash_bytes", "flash_kb", 1024.0),)


def settings(card: dict | None = None, recipe: dict | None = None) -> dict:
    """The validated ``recommend`` section (defaults filled) of ``recipe``, else of the recipe the
    card records (``card.lineage.recipe``)."""
    if recipe is None:
        recipe = ((card or {}).get("lineage") or {}).get("recipe") or {}
    return validate("recommend", recipe.get("recommend"), FIELDS)


def tolerance(card: dict | None) -> float:
    """The recipe's ``recommend.tolerance`` in points of holdout accuracy (default 0.5)."""
    return settings(card)["tolerance"]


@dataclass
class Pick:
    """The answer for one device: the file to ship (or the nearest miss) and its margins."""

    device: str
    device_class: str
    fits: bool
    recommended: str | None  # the file to ship; None when nothing fits
    file: str | None  # recommended, or the nearest miss when nothing fits
    accuracy: float | None
    latency_ms: float | None
    method: str | None  # measured | estimated | none
    ram_bytes: int | None
    flash_bytes: int | None
    budget: dict[str, float]
    margins: dict[str, float] = field(
        default_factory=dict
    )  # budget minus value, in the value's unit
    reasons: list[str] = field(default_factory=list)  # why the nearest miss misses
    n_fit: int = 0
    n_files: int = 0
    n_runnable: int = 0
    chosen_by: str = ""  # which part of the rule chose the file, in words
    most_accurate: str | None = None  # the most accurate file that fits (may be the pick)
    tolerance: float = DEFAULT_TOLERANCE
    # fits | fits within error | nothing fits | not judged: the device's answer in one word
    verdict: str = "not judged"
    # the latency's error band {low_ms, high_ms, source, ...} from the record (devices.latency_bands)
    band: dict | None = None
    n_within: int = 0  # files that fit only within their latency error band

    def to_dict(self) -> dict:
        return asdict(self)


def size(n: float | None) -> str:
    """Bytes in binary units, as everywhere in tinyship: 6016 -> '5.9 KiB' (1 KiB = 1024 B)."""
    if n is None:
        return "-"
    n = float(n)
    for unit, k in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= k:
            return f"{n / k:,.1f} {unit}"
    return f"{n:,.0f} B"


def accuracies(exports: dict | None) -> dict[str, float | None]:
    """File name -> holdout accuracy recorded by the export stage (None where unchecked)."""
    return {a["file"]: a.get("accuracy") for a in (exports or {}).get("artifacts", [])}


def _speed(r: dict) -> tuple:
    inf = float("inf")
    return (
        r["latency_ms"] if r["latency_ms"] is not None else inf,
        r["ram_bytes"] if r["ram_bytes"] is not None else inf,
        r.get("flash_bytes") if r.get("flash_bytes") is not None else inf,
        r["artifact"],
    )


def _rank_fit(r: dict, acc: dict[str, float | None]) -> tuple:
    a = acc.get(r["artifact"])
    return (-(a if a is not None else -1.0), *_speed(r))


def choose(fits: list[dict], acc: dict[str, float | None], tol: float) -> tuple[dict, dict, str]:
    """(the file to ship, the most accurate that fits, which part of the rule chose) among ``fits``."""
    top = min(fits, key=lambda r: _rank_fit(r, acc))
    best = acc.get(top["artifact"])
    if best is None:  # no accuracy recorded for any fitting file: the fastest
        return min(fits, key=_speed), top, "fastest (no file that fits has a holdout accuracy)"
    near = [r for r in fits if acc.get(r["artifact"]) is not None]
    near = [r for r in near if acc[r["artifact"]] >= best - tol / 100 - 1e-9]
    pick = min(near, key=_speed)
    if pick is top:
        why = "most accurate that fits"
        if len(near) > 1:
            why += f"; fastest of {len(near)} within {tol:g} points"
        return pick, top, why
    gap = 100 * (best - acc[pick["artifact"]])
    why = (
        f"fastest within {tol:g} points of the most accurate that fits ({top['artifact']}, "
        f"{gap:.2f} points more accurate"
    )
    if pick["latency_ms"] and top["latency_ms"]:
        why += f", {top['latency_ms'] / pick['latency_ms']:.1f}x the latency"
    return pick, top, why + ")"


def overrun(r: dict) -> float:
    """The worst value / budget ratio over latency, RAM and flash (1.0 = exactly on budget)."""
    worst = 0.0
    for key, bkey, scale in _DIMS:
        if r.get(key) is not None and bkey in r["budget"]:
            worst = max(worst, r[key] / (r["budget"][bkey] * scale))
    return worst


def margins(r: dict) -> dict[str, float]:
    """Budget minus value per dimension that has both (ms for latency, bytes for RAM/flash)."""
    out = {}
    for key, bkey, scale in _DIMS:
        if r.get(key) is not None and bkey in r["budget"]:
            out[key] = r["budget"][bkey] * scale - r[key]
    return out


def pick(
    device: str, records: list[dict], acc: dict[str, float | None], tol: float = DEFAULT_TOLERANCE
) -> Pick:
    """Apply the rule to one device's records (profile.json ``records`` for that device)."""
    fits = [r for r in records if r["verdict"] == "fits"]
    within = [r for r in records if r["verdict"] == WITHIN]
    runnable = [r for r in records if r["verdict"] not in ("not runnable", "unknown")]
    top, chosen_by = None, ""
    if fits:
        best, top, chosen_by = choose(fits, acc, tol)
        ok, reasons, verdict = True, [], "fits"
    elif within:  # never over a file that fits; ships only where the recipe allows it
        best, top, chosen_by = choose(within, acc, tol)
        ok, reasons, verdict = (
            bool(best.get("within_error_allowed")),
            list(best.get("reasons") or []),
            WITHIN,
        )
        chosen_by = f"no file fits with its error band; among the {len(within)} that fit within error: {chosen_by}"
        chosen_by += (
            " (allowed: devices.allow_within_error)"
            if ok
            else "; not recommended (devices.allow_within_error is false)"
        )
    elif runnable:
        best = min(runnable, key=lambda r: (overrun(r), _rank_fit(r, acc)))
        ok, reasons, verdict = False, list(best.get("reasons") or []), "nothing fits"
        chosen_by = "nearest miss: the smallest worst overrun of latency, RAM or flash"
    else:
        best, ok, verdict = None, False, "not judged"
        reasons = sorted({x for r in records for x in (r.get("reasons") or [])})[:3] or [
            "no file was profiled on this device"
        ]
    cls = records[0]["device_class"] if records else "?"
    common = dict(n_fit=len(fits), n_files=len(records), n_runnable=len(runnable))
    common |= dict(chosen_by=chosen_by, tolerance=tol, verdict=verdict, n_within=len(within))
    common["most_accurate"] = top["artifact"] if top else None
    if best is None:
        return Pick(
            device, cls, False, None, None, None, None, None, None, None, {}, {}, reasons, **common
        )
    return Pick(
        device,
        cls,
        ok,
        best["artifact"] if ok else None,
        best["artifact"],
        acc.get(best["artifact"]),
        best["latency_ms"],
        best["method"],
        best["ram_bytes"],
        best["flash_bytes"],
        dict(best["budget"]),
        margins(best),
        reasons,
        band=best.get("latency_band"),
        **common,
    )


def recommend(
    profile: dict, exports: dict | None, tolerance: float | None = None
) -> dict[str, Pick]:
    """Device name -> Pick, in the order devices were profiled (``tolerance`` in points; None =
    the default, DEFAULT_TOLERANCE; callers with the card pass ``recommend.tolerance(card)``)."""
    acc = accuracies(exports)
    tol = DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
    by_dev: dict[str, list[dict]] = {}
    for r in profile.get("records", []):
        by_dev.setdefault(r["device"], []).append(r)
    return {d: pick(d, recs, acc, tol) for d, recs in by_dev.items()}
