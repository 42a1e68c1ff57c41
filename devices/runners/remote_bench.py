#!/usr/bin/env python3
"""Standalone latency benchmark for one .tflite or .onnx model; prints one JSON object.

Needs only numpy and one runtime: ai-edge-litert, tflite-runtime or onnxruntime.
tinyship runs it locally for the host runner and copies it to boards for the ssh
runner, so host and board figures come from the same code. Kept free of tinyship
imports on purpose.
"""

import argparse
import importlib
import json
import os
import platform
import sys
import time


def _fail(msg):
    print(json.dumps({"ok": False, "error": msg}))
    sys.exit(1)


def _litert(model, threads):
    errors = []
    for mod in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"):
        try:
            m = importlib.import_module(mod)
            interp = m.Interpreter(model_path=model, num_threads=threads)
            dist = mod.split(".")[0].replace("_", "-")
            try:
                from importlib import metadata

                ver = metadata.version(dist)
            except Exception:
                ver = "?"
            return interp, f"{dist} {ver}"
        except ImportError as exc:
            errors.append(f"{mod}: {exc}")
    _fail("no TFLite runtime: install ai-edge-litert or tflite-runtime (" + "; ".join(errors) + ")")


def _quantize(x, detail, np):
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    scale, zp = detail.get("quantization", (0.0, 0))
    if not scale:
        return x.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zp), info.min, info.max).astype(dtype)


def bench_tflite(args, np, x):
    interp, runtime = _litert(args.model, args.threads)
    interp.allocate_tensors()
    d = interp.get_input_details()[0]
    shape = [int(s) for s in d["shape"]]
    x = np.zeros(shape, np.float32) if x is None else x.reshape(shape).astype(np.float32)
    feed = _quantize(x, d, np)
    out = interp.get_output_details()[0]

    def once():
        interp.set_tensor(d["index"], feed)
        interp.invoke()
        return interp.get_tensor(out["index"])

    def predict(row):
        interp.set_tensor(d["index"], _quantize(row.reshape(shape).astype(np.float32), d, np))
        interp.invoke()
        y = interp.get_tensor(out["index"]).astype(np.float32)
        scale, zp = out.get("quantization", (0.0, 0))
        return (y - zp) * scale if scale and not np.issubdtype(out["dtype"], np.floating) else y

    args.predict = predict
    return (
        once,
        runtime,
        {
            "shape": shape,
            "dtype": str(np.dtype(d["dtype"])),
            "quantization": list(d.get("quantization", ())),
        },
    )


