"""Static analysis of exported models: per-operator MACs, parameters, weight bytes, activations, arena.

No device is needed: everything here is read from the model file. ONNX graphs are
read with onnx and its shape inference; TFLite flatbuffers with the LiteRT schema
(``ai_edge_litert.schema_py_generated``). Peak activation memory comes from a
greedy-by-size arena plan (devices/arena.py), the scheme TFLite Micro uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tinyship import rundir
from tinyship.errors import UserError, require

from .arena import Buffer, plan_arena

KINDS = ("conv", "depthwise_conv", "fully_connected", "pool", "elementwise", "other")
MATMUL_KINDS = ("conv", "depthwise_conv", "fully_connected")
# TFLite Micro runs full-integer (int8/int16 activations) and float32 graphs; these dtypes it has no kernels for
_TFLM_DTYPES = {"float32", "int8", "int16", "int32", "uint8", "bool", "int64"}


@dataclass
class OpCost:
    index: int
    op: str
    kind: str
    dtype: str  # compute type: int8, hybrid (float in, int8 weights) or fp32
    macs: int
    weight_bytes: int
    in_bytes: int
    out_bytes: int
    kernel: int = 0  # kh x kw of a conv-like op (0 otherwise): 1 marks a pointwise conv
    out_elems: int = 0
    out_channels: int = 0  # conv/depthwise output channels (per-channel quantization data in TFLM)

    @property
    def cost_kind(self) -> str:
        """The operator class the MCU cost model fits separately (see estimate.COST_KINDS)."""
        if self.kind == "conv":
            return "pointwise" if self.kernel == 1 else "conv"
        if self.kind == "depthwise_conv":
            return "depthwise"
        if self.kind == "fully_connected":
            return "fc"
        return "elementwise"

    @property
    def work(self) -> int:
        """MACs for conv/depthwise/FC; elements touched (at least the output's) for every other op."""
        return self.macs if self.kind in MATMUL_KINDS else max(self.macs, self.out_elems)


@dataclass
class Analysis:
    file: str
    format: str
    bytes: int
    params: int | None
    macs: int | None  # headline: conv, depthwise and fully-connected MACs only
    weight_bytes: int | None
    weight_bytes_by_dtype: dict[str, int]
    activation_bytes: int | None  # sum of all activation tensor sizes
    peak_activation_bytes: int | None  # arena plan (greedy by size)
    peak_live_bytes: int | None  # lower bound: most bytes alive at one step
    dequantized_weight_bytes: int = 0  # fp16/int8 weights expanded at load time (RAM, not arena)
    n_ops: int = 0
    ops: list[OpCost] = field(default_factory=list)
    input: dict | None = None
    tflm_arena_bytes: int | None = None
    arena_delta_bytes: int | None = None
    arena_note: str | None = None
    not_analysed: list[str] = field(default_factory=list)
    other_work: int | None = (
        None  # pooling/elementwise/copy work (elements), reported beside the MACs
    )
    tensor_dtypes: list[str] = field(default_factory=list)  # dtypes of the activation tensors
    tflm_refusal: str | None = (
        None  # why TFLite Micro cannot run this file, from its ops and dtypes
    )
    n_tensors: int = 0
    tflm_tail_estimate_bytes: int | None = (
        None  # TFLM's persistent tail, estimated (tflm_tail_estimate)
    )

    def macs_by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.ops:
            out[o.kind] = out.get(o.kind, 0) + o.macs
        return out


def _prod(shape) -> int:
    return int(math.prod(int(d) for d in shape)) if shape is not None else 0


def _activation_plan(
    steps: list[tuple[list, list]],
    graph_inputs: list,
    graph_outputs: list,
    is_activation: Callable[[object], bool],
    nbytes: Callable[[object], int],
    order: Callable[[object], int],
):
    """Lifetimes of the activation tensors, then TFLM's greedy arena plan over them.

    The lifetimes follow TFLite Micro's AllocationInfoBuilder::MarkAllocationLifetimes: op ``i``
    runs in scope ``i + 1``; graph inputs are created at scope 0; an op's outputs are created at its
    scope; every input is last used at the scope of its last consumer; graph outputs live to the end.
    ``order`` is the tensor's index (the order TFLM adds buffers to its planner, which decides ties).
    Returns (buffers, plan).
    """
    first: dict = {t: 0 for t in graph_inputs if is_activation(t)}
    last: dict = {t: 0 for t in first}
    for i, (ins, outs) in enumerate(steps):
        scope = i + 1
        for t in outs:
            if is_activation(t):
                first[t] = scope
                last[t] = scope
        for t in ins:
            if is_activation(t):
                first.setdefault(t, 0)  # consumed but never produced: alive from the start
                last[t] = scope
    for t in graph_outputs:
        if t in first:
            last[t] = len(steps)
    bufs = [Buffer(str(t), nbytes(t), f, last[t], order(t)) for t, f in first.items()]
    return bufs, plan_arena(bufs)


# ----------------------------------------------------------------------------- TFLite

_TFL_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8, 12: 8, 15: 4, 16: 2, 18: 2}
_TFL_DTYPE = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    6: "bool",
    7: "int16",
    9: "int8",
    10: "float64",
    18: "bfloat16",
}
_TFL_ELEMENTWISE = {
    "ADD",
    "SUB",
    "MUL",
    "DIV",
    "RELU",
    "RELU6",
    "RELU_N1_TO_1",
    "LOGISTIC",
    "TANH",
    "HARD_SWISH",
    "QUANTIZE",
    "DEQUANTIZE",
    "SOFTMAX",
    "LOG_SOFTMAX",
    "MAXIMUM",
    "MINIMUM",
    "LEAKY_RELU",
    "PRELU",
    "EXP",
    "RSQRT",
    "SQRT",
    "SQUARED_DIFFERENCE",
    "ABS",
    "NEG",
    "GELU",
    "SQUARE",
    "POW",
}


