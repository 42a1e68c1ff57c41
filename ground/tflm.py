"""Run a .tflite in the TFLite Micro interpreter in a child process; logits and the arena it used.

Shared by the export stage (parity on int8 files) and the devices stage (the arena of any file
given to ``profile FILE``). TFLite Micro's Python interpreter crashes the process (segfault) when
the arena is too small or an op is missing, so it always runs in a child; the child prints TFLM's
own allocation record (``RecordingMicroAllocator``): the arena total, its head (the planned
activation and scratch buffers) and its tail (persistent buffers and runtime structs).
A file TFLM refuses raises :class:`TflmRefused` with TFLM's own reason.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ground import errors
from ground.rundir import atomic_write_npz

_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
_HEAD = re.compile(r"Arena allocation head (\d+) bytes")
_TAIL = re.compile(r"Arena allocation tail (\d+) bytes")
_PART = re.compile(
    r"'([^']+)' used (\d+) bytes with alignment overhead \(requested (\d+) bytes for (\d+)"
)
# lines TFLM prints when it refuses a model (op resolver, type checks, allocation)
_REASON = re.compile(
    r"(Didn't find op for builtin opcode.*|Failed to get registration.*|.*not supported.*|"
    r".*Type .* not (?:currently )?supported.*|Hybrid models are not supported.*|"
    r"Failed to allocate.*|.*Only .* supported.*)",
    re.IGNORECASE,
)


class TflmRefused(RuntimeError):
    """TFLite Micro could not run the file; ``reason`` is what TFLM said (or how the child ended)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class TflmResult:
    logits: np.ndarray
    arena_bytes: int
    runtime: str
    head_bytes: int | None = None
    tail_bytes: int | None = None
    parts: dict[str, dict[str, int]] | None = None  # tail entries: used/requested bytes, count


def runtime() -> str:
    from importlib import metadata

    return f"tflite-micro {metadata.version('tflite-micro')}"


def run_raw(path: Path, q: np.ndarray, timeout_s: float = 300) -> TflmResult:
    """Raw outputs (the output tensor's own dtype, one row per input) for raw ``q`` rows already in
    the input tensor's dtype: what a firmware computes, to compare byte for byte."""
    return run(path, q, timeout_s=timeout_s, raw=True)


def run(
    path: Path,
    x: np.ndarray | None = None,
    arena_size: int | None = None,
    timeout_s: float = 300,
    raw: bool = False,
) -> TflmResult:
    """Logits on float ``x`` (quantized with the input's scale; None: one all-zero input) and TFLM's
    arena; ``raw``: ``x`` is in the input's own dtype and the outputs stay in the output's dtype."""
    errors.require("tflite_micro", "tflite", "Running a file in TFLite Micro")
    arena_size = arena_size or max(256 * 1024, 16 * Path(path).stat().st_size)
    with tempfile.TemporaryDirectory(prefix="tinyship-tflm-") as tmp:
        xin, yout = Path(tmp) / "x.npz", Path(tmp) / "y.npz"
        if x is not None and raw:
            atomic_write_npz(xin, q=np.ascontiguousarray(x))
        elif x is not None:
            atomic_write_npz(xin, x=np.ascontiguousarray(x, dtype=np.float32))
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "ground.tflm",
                str(path),
                str(xin),
                str(yout),
                str(arena_size),
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        text = proc.stderr + proc.stdout
        if proc.returncode != 0 or not yout.exists():
            said = [m.group(0).strip() for m in _REASON.finditer(text)]
            tail = " | ".join(text.strip().splitlines()[-3:])
            how = "crashed (signal)" if proc.returncode < 0 else f"exit {proc.returncode}"
            raise TflmRefused(
                "; ".join(dict.fromkeys(said))
                or f"the TFLite Micro interpreter {how} with a {arena_size}-byte arena: {tail}"
            )
        with np.load(yout, allow_pickle=False) as z:
            logits = z["y"]
    found = _TOTAL.findall(text)
    if not found:
        raise RuntimeError(
            "TFLite Micro ran but printed no arena allocation record; cannot report arena bytes"
        )
    head, tail = _HEAD.findall(text), _TAIL.findall(text)
    parts = {
        m.group(1): {
            "used": int(m.group(2)),
            "requested": int(m.group(3)),
            "count": int(m.group(4)),
        }
        for m in _PART.finditer(text)
    }
    return TflmResult(
        logits=logits,
        arena_bytes=int(found[-1]),
        runtime=runtime(),
        head_bytes=int(head[-1]) if head else None,
        tail_bytes=int(tail[-1]) if tail else None,
        parts=parts or None,
    )


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """float -> integer with the tensor's own scale and zero point (round to nearest, saturate)."""
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def _child(model: str, xin: str, yout: str, arena_size: int) -> None:
    from tflite_micro.python.tflite_micro import runtime as tflm

    it = tflm.Interpreter.from_file(model, arena_size=arena_size)
    inp, out = it.get_input_details(0), it.get_output_details(0)
    iq, oq = inp["quantization_parameters"], out["quantization_parameters"]
    raw = False
    if Path(xin).exists():
        with np.load(xin, allow_pickle=False) as z:
            raw = "q" in z.files
            x = z["q"] if raw else z["x"]
    else:
        x = np.zeros((1, *inp["shape"][1:]), dtype=np.float32)
    ys = []
    for row in x:
        v = row[None]
        if raw:
            it.set_input(v.reshape(inp["shape"]).astype(inp["dtype"]), 0)
            it.invoke()
            ys.append(np.array(it.get_output(0)).reshape(1, -1))
            continue
        if np.dtype(inp["dtype"]) != np.float32:
            v = quantize(
                v, float(iq["scales"][0]), int(iq["zero_points"][0]), np.dtype(inp["dtype"]).name
            )
        it.set_input(v.reshape(inp["shape"]).astype(inp["dtype"]), 0)
        it.invoke()
        y = it.get_output(0)
        if np.dtype(out["dtype"]) != np.float32:
            y = (y.astype(np.float32) - int(oq["zero_points"][0])) * float(oq["scales"][0])
        ys.append(np.asarray(y, dtype=np.float32).reshape(1, -1))
    it.print_allocations()
    sys.stdout.flush()
    atomic_write_npz(yout, y=np.concatenate(ys))


if __name__ == "__main__":  # child process: python -m ground.tflm MODEL X.npz Y.npz ARENA
    _child(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
