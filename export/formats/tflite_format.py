"""TFLite through LiteRT Torch, checked in the LiteRT interpreter and (int8-full) TFLite Micro.

Precisions: ``fp32``; ``fp16`` (float16 weights cast by ai-edge-quantizer's
``float_casting``, float compute and I/O); ``int8-dynamic`` (PT2E dynamic-range
int8 weights); ``int8-full`` (PT2E static, symmetric per-channel weights,
calibrated on calibration.npz, every layer int8, what microcontrollers run): int8 input AND
int8 output where one scale fits the raw input (images, spectrograms), float32 raw input and
float32 logits where it does not (tabular columns: the normalization stays float, see
export/int8_io.py).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ground import errors, isolate

from ..records import ArtifactRecord, TensorSpec
from ..registry import DeviceRuntime, Format, register
from .common import batches, card_metadata, relative_error
from .tflite_io import dequantize_output

EXTRA = "tflite"


def _litert_torch():
    # litert-torch prints its own step log to stdout; the stage shows progress per artifact on stderr instead
    # (set LITERT_TORCH_SHOW_PROGRESS=y to see it).
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    return errors.require("litert_torch", EXTRA, "TFLite export")


def _interpreter_cls():
    return errors.require("ai_edge_litert.interpreter", EXTRA, "Running TFLite files").Interpreter


def _module_of(node) -> str | None:
    """The innermost torch module a graph node came from, as a readable path ('0', 'blocks.1.conv')."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return None
    path = list(stack.values())[-1][0]
    return re.sub(r"L\['self'\]\.?|L__self__", "", str(path)).strip(".") or None


def _quantizer(precision: str, exclude: tuple[str, ...], float_input: bool = False):
    """A PT2E quantizer for litert-torch; modules named in ``exclude`` stay float (selective quantization).

    With ``float_input`` the ops of the root module (the student's input encoding: per-column
    normalization and one-hot of nominal codes, ``distill.students.RawInput``) stay float too,
    so the file takes float32 raw features and quantizes after normalizing.
    """
    from litert_torch.quantize import pt2e_quantizer as pq

    def keep(n) -> bool:
        m = _module_of(n)
        return m not in exclude and not (float_input and m is None)

    class SkipModules(pq.PT2EQuantizer):
        # PT2EQuantizer.set_module_name refuses a None config, so the skip is applied as a node filter
        # on the global config: nodes from an excluded module get no annotation and stay float.
        def _annotate_for_static_quantization_config(self, model):
            self._annotate_all_static_patterns(model, self.global_config, keep)
            return model

        def _annotate_for_dynamic_quantization_config(self, model):
            self._annotate_all_dynamic_patterns(model, self.global_config, keep)
            return model

    config = pq.get_symmetric_quantization_config(
        is_per_channel=True, is_dynamic=(precision == "int8-dynamic")
    )
    return SkipModules().set_global(config)


def _reexport(program: Any, calibration: np.ndarray):
    """The student as a fresh torch.export graph with a dynamic batch, the input PT2E expects."""
    import torch

    sample = torch.from_numpy(np.ascontiguousarray(calibration[:4]))
    return torch.export.export(
        program.module(), (sample,), dynamic_shapes=({0: torch.export.Dim.AUTO},)
    ).module()


def quantized_module(
    program: Any,
    calibration: np.ndarray,
    precision: str,
    exclude: tuple[str, ...] = (),
    keep_float: bool = False,
    float_input: bool = False,
):
    """PT2E prepare → calibrate → convert: the torch reference of what the int8 file computes.

    With ``keep_float`` also return the calibrated float graph (batch norm already
    folded, observers pass values through), whose nodes match the converted one's.
    """
    import copy

    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = _quantizer(precision, exclude, float_input)
    prepared = prepare_pt2e(_reexport(program, calibration), quantizer)
    with torch.no_grad():
        for b in batches(calibration, 32) if precision == "int8-full" else [calibration[:1]]:
            prepared(torch.from_numpy(b))
    float_graph = copy.deepcopy(prepared) if keep_float else None
    converted = convert_pt2e(prepared, fold_quantize=False)
    return (converted, quantizer, float_graph) if keep_float else (converted, quantizer)


