"""ADB runner: an Android phone through TFLite's own ``benchmark_model`` binary.

The user supplies the benchmark_model binary built for their phone's ABI; tinyship
pushes it and the model to /data/local/tmp, runs it and parses its timing lines.
UNTESTED ON HARDWARE: no phone was reachable while this was written; the parser is
tested on real outputs recorded by others (tests/devices/data/SOURCES.md).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from ground.errors import UserError

from .base import Measurement, Runner

_NUM = r"([0-9.]+(?:e[+-]?[0-9]+)?)"
_TIMINGS = re.compile(
    rf"Inference timings in us: Init: {_NUM}, First inference: {_NUM}, "
    rf"Warmup \(avg\): {_NUM}, Inference \(avg\): {_NUM}"
)
_COUNT = re.compile(
    rf"count=(\d+) first={_NUM} curr={_NUM} min={_NUM} max={_NUM} avg={_NUM} std={_NUM}"
    rf"(?: p5={_NUM} median={_NUM} p95={_NUM})?"
)
_MEM = re.compile(
    rf"(Peak memory footprint|Memory footprint delta from the start of the tool) \(MB\): "
    rf"init={_NUM} overall={_NUM}"
)
_PEAK = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring: {_NUM}")


def parse_benchmark_model(text: str) -> dict:
    """Parse benchmark_model's stdout: timings (us), the steady-state run statistics and memory (MB)."""
    m = _TIMINGS.search(text)
    if m is None:
        tail = "; ".join(line for line in text.strip().splitlines()[-3:])
        raise UserError(
            f"benchmark_model printed no 'Inference timings in us' line (did it fail?). Last lines: {tail!r}"
        )
    init, first, warm, avg = (float(v) for v in m.groups())
    out = {"init_us": init, "first_us": first, "warmup_avg_us": warm, "inference_avg_us": avg}
    counts = [c for c in _COUNT.finditer(text)]
    if counts:
        c = counts[-1]  # the last count= line with avg/std is the steady-state run
        out.update(
            {
                "count": int(c.group(1)),
                "min_us": float(c.group(4)),
                "max_us": float(c.group(5)),
                "avg_us": float(c.group(6)),
                "std_us": float(c.group(7)),
            }
        )
        if c.group(9):
            out.update(
                {
                    "p5_us": float(c.group(8)),
                    "median_us": float(c.group(9)),
                    "p95_us": float(c.group(10)),
                }
            )
    mem = _MEM.search(text)
    if mem:
        out["memory_mb"] = {
            "kind": mem.group(1),
            "init": float(mem.group(2)),
            "overall": float(mem.group(3)),
        }
    peak = _PEAK.search(text)
    if peak:
        out.setdefault("memory_mb", {})["peak_periodic"] = float(peak.group(1))
    return out


def benchmark_command(
    remote_model: str, remote_binary: str, threads: int, warmup: int, runs: int
) -> str:
    """The shell command run on the phone (quoted for adb shell)."""
    return shlex.join(
        [
            remote_binary,
            f"--graph={remote_model}",
            f"--num_threads={threads}",
            f"--warmup_runs={warmup}",
            f"--num_runs={runs}",
            "--enable_op_profiling=false",
        ]
    )


def _adb(args: list[str], serial: str, timeout_s: float) -> str:
    try:
        res = subprocess.run(
            ["adb", "-s", serial] + args, capture_output=True, text=True, timeout=timeout_s
        )
    except FileNotFoundError as exc:
        raise UserError(
            "'adb' not found on PATH; install Android platform-tools to profile on a phone."
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise UserError(f"adb {args[0]} on '{serial}' took over {timeout_s:.0f} s.") from exc
    if res.returncode != 0:
        raise UserError(
            f"adb {args[0]} on device '{serial}' failed (exit {res.returncode}): {res.stderr.strip()[-300:]}. "
            "Check 'adb devices' lists it as 'device'."
        )
    return res.stdout + res.stderr


def measure(
    model: str | Path,
    serial: str,
    benchmark_model: str | Path,
    threads: int = 1,
    warmup: int = 5,
    runs: int = 50,
    timeout_s: float = 600.0,
) -> Measurement:
    """Push ``model`` and ``benchmark_model`` to the phone, run it, parse the timings, remove both."""
    model, binary = Path(model), Path(benchmark_model)
    if model.suffix != ".tflite":
        raise UserError(
            f"the adb runner runs .tflite models with benchmark_model; got '{model.name}'."
        )
    if not binary.is_file():
        raise UserError(
            f"--benchmark-model '{binary}' not found. Build or download TFLite's benchmark_model for "
            "your phone's ABI (android_aarch64) and pass its path."
        )
    rdir = "/data/local/tmp/tinyship"
    rmodel, rbin = f"{rdir}/model.tflite", f"{rdir}/benchmark_model"
    _adb(["shell", shlex.join(["mkdir", "-p", rdir])], serial, timeout_s)
    try:
        _adb(["push", str(binary), rbin], serial, timeout_s)
        _adb(["push", str(model), rmodel], serial, timeout_s)
        _adb(["shell", shlex.join(["chmod", "755", rbin])], serial, timeout_s)
        text = _adb(
            ["shell", benchmark_command(rmodel, rbin, threads, warmup, runs)], serial, timeout_s
        )
    finally:
        subprocess.run(
            ["adb", "-s", serial, "shell", shlex.join(["rm", "-rf", rdir])],
            capture_output=True,
            timeout=60,
        )
    r = parse_benchmark_model(text)
    avg_ms = r["inference_avg_us"] / 1e3
    p50 = r.get("median_us", r["inference_avg_us"]) / 1e3
    return Measurement(
        "adb",
        serial,
        "TFLite benchmark_model",
        threads,
        warmup,
        r.get("count", runs),
        p50,
        r.get("p95_us", r["inference_avg_us"]) / 1e3,
        None,
        avg_ms,
        r.get("std_us", 0.0) / 1e3,
        "std",
        r["first_us"] / 1e3,
        None,
        r.get("memory_mb"),
        None,
        {
            "note": "p90 is benchmark_model's p95 when printed, else its average; p99 not printed",
            "parsed": r,
        },
    )


RUNNER = Runner(
    "adb",
    measure,
    device_class="phone",
    reference_device="phone-midrange-a78",
    runtimes=("litert",),
    settings=("threads", "warmup", "runs"),
    address_arg="serial",
)
