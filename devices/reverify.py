"""Before anything is profiled or shipped, each file's parity with the student is run again.

exports.json records each file's sha256 and its parity with the torch student on the
holdout. A hash only proves the file is the one the record names: whoever changes the
file can write its new sha256 into the record too (issue 41: a byte flip with its new
hash was profiled and shipped). So the plan step runs every file the host can run on
``holdout.npz`` again, in a child process (a damaged file can crash a runtime), and
refuses it unless its top-1 agreement with the student still passes the recorded
threshold and its figures are the ones export recorded. The child runs
``runners/remote_bench.py``'s predict, the code that measures latency.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ground import isolate, rundir
from ground.errors import UserError
from ground.probs import softmax, top1_agreement

TIMEOUT_S = 300.0
BATCH = 256  # rows per ONNX run, as the export stage runs them
# how far the recomputed max abs probability error may be from the recorded one: exports.json
# rounds it to 6 decimals; re-runs of the demo's 8 host-runnable files differed by <= 5e-7
ERR_SLACK = 1e-4
_FIX = "Re-run the export stage with --force (tinyship export --run {run} --force)."


def holdout(run_dir: Path, card: dict) -> dict[str, np.ndarray]:
    """holdout.npz's rows, labels and student probabilities, after its sha256 in the card."""
    path = run_dir / rundir.HOLDOUT
    want = (card.get("sha256") or {}).get("holdout.npz")
    if want is not None and path.is_file() and rundir.sha256_file(path) != want:
        raise UserError(
            f"'{path}' has changed since the card recorded its sha256: parity cannot be re-run "
            f"on it. Re-run the distill stage with --force (tinyship distill --run {run_dir} ...)."
        )
    return rundir.read_npz(path, "holdout set", ("x", "y", "student_probs"))


def _child_outputs(path: str, x: np.ndarray) -> list:
    """In the forked child: the file's float outputs per row, as JSON-able lists."""
    import contextlib
    import io

    from .runners import remote_bench

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # remote_bench reports errors on stdout
            y = _onnx_batched(path, x) if path.endswith(".onnx") else None
            y = remote_bench.predict_rows(path, x, np) if y is None else y
    except (Exception, SystemExit) as exc:  # the runtime refused the file, or remote_bench exited
        raise UserError(
            f"the runtime cannot run it ({type(exc).__name__}): the file is damaged"
        ) from None
    y = np.nan_to_num(np.asarray(y, np.float32).reshape(len(x), -1), nan=1e30, posinf=1e30)
    return np.maximum(y, -1e30).tolist()  # a NaN or inf output stays as wrong as it was


def _onnx_batched(path: str, x: np.ndarray) -> np.ndarray | None:
    """An ONNX file with a free batch dimension run in batches of 256 rows, as export verified it
    (a dynamically quantized file's activation scales depend on the batch); None: batch fixed."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    if isinstance(inp.shape[0], int):
        return None
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
    return np.concatenate(
        [
            sess.run(None, {inp.name: x[i : i + BATCH].astype(dtype)})[0]
            for i in range(0, len(x), BATCH)
        ]
    )


def outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """The file's float outputs for every row of ``x``, computed in a forked child (a damaged
    file can crash a runtime: that is a UserError naming it, not a crash of the stage)."""
    y = isolate.in_child(_child_outputs, str(path), x, what=f"'{path}'", timeout_s=TIMEOUT_S)
    return np.asarray(y, np.float32)


def _preload() -> None:
    """Import the runtimes once here, so each forked child starts with them loaded."""
    import importlib

    for name in ("onnxruntime", "ai_edge_litert.interpreter"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _mismatch(art: dict, probs: np.ndarray, ho: dict[str, np.ndarray]) -> str | None:
    """Why the recomputed figures disagree with the record, or None."""
    rec = art["parity"]
    n = len(probs)
    ref = ho["student_probs"]
    if probs.shape != ref.shape:
        return f"it gives {probs.shape[1]} outputs per row, the student {ref.shape[1]}"
    agreement, _ = top1_agreement(probs, ref)  # as export's gate counts it (ties excused)
    err = float(np.nan_to_num(np.abs(probs - ref), nan=1.0, posinf=1.0).max())
    threshold = rec.get("threshold", 0.0)
    if agreement < threshold:
        return f"its top-1 agreement with the student is now {agreement:.4f} < {threshold:g}"
    if abs(agreement - rec["agreement"]) > 1.5 / n:
        return f"its agreement is now {agreement:.4f}, exports.json records {rec['agreement']:.4f}"
    if abs(err - rec["max_abs_prob_err"]) > ERR_SLACK:
        return (
            f"its max abs probability error is now {err:.4f}, exports.json records "
            f"{rec['max_abs_prob_err']:.4f}"
        )
    acc = art.get("accuracy")
    got = float((probs.argmax(1) == ho["y"]).mean())
    if acc is not None and abs(got - acc) > 1.5 / n:
        return f"its holdout accuracy is now {got:.4f}, exports.json records {acc:.4f}"
    return None


def reverify(run_dir: Path, card: dict, artifacts: list[tuple[dict, Path]]) -> list[str]:
    """Re-run parity for every listed file the host runs and export checked; UserError naming
    the first that no longer matches its record. Returns the names re-verified."""
    todo = [(a, p) for a, p in artifacts if a.get("parity") and "host" in (a.get("runs_on") or [])]
    if not todo:
        return []
    ho = holdout(run_dir, card)
    _preload()
    done = []
    for art, path in todo:
        try:
            why = _mismatch(art, softmax(outputs(path, ho["x"].astype(np.float32))), ho)
        except UserError as exc:
            why = str(exc)
        if why:
            raise UserError(
                f"'{path}' fails the parity re-run on the holdout before profiling: {why}. "
                "Its sha256 matches exports.json, so the file and its record were changed "
                "together after export checked it; nothing was profiled or shipped. "
                + _FIX.format(run=run_dir)
            )
        done.append(art["file"])
    return done