def _fp16(float_path: Path, out: Path) -> Path:
    aeq = errors.require("ai_edge_quantizer", EXTRA, "TFLite fp16 export")
    from ai_edge_quantizer import qtyping, quantizer

    q = quantizer.Quantizer(str(float_path))
    q.add_weight_only_config(
        regex=".*",
        operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
        num_bits=16,
        granularity=qtyping.QuantGranularity.TENSORWISE,
        algorithm_key="float_casting",
    )
    del aeq
    out.write_bytes(bytes(q.quantize(enable_progress_report=False).quantized_model))
    return out


def _spec(detail: dict, layout: str | None, kind: str | None) -> TensorSpec:
    scale, zero = detail.get("quantization", (0.0, 0))
    quant = {"scale": float(scale), "zero_point": int(zero)} if scale else None
    return TensorSpec(
        shape=[int(s) for s in detail["shape"]],
        dtype=np.dtype(detail["dtype"]).name,
        layout=layout,
        kind=kind,
        quantization=quant,
    )


def _after_fork() -> None:
    """Thread pools a fork left without threads, replaced: torch's (GNU OpenMP, not fork-safe)
    runs single-threaded, and JAX's global MLIR pool (LiteRT Torch lowers some ops through JAX)
    is a new one; a child using the parent's old pool waits forever for its dead threads."""
    import torch

    torch.set_num_threads(1)
    jax_mlir = sys.modules.get("jax._src.interpreters.mlir")
    if jax_mlir is not None and hasattr(jax_mlir, "global_thread_pool"):
        _dead_pools.append(jax_mlir.global_thread_pool)  # never destroyed: it would join them
        jax_mlir.global_thread_pool = type(jax_mlir.global_thread_pool)()


_dead_pools: list[Any] = []


def _write_forked(*args: Any) -> None:
    """:func:`_write` in the child of :func:`convert`."""
    _after_fork()
    _write(*args)


def _write(
    module: Any, sample: Any, quantizer: Any, precision: str, out_path: str, float_output: bool
) -> None:
    """The LiteRT conversion of a torch ``module`` to the .tflite at ``out_path``."""
    out = Path(out_path)
    lt = _litert_torch()
    if quantizer is not None:
        from litert_torch.quantize.quant_config import QuantConfig

        config = QuantConfig(pt2e_quantizer=quantizer)
        lt.convert(module, (sample,), quant_config=config).export(str(out))
    elif precision == "fp16":  # the float file first, beside the output (one disk), then cast
        float_path = out.with_name(f".{out.name}.float.tflite")
        try:
            lt.convert(module, (sample,)).export(str(float_path))
            _fp16(float_path, out)
        finally:
            float_path.unlink(missing_ok=True)
    else:
        lt.convert(module, (sample,)).export(str(out))
    if float_output:
        dequantize_output(out)


def convert(
    program: Any,
    card: dict[str, Any],
    calibration: np.ndarray,
    precision: str,
    out_path: Path,
    *,
    card_sha256: str = "",
    exclude: tuple[str, ...] = (),
    float_input: bool = False,
) -> ArtifactRecord:
    """program → LiteRT Torch (quantized for int8) → .tflite; metadata goes in the record (TFLite has no free-form
    metadata table that LiteRT Torch writes), returns the record without parity. ``float_input``
    (int8-full): float32 raw input and float32 logits around an int8 graph (export/int8_io.py).

    The conversion runs in a forked child (``ground.isolate.write_in_child``): LLVM inside the
    converter exits the process when its write fails, so a full disk ends only the child and is
    reported as one (exit 2), and a converter that dies otherwise is recorded as this file's error.
    """
    import torch

    if precision not in FORMAT.precisions:
        raise errors.InternalError(f"tflite has no precision {precision!r} (plan() let it through)")
    _litert_torch()  # a missing extra is named here, in this process (the artifact is skipped)
    if precision == "fp16":
        errors.require("ai_edge_quantizer", EXTRA, "TFLite fp16 export")
    sample = torch.from_numpy(np.ascontiguousarray(calibration[:1]))
    float_input = float_input and precision == "int8-full"
    module, quantizer = program.module(), None
    if precision in ("int8-dynamic", "int8-full"):  # torch's part (calibration) here, threaded
        module, quantizer = quantized_module(
            program, calibration, precision, exclude, float_input=float_input
        )
    args = (module, sample, quantizer, precision, str(out_path), float_input)
    what = f"the LiteRT converter ({precision})"
    try:
        isolate.write_in_child(_write_forked, *args, out=Path(out_path), what=what)
    except isolate.ChildStalled as exc:  # a lock the fork broke, not this model: convert here
        print(f"tinyship: {exc}; converting in this process instead", file=sys.stderr)
        _write(*args)
    it = _interpreter_cls()(model_path=str(out_path))
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    rec = ArtifactRecord(
        file=out_path.name,
        format="tflite",
        precision=precision,
        input=_spec(inp, card["input"].get("layout"), None),
        output=_spec(out, None, "logits"),
        excluded_layers=list(exclude),
    )
    want = "float32" if float_input else "int8"
    if precision == "int8-full" and (rec.input.dtype != want or rec.output.dtype != want):
        rec.notes.append(
            f"int8-full with {want} I/O asked, but the file has {rec.input.dtype} input and "
            f"{rec.output.dtype} output (layers kept float by the fallback change the I/O)"
        )
    rec.structure = {"metadata": card_metadata(card, card_sha256)}
    return rec


