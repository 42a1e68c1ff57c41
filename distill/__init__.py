"""The distill stage: teacher ensemble -> transfer set -> small student (Bucilua 2006; Hinton 2015).

Run it as ``python -m distill --recipe recipes/demo.yaml --out build/demo``, or from Python
with :func:`distill.run` (the steps are in :mod:`distill.pipeline`). Importing the package
stays light: torch is imported when :func:`run` is called.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """``distill.run`` is :func:`distill.pipeline.run` itself, imported on first use (PEP 562)."""
    if name == "run":
        from .pipeline import run

        return run
    raise AttributeError(f"module 'distill' has no attribute {name!r}")


__all__ = ["run"]