def _analyse_tflite(path: Path) -> Analysis:
    schema = require("ai_edge_litert.schema_py_generated", "tflite", "reading a TFLite flatbuffer")
    buf = path.read_bytes()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise UserError(
            f"'{path}' is not a TFLite flatbuffer (no 'TFL3' identifier at byte 4). "
            "Re-export it (python -m export --run ... --force) or pass a valid .tflite file."
        )
    try:
        model = schema.ModelT.InitFromPackedBuf(buf, 0)
        sg = model.subgraphs[0]
        codes = model.operatorCodes
    except Exception as exc:  # the generated parser raises whatever a bad offset triggers
        raise UserError(
            f"'{path}' is a corrupt TFLite flatbuffer ({type(exc).__name__}: {exc}). Re-export it."
        ) from exc
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    tensors = sg.tensors
    buffers = model.buffers or []

    def is_const(t: int) -> bool:
        b = tensors[t].buffer
        return (
            b is not None
            and 0 < b < len(buffers)
            and buffers[b].data is not None
            and len(buffers[b].data) > 0
        )

    def nbytes(t: int) -> int:
        tt = tensors[t]
        return _prod(tt.shape) * _TFL_BYTES.get(tt.type, 4) if tt.shape is not None else 0

    ops_raw = []
    for i, op in enumerate(sg.operators or []):
        c = codes[op.opcodeIndex]
        code = max(int(c.builtinCode or 0), int(c.deprecatedBuiltinCode or 0))
        ops_raw.append(
            (
                i,
                names.get(code, f"OP_{code}"),
                [t for t in (op.inputs if op.inputs is not None else []) if t >= 0],
                [t for t in (op.outputs if op.outputs is not None else []) if t >= 0],
                op,
            )
        )
    # outputs of DEQUANTIZE on a constant are weights expanded at load time, not activations
    const_derived = {
        outs[0]: ins[0]
        for _, name, ins, outs, _ in ops_raw
        if name == "DEQUANTIZE" and ins and is_const(ins[0])
    }

    def weightish(t: int) -> bool:
        return is_const(t) or t in const_derived

    by_dtype: dict[str, int] = {}
    seen_consts: set[int] = set()
    params = 0
    costs: list[OpCost] = []
    for i, name, ins, outs, op in ops_raw:
        if name == "DEQUANTIZE" and outs and outs[0] in const_derived:
            continue
        out_elems = _prod(tensors[outs[0]].shape) if outs else 0
        act_in = [t for t in ins if not weightish(t)]
        w_in = [t for t in ins if weightish(t)]
        macs, kind, kernel, chans = 0, "other", 0, 0
        if name == "CONV_2D" and len(ins) > 1:
            _, kh, kw, ci = tensors[ins[1]].shape
            macs, kind, kernel = out_elems * kh * kw * ci, "conv", int(kh * kw)
            chans = int(tensors[ins[1]].shape[0])
        elif name == "DEPTHWISE_CONV_2D" and len(ins) > 1:
            _, kh, kw, chans = (int(d) for d in tensors[ins[1]].shape)
            macs, kind, kernel = out_elems * kh * kw, "depthwise_conv", int(kh * kw)
        elif name == "FULLY_CONNECTED" and len(ins) > 1:
            macs, kind = out_elems * int(tensors[ins[1]].shape[-1]), "fully_connected"
        elif name == "BATCH_MATMUL":
            opts = op.builtinOptions
            a = tensors[ins[0]].shape
            k = a[-2] if getattr(opts, "adjX", False) else a[-1]
            macs, kind = out_elems * int(k), "fully_connected"
        elif name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            o = op.builtinOptions
            macs, kind = out_elems * int(o.filterHeight) * int(o.filterWidth), "pool"
        elif name in ("MEAN", "SUM", "REDUCE_MAX"):
            macs, kind = _prod(tensors[ins[0]].shape), "pool"
        elif name in _TFL_ELEMENTWISE:
            macs, kind = out_elems, "elementwise"
        wbytes = 0
        for t in w_in:
            src = const_derived.get(t, t)
            wbytes += len(buffers[tensors[src].buffer].data)
            if src not in seen_consts:
                seen_consts.add(src)
                if kind in ("conv", "depthwise_conv", "fully_connected"):
                    params += _prod(tensors[src].shape)
        in_type = tensors[act_in[0]].type if act_in else 0
        w_type = tensors[const_derived.get(w_in[0], w_in[0])].type if w_in else 0
        if in_type in (3, 9):
            dtype = "int8"
        elif kind in ("conv", "depthwise_conv", "fully_connected") and w_type in (3, 9):
            dtype = "hybrid"  # float activations, int8 weights (TFLite dynamic-range kernels)
        else:
            dtype = "fp32"
        costs.append(
            OpCost(
                i,
                name,
                kind,
                dtype,
                int(macs),
                wbytes,
                sum(nbytes(t) for t in act_in),
                sum(nbytes(t) for t in outs),
                kernel,
                int(out_elems),
                chans,
            )
        )
    for t_i, t in enumerate(tensors):
        if is_const(t_i):
            by_dtype[_TFL_DTYPE.get(t.type, str(t.type))] = by_dtype.get(
                _TFL_DTYPE.get(t.type, str(t.type)), 0
            ) + len(buffers[t.buffer].data)
    bufs, plan = _activation_plan(
        [(ins, outs) for _, _, ins, outs, _ in ops_raw],
        list(sg.inputs if sg.inputs is not None else []),
        list(sg.outputs if sg.outputs is not None else []),
        lambda t: not weightish(t) and nbytes(t) > 0,
        nbytes,
        int,
    )
    inp = tensors[sg.inputs[0]] if sg.inputs is not None and len(sg.inputs) else None
    in_spec = None
    if inp is not None:
        q = inp.quantization
        in_spec = {
            "shape": [int(d) for d in inp.shape],
            "dtype": _TFL_DTYPE.get(inp.type, str(inp.type)),
            "quantization": (
                {"scale": float(q.scale[0]), "zero_point": int(q.zeroPoint[0])}
                if q is not None and q.scale is not None and len(q.scale)
                else None
            ),
        }
    act_dtypes = sorted({_TFL_DTYPE.get(tensors[int(b.name)].type, "?") for b in bufs})
    custom = sorted(
        {
            (codes[op.opcodeIndex].customCode or b"?").decode(errors="replace")
            for _, name, _, _, op in ops_raw
            if name == "CUSTOM"
        }
    )
    return Analysis(
        str(path.name),
        "tflite",
        len(buf),
        params,
        sum(c.macs for c in costs if c.kind in MATMUL_KINDS),
        sum(by_dtype.values()),
        by_dtype,
        sum(b.size for b in bufs),
        plan.arena_bytes,
        plan.peak_live_bytes,
        sum(nbytes(t) for t in const_derived),
        len(costs),
        costs,
        in_spec,
        other_work=sum(c.work for c in costs if c.kind not in MATMUL_KINDS),
        tensor_dtypes=act_dtypes,
        tflm_refusal=_tflm_refusal(costs, act_dtypes, sorted(by_dtype), custom),
        n_tensors=len(tensors),
        tflm_tail_estimate_bytes=tflm_tail_estimate(
            len(tensors), len(ops_raw), len(sg.inputs) + len(sg.outputs), costs
        ),
    )