def quantize_input(x: np.ndarray, scale: float, zero_point: int, dtype: str = "int8") -> np.ndarray:
    """float → integer with the input tensor's own scale and zero point (round to nearest, saturate)."""
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)


def predict(path: Path, x: np.ndarray) -> np.ndarray:
    """Run the file in the LiteRT interpreter one example at a time (the converted batch is 1)."""
    it = _interpreter_cls()(model_path=str(path))
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    iscale, izero = inp["quantization"]
    oscale, ozero = out["quantization"]
    results = []
    for row in x:
        v = row[None].astype(np.float32)
        if np.dtype(inp["dtype"]) != np.float32:
            v = quantize_input(v, iscale, izero, np.dtype(inp["dtype"]).name)
        it.set_tensor(inp["index"], v)
        it.invoke()
        y = it.get_tensor(out["index"])
        results.append(
            dequantize(y, oscale, ozero)
            if np.dtype(out["dtype"]) != np.float32
            else y.astype(np.float32)
        )
    return np.concatenate(results)


def runtime() -> str:
    from importlib import metadata

    return f"ai-edge-litert {metadata.version('ai-edge-litert')}"


def layer_errors(
    student: Any,
    precision: str,
    out_path: Path,
    exclude: tuple[str, ...],
    float_input: bool = False,
) -> list[dict[str, Any]]:
    """Float vs int8 activations per torch module, worst first.

    The PT2E-converted graph (quantize/dequantize around each op) is the torch
    reference of the int8 file; each module's last node is compared with the same
    node of the calibrated float graph (batch norm folded the same way) on the
    calibration set. Module paths are what ``exclude`` takes.
    """
    import torch
    from torch.fx import Interpreter

    x = torch.from_numpy(np.ascontiguousarray(student.calibration[:128]))
    quant_module, _, float_module = quantized_module(
        student.program,
        student.calibration,
        precision,
        exclude,
        keep_float=True,
        float_input=float_input,
    )

    def dump(gm) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        values, owner = {}, {}

        class Record(Interpreter):
            def run_node(self, n):
                r = super().run_node(n)
                if (
                    n.op == "call_function"
                    and isinstance(r, torch.Tensor)
                    and (m := _module_of(n)) is not None
                ):
                    values[n.name], owner[n.name] = r.detach().numpy().copy(), m
                return r

        with torch.no_grad():
            Record(gm).run(x)
        return values, owner

    ref, owner = dump(float_module)
    got, _ = dump(quant_module)
    last: dict[str, str] = {}
    for (
        name,
        module,
    ) in owner.items():  # insertion order is graph order: keep each module's last node
        last[module] = name
    errors_ = [
        {"layer": m, "error": round(relative_error(ref[n], got[n]), 6)}
        for m, n in last.items()
        if n in got and m not in exclude and got[n].shape == ref[n].shape
    ]
    return sorted(errors_, key=lambda e: -e["error"])


FORMAT = register(
    Format(
        name="tflite",
        ext="tflite",
        precisions=("fp32", "fp16", "int8-dynamic", "int8-full"),
        convert=convert,
        predict=predict,
        runtime=runtime,
        layer_errors=layer_errors,
        fallback_precisions=("int8-full",),
        float_input_precisions=("int8-full",),
        micro_precisions=("int8-full",),
        runtime_family="litert",
        device_runtimes=(
            DeviceRuntime(("host", "sbc", "phone"), "LiteRT interpreter"),
            DeviceRuntime(("mcu", "pda"), "TFLite Micro", ("fp32", "int8-full")),
        ),
        not_on_reason="LiteRT does not run on this device class",
        rank=20,
    )
)
