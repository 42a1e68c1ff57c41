"""What every benchmark shares: flags, the machine record, training through distill.train.fit,
int8 ONNX students, single-sample latency and writing ``benchmarks/results/<name>.{md,json}``.

Benchmarks use the project's own public pieces (data loaders that verify the shared data's
sha256, T's teacher library / selection / transfer sets / cache, S's losses and training loop);
nothing here re-implements them.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ground import rundir
from ground.provenance import code_commit

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CACHE_ENV = "TINYSHIP_BENCH_CACHE"  # where cached_arrays keeps results (default build/bench-cache)


def parser(name: str, doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{name}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--epochs-scale",
        type=float,
        default=1.0,
        help="multiply every epoch count by this (default 1.0 = the CPU defaults printed in the table)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and epochs: an end-to-end check in under a minute",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out-dir", type=Path, default=RESULTS, help="where <name>.md and <name>.json go"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: these models are small, and on a shared 2-core "
        "machine two spinning threads per process made training 5-25x slower)",
    )
    return p


def parse(ap: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse flags; --quick results go to results/quick/ so they never overwrite the real figures."""
    args = ap.parse_args(argv)
    if args.quick and args.out_dir == RESULTS:
        args.out_dir = RESULTS / "quick"
    if args.epochs_scale <= 0:
        ap.error(f"--epochs-scale must be > 0; got {args.epochs_scale}")
    if args.threads < 1:
        ap.error(f"--threads must be >= 1; got {args.threads}")
    import torch

    torch.set_num_threads(args.threads)
    return args


def scaled(epochs: int | float, scale: float, minimum: int = 1) -> int:
    return max(minimum, int(round(epochs * scale)))


def machine() -> dict[str, Any]:
    """The machine a figure was measured on (CPU model, cores this process may use, threads)."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        **rundir.training_machine(),  # cpu, torch_cpu_capability, torch_threads
        "cores": cores,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def _nan_to_none(v: Any) -> Any:
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, dict):
        return {k: _nan_to_none(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_nan_to_none(x) for x in v]
    return v


@dataclass
class Report:
    """One benchmark's output: markdown sections plus the same figures as data."""

    name: str
    title: str
    command: str
    settings: dict[str, Any]
    sections: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    commit: str | None = field(default_factory=code_commit)  # the code as it was when the run began

    def add(self, text: str) -> None:
        self.sections.append(text.rstrip() + "\n")

    def stamp(self, seeds: list[int] | str) -> str:
        """The line under a table: command, machine, date and seeds (a table copied alone keeps them)."""
        m = machine()
        seeds = ", ".join(map(str, seeds)) if isinstance(seeds, list) else seeds
        return (
            f"\n<sub>command `{self.command}`; {m['cpu']}, {m['cores']} cores, torch {m['torch']} "
            f"({m['torch_threads']} threads); {_dt.datetime.now(_dt.UTC).isoformat(timespec='seconds')}; "
            f"seeds {seeds}</sub>\n"
        )

    def markdown(self) -> str:
        m = machine()
        head = [
            f"# {self.title}",
            "",
            f"- command: `{self.command}`",
            f"- machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads, "
            f"{m['torch_cpu_capability']} kernels), Python {m['python']}",
            f"- date: {_dt.datetime.now(_dt.UTC).isoformat(timespec='seconds')}",
            f"- commit: {self.commit or 'not recorded'}",
            f"- wall time: {time.perf_counter() - self.started:.0f} s",
            "- settings: " + ", ".join(f"{k}={v}" for k, v in self.settings.items()),
            "",
        ]
        return "\n".join(head) + "\n" + "\n".join(self.sections)

    def write(self, out_dir: Path) -> Path:
        """The markdown, then the JSON (NaN, e.g. a share not computed, written as null)."""
        md = self.markdown()
        print(md)
        out_dir = Path(out_dir)
        rundir.atomic_write_bytes(out_dir / f"{self.name}.md", md.encode())
        rundir.atomic_write_json(
            out_dir / f"{self.name}.json",
            {
                "benchmark": self.name,
                "command": self.command,
                "machine": machine(),
                "commit": self.commit,
                "settings": self.settings,
                "wall_s": round(time.perf_counter() - self.started, 1),
                "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "results": _nan_to_none(self.data),
            },
        )
        return out_dir / f"{self.name}.md"


