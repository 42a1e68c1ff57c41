"""ONNX graphs, read with onnx and its shape inference: parse, list the operators with their
work, then the shared cost and arena steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ground.errors import UserError

from .graph_costs import Analysis, OpWork, Tensors, activation_plan, op_costs, prod, summarize

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


# the weight input of each matmul-like op
_WEIGHT_INPUT = {
    "Conv": 1,
    "ConvInteger": 1,
    "QLinearConv": 3,
    "Gemm": 1,
    "MatMul": 1,
    "MatMulInteger": 1,
    "QLinearMatMul": 3,
}
_INT8_OPS = ("ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul")


@dataclass
class _Graph:
    graph: Any
    shapes: dict[str, list[int]] = field(default_factory=dict)
    types: dict[str, int] = field(default_factory=dict)
    consts: dict[str, Any] = field(default_factory=dict)  # name -> numpy array
    expanded: dict[str, str] = field(default_factory=dict)  # DequantizeLinear/Cast of a weight

    def nbytes(self, t: str) -> int:
        if t not in self.shapes:
            return 0
        return prod(self.shapes.get(t)) * _ONNX_BYTES.get(self.types.get(t, 1), 4)

    def const_bytes(self, t: str) -> int:
        return int(self.consts[t].nbytes) if t in self.consts else 0

    def const_params(self, t: str) -> int:
        a = self.consts.get(t)  # scalars (scales, zero points) are not parameters
        return int(a.size) if a is not None and a.ndim >= 1 and a.size > 1 else 0

    def dtype(self, t: str) -> str | None:
        return _ONNX_DTYPE.get(self.types.get(t, 1))


def _read(path: Path) -> _Graph:
    import onnx  # a core dependency (pyproject dependencies), not an extra
    from onnx import numpy_helper, shape_inference

    try:
        model = shape_inference.infer_shapes(onnx.load(str(path)))
    except Exception as exc:
        raise UserError(
            f"'{path}' is not a readable ONNX model ({type(exc).__name__}: {exc}). Re-export it."
        ) from exc
    g = _Graph(model.graph)
    for vi in list(g.graph.input) + list(g.graph.output) + list(g.graph.value_info):
        tt = vi.type.tensor_type
        g.types[vi.name] = tt.elem_type
        if tt.HasField("shape"):
            g.shapes[vi.name] = [
                d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                for d in tt.shape.dim
            ]
    constants = [(i.name, numpy_helper.to_array(i), i.data_type) for i in g.graph.initializer]
    for node in g.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    constants.append((node.output[0], numpy_helper.to_array(a.t), a.t.data_type))
    for name, arr, dtype in constants:
        g.consts[name], g.shapes[name], g.types[name] = arr, list(arr.shape), dtype
    for node in g.graph.node:
        src = node.input[0] if node.input else None
        if node.op_type in ("DequantizeLinear", "Cast") and (src in g.consts or src in g.expanded):
            g.expanded[node.output[0]] = g.expanded.get(src, src)
    return g


def _attr(node, name: str, default=None):
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _work(g: _Graph, i: int, node) -> OpWork:
    """MACs (conv/depthwise/FC), pooled or elementwise elements and kernel size of one node."""
    ins, outs, op = [t for t in node.input if t], [t for t in node.output if t], node.op_type
    w = OpWork(
        i, op, ins, outs, out_elems=prod(g.shapes[outs[0]]) if outs and outs[0] in g.shapes else 0
    )
    wi = _WEIGHT_INPUT.get(op)
    if op in ("Conv", "ConvInteger", "QLinearConv") and len(ins) > wi and ins[wi] in g.shapes:
        shape = g.shapes[ins[wi]]
        depthwise = int(_attr(node, "group", 1)) > 1 and shape[1] == 1
        w.macs, w.kernel = w.out_elems * prod(shape[1:]), prod(shape[2:])
        w.kind = "depthwise_conv" if depthwise else "conv"
    elif op in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul") and ins and ins[0] in g.shapes:
        a = g.shapes[ins[0]]
        k = a[-2] if (op == "Gemm" and _attr(node, "transA", 0)) else a[-1]
        w.macs, w.kind = w.out_elems * int(k), "fully_connected"
    elif op in ("MaxPool", "AveragePool"):
        w.macs, w.kind = w.out_elems * prod(_attr(node, "kernel_shape", [1])), "pool"
    elif (
        op in ("GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceSum")
        and ins
        and ins[0] in g.shapes
    ):
        w.macs, w.kind = prod(g.shapes[ins[0]]), "pool"
    elif op in _ONNX_ELEMENTWISE:
        w.macs, w.kind = w.out_elems, "elementwise"
    return w


def analyse_onnx(path: Path) -> Analysis:
    g = _read(path)
    tensors = Tensors(g.nbytes, lambda t: t in g.consts, g.const_bytes, g.const_params, g.expanded)

    def dtype_of(w: OpWork, act_in: list[str], w_in: list[str]) -> str:
        in_t = g.types.get(act_in[0], 1) if act_in else 1
        w_t = g.types.get(g.expanded.get(w_in[0], w_in[0]), 1) if w_in else 1
        matmul = w.kind in ("conv", "depthwise_conv", "fully_connected")
        return (
            "int8" if in_t in (2, 3) or w.op in _INT8_OPS or (matmul and w_t in (2, 3)) else "fp32"
        )

    nodes = [
        n
        for n in g.graph.node
        if n.op_type != "Constant" and not (n.output and n.output[0] in g.expanded)
    ]
    costs, params = op_costs([_work(g, i, n) for i, n in enumerate(nodes)], tensors, dtype_of)
    by_dtype: dict[str, int] = {}
    for name, arr in g.consts.items():
        key = _ONNX_DTYPE.get(g.types.get(name, 1), str(g.types.get(name)))
        by_dtype[key] = by_dtype.get(key, 0) + int(arr.nbytes)
    index = {t: k for k, t in enumerate(list(g.shapes) + [o for n in nodes for o in n.output])}
    bufs, plan = activation_plan(
        [([t for t in n.input if t], [t for t in n.output if t]) for n in nodes],
        [vi.name for vi in g.graph.input if vi.name not in g.consts],
        [vi.name for vi in g.graph.output],
        lambda t: not tensors.weightish(t),
        g.nbytes,
        lambda t: index.get(t, len(index)),
    )
    gi = [vi.name for vi in g.graph.input if vi.name not in g.consts]
    in_spec = (
        {"shape": g.shapes.get(gi[0]), "dtype": g.dtype(gi[0]), "quantization": None}
        if gi
        else None
    )
    notes = []
    if any(b.size == 0 for b in bufs):
        notes.append(
            "some activation shapes were not inferred; their sizes count as 0 in the arena plan"
        )
    return summarize(
        path.name,
        "onnx",
        path.stat().st_size,
        costs,
        params,
        by_dtype,
        (bufs, plan),
        sum(prod(g.shapes.get(t)) * 4 for t in g.expanded if t in g.shapes),
        in_spec,
        not_analysed=notes,
        tensor_dtypes=sorted({_ONNX_DTYPE.get(g.types.get(b.name, 1), "?") for b in bufs}),
        tflm_refusal="an ONNX file: TFLite Micro runs .tflite flatbuffers only",
    )
