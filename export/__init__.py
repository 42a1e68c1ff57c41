"""The export stage: ship the student as ONNX, TFLite and Core ML files, each checked against it.

Public API: :func:`run` (what ``python -m export`` calls) returning an
:class:`ExportReport`; the format registry is in :mod:`export.registry`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# export.pipeline is light (numpy and tinyship; converters are imported by the formats'
# functions), so the real function is re-exported as it is: one signature, one place.
from .pipeline import run

if TYPE_CHECKING:
    from .records import ArtifactRecord, ExportReport


def __getattr__(name: str):
    if name in ("ArtifactRecord", "ExportReport", "Parity", "TensorSpec"):
        from . import records

        return getattr(records, name)
    raise AttributeError(name)


__all__ = ["run", "ArtifactRecord", "ExportReport"]