def table(header: list[str], rows: list[list[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def command_line(name: str) -> str:
    return " ".join([f"python -m benchmarks.{name}"] + sys.argv[1:])


# ---- training through the project's loop --------------------------------------------------------


def train(
    model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    teacher_probs: np.ndarray | None,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    input_shape: tuple[int, ...],
    epochs: int,
    loss: str,
    seed: int,
    val_teacher_probs: np.ndarray | None = None,
    epoch_data: Callable[[int], Any] | None = None,
    val_metric: str | None = None,
    keep: str = "best",
    patience: int | None = None,
    checkpoint: Path | None = None,
    **overrides: Any,
):
    """Train ``model`` with distill.train.fit (S's loop); returns its FitResult.

    ``val_metric`` is what the validation split scores (never the test set): ``accuracy``
    (default for hard labels), ``fidelity`` to the teacher (default when ``val_teacher_probs``
    is given) or ``rmse`` of the positive-class probability against the 0/1 labels (Bucilua
    2006's metric, binary problems). ``keep="best"`` returns the weights of the best
    validation epoch and stops after ``patience`` epochs without improvement (default: never);
    ``keep="last"`` returns the last epoch's weights and never stops early (the history still
    records the validation score of every epoch). ``checkpoint``: a lasting file, named by what
    the net depends on, that a killed run resumes from (default: a temporary one).
    """
    import torch

    from distill.train import EpochData, fit, log_probs, train_config

    def shaped(x: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x, np.float32)).reshape(len(x), *input_shape)

    cfg = train_config(
        {
            "epochs": epochs,
            "loss": loss,
            "seed": seed,
            "baseline": False,
            "patience": max(epochs, 1) if patience is None or keep == "last" else patience,
            **overrides,
        }
    )
    if epoch_data is None:
        data = EpochData(
            shaped(x_train),
            torch.from_numpy(np.asarray(y_train, np.int64)),
            log_probs(teacher_probs) if teacher_probs is not None else None,
        )
        epoch_data = lambda epoch: data  # noqa: E731
    xv = shaped(x_val)
    if val_metric is None:
        val_metric = "accuracy" if loss == "hard" or val_teacher_probs is None else "fidelity"
    score = val_score(val_metric, y_val, val_teacher_probs)
    if keep == "last":
        score = last_epoch_wins(score)
    elif keep != "best":
        raise ValueError(f"keep must be 'best' or 'last'; got {keep!r}")
    with tempfile.TemporaryDirectory(prefix="tinyship-bench-") as tmp:
        return fit(
            model,
            epoch_data,
            score,
            xv,
            cfg,
            checkpoint=checkpoint or Path(tmp) / "ck.pt",
            fingerprint=checkpoint.name if checkpoint else "bench",
            resume=checkpoint is not None,
            progress=True,
            desc=f"{loss} x{epochs}",
        )


def val_score(
    metric: str, y_val: np.ndarray, val_teacher_probs: np.ndarray | None = None
) -> Callable[[Any], list[float]]:
    """The validation score fit maximizes: accuracy, fidelity to the teacher, or -RMSE (binary)."""
    import torch

    from distill.train import accuracy_score, fidelity_score

    if metric == "rmse":
        return lambda lg: [-rmse_binary(torch.softmax(lg.double(), 1).numpy(), y_val)]
    if metric == "fidelity":
        if val_teacher_probs is None:
            raise ValueError("val_metric 'fidelity' needs val_teacher_probs")
        pv = torch.from_numpy(np.asarray(val_teacher_probs, np.float32))
        return lambda lg: fidelity_score(lg, pv)
    if metric == "accuracy":
        yv = torch.from_numpy(np.asarray(y_val, np.int64))
        return lambda lg: accuracy_score(lg, yv)
    raise ValueError(f"val_metric must be accuracy, fidelity or rmse; got {metric!r}")


def last_epoch_wins(score: Callable[[Any], list[float]]) -> Callable[[Any], list[float]]:
    """A validation score that every later epoch beats, so fit keeps the last epoch's weights.

    distill.train.fit keeps the best-scoring epoch; prefixing the epoch number makes "best" the
    last one (no early stopping, no choice on validation), while the real score is still recorded
    in the history after the prefix.
    """
    calls = [0]

    def scored(logits) -> list[float]:
        calls[0] += 1
        return [float(calls[0]), *score(logits)]

    return scored


def max_norm(model, c: float, hidden_only: bool = False):
    """Constrain each unit's incoming weight vector of every Linear layer to L2 norm <= ``c``
    (the max-norm constraint of Srivastava et al. 2014 that Hinton 2015 §3's teacher used);
    ``hidden_only`` leaves the last Linear (the output layer) free, as the dropout paper does.

    Applied as a projection before every forward pass, i.e. after each optimizer step of the
    previous batch; evaluation sees projected weights too. Returns the model.
    """
    import torch
    from torch import nn

    def project(mod: nn.Linear, _inputs) -> None:
        with torch.no_grad():
            mod.weight.copy_(torch.renorm(mod.weight, 2, 0, c))

    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for m in linears[:-1] if hidden_only else linears:
        m.register_forward_pre_hook(project)
    return model


def content_key(parts: dict[str, Any]) -> str:
    """sha256 of a JSON-able description of what a cached result depends on."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def cache_root() -> Path:
    """Where cached results live: $TINYSHIP_BENCH_CACHE, else build/bench-cache."""
    return Path(os.environ.get(CACHE_ENV) or ROOT / "build" / "bench-cache")


def cached_arrays(
    name: str,
    key: dict[str, Any],
    compute: Callable[[], dict[str, np.ndarray]],
    root: Path | None = None,
) -> tuple[dict[str, np.ndarray], bool]:
    """Arrays from ``build/bench-cache/<name>-<sha256 of key>.npz`` (or $TINYSHIP_BENCH_CACHE),
    or ``compute()`` stored there.

    Content-addressed: the key names the inputs (data hashes, configuration, epochs, seed), so a
    rerun with the same key skips the work and any change misses. Stored as .npz without pickles,
    written atomically, with the key beside it as JSON; returns (arrays, cache_hit).
    """
    import io

    root = Path(root or cache_root())
    digest = content_key(key)
    path = root / f"{name}-{digest[:20]}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}, True
    arrays = compute()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    rundir.atomic_write_bytes(path, buf.getvalue())
    rundir.atomic_write_json(path.with_suffix(".json"), {"sha256": digest, "key": key})
    return arrays, False


def seeds_arg(text: str) -> list[int]:
    """``--seeds 0,1,2`` -> [0, 1, 2]."""
    try:
        seeds = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--seeds must be comma-separated integers; got {text!r}"
        ) from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"--seeds must be distinct integers >= 0; got {text!r}")
    return seeds


def shaped_tensor(x: np.ndarray, input_shape: tuple[int, ...]):
    import torch

    return torch.from_numpy(np.ascontiguousarray(x, np.float32)).reshape(len(x), *input_shape)


def predict_proba(model, x: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    import torch

    from distill.train import predict_logits

    return torch.softmax(predict_logits(model, shaped_tensor(x, input_shape)).double(), 1).numpy()


# ---- int8 ONNX student and latency --------------------------------------------------------------


@dataclass
class OnnxStudent:
    fp32_path: Path
    int8_path: Path
    fp32_bytes: int
    int8_bytes: int
    method: str


def onnx_int8(model, input_shape: tuple[int, ...], out_dir: Path, stem: str) -> OnnxStudent:
    """Export the student to ONNX (torch.onnx, dynamo) and quantize it with onnxruntime's quantize_dynamic."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / f"{stem}.fp32.onnx"
    int8 = out_dir / f"{stem}.int8-dynamic.onnx"
    model.eval()
    example = (torch.zeros(2, *input_shape),)
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(
            model,
            example,
            str(fp32),
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=65536)},),
            dynamo=True,
            external_data=False,
        )
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    return OnnxStudent(
        fp32,
        int8,
        fp32.stat().st_size,
        int8.stat().st_size,
        "torch.onnx.export (dynamo) + onnxruntime.quantization.quantize_dynamic (QInt8 weights)",
    )


