"""The distill stage: teacher ensemble -> transfer set -> small student (Bucilua 2006; Hinton 2015).

Run it as ``python -m distill --recipe recipes/demo.yaml --out build/demo``, or from Python
with :func:`distill.run` (the steps are in :mod:`distill.pipeline`). Importing the package
stays light: torch is imported when :func:`run` is called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pipeline import DistillResult
    from .train import TrainContext


def run(
    recipe: dict | str | Path,
    run_dir: str | Path,
    *,
    force: bool = False,
    resume: bool = False,
    seed: int | None = None,
    epochs: int | None = None,
    trust_pickles: bool = False,
    members: list | None = None,
    command: str | None = None,
    progress: bool = True,
    ctx: TrainContext | None = None,
    dist_ctx: Any = None,
) -> DistillResult:
    """Distill ``recipe`` into ``run_dir/student``; see :func:`distill.pipeline.run`."""
    from .pipeline import run as _run

    return _run(
        recipe,
        run_dir,
        force=force,
        resume=resume,
        seed=seed,
        epochs=epochs,
        trust_pickles=trust_pickles,
        members=members,
        command=command,
        progress=progress,
        ctx=ctx,
        dist_ctx=dist_ctx,
    )


__all__ = ["run"]
