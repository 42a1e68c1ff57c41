"""The export stage: ship the student as ONNX, TFLite and Core ML files, each checked against it.

Public API: :func:`run` (what ``python -m export`` calls) returning an
:class:`ExportReport`; the format registry is in :mod:`export.registry`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .records import ArtifactRecord, ExportReport


def run(*args: Any, **kwargs: Any) -> ExportReport:
    """See :func:`export.pipeline.run` (imported lazily so ``import export`` stays light)."""
    from .pipeline import run as _run

    return _run(*args, **kwargs)


def __getattr__(name: str):
    if name in ("ArtifactRecord", "ExportReport", "Parity", "TensorSpec"):
        from . import records

        return getattr(records, name)
    raise AttributeError(name)


__all__ = ["run", "ArtifactRecord", "ExportReport"]