def ort_session(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ort_predict(sess, x: np.ndarray) -> np.ndarray:
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: np.ascontiguousarray(x, np.float32)})


def latency_p50_ms(fn: Callable[[], Any], runs: int = 200, warmup: int = 10) -> dict[str, float]:
    """Single-sample host latency: p50 and p90 over ``runs`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return {
        "p50_ms": statistics.median(times),
        "p90_ms": times[int(0.9 * (len(times) - 1))],
        "runs": runs,
    }


def rmse_binary(p: np.ndarray, y: np.ndarray) -> float:
    """Bucilua 2006's RMSE against 0/1 targets: the predicted probability of the positive class vs the label."""
    return float(np.sqrt(np.mean((np.asarray(p)[:, 1] - y) ** 2)))


def accuracy(p: np.ndarray, y: np.ndarray) -> float:
    return float((np.asarray(p).argmax(1) == y).mean())


def write_checked(path: Path, doc: dict, problem: str | None, what: str) -> int:
    """Write a committed table only when its own check passed: a table the code reads at run time
    (estimator bands, front-end cycles) must never be replaced by one that failed. Exit code."""
    if problem:
        print(f"{what} not written: {problem}", file=sys.stderr)
        return 3
    rundir.atomic_write_json(path, doc)
    print(f"wrote {path}")
    return 0
