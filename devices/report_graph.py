"""A graph view of a shipped file for the report, grouped the way Netron's sidebar groups a model:
model properties, the graph's inputs and outputs, then per operator its node properties,
attributes, inputs and outputs, each tensor with its dtype, shape and quantization.

Read with the same parsers the analysis uses (devices/analysis_tflite.py, analysis_onnx.py), so
the view shows the very file that ships; Core ML packages have no view here (their spec is read
by coremltools, which the report does not import).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ground.errors import UserError


@dataclass
class Tensor:
    role: str  # input / filter / bias / output / ... (Netron's argument names where known)
    name: str  # short name (the last part of the converter's long scope name)
    full_name: str
    type: str  # int8[1,8,8,16]
    quant: str  # "scale 0.0627, zero point -128", per-channel ranges, or ""
    const: str  # "weights, 2,304 B" for a constant tensor, else ""


@dataclass
class Node:
    index: int
    op: str
    attributes: list[tuple[str, str]] = field(default_factory=list)
    inputs: list[Tensor] = field(default_factory=list)
    outputs: list[Tensor] = field(default_factory=list)


@dataclass
class Graph:
    file: str
    properties: list[tuple[str, str]]
    inputs: list[Tensor]
    outputs: list[Tensor]
    nodes: list[Node]


_ROLES = {  # TFLite operator inputs by position, as Netron names them
    "CONV_2D": ("input", "filter", "bias"),
    "DEPTHWISE_CONV_2D": ("input", "weights", "bias"),
    "FULLY_CONNECTED": ("input", "weights", "bias"),
    "RESHAPE": ("data", "shape"),
    "TRANSPOSE": ("input", "perm"),
}


def short(name: str) -> str:
    """'a.b.RawInput/...conv.Conv2d_3;' -> 'Conv2d_3' (the tail of a TFLite converter's scope
    name; the full name is kept beside it)."""
    parts = [p for p in name.replace(";", "/").split("/") if p.strip()]
    return (parts[-1] if parts else name).rsplit(".", 1)[-1]


def _quant_text(scale, zero, axis: int | None = None) -> str:
    if scale is None or not len(scale):
        return ""
    scale, zero = np.asarray(scale, dtype=float), np.asarray(zero if zero is not None else [0])
    if scale.size == 1:
        return f"scale {scale[0]:.4g}, zero point {int(zero.reshape(-1)[0])}"
    zs = sorted({int(z) for z in zero.reshape(-1)})
    z = str(zs[0]) if len(zs) == 1 else f"{zs[0]}..{zs[-1]}"
    where = f" on axis {axis}" if axis is not None else ""
    return f"per-channel ({scale.size}{where}): scale {scale.min():.3g}..{scale.max():.3g}, zero point {z}"


def _tflite(path: Path) -> Graph:
    from .analysis_tflite import _operators, _read

    fb = _read(path)
    enums = {k: {v: n for n, v in vars(getattr(fb.schema, k)).items() if not n.startswith("_")}
             for k in ("Padding", "ActivationFunctionType")}  # fmt: skip

    def tensor(t: int, role: str) -> Tensor:
        tt = fb.tensors[t]
        name = tt.name.decode(errors="replace") if isinstance(tt.name, bytes) else str(tt.name)
        shape = ",".join(str(int(d)) for d in (tt.shape if tt.shape is not None else []))
        q = tt.quantization
        quant = _quant_text(q.scale, q.zeroPoint, q.quantizedDimension) if q is not None else ""
        const = f"constant, {fb.const_bytes(t):,} B" if fb.is_const(t) else ""
        return Tensor(role, short(name), name, f"{fb.dtype(t)}[{shape}]", quant, const)

    def attributes(op) -> list[tuple[str, str]]:
        opts = op.builtinOptions
        out = []
        for k, v in (vars(opts) if opts is not None else {}).items():
            if k == "padding":
                v = enums["Padding"].get(v, v)
            elif k == "fusedActivationFunction":
                v = enums["ActivationFunctionType"].get(v, v)
            if v is not None and not isinstance(v, (list, np.ndarray)):
                out.append((k, str(v)))
        return out

    nodes = []
    for i, name, ins, outs, op in _operators(fb):
        roles = _ROLES.get(name, ())
        role = lambda k, r=roles: r[k] if k < len(r) else f"input {k}"  # noqa: E731
        nodes.append(
            Node(
                i,
                name,
                attributes(op),
                [tensor(t, role(k)) for k, t in enumerate(ins)],
                [tensor(t, "output" if k == 0 else f"output {k}") for k, t in enumerate(outs)],
            )
        )
    sg = fb.sg
    props = [("format", "TFLite flatbuffer (schema 3)"), ("operators", str(len(nodes)))]
    props.append(("tensors", str(len(fb.tensors))))
    return Graph(
        path.name,
        props,
        [tensor(t, "input") for t in (sg.inputs if sg.inputs is not None else [])],
        [tensor(t, "output") for t in (sg.outputs if sg.outputs is not None else [])],
        nodes,
    )


def _onnx(path: Path) -> Graph:
    import onnx

    from .analysis_onnx import _read

    g = _read(path)
    const_vals = g.consts

    def tensor(name: str, role: str) -> Tensor:
        shape = ",".join(str(d) for d in g.shapes.get(name, []))
        const = f"initializer, {g.const_bytes(name):,} B" if name in const_vals else ""
        arr = const_vals.get(name)
        quant = f"value {arr.reshape(-1)[0]:.4g}" if arr is not None and arr.size == 1 else ""
        return Tensor(role, name, name, f"{g.dtype(name) or '?'}[{shape}]", quant, const)

    nodes = []
    for i, node in enumerate(g.graph.node):
        attrs = []
        for a in node.attribute:
            v = onnx.helper.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode(errors="replace")
            if not hasattr(v, "ByteSize"):  # tensors and graphs as attributes are not shown
                attrs.append((a.name, str(v)))
        nodes.append(
            Node(
                i,
                node.op_type,
                attrs,
                [tensor(t, f"input {k}") for k, t in enumerate(node.input) if t],
                [tensor(t, f"output {k}") for k, t in enumerate(node.output) if t],
            )
        )
    init = {i.name for i in g.graph.initializer}
    model = onnx.load(str(path), load_external_data=False)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), "?")
    props = [("format", f"ONNX (ai.onnx opset {opset}, IR version {model.ir_version})")]
    props.append(("nodes", str(len(nodes))))
    return Graph(
        path.name,
        props,
        [tensor(v.name, "input") for v in g.graph.input if v.name not in init],
        [tensor(v.name, "output") for v in g.graph.output],
        nodes,
    )


def graph(path: Path) -> Graph | str:
    """The graph view of ``path``, or why there is none."""
    kind = {".tflite": _tflite, ".onnx": _onnx}.get(path.suffix)
    if kind is None:
        return f"no graph view for {path.suffix} files (open the file in Netron)"
    if not path.is_file():
        return f"{path} is missing"
    try:
        return kind(path)
    except UserError as exc:
        return str(exc).splitlines()[0]
