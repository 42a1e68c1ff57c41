"""TFLite flatbuffers, read with the LiteRT schema (``ai_edge_litert.schema_py_generated``):
parse, list the operators with their work, then the shared cost, arena and TFLM steps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ground.errors import UserError, require

from .graph_costs import (
    Analysis,
    OpWork,
    Tensors,
    activation_plan,
    op_costs,
    prod,
    summarize,
    tflm_refusal,
    tflm_tail_estimate,
)

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


@dataclass
class _Flatbuffer:
    buf: bytes
    schema: Any
    sg: Any  # the first subgraph
    codes: list
    tensors: list
    buffers: list

    def is_const(self, t: int) -> bool:
        b = self.tensors[t].buffer
        return (
            b is not None
            and 0 < b < len(self.buffers)
            and self.buffers[b].data is not None
            and len(self.buffers[b].data) > 0
        )

    def nbytes(self, t: int) -> int:
        tt = self.tensors[t]
        return prod(tt.shape) * _TFL_BYTES.get(tt.type, 4) if tt.shape is not None else 0

    def const_bytes(self, t: int) -> int:
        return len(self.buffers[self.tensors[t].buffer].data)

    def dtype(self, t: int) -> str:
        return _TFL_DTYPE.get(self.tensors[t].type, str(self.tensors[t].type))


def _read(path: Path) -> _Flatbuffer:
    schema = require("ai_edge_litert.schema_py_generated", "tflite", "reading a TFLite flatbuffer")
    buf = path.read_bytes()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise UserError(
            f"'{path}' is not a TFLite flatbuffer (no 'TFL3' identifier at byte 4). "
            "Re-export it (tinyship export --run RUN --force) or pass a valid .tflite file."
        )
    try:
        model = schema.ModelT.InitFromPackedBuf(buf, 0)
        sg = model.subgraphs[0]
        return _Flatbuffer(buf, schema, sg, model.operatorCodes, sg.tensors, model.buffers or [])
    except Exception as exc:  # the generated parser raises whatever a bad offset triggers
        raise UserError(
            f"'{path}' is a corrupt TFLite flatbuffer ({type(exc).__name__}: {exc}). Re-export it."
        ) from exc


def _operators(fb: _Flatbuffer) -> list[tuple[int, str, list[int], list[int], Any]]:
    names = {v: k for k, v in vars(fb.schema.BuiltinOperator).items() if not k.startswith("_")}
    out = []
    for i, op in enumerate(fb.sg.operators or []):
        c = fb.codes[op.opcodeIndex]
        code = max(int(c.builtinCode or 0), int(c.deprecatedBuiltinCode or 0))
        ins = [t for t in (op.inputs if op.inputs is not None else []) if t >= 0]
        outs = [t for t in (op.outputs if op.outputs is not None else []) if t >= 0]
        out.append((i, names.get(code, f"OP_{code}"), ins, outs, op))
    return out


def _work(fb: _Flatbuffer, i: int, name: str, ins: list[int], outs: list[int], op) -> OpWork:
    """MACs (conv/depthwise/FC), pooled or elementwise elements, kernel size, output channels."""
    t = fb.tensors
    w = OpWork(i, name, ins, outs, out_elems=prod(t[outs[0]].shape) if outs else 0)
    if name == "CONV_2D" and len(ins) > 1:
        cout, kh, kw, ci = (int(d) for d in t[ins[1]].shape)
        w.macs, w.kind, w.kernel, w.out_channels = w.out_elems * kh * kw * ci, "conv", kh * kw, cout
    elif name == "DEPTHWISE_CONV_2D" and len(ins) > 1:
        _, kh, kw, chans = (int(d) for d in t[ins[1]].shape)
        w.macs, w.kind, w.kernel, w.out_channels = (
            w.out_elems * kh * kw,
            "depthwise_conv",
            kh * kw,
            chans,
        )
    elif name == "FULLY_CONNECTED" and len(ins) > 1:
        w.macs, w.kind = w.out_elems * int(t[ins[1]].shape[-1]), "fully_connected"
    elif name == "BATCH_MATMUL":
        a = t[ins[0]].shape
        k = a[-2] if getattr(op.builtinOptions, "adjX", False) else a[-1]
        w.macs, w.kind = w.out_elems * int(k), "fully_connected"
    elif name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        o = op.builtinOptions
        w.macs, w.kind = w.out_elems * int(o.filterHeight) * int(o.filterWidth), "pool"
    elif name in ("MEAN", "SUM", "REDUCE_MAX"):
        w.macs, w.kind = prod(t[ins[0]].shape), "pool"
    elif name in _TFL_ELEMENTWISE:
        w.macs, w.kind = w.out_elems, "elementwise"
    return w


def _input_spec(fb: _Flatbuffer) -> dict | None:
    if fb.sg.inputs is None or not len(fb.sg.inputs):
        return None
    inp = fb.tensors[fb.sg.inputs[0]]
    q = inp.quantization
    return {
        "shape": [int(d) for d in inp.shape],
        "dtype": _TFL_DTYPE.get(inp.type, str(inp.type)),
        "quantization": (
            {"scale": float(q.scale[0]), "zero_point": int(q.zeroPoint[0])}
            if q is not None and q.scale is not None and len(q.scale)
            else None
        ),
    }


def analyse_tflite(path: Path) -> Analysis:
    fb = _read(path)
    ops = _operators(fb)
    # outputs of DEQUANTIZE on a constant are weights expanded at load time, not activations
    expanded = {
        outs[0]: ins[0]
        for _, name, ins, outs, _ in ops
        if name == "DEQUANTIZE" and ins and fb.is_const(ins[0])
    }
    tensors = Tensors(
        fb.nbytes, fb.is_const, fb.const_bytes, lambda t: prod(fb.tensors[t].shape), expanded
    )

    def dtype_of(w: OpWork, act_in: list[int], w_in: list[int]) -> str:
        if act_in and fb.tensors[act_in[0]].type in (3, 9):
            return "int8"
        weights_int8 = w_in and fb.tensors[expanded.get(w_in[0], w_in[0])].type in (3, 9)
        if w.kind in ("conv", "depthwise_conv", "fully_connected") and weights_int8:
            return "hybrid"  # float activations, int8 weights (TFLite dynamic-range kernels)
        return "fp32"

    work = [
        _work(fb, *o) for o in ops if not (o[1] == "DEQUANTIZE" and o[3] and o[3][0] in expanded)
    ]
    costs, params = op_costs(work, tensors, dtype_of)
    by_dtype: dict[str, int] = {}
    for t in range(len(fb.tensors)):
        if fb.is_const(t):
            by_dtype[fb.dtype(t)] = by_dtype.get(fb.dtype(t), 0) + fb.const_bytes(t)
    bufs, plan = activation_plan(
        [(ins, outs) for _, _, ins, outs, _ in ops],
        list(fb.sg.inputs if fb.sg.inputs is not None else []),
        list(fb.sg.outputs if fb.sg.outputs is not None else []),
        lambda t: not tensors.weightish(t) and fb.nbytes(t) > 0,
        fb.nbytes,
        int,
    )
    act_dtypes = sorted({fb.dtype(int(b.name)) for b in bufs})
    custom = sorted(
        {
            (fb.codes[op.opcodeIndex].customCode or b"?").decode(errors="replace")
            for _, name, _, _, op in ops
            if name == "CUSTOM"
        }
    )
    return summarize(
        path.name,
        "tflite",
        len(fb.buf),
        costs,
        params,
        by_dtype,
        (bufs, plan),
        sum(fb.nbytes(t) for t in expanded),
        _input_spec(fb),
        tensor_dtypes=act_dtypes,
        tflm_refusal=tflm_refusal(costs, act_dtypes, sorted(by_dtype), custom),
        n_tensors=len(fb.tensors),
        tflm_tail_estimate_bytes=tflm_tail_estimate(
            len(fb.tensors), len(ops), len(fb.sg.inputs) + len(fb.sg.outputs), costs
        ),
    )
