"""Static analysis of exported models: per-operator MACs, parameters, weight bytes, activations, arena.

No device is needed: everything here is read from the model file. ONNX graphs are
read with onnx and its shape inference (``analysis_onnx``); TFLite flatbuffers with the LiteRT
schema (``analysis_tflite``); both then count costs, weights and the arena with the same steps
(``graph_costs``). Peak activation memory comes from a greedy-by-size arena plan
(devices/arena.py), the scheme TFLite Micro uses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ground import rundir
from ground.errors import UserError

from .analysis_onnx import analyse_onnx
from .analysis_tflite import analyse_tflite
from .graph_costs import KINDS, MATMUL_KINDS, Analysis, OpCost, tflm_tail_estimate

__all__ = ["KINDS", "MATMUL_KINDS", "Analysis", "OpCost", "analyse", "tflm_tail_estimate"]


# ----------------------------------------------------------------------------- Core ML


def _analyse_mlpackage(path: Path) -> Analysis:
    if not path.is_dir() or not (path / "Manifest.json").is_file():
        raise UserError(
            f"'{path}' is not a Core ML .mlpackage folder (no Manifest.json). Re-export it."
        )
    weights = sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and "weights" in p.parts)
    return Analysis(
        path.name,
        "mlpackage",
        rundir.path_bytes(path),
        None,
        None,
        weights,
        {"weight.bin": weights},
        None,
        None,
        None,
        not_analysed=[
            "MACs, parameters and activation memory: the ML Program is not parsed here (only file sizes)",
            "latency: Core ML prediction needs macOS/iOS",
        ],
        tflm_refusal="a Core ML package: TFLite Micro runs .tflite flatbuffers only",
    )


ANALYSERS: dict[str, Callable[[Path], Analysis]] = {
    ".onnx": analyse_onnx,
    ".tflite": analyse_tflite,
    ".mlpackage": _analyse_mlpackage,
}


def analyse(path: str | Path, tflm_arena_bytes: int | None = None) -> Analysis:
    """Analyse one model file; compare the arena plan with TFLM's own arena when export recorded one."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"model '{path}' not found. Run the export stage first or check the path.")
    fn = ANALYSERS.get(path.suffix)
    if fn is None:
        raise UserError(
            f"model '{path}' has suffix '{path.suffix}'; analysable: {', '.join(ANALYSERS)}."
        )
    a = fn(path)
    if tflm_arena_bytes is not None and a.peak_activation_bytes is not None:
        a.tflm_arena_bytes = int(tflm_arena_bytes)
        a.arena_delta_bytes = int(tflm_arena_bytes) - a.peak_activation_bytes
        a.arena_note = (
            "TFLM arena (measured by export with the TFLite Micro interpreter) minus this plan: "
            "the TFLM arena also holds per-op scratch buffers, runtime structs and alignment"
        )
    return a
