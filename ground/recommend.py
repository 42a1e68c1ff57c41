"""Which file to ship on each device: one rule, shared by the summary, the report and `check`.

The rule: among the files that fit the device's budget, the most accurate on the holdout;
ties broken by lower latency, then lower RAM, then the file name. Where nothing fits, the
nearest miss is the runnable file whose worst budget overrun (value / budget) is smallest,
with the reasons it misses. Reads only profile.json records and exports.json accuracies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

RULE = (
    "most accurate file that fits the budget (holdout accuracy); ties broken by lower latency, "
    "then lower RAM"
)
_DIMS = (("latency_ms", "latency_ms", 1.0), ("ram_bytes", "ram_kb", 1024.0))
_DIMS += (("flash_bytes", "flash_kb", 1024.0),)


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


def _rank_fit(r: dict, acc: dict[str, float | None]) -> tuple:
    a = acc.get(r["artifact"])
    return (
        -(a if a is not None else -1.0),
        r["latency_ms"] if r["latency_ms"] is not None else float("inf"),
        r["ram_bytes"] if r["ram_bytes"] is not None else float("inf"),
        r["artifact"],
    )


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


def pick(device: str, records: list[dict], acc: dict[str, float | None]) -> Pick:
    """Apply the rule to one device's records (profile.json ``records`` for that device)."""
    fits = [r for r in records if r["verdict"] == "fits"]
    runnable = [r for r in records if r["verdict"] not in ("not runnable", "unknown")]
    if fits:
        best, ok, reasons = min(fits, key=lambda r: _rank_fit(r, acc)), True, []
    elif runnable:
        best = min(runnable, key=lambda r: (overrun(r), _rank_fit(r, acc)))
        ok, reasons = False, list(best.get("reasons") or [])
    else:
        best, ok = None, False
        reasons = sorted({x for r in records for x in (r.get("reasons") or [])})[:3] or [
            "no file was profiled on this device"
        ]
    cls = records[0]["device_class"] if records else "?"
    common = dict(n_fit=len(fits), n_files=len(records), n_runnable=len(runnable))
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
        **common,
    )


def recommend(profile: dict, exports: dict | None) -> dict[str, Pick]:
    """Device name -> Pick, in the order devices were profiled."""
    acc = accuracies(exports)
    by_dev: dict[str, list[dict]] = {}
    for r in profile.get("records", []):
        by_dev.setdefault(r["device"], []).append(r)
    return {d: pick(d, recs, acc) for d, recs in by_dev.items()}
