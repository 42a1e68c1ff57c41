"""``profile FILE``: a foreign file's inputs and outputs, read from the file by its own runtime.

No tinyship run made the file, so nothing but the file can say what it takes and returns: the
runtime that will run it on a device (onnxruntime, the LiteRT interpreter) is asked for each
tensor's name, shape, dtype and quantization, and then runs the file on a few random inputs of
that shape and dtype. A file that loads and returns finite outputs is what ``profile FILE`` can
check without a reference model; that check, in words, is the gate it ships under.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ground import errors

N_CHECK = 8  # random inputs the file runs on
_ONNX_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
}


@dataclass
class FileIO:
    """What the file's runtime says about its first input and output, and the run check."""

    input: dict[str, Any] | None
    output: dict[str, Any] | None
    runtime: str | None
    check: str
    runs: bool = True


def _spec(name: str, shape: list, dtype: str, quant: tuple[float, int] | None) -> dict[str, Any]:
    ints = [int(d) if isinstance(d, (int, np.integer)) and int(d) > 0 else None for d in shape]
    dynamic = bool(ints) and ints[0] is None
    dims = [1 if d is None else d for d in ints]
    return {
        "name": name,
        "shape": dims,
        "dtype": dtype,
        "quantization": (
            {"scale": float(quant[0]), "zero_point": int(quant[1])}
            if quant is not None and quant[0]
            else None
        ),
        "dynamic_batch": dynamic,
    }


def _random(spec: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """One random input row of the file's own shape and dtype (integers over their whole range)."""
    dt = np.dtype(spec["dtype"])
    if np.issubdtype(dt, np.integer):
        info = np.iinfo(dt)
        lo, hi = max(int(info.min), -128), min(int(info.max), 255)
        return rng.integers(lo, hi + 1, size=spec["shape"]).astype(dt)
    return rng.standard_normal(spec["shape"]).astype(dt)


class _NotFinite(Exception):
    pass


def _finite(outs: list[np.ndarray], runtime: str, shape: list[int]) -> str:
    y = np.concatenate([np.asarray(o, dtype=np.float64).reshape(1, -1) for o in outs])
    if not np.isfinite(y).all():
        raise _NotFinite(f"it returns NaN or inf on random inputs in {runtime}")
    return (
        f"profile FILE: no reference model to compare with, so no accuracy or parity; the file "
        f"loads in {runtime} and returns finite outputs of shape {shape} on {N_CHECK} random inputs"
    )


def _onnx(path: Path) -> FileIO:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    i, o = sess.get_inputs()[0], sess.get_outputs()[0]
    inp = _spec(i.name, list(i.shape), _ONNX_DTYPES.get(i.type, i.type), None)
    out = _spec(o.name, list(o.shape), _ONNX_DTYPES.get(o.type, o.type), None)
    rng = np.random.default_rng(0)
    outs = [sess.run([o.name], {i.name: _random(inp, rng)})[0] for _ in range(N_CHECK)]
    runtime = f"onnxruntime {ort.__version__}"
    return FileIO(inp, out, runtime, _finite(outs, runtime, out["shape"]))


def _tflite(path: Path) -> FileIO:
    from importlib import metadata

    lite = errors.require("ai_edge_litert.interpreter", "tflite", "Running TFLite files")
    it = lite.Interpreter(model_path=str(path))
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    inp = _spec(i["name"], list(i["shape"]), np.dtype(i["dtype"]).name, i["quantization"])
    out = _spec(o["name"], list(o["shape"]), np.dtype(o["dtype"]).name, o["quantization"])
    rng = np.random.default_rng(0)
    outs = []
    for _ in range(N_CHECK):
        it.set_tensor(i["index"], _random(inp, rng))
        it.invoke()
        outs.append(it.get_tensor(o["index"]).copy())
    runtime = f"ai-edge-litert {metadata.version('ai-edge-litert')}"
    return FileIO(inp, out, runtime, _finite(outs, runtime, out["shape"]))


def read(path: Path, fmt: str) -> FileIO:
    """The file's I/O and run check, from the runtime of its format (``onnx`` or ``tflite``).

    A file its runtime cannot load or run, or that returns NaN, is still profiled (its size and
    static figures stand) but marked as not running, with the reason: it never ships."""
    try:
        return {"onnx": _onnx, "tflite": _tflite}[fmt](Path(path))
    except errors.MissingDependencyError:
        raise
    except Exception as exc:  # a file its own runtime cannot load or run
        why = str(exc) if isinstance(exc, _NotFinite) else f"{type(exc).__name__}: {str(exc)[:300]}"
        return FileIO(
            None,
            None,
            None,
            f"profile FILE: the file does not run in its host runtime ({why}), so it is profiled "
            "but not shipped",
            runs=False,
        )
