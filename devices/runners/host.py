"""Host runner: remote_bench.py in a local subprocess (own process, so pinning and threads are clean)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ground.errors import UserError

from .base import (
    REMOTE_BENCH,
    Measurement,
    Runner,
    bench_args,
    from_bench_json,
    parse_bench_output,
)


def measure(
    model: str | Path,
    input_npy: str | Path | None = None,
    threads: int = 1,
    warmup: int = 5,
    runs: int = 50,
    pin_core: int | None = None,
    timeout_s: float = 300.0,
) -> Measurement:
    """Measure ``model`` on this machine with onnxruntime or the LiteRT interpreter."""
    cmd = [
        sys.executable,
        str(REMOTE_BENCH),
        *bench_args(str(model), threads, warmup, runs, pin_core),
    ]
    if input_npy is not None:
        cmd += ["--input-npy", str(input_npy)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise UserError(
            f"host benchmark of '{model}' took over {timeout_s:.0f} s; lower --runs."
        ) from exc
    data = parse_bench_output(res.stdout + "\n" + res.stderr, f"host ({Path(model).name})")
    return from_bench_json("host", "host", data)


RUNNER = Runner(
    "host",
    measure,
    device_class="host",
    reference_device="host",
    runtimes=("onnxruntime", "litert"),
    settings=("input_npy", "threads", "warmup", "runs", "pin_core"),
)
