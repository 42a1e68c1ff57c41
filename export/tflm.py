"""Run an int8 .tflite in the TFLite Micro interpreter and measure the arena it needs.

TFLite Micro's Python interpreter crashes the process (segfault) when the arena is
too small, so it runs in a child process; the child prints TFLM's own allocation
record (``RecordingMicroAllocator``), whose total is the arena bytes the model used.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyship import errors
from tinyship.rundir import atomic_write_npz

_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")


@dataclass
class TflmResult:
    logits: np.ndarray
    arena_bytes: int
    runtime: str


def runtime() -> str:
    from importlib import metadata

    return f"tflite-micro {metadata.version('tflite-micro')}"


def run(
    path: Path, x: np.ndarray, arena_size: int | None = None, timeout_s: float = 300
) -> TflmResult:
    """Logits of the model on float ``x`` (quantized with the input's scale) and the arena bytes TFLM used."""
    errors.require("tflite_micro", "tflite", "Checking int8 files in TFLite Micro")
    arena_size = arena_size or max(64 * 1024, 16 * Path(path).stat().st_size)
    with tempfile.TemporaryDirectory(prefix="tinyship-tflm-") as tmp:
        xin, yout = Path(tmp) / "x.npz", Path(tmp) / "y.npz"
        atomic_write_npz(xin, x=np.ascontiguousarray(x, dtype=np.float32))
        proc = subprocess.run(
            [sys.executable, "-m", "export.tflm", str(path), str(xin), str(yout), str(arena_size)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if proc.returncode != 0 or not yout.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(
                f"TFLite Micro could not run '{Path(path).name}' with a {arena_size}-byte arena "
                f"(exit {proc.returncode}): {' | '.join(tail)}"
            )
        with np.load(yout, allow_pickle=False) as z:
            logits = z["y"]
    found = _TOTAL.findall(proc.stderr + proc.stdout)
    if not found:
        raise RuntimeError(
            "TFLite Micro ran but printed no arena allocation record; cannot report arena bytes"
        )
    return TflmResult(logits=logits, arena_bytes=int(found[-1]), runtime=runtime())


def _child(model: str, xin: str, yout: str, arena_size: int) -> None:
    from tflite_micro.python.tflite_micro import runtime as tflm

    from .formats.tflite_format import dequantize, quantize_input

    with np.load(xin, allow_pickle=False) as z:
        x = z["x"]
    it = tflm.Interpreter.from_file(model, arena_size=arena_size)
    inp, out = it.get_input_details(0), it.get_output_details(0)
    iq, oq = inp["quantization_parameters"], out["quantization_parameters"]
    ys = []
    for row in x:
        v = row[None]
        if np.dtype(inp["dtype"]) != np.float32:
            v = quantize_input(
                v, float(iq["scales"][0]), int(iq["zero_points"][0]), np.dtype(inp["dtype"]).name
            )
        it.set_input(v.reshape(inp["shape"]), 0)
        it.invoke()
        y = it.get_output(0)
        if np.dtype(out["dtype"]) != np.float32:
            y = dequantize(y, float(oq["scales"][0]), int(oq["zero_points"][0]))
        ys.append(np.asarray(y, dtype=np.float32).reshape(1, -1))
    it.print_allocations()
    sys.stdout.flush()
    atomic_write_npz(yout, y=np.concatenate(ys))


if __name__ == "__main__":  # child process: python -m export.tflm MODEL X.npz Y.npz ARENA
    _child(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
