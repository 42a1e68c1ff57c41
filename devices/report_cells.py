"""The report's cell formatting (latency, percentages, value against budget), shared by HTML and markdown."""

from __future__ import annotations


def ms(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.4f} ms" if abs(x) < 0.1 else f"{x:.3g} ms" if abs(x) < 100 else f"{x:,.0f} ms"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def ape(loo: dict) -> str:
    """The estimator's leave-one-out median absolute percentage error, or '-'."""
    return "-" if loo.get("median_ape") is None else f"{loo['median_ape']:.1f}"


def versus(value, budget, fmt, unit_scale: float = 1.0) -> str:
    """'2.4 ms of 20 ms (88% spare)' or '11 ms over 10 ms (+10%)'."""
    if value is None:
        return "-"
    if budget is None:
        return f"{fmt(value)} (no budget)"
    b = budget * unit_scale
    if value <= b:
        return f"{fmt(value)} of {fmt(b)} ({100 * (b - value) / b:.0f}% spare)"
    return f"{fmt(value)} over {fmt(b)} (+{100 * (value - b) / b:.0f}%)"


def band_text(band: dict | None) -> str:
    """' (band 15.2-24.1 ms)': a latency's error band beside it, or '' where it has none."""
    if not band:
        return ""
    return f" (band {ms(band['low_ms']).removesuffix(' ms')}-{ms(band['high_ms'])})"
