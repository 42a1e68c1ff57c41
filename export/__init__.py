"""The export stage: ship the student as ONNX, TFLite and Core ML files, each checked against it.

Public API: :func:`run` (what ``python -m export`` calls) returning an
:class:`ExportReport`; the format registry is in :mod:`export.registry`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .records import ArtifactRecord, ExportReport


def run(
    run_dir: str | Path,
    formats: list[str] | None = None,
    precisions: list[str] | None = None,
    *,
    force: bool = False,
    keep_going: bool = False,
    thresholds: dict[str, float] | None = None,
    recipe: str | Path | None = None,
    progress: bool = True,
) -> ExportReport:
    """Export ``run_dir/student`` to ``run_dir/export``; see :func:`export.pipeline.run`
    (imported lazily so ``import export`` stays light)."""
    from .pipeline import run as _run

    return _run(
        run_dir,
        formats,
        precisions,
        force=force,
        keep_going=keep_going,
        thresholds=thresholds,
        recipe=recipe,
        progress=progress,
    )


def __getattr__(name: str):
    if name in ("ArtifactRecord", "ExportReport", "Parity", "TensorSpec"):
        from . import records

        return getattr(records, name)
    raise AttributeError(name)


__all__ = ["run", "ArtifactRecord", "ExportReport"]
