"""Per-row predictions of exported files on the holdout, made at report time for the report's
confusion matrices and its fp32-vs-int8 comparison.

Export records one accuracy per file; an integrator also asks which classes a file gets wrong
and which rows quantization changed. Running the files again here (359 rows of the demo take
well under a second per file in onnxruntime and the LiteRT interpreter) is cheaper than a
per-row record in exports.json, and it runs the very bytes export checked: a file whose
sha256 is not the one exports.json recorded is not run. Core ML files predict only on macOS,
so they get a reason instead of predictions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ground import rundir
from ground.errors import UserError


@dataclass
class Predictions:
    """Holdout labels, and per file either its predicted classes or why there are none."""

    y: np.ndarray | None
    labels: list[str]
    pred: dict[str, np.ndarray] = field(default_factory=dict)
    why_not: dict[str, str] = field(default_factory=dict)
    note: str = ""  # why nothing could be predicted at all (no holdout)


def _onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    batch = inp.shape[0] if inp.shape else None
    if isinstance(batch, int) and batch == 1:
        return np.concatenate([sess.run(None, {inp.name: x[i : i + 1]})[0] for i in range(len(x))])
    return sess.run(None, {inp.name: x})[0]


def _tflite(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    i_det, o_det = it.get_input_details()[0], it.get_output_details()[0]
    shape = [int(d) for d in i_det["shape"]]
    if int(np.prod(shape[1:])) != int(np.prod(x.shape[1:])):
        raise ValueError(f"input shape {shape} does not hold a row of {list(x.shape[1:])}")
    scale, zero = i_det.get("quantization") or (0.0, 0)
    rows = x.reshape(len(x), *shape[1:])
    if np.issubdtype(i_det["dtype"], np.integer) and scale:  # full-int8 input: quantize raw rows
        info = np.iinfo(i_det["dtype"])
        rows = np.clip(np.round(rows / scale) + zero, info.min, info.max)
    out = []
    for row in rows.astype(i_det["dtype"]):
        it.set_tensor(i_det["index"], row[None])
        it.invoke()
        out.append(it.get_tensor(o_det["index"]).reshape(-1).astype(np.float32))
    return np.stack(out)


_RUN = {"onnx": _onnx, "tflite": _tflite}


def predict(run_dir: Path, exports: dict, files: list[str], labels: list[str]) -> Predictions:
    """Predicted classes on ``student/holdout.npz`` for ``files`` (names in exports.json)."""
    try:
        h = rundir.read_npz(run_dir / "student" / "holdout.npz", "holdout", ("x", "y"))
    except UserError as exc:
        return Predictions(None, labels, note=str(exc).splitlines()[0])
    x, y = h["x"].astype(np.float32), h["y"].astype(np.int64)
    out = Predictions(y, labels)
    arts = {a.get("file"): a for a in exports.get("artifacts", [])}
    for name in dict.fromkeys(files):
        a, path = arts.get(name) or {}, run_dir / "export" / str(name)
        run = _RUN.get(a.get("format"))
        if run is None:
            out.why_not[name] = f"{a.get('format')} files are not run on this machine: " + (
                "Core ML predicts only on macOS" if a.get("format") == "coreml" else "no runtime"
            )
        elif not path.is_file() or rundir.sha256_file(path) != a.get("sha256"):
            out.why_not[name] = "the file is missing or not the bytes export checked"
        else:
            try:
                out.pred[name] = run(path, x).argmax(axis=1)
            except Exception as exc:  # a runtime refusing the file: say so, the report goes on
                out.why_not[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return out


def confusion(y: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """Counts [true class, predicted class]."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (y, pred), 1)
    return m


def per_class(y: np.ndarray, pred: np.ndarray, n: int) -> list[tuple[int, float | None]]:
    """(rows, accuracy) per true class; accuracy None for a class with no holdout row."""
    out = []
    for c in range(n):
        k = int((y == c).sum())
        out.append((k, float((pred[y == c] == c).mean()) if k else None))
    return out


def quant_pairs(exports: dict, files: list[str] | None = None) -> list[tuple[str, list[str]]]:
    """(fp32 file, [its int8 siblings]) per format that has both, from exports.json; only files
    that exist and passed their gate (or were not gated) count."""
    ok = [
        a
        for a in exports.get("artifacts", [])
        if not a.get("error")
        and a.get("passed") is not False
        and (files is None or a["file"] in files)
    ]
    out = []
    for fmt in dict.fromkeys(a.get("format") for a in ok):
        fp32 = [a["file"] for a in ok if a.get("format") == fmt and a.get("precision") == "fp32"]
        ints = [
            a["file"]
            for a in ok
            if a.get("format") == fmt and str(a.get("precision", "")).startswith("int8")
        ]
        if fp32 and ints:
            out.append((fp32[0], ints))
    return out
