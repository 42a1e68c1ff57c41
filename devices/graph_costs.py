"""What every model-file analyser shares: per-op costs, the analysis record, the arena plan.

The format readers (``analysis_tflite``, ``analysis_onnx``) turn a file into a list of
:class:`OpWork` (what each operator computes) and a :class:`Tensors` table (which tensors are
weights and how big each is); :func:`op_costs` and :func:`summarize` do the rest the same way
for every format, so weights, parameters and the arena are counted by one piece of code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


def prod(shape) -> int:
    return int(math.prod(int(d) for d in shape)) if shape is not None else 0


def activation_plan(
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


def tflm_refusal(
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


@dataclass
class OpWork:
    """One operator as a format reader sees it: its tensors and the work it does."""

    index: int
    op: str
    ins: list
    outs: list
    macs: int = 0
    kind: str = "other"
    kernel: int = 0
    out_channels: int = 0
    out_elems: int = 0


@dataclass
class Tensors:
    """The tensor facts the op-cost step needs, whatever the format."""

    nbytes: Callable[[Any], int]  # activation bytes of a tensor (0 when its shape is unknown)
    is_const: Callable[[Any], bool]
    const_bytes: Callable[[Any], int]  # stored bytes of a constant
    const_params: Callable[
        [Any], int
    ]  # weights it counts as parameters (0 for scales, zero points)
    source: dict = field(default_factory=dict)  # weights expanded at load time -> their constant

    def weightish(self, t) -> bool:
        return self.is_const(t) or t in self.source


def op_costs(
    work: list[OpWork], tensors: Tensors, dtype_of: Callable[[OpWork, list, list], str]
) -> tuple[list[OpCost], int]:
    """Per-op costs and the parameter count; each constant's parameters count once."""
    costs: list[OpCost] = []
    seen: set = set()
    params = 0
    for w in work:
        act_in = [t for t in w.ins if not tensors.weightish(t)]
        w_in = [t for t in w.ins if tensors.weightish(t)]
        wbytes = 0
        for t in w_in:
            src = tensors.source.get(t, t)
            wbytes += tensors.const_bytes(src)
            if src not in seen:
                seen.add(src)
                if w.kind in MATMUL_KINDS:
                    params += tensors.const_params(src)
        costs.append(
            OpCost(
                w.index,
                w.op,
                w.kind,
                dtype_of(w, act_in, w_in),
                int(w.macs),
                int(wbytes),
                sum(tensors.nbytes(t) for t in act_in),
                sum(tensors.nbytes(t) for t in w.outs),
                w.kernel,
                int(w.out_elems),
                w.out_channels,
            )
        )
    return costs, params


def summarize(
    name: str,
    fmt: str,
    file_bytes: int,
    costs: list[OpCost],
    params: int,
    by_dtype: dict[str, int],
    arena: tuple[list[Buffer], Any],
    dequantized: int,
    in_spec: dict | None,
    **extra: Any,
) -> Analysis:
    """The analysis record: headline MACs (conv/depthwise/FC), other work, weights and the arena."""
    bufs, plan = arena
    return Analysis(
        name,
        fmt,
        file_bytes,
        params,
        sum(c.macs for c in costs if c.kind in MATMUL_KINDS),
        sum(by_dtype.values()),
        by_dtype,
        sum(b.size for b in bufs),
        plan.arena_bytes,
        plan.peak_live_bytes,
        dequantized,
        len(costs),
        costs,
        in_spec,
        other_work=sum(c.work for c in costs if c.kind not in MATMUL_KINDS),
        **extra,
    )
