"""The host cost model's calibration set: small generated models, measured once per host and cached.

Estimates for a file must never depend on the other files in the run, so the host fit
(devices/estimate.py) is not made on the run's artifacts: it is made on this fixed set of
small models (fully-connected and convolution layers, fp32 and int8, for both runtime
families, plus an elementwise chain), written here from code (ONNX with onnx.helper, TFLite
with the LiteRT flatbuffer schema), measured with the host runner and cached under
``$TINYSHIP_CACHE`` (default ``~/.cache/tinyship``) keyed by the CPU, the runtime versions and
``SET_VERSION``. The run's own artifacts are measured too and reported against the estimate
as a check, never fitted on.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from ground import rundir

SET_VERSION = 2  # v2: each p50 is the median of ROUNDS interleaved rounds (issue 37: stability)
ROUNDS = 3
# (name, kind, dtype, size): fc = (in, out); conv = (h, w, cin, cout) with 3x3 kernels; eltwise = elements
SET = [
    ("fc256", "fc", "fp32", (256, 256)),
    ("fc1024", "fc", "fp32", (1024, 512)),
    ("conv16", "conv", "fp32", (16, 16, 8, 16)),
    ("conv32", "conv", "fp32", (32, 32, 16, 32)),
    ("fc256", "fc", "int8", (256, 256)),
    ("fc1024", "fc", "int8", (1024, 512)),
    ("conv16", "conv", "int8", (16, 16, 8, 16)),
    ("conv32", "conv", "int8", (32, 32, 16, 32)),
    ("add4k", "eltwise", "fp32", (4096,)),
    ("add64k", "eltwise", "fp32", (65536,)),
]


def cache_dir() -> Path:
    return Path(os.environ.get("TINYSHIP_CACHE") or Path.home() / ".cache" / "tinyship")


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("onnxruntime", "ai-edge-litert"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def cache_key(host_core: str) -> str:
    doc = {"set": SET_VERSION, "core": host_core, "versions": _versions()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- ONNX models


def _qlinear(op: str, w: np.ndarray, attrs: dict) -> tuple[list, list]:
    """int8 weights and fixed scales around one QLinear op: the int8 twin of an fp32 MatMul/Conv."""
    from onnx import helper, numpy_helper

    inits = [
        numpy_helper.from_array(np.clip(np.round(w / 0.002), -127, 127).astype(np.int8), "wq"),
        numpy_helper.from_array(np.array(0.002, np.float32), "ws"),
        numpy_helper.from_array(np.array(0, np.int8), "wz"),
        numpy_helper.from_array(np.array(0.02, np.float32), "xs"),
        numpy_helper.from_array(np.array(0, np.int8), "xz"),
        numpy_helper.from_array(np.array(0.05, np.float32), "ys"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node(op, ["xq", "xs", "xz", "wq", "ws", "wz", "ys", "xz"], ["yq"], **attrs),
        helper.make_node("DequantizeLinear", ["yq", "ys", "xz"], ["y"]),
    ]
    return inits, nodes


def _onnx_model(kind: str, dtype: str, size: tuple, path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits = [], []
    if kind == "fc":
        k, n = size
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])
        w = rng.normal(0, 0.05, (k, n)).astype(np.float32)
        if dtype == "fp32":
            inits.append(numpy_helper.from_array(w, "w"))
            nodes.append(helper.make_node("MatMul", ["x", "w"], ["y"]))
        else:
            inits, nodes = _qlinear("QLinearMatMul", w, {})
    elif kind == "conv":
        h, wd, ci, co = size
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, ci, h, wd])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, co, h, wd])
        w = rng.normal(0, 0.05, (co, ci, 3, 3)).astype(np.float32)
        attrs = {"pads": [1, 1, 1, 1], "kernel_shape": [3, 3]}
        if dtype == "fp32":
            inits.append(numpy_helper.from_array(w, "w"))
            nodes.append(helper.make_node("Conv", ["x", "w"], ["y"], **attrs))
        else:
            inits, nodes = _qlinear("QLinearConv", w, attrs)
    else:
        (n,) = size
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])
        prev = "x"
        for i in range(8):
            out = "y" if i == 7 else f"a{i}"
            nodes.append(helper.make_node("Add", [prev, "x"], [out]))
            prev = out
    g = helper.make_graph(nodes, "cal", [x], [y], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    rundir.atomic_write_bytes(path, m.SerializeToString())
    onnx.checker.check_model(str(path))


# ----------------------------------------------------------------------------- TFLite models


class _TfliteGraph:
    """A one-subgraph LiteRT model being built: its buffers, tensors, operators and operator codes."""

    def __init__(self, s) -> None:
        self.s = s
        self.m = s.ModelT()
        self.m.version = 3
        self.m.buffers = [s.BufferT()]
        self.sg = s.SubGraphT()
        self.sg.tensors, self.sg.operators = [], []
        self.codes: dict[int, int] = {}

    def quant(self, scale: float | list[float]):
        qp = self.s.QuantizationParametersT()
        qp.scale = list(np.atleast_1d(scale).astype(float))
        qp.zeroPoint = [0] * len(qp.scale)
        return qp

    def tensor(self, shape, typ, data: np.ndarray | None = None, scale=None) -> int:
        s, sg, m = self.s, self.sg, self.m
        t = s.TensorT()
        t.shape, t.type, t.name = list(shape), typ, f"t{len(sg.tensors)}".encode()
        t.buffer = 0
        if data is not None:
            b = s.BufferT()
            b.data = list(np.ascontiguousarray(data).tobytes())
            m.buffers.append(b)
            t.buffer = len(m.buffers) - 1
        if scale is not None:
            t.quantization = self.quant(scale)
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    def op(self, code: int, ins: list[int], outs: list[int], opts_type=0, opts=None) -> None:
        s, codes = self.s, self.codes
        if code not in codes:
            oc = s.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
            codes[code] = len(codes)
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = codes[code], ins, outs
        o.builtinOptionsType, o.builtinOptions = opts_type, opts
        self.sg.operators.append(o)

    def finish(self, x: int, y: int) -> bytes:
        """The flatbuffer (file identifier TFL3) with ``x`` as input and ``y`` as output."""
        import flatbuffers

        s, m, sg = self.s, self.m, self.sg
        sg.inputs, sg.outputs = [x], [y]
        m.subgraphs = [sg]
        m.operatorCodes = [None] * len(self.codes)
        for code, i in self.codes.items():
            oc = s.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
            m.operatorCodes[i] = oc
        m.description = b"tinyship host calibration"
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


_XS, _WS, _YS = 0.02, 0.002, 0.05  # the fixed input, weight and output scales of the int8 models


def _tflite_fc(g: _TfliteGraph, size: tuple, q8: bool, ttype: int, rng) -> tuple[int, int]:
    """One FULLY_CONNECTED layer (in, out); int8 weights and int32 bias when ``q8``."""
    s, xs, ws, ys = g.s, _XS, _WS, _YS
    k, n = size
    x = g.tensor([1, k], ttype, scale=xs if q8 else None)
    w = rng.normal(0, 0.05, (n, k)).astype(np.float32)
    if q8:
        wt = g.tensor(
            [n, k], s.TensorType.INT8, np.clip(np.round(w / ws), -127, 127).astype(np.int8), ws
        )
        bt = g.tensor([n], s.TensorType.INT32, np.zeros(n, np.int32), xs * ws)
    else:
        wt = g.tensor([n, k], s.TensorType.FLOAT32, w)
        bt = g.tensor([n], s.TensorType.FLOAT32, np.zeros(n, np.float32))
    y = g.tensor([1, n], ttype, scale=ys if q8 else None)
    g.op(
        s.BuiltinOperator.FULLY_CONNECTED,
        [x, wt, bt],
        [y],
        s.BuiltinOptions.FullyConnectedOptions,
        s.FullyConnectedOptionsT(),
    )
    return x, y


def _tflite_conv(g: _TfliteGraph, size: tuple, q8: bool, ttype: int, rng) -> tuple[int, int]:
    """One 3x3 SAME CONV_2D (h, w, cin, cout); per-channel int8 weights when ``q8``."""
    s, xs, ws, ys = g.s, _XS, _WS, _YS
    h, wd, ci, co = size
    x = g.tensor([1, h, wd, ci], ttype, scale=xs if q8 else None)
    w = rng.normal(0, 0.05, (co, 3, 3, ci)).astype(np.float32)
    if q8:
        wt = g.tensor(
            [co, 3, 3, ci],
            s.TensorType.INT8,
            np.clip(np.round(w / ws), -127, 127).astype(np.int8),
            [ws] * co,
        )
        wt_q = g.sg.tensors[wt].quantization
        wt_q.quantizedDimension = 0
        bt = g.tensor([co], s.TensorType.INT32, np.zeros(co, np.int32), [xs * ws] * co)
    else:
        wt = g.tensor([co, 3, 3, ci], s.TensorType.FLOAT32, w)
        bt = g.tensor([co], s.TensorType.FLOAT32, np.zeros(co, np.float32))
    y = g.tensor([1, h, wd, co], ttype, scale=ys if q8 else None)
    o = s.Conv2DOptionsT()
    o.padding, o.strideW, o.strideH, o.dilationWFactor, o.dilationHFactor = (
        s.Padding.SAME,
        1,
        1,
        1,
        1,
    )
    g.op(s.BuiltinOperator.CONV_2D, [x, wt, bt], [y], s.BuiltinOptions.Conv2DOptions, o)
    return x, y


def _tflite_eltwise(g: _TfliteGraph, size: tuple, ttype: int) -> tuple[int, int]:
    """A chain of eight ADDs of ``size`` elements, each adding the input again."""
    s = g.s
    (n,) = size
    x = g.tensor([1, n], ttype)
    prev = x
    for _ in range(8):
        out = g.tensor([1, n], ttype)
        g.op(
            s.BuiltinOperator.ADD,
            [prev, x],
            [out],
            s.BuiltinOptions.AddOptions,
            s.AddOptionsT(),
        )
        prev = out
    return x, prev


def _tflite_model(kind: str, dtype: str, size: tuple, path: Path) -> None:
    from ai_edge_litert import schema_py_generated as s

    rng = np.random.default_rng(0)
    g = _TfliteGraph(s)
    q8 = dtype == "int8"
    ttype = s.TensorType.INT8 if q8 else s.TensorType.FLOAT32
    if kind == "fc":
        x, y = _tflite_fc(g, size, q8, ttype, rng)
    elif kind == "conv":
        x, y = _tflite_conv(g, size, q8, ttype, rng)
    else:
        x, y = _tflite_eltwise(g, size, ttype)
    rundir.atomic_write_bytes(path, g.finish(x, y))


def write_set(folder: Path) -> list[Path]:
    """Write every calibration model (both formats) into ``folder``; return their paths."""
    paths = []
    for name, kind, dtype, size in SET:
        for suffix, writer in ((".onnx", _onnx_model), (".tflite", _tflite_model)):
            p = folder / f"{name}.{dtype}{suffix}"
            writer(kind, dtype, size, p)
            paths.append(p)
    return paths


@dataclass
class HostCalibration:
    key: str
    measured: list[dict]  # {file, family, p50_ms}
    path: Path
    created: str


def measured_set(host_core: str, runs: int = 20, warmup: int = 3) -> HostCalibration:
    """The calibration set's host p50s: from the cache, or measured now (once per host) and cached."""
    import datetime as _dt

    from .runners import get

    key = cache_key(host_core)
    cached = cache_dir() / f"host-calibration-{key}.json"
    if cached.is_file():
        doc = json.loads(cached.read_text())
        return HostCalibration(key, doc["measured"], cached, doc["created"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="tinyship-hostcal-") as tmp:
        paths = write_set(Path(tmp))
        # ROUNDS rounds over the whole set, interleaved, so that a burst of load on a shared machine
        # hits one round of every file rather than every run of one file; each file's figure is the
        # median of its rounds' p50s (two single-round calibrations moved predictions by up to 42
        # points, issue 37)
        p50s: dict[str, list[float]] = {p.name: [] for p in paths}
        runtimes: dict[str, str] = {}
        for _ in range(ROUNDS):
            for p in paths:
                m = get("host")(p, runs=runs, warmup=warmup, threads=1)
                p50s[p.name].append(m.p50_ms)
                runtimes[p.name] = m.runtime
        for p in paths:
            fam = "onnxruntime" if p.suffix == ".onnx" else "litert"
            rows.append({"file": p.name, "family": fam, "p50_ms": float(np.median(p50s[p.name])),
                         "rounds_ms": p50s[p.name], "runtime": runtimes[p.name]})  # fmt: skip
    created = _dt.datetime.now(_dt.UTC).isoformat()
    cached.parent.mkdir(parents=True, exist_ok=True)
    rundir.atomic_write_json(
        cached,
        {
            "key": key,
            "core": host_core,
            "versions": _versions(),
            "set": SET_VERSION,
            "created": created,
            "measured": rows,
        },
    )
    return HostCalibration(key, rows, cached, created)


def host_fit(host, runs: int = 20, warmup: int = 3):
    """(Fit, LooResult, HostCalibration) for this host: the fit on the fixed set, cached with it."""
    import dataclasses

    from . import estimate

    cal = measured_set(str(host.value("core")), runs=runs, warmup=warmup)
    doc = json.loads(cal.path.read_text())
    tag = hashlib.sha256(
        json.dumps(
            [estimate.MODEL_NAME, estimate.PRIOR, estimate.PRIOR_WEIGHT, estimate.EFF_MAX]
        ).encode()
    ).hexdigest()[:12]
    if doc.get("fit", {}).get("tag") == tag:
        f = estimate.Fit(doc["fit"]["params"], doc["fit"]["n"], host.name)
        return f, estimate.LooResult(**doc["fit"]["loo"]), cal
    smp, labels = samples(cal)
    f = estimate.fit(smp, host)
    loo = estimate.leave_one_out(smp, labels, host)
    doc["fit"] = {"tag": tag, "params": f.params, "n": f.n, "loo": dataclasses.asdict(loo)}
    rundir.atomic_write_json(cal.path, doc)
    return f, loo, cal


def samples(cal: HostCalibration) -> tuple[list, list[str]]:
    """(analysis, family, seconds) per calibration model, for estimate.fit / leave_one_out."""
    from .analysis import analyse

    out, labels = [], []
    with tempfile.TemporaryDirectory(prefix="tinyship-hostcal-") as tmp:
        paths = {p.name: p for p in write_set(Path(tmp))}
        for r in cal.measured:
            out.append((analyse(paths[r["file"]]), r["family"], r["p50_ms"] / 1e3))
            labels.append(r["file"])
    return out, labels


#: files the host fit never sees, measured on the host to check it out of sample: the MLPerf Tiny
#: reference models shipped with the data (int8 TFLite, a DS-CNN and an FC autoencoder)
VALIDATION_FILES = ("mlperf_tiny/kws_ref_model.tflite", "mlperf_tiny/ad01_int8.tflite")


def data_dir() -> Path:
    """The shared data folder (``$TINYSHIP_DATA``, default ../shared/data beside the repository)."""
    env = os.environ.get("TINYSHIP_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def validation(host, fit, loo, runs: int = 20, warmup: int = 3) -> dict:
    """The host fit's out-of-sample band on this host: ``true / predicted`` over every calibration
    model left out of its own fit (leave-one-out) and over files the fit never sees
    (``VALIDATION_FILES``, measured here, median of ROUNDS rounds). Cached beside the calibration."""
    from .analysis import analyse
    from .runners import get

    cal = measured_set(str(host.value("core")))
    doc = json.loads(cal.path.read_text())
    tag = hashlib.sha256(
        json.dumps([fit.params, VALIDATION_FILES, ROUNDS, "by_family"]).encode()
    ).hexdigest()[:12]
    if (doc.get("validation") or {}).get("tag") == tag:
        return doc["validation"]["band"]
    rows = [
        {"file": r["artifact"], "kind": "calibration model, left out of its fit",
         "measured_ms": r["measured_ms"], "predicted_ms": r["predicted_ms"]}
        for r in (loo.per_artifact or [])
    ]  # fmt: skip
    for rel in VALIDATION_FILES:
        path = data_dir() / rel
        if not path.is_file():
            continue
        pred = fit.predict_s(analyse(path), host, "litert")
        if pred is None:
            continue
        p50s = [
            get("host")(path, runs=runs, warmup=warmup, threads=1).p50_ms for _ in range(ROUNDS)
        ]
        rows.append({"file": rel, "kind": "never fitted on (MLPerf Tiny reference model)",
                     "measured_ms": float(np.median(p50s)), "predicted_ms": pred * 1e3})  # fmt: skip
    ratios = [r["measured_ms"] / r["predicted_ms"] for r in rows if r["predicted_ms"] > 0]
    for r in rows:
        r["ratio"] = r["measured_ms"] / r["predicted_ms"] if r["predicted_ms"] > 0 else None
    ext = [r for r in rows if r["kind"].startswith("never") and r["ratio"]]
    band = {
        "ratio_low": min(ratios) if ratios else None,
        "ratio_high": max(ratios) if ratios else None,
        "n": len(ratios),
        "rows": rows,
        "note": (
            f"true / predicted on this host over {len(ratios)} files left out of the fit "
            f"({len(ext)} never fitted on: "
            + ", ".join(f"{r['file'].split('/')[-1]} {100 * (r['ratio'] - 1):+.0f}%" for r in ext)
            + ")"
            if ratios
            else "no file could be checked against the host fit"
        ),
    }  # fmt: skip
    for r in rows:
        r["family"] = "onnxruntime" if r["file"].endswith(".onnx") else "litert"
    band["by_family"] = {}
    for fam in sorted({r["family"] for r in rows}):
        fr = [r["ratio"] for r in rows if r["family"] == fam and r["ratio"]]
        if fr:
            band["by_family"][fam] = {"ratio_low": min(fr), "ratio_high": max(fr), "n": len(fr)}
    doc["validation"] = {"tag": tag, "band": band}
    rundir.atomic_write_json(cal.path, doc)
    return band