def bench_onnx(args, np, x):
    try:
        import onnxruntime as ort
    except ImportError as exc:
        _fail(f"onnxruntime is not installed: {exc}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    i = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
    dt = {
        "tensor(float)": np.float32,
        "tensor(float16)": np.float16,
        "tensor(int8)": np.int8,
        "tensor(uint8)": np.uint8,
    }.get(i.type, np.float32)
    x = np.zeros(shape, np.float32) if x is None else x.reshape(shape)
    feed = {i.name: x.astype(dt)}

    def once():
        return sess.run(None, feed)[0]

    def predict(row):
        return sess.run(None, {i.name: row.reshape(shape).astype(dt)})[0].astype(np.float32)

    args.predict = predict
    return (
        once,
        f"onnxruntime {ort.__version__}",
        {"shape": shape, "dtype": str(np.dtype(dt)), "quantization": None},
    )


def predict_rows(model, rows, np, threads=1):
    """The float outputs for every row of ``rows`` (what --outputs-npy writes), for a caller that
    imports this file: tinyship's parity re-run before profiling (devices/reverify.py)."""
    args = argparse.Namespace(model=model, threads=threads)
    _bench_for(model)(args, np, rows[:1])
    return np.stack([args.predict(r[None]) for r in rows])


def _parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", required=True)
    p.add_argument(
        "--input-npy",
        default=None,
        help="float32 model-ready input; int8 models quantize it with their own scale",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--pin-core", type=int, default=None)
    p.add_argument(
        "--outputs-npy",
        default=None,
        help="write the float outputs for every row of --input-npy here (parity with another machine)",
    )
    return p.parse_args()


def _numpy():
    """numpy, or a JSON failure saying it is missing on this machine."""
    try:
        import numpy as np
    except ImportError:
        _fail("numpy is not installed on this machine")
    return np


def _pin(core):
    """Pin this process to ``core``, or fail naming the usable cores."""
    if not hasattr(os, "sched_setaffinity"):
        _fail("pinning needs os.sched_setaffinity (Linux)")
    cores = sorted(os.sched_getaffinity(0))
    if core not in cores:
        _fail(
            f"--pin-core {core}: this machine's usable cores are "
            f"{', '.join(map(str, cores))}; pass one of them"
        )
    os.sched_setaffinity(0, {core})


def _bench_for(model):
    """The benchmark function for the model file's suffix."""
    kind = os.path.splitext(model)[1]
    bench = {".tflite": bench_tflite, ".onnx": bench_onnx}.get(kind)
    if bench is None:
        _fail(f"model suffix {kind!r} not supported; use .tflite or .onnx")
    return bench


def _time(bench, args, np, x):
    """Time the first run, warm up, then time ``args.runs`` runs (ms each); any error is JSON."""
    try:
        once, runtime, spec = bench(args, np, x)
        t0 = time.perf_counter()
        once()
        first_ms = (time.perf_counter() - t0) * 1e3
        for _ in range(args.warmup):
            once()
        times, y = [], None  # y stays None only with --runs 0, which fails in the statistics
        for _ in range(args.runs):
            t0 = time.perf_counter_ns()
            y = once()
            times.append((time.perf_counter_ns() - t0) / 1e6)
    except SystemExit:
        raise
    except Exception as exc:
        _fail(f"{type(exc).__name__}: {exc}")
    return runtime, spec, first_ms, times, y


def _save_outputs(args, np, rows):
    """The float outputs for every input row, for parity with another machine."""
    try:
        np.save(
            args.outputs_npy,
            np.stack([args.predict(r[None]) for r in rows]),
            allow_pickle=False,
        )
    except Exception as exc:
        _fail(f"computing outputs for parity: {type(exc).__name__}: {exc}")


def _machine():
    """This machine's architecture and CPU, and whether the CPU is emulated (qemu-user)."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            info = dict(
                (k.strip().lower(), v.strip()) for k, _, v in (ln.partition(":") for ln in fh) if v
            )
        cpu = info.get("model name") or info.get("hardware") or info.get("model") or cpu
    except OSError:
        pass
    emulated = None
    if platform.machine() in ("aarch64", "arm64", "armv7l") and any(
        v in cpu for v in ("Intel", "AMD", "EPYC", "Xeon", "Ryzen")
    ):
        emulated = (
            f"{platform.machine()} userland on an x86 CPU ({cpu}): qemu-user emulation, "
            "emulated, not a device timing"
        )
    return {
        "arch": platform.machine(),
        "cpu": cpu,
        "python": platform.python_version(),
        "emulated": emulated,
    }


def _result(args, np, runtime, spec, first_ms, times, y):
    """The JSON object printed: settings, latency statistics (ms), input spec and machine."""
    t = np.asarray(times)
    q = np.percentile(t, [25, 50, 75, 90, 99])
    return {
        "ok": True,
        "runtime": runtime,
        "threads": args.threads,
        "warmup": args.warmup,
        "runs": args.runs,
        "pin_core": args.pin_core,
        "first_ms": first_ms,
        "p50_ms": float(q[1]),
        "p90_ms": float(q[3]),
        "p99_ms": float(q[4]),
        "mean_ms": float(t.mean()),
        "std_ms": float(t.std()),
        "iqr_ms": float(q[2] - q[0]),
        "min_ms": float(t.min()),
        "max_ms": float(t.max()),
        "input": spec,
        "output_shape": list(np.asarray(y).shape),
        "machine": _machine(),
    }


def main():
    args = _parse_args()
    np = _numpy()
    if args.pin_core is not None:
        _pin(args.pin_core)
    rows = (
        np.load(args.input_npy, allow_pickle=False).astype(np.float32) if args.input_npy else None
    )
    x = None if rows is None else rows[:1]
    bench = _bench_for(args.model)
    runtime, spec, first_ms, times, y = _time(bench, args, np, x)
    if args.outputs_npy and rows is not None:
        _save_outputs(args, np, rows)
    print(json.dumps(_result(args, np, runtime, spec, first_ms, times, y)))


if __name__ == "__main__":
    main()
