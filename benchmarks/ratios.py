"""True/estimated ratios as the estimator benchmarks score and print them (estimator_validation
and its v3 section)."""

from __future__ import annotations


def within(ratios: list[float], tol: float) -> float | None:
    """Share of true/estimated ratios whose estimate is within ``tol`` of the truth."""
    ok = [r for r in ratios if abs(1 / r - 1) <= tol]
    return len(ok) / len(ratios) if ratios else None


def ratio(x: float | None, d: int = 2) -> str:
    return "-" if x is None else f"{x:.{d}f}"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"