def tflm_tail_estimate(n_tensors: int, n_ops: int, n_io: int, costs: list[OpCost]) -> int:
    """TFLite Micro's persistent arena tail, estimated from the graph (used where TFLM did not run).

    Items as TFLM's RecordingMicroAllocator lists them for its Python interpreter (64-bit host):
    TfLiteEvalTensor 24 bytes per tensor; NodeAndRegistration 64 per op; a persistent TfLiteTensor
    (64) and its quantization data (32) per graph input/output; per-channel output multipliers and
    shifts (2 x 4 bytes per output channel) for each conv/depthwise op. The per-op kernel data (56 bytes)
    and the unitemised remainder (850 bytes) are read off TFLM's records of the two MLPerf Tiny files
    (KWS, AD) -- a calibration on them, checked on other files in tests/devices/test_files.py. On a
    32-bit MCU the pointer-holding structs are smaller, so this (like the measured host tail) is an
    upper bound there.
    """
    per_channel = sum(8 * c.out_channels for c in costs if c.kind in ("conv", "depthwise_conv"))
    return 24 * n_tensors + 64 * n_ops + 96 * n_io + per_channel + 56 * n_ops + 850


def _tflm_refusal(
    costs: list[OpCost], act_dtypes: list[str], weight_dtypes: list[str], custom: list[str]
) -> str | None:
    """Why TFLite Micro cannot run a TFLite graph, read from its operators and tensor dtypes (not a label)."""
    reasons = []
    hybrid = sorted({c.op for c in costs if c.dtype == "hybrid"})
    if hybrid:
        reasons.append(
            f"hybrid ops (float activations, int8 weights: {', '.join(hybrid)}); TFLite Micro has no "
            "dynamic-range kernels"
        )
    bad = sorted({d for d in act_dtypes if d not in _TFLM_DTYPES})
    if bad or "float16" in weight_dtypes:
        reasons.append(
            f"{', '.join(bad or ['float16'])} tensors; TFLite Micro has no kernels for them"
        )
    if custom:
        reasons.append(f"custom ops {', '.join(custom)}")
    return "; ".join(reasons) or None


