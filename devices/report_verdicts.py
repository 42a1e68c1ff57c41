"""The report's verdict tables: the answer per device, and every file on every device."""

from __future__ import annotations

from ground import recommend
from ground.recommend import size

from .report_cells import band_text, ms, pct, versus

WITHIN = recommend.WITHIN

ANSWER_HEAD = [
    "device",
    "verdict",
    "file to ship",
    "holdout accuracy",
    "latency vs budget",
    "RAM vs budget",
    "flash vs budget",
    "latency from",
    "why",
]

VERDICT_HEAD = [
    "device",
    "file",
    "accuracy",
    "latency from",
    "latency",
    "RAM",
    "flash",
    "verdict",
    "reasons",
]


def answer_rows(
    picks: dict[str, recommend.Pick], titles: dict[str, str]
) -> list[tuple[str, list[str]]]:
    """(css class, cells) per device: the first screen."""
    out = []
    for dev, p in picks.items():
        b = p.budget
        if p.fits and p.verdict == WITHIN:  # allowed by the recipe, still amber
            cls, verdict, file = "warn", WITHIN, p.recommended
        elif p.fits:
            cls, verdict, file = "ok", "fits", p.recommended
        elif p.verdict == WITHIN:
            cls, verdict, file = "warn", WITHIN, f"not recommended: {p.file}"
        elif p.file:
            cls, verdict, file = "miss", "nothing fits", f"nearest miss: {p.file}"
        else:
            cls, verdict, file = "none", "not judged", "-"
        why = (
            "; ".join(p.reasons)
            if p.verdict != "fits"
            else f"{p.n_fit} of {p.n_files} files fit"
            + (f" ({p.n_within} more only within error)" if p.n_within else "")
        )
        if p.verdict != "nothing fits" and p.chosen_by:
            why += f"; {p.chosen_by}"
        out.append(
            (
                cls,
                [
                    f"{dev}" + (f" ({titles[dev]})" if titles.get(dev) else ""),
                    verdict,
                    file,
                    pct(p.accuracy),
                    versus(p.latency_ms, b.get("latency_ms"), ms),
                    versus(p.ram_bytes, b.get("ram_kb"), size, 1024),
                    versus(p.flash_bytes, b.get("flash_kb"), size, 1024),
                    p.method or "-",
                    why,
                ],
            )
        )
    return out


def verdict_rows(doc: dict, acc: dict) -> list[tuple[str, list[str]]]:
    out = []
    for r in doc["records"]:
        cls = (
            "ok"
            if r["verdict"] == "fits"
            else "warn"
            if r["verdict"] == WITHIN
            else "none"
            if r["verdict"] in ("not runnable", "unknown")
            else "miss"
        )
        out.append(
            (
                cls,
                [
                    r["device"],
                    r["artifact"],
                    pct(acc.get(r["artifact"])),
                    r["method"],
                    ms(r["latency_ms"]) + band_text(r.get("latency_band")),
                    _ram(r),
                    size(r["flash_bytes"]),
                    r["verdict"],
                    "; ".join(r.get("reasons") or []),
                ],
            )
        )
    return out


def _ram(r: dict) -> str:
    """A record's RAM, with the audio front-end's share when it is counted in (MCU/PDA classes)."""
    fe = r.get("ram_frontend") or {}
    if r["ram_bytes"] is None or not fe.get("in_ram_bytes"):
        return size(r["ram_bytes"])
    return f"{size(r['ram_bytes'])} (model {size(r['ram_bytes'] - fe['bytes'])} + front-end {size(fe['bytes'])})"