# ----------------------------------------------------------------------------- ONNX

_ONNX_ELEMENTWISE = {
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Relu",
    "Clip",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "BatchNormalization",
    "LeakyRelu",
    "HardSwish",
    "HardSigmoid",
    "Exp",
    "Sqrt",
    "Pow",
    "Max",
    "Min",
    "Erf",
    "Cast",
    "Gelu",
    "QLinearAdd",
    "QLinearMul",
}
_ONNX_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 16: 2}
_ONNX_DTYPE = {
    1: "float32",
    2: "uint8",
    3: "int8",
    5: "int16",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
    16: "bfloat16",
}


def _analyse_onnx(path: Path) -> Analysis:
    import onnx  # a core dependency (pyproject dependencies), not an extra
    from onnx import numpy_helper, shape_inference

    try:
        model = onnx.load(str(path))
        model = shape_inference.infer_shapes(model)
    except Exception as exc:
        raise UserError(
            f"'{path}' is not a readable ONNX model ({type(exc).__name__}: {exc}). Re-export it."
        ) from exc
    g = model.graph
    shapes: dict[str, list[int]] = {}
    types: dict[str, int] = {}
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        tt = vi.type.tensor_type
        types[vi.name] = tt.elem_type
        if tt.HasField("shape"):
            shapes[vi.name] = [
                d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                for d in tt.shape.dim
            ]
    consts: dict[str, object] = {}
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        consts[init.name] = arr
        shapes[init.name] = list(arr.shape)
        types[init.name] = init.data_type
    for node in g.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    arr = numpy_helper.to_array(a.t)
                    consts[node.output[0]] = arr
                    shapes[node.output[0]] = list(arr.shape)
                    types[node.output[0]] = a.t.data_type
    const_derived = {}
    for node in g.node:
        if (
            node.op_type in ("DequantizeLinear", "Cast")
            and node.input
            and (node.input[0] in consts or node.input[0] in const_derived)
        ):
            const_derived[node.output[0]] = const_derived.get(node.input[0], node.input[0])

    def weightish(t: str) -> bool:
        return t in consts or t in const_derived

    def nbytes(t: str) -> int:
        return _prod(shapes.get(t)) * _ONNX_BYTES.get(types.get(t, 1), 4) if t in shapes else 0

    def attr(node, name, default=None):
        for a in node.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return default

    costs: list[OpCost] = []
    seen: set[str] = set()
    params = 0
    nodes = [
        n
        for n in g.node
        if n.op_type != "Constant" and not (n.output and n.output[0] in const_derived)
    ]
    for i, node in enumerate(nodes):
        ins = [t for t in node.input if t]
        outs = [t for t in node.output if t]
        out_elems = _prod(shapes.get(outs[0])) if outs and outs[0] in shapes else 0
        op = node.op_type
        macs, kind, kernel = 0, "other", 0
        w_idx = {
            "Conv": 1,
            "ConvInteger": 1,
            "QLinearConv": 3,
            "Gemm": 1,
            "MatMul": 1,
            "MatMulInteger": 1,
            "QLinearMatMul": 3,
        }.get(op)
        if (
            op in ("Conv", "ConvInteger", "QLinearConv")
            and len(ins) > w_idx
            and ins[w_idx] in shapes
        ):
            w = shapes[ins[w_idx]]
            group = int(attr(node, "group", 1))
            macs = out_elems * _prod(w[1:])
            kind = "depthwise_conv" if group > 1 and w[1] == 1 else "conv"
            kernel = _prod(w[2:])
        elif (
            op in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul") and ins and ins[0] in shapes
        ):
            a = shapes[ins[0]]
            k = a[-2] if (op == "Gemm" and attr(node, "transA", 0)) else a[-1]
            macs, kind = out_elems * int(k), "fully_connected"
        elif op in ("MaxPool", "AveragePool"):
            macs, kind = out_elems * _prod(attr(node, "kernel_shape", [1])), "pool"
        elif (
            op in ("GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceSum")
            and ins
            and ins[0] in shapes
        ):
            macs, kind = _prod(shapes[ins[0]]), "pool"
        elif op in _ONNX_ELEMENTWISE:
            macs, kind = out_elems, "elementwise"
        act_in = [t for t in ins if not weightish(t)]
        w_in = [t for t in ins if weightish(t)]
        wb = 0
        for t in w_in:
            src = const_derived.get(t, t)
            wb += consts[src].nbytes if src in consts else 0
            if src not in seen and src in consts:
                seen.add(src)
                if (
                    kind in ("conv", "depthwise_conv", "fully_connected")
                    and consts[src].ndim >= 1
                    and consts[src].size > 1
                ):
                    params += int(consts[src].size)
        in_t = types.get(act_in[0], 1) if act_in else 1
        w_t = types.get(const_derived.get(w_in[0], w_in[0]), 1) if w_in else 1
        dtype = (
            "int8"
            if in_t in (2, 3)
            or op in ("ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul")
            or (kind in ("conv", "depthwise_conv", "fully_connected") and w_t in (2, 3))
            else "fp32"
        )
        costs.append(
            OpCost(
                i,
                op,
                kind,
                dtype,
                int(macs),
                int(wb),
                sum(nbytes(t) for t in act_in),
                sum(nbytes(t) for t in outs),
                kernel,
                int(out_elems),
            )
        )
    by_dtype: dict[str, int] = {}
    for name, arr in consts.items():
        key = _ONNX_DTYPE.get(types.get(name, 1), str(types.get(name)))
        by_dtype[key] = by_dtype.get(key, 0) + int(arr.nbytes)
    index = {t: k for k, t in enumerate(list(shapes) + [o for n in nodes for o in n.output])}
    bufs, plan = _activation_plan(
        [([t for t in n.input if t], [t for t in n.output if t]) for n in nodes],
        [vi.name for vi in g.input if vi.name not in consts],
        [vi.name for vi in g.output],
        lambda t: not weightish(t),
        nbytes,
        lambda t: index.get(t, len(index)),
    )
    gi = [vi for vi in g.input if vi.name not in consts]
    in_spec = None
    if gi:
        in_spec = {
            "shape": shapes.get(gi[0].name),
            "dtype": _ONNX_DTYPE.get(types.get(gi[0].name, 1)),
            "quantization": None,
        }
    notes = []
    if any(b.size == 0 for b in bufs):
        notes.append(
            "some activation shapes were not inferred; their sizes count as 0 in the arena plan"
        )
    deq = sum(_prod(shapes.get(t)) * 4 for t in const_derived if t in shapes)
    a = Analysis(
        path.name,
        "onnx",
        path.stat().st_size,
        params,
        sum(c.macs for c in costs if c.kind in MATMUL_KINDS),
        sum(by_dtype.values()),
        by_dtype,
        sum(b.size for b in bufs),
        plan.arena_bytes,
        plan.peak_live_bytes,
        deq,
        len(costs),
        costs,
        in_spec,
        not_analysed=notes,
        other_work=sum(c.work for c in costs if c.kind not in MATMUL_KINDS),
        tensor_dtypes=sorted({_ONNX_DTYPE.get(types.get(b.name, 1), "?") for b in bufs}),
        tflm_refusal="an ONNX file: TFLite Micro runs .tflite flatbuffers only",
    )
    return a


# ----------------------------------------------------------------------------- Core ML


def _analyse_mlpackage(path: Path) -> Analysis:
    if not path.is_dir() or not (path / "Manifest.json").is_file():
        raise UserError(
            f"'{path}' is not a Core ML .mlpackage folder (no Manifest.json). Re-export it."
        )
    weights = sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and "weights" in p.parts)
    return Analysis(
        path.name,
        "mlpackage",
        rundir.path_bytes(path),
        None,
        None,
        weights,
        {"weight.bin": weights},
        None,
        None,
        None,
        not_analysed=[
            "MACs, parameters and activation memory: the ML Program is not parsed here (only file sizes)",
            "latency: Core ML prediction needs macOS/iOS",
        ],
        tflm_refusal="a Core ML package: TFLite Micro runs .tflite flatbuffers only",
    )


ANALYSERS: dict[str, Callable[[Path], Analysis]] = {
    ".onnx": _analyse_onnx,
    ".tflite": _analyse_tflite,
    ".mlpackage": _analyse_mlpackage,
}


def analyse(path: str | Path, tflm_arena_bytes: int | None = None) -> Analysis:
    """Analyse one model file; compare the arena plan with TFLM's own arena when export recorded one."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"model '{path}' not found. Run the export stage first or check the path.")
    fn = ANALYSERS.get(path.suffix)
    if fn is None:
        raise UserError(
            f"model '{path}' has suffix '{path.suffix}'; analysable: {', '.join(ANALYSERS)}."
        )
    a = fn(path)
    if tflm_arena_bytes is not None and a.peak_activation_bytes is not None:
        a.tflm_arena_bytes = int(tflm_arena_bytes)
        a.arena_delta_bytes = int(tflm_arena_bytes) - a.peak_activation_bytes
        a.arena_note = (
            "TFLM arena (measured by export with the TFLite Micro interpreter) minus this plan: "
            "the TFLM arena also holds per-op scratch buffers, runtime structs and alignment"
        )
    return a
