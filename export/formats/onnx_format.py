"""ONNX: torch.onnx (dynamo exporter) with a dynamic batch axis, then onnxruntime quantization.

Precisions: ``fp32``; ``fp16`` (onnxruntime's float16 conversion, float32 I/O kept);
``int8-dynamic`` (``quantize_dynamic``); ``int8`` (static QDQ, per-channel weights,
calibrated on calibration.npz after ``quant_pre_process``; where one int8 scale cannot hold the
raw input, the input encoding before the first weighted op stays float, export/int8_io.py).
Checked with onnxruntime.
"""

from __future__ import annotations

import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from ground.errors import InternalError

from ..records import ArtifactRecord, TensorSpec
from ..registry import DeviceRuntime, Format, register
from .common import batches, card_metadata, channel_error

_DTYPES = {1: "float32", 10: "float16", 3: "int8", 2: "uint8", 7: "int64", 6: "int32"}


_FLOAT_CACHE: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()


def export_float(program: Any, card: dict[str, Any], out_path: Path) -> Path:
    """The float32 ONNX graph every precision starts from (dynamic batch axis named 'batch').

    Exported once per program and reused by every precision and fallback attempt.
    """
    cached = _FLOAT_CACHE.get(program)
    if cached is not None:
        out_path.write_bytes(cached)
        return out_path
    import torch

    shape = card["input"]["shape"]
    sample = torch.zeros(2, *shape, dtype=torch.float32)
    onnx_program = torch.onnx.export(
        program,
        (sample,),
        dynamo=True,
        input_names=[card["input"].get("name", "input")],
        output_names=[card["output"].get("name", "logits")],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        verbose=False,
    )
    onnx_program.save(str(out_path))
    _strip_debug_info(out_path)
    _FLOAT_CACHE[program] = out_path.read_bytes()
    return out_path


def _strip_debug_info(path: Path) -> None:
    """Drop the exporter's per-node debug metadata (torch stack traces, names): bytes the runtime never reads."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for v in [
        *model.graph.value_info,
        *model.graph.input,
        *model.graph.output,
        *model.graph.initializer,
    ]:
        del v.metadata_props[:]
        v.doc_string = ""
    onnx.save(model, str(path))


def _preprocess(float_path: Path, out_path: Path) -> Path:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(float_path), str(out_path), skip_symbolic_shape=True)
    return out_path


class _Calibration:
    """onnxruntime CalibrationDataReader over calibration.npz."""

    def __init__(self, name: str, x: np.ndarray) -> None:
        self._it = iter([{name: b} for b in batches(x, 32)])

    def get_next(self):
        return next(self._it, None)

    def rewind(self) -> None:  # some onnxruntime versions call it
        pass


def _topological_sort(graph) -> None:
    """Reorder nodes so each comes after its inputs' producers (the float16 pass can leave casts out of order)."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = [n for n in pending if not all(i in ready for i in n.input)]
        done = [n for n in pending if all(i in ready for i in n.input)]
        if not done:
            raise InternalError(
                f"ONNX graph has a cycle or a dangling input near node {rest[0].name!r}"
            )
        for n in done:
            ordered.append(n)
            ready.update(n.output)
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def input_encoding_nodes(model) -> list[str]:
    """The nodes before the first Conv/Gemm/MatMul: the student's input encoding (per-column
    normalization, one-hot of nominal codes), kept float for float-input int8 files."""
    out = []
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul"):
            break
        out.append(node.name)
    return out


def _quantize(
    precision: str,
    float_path: Path,
    work: Path,
    calibration: np.ndarray,
    input_name: str,
    exclude: tuple[str, ...],
    float_input: bool = False,
) -> Path:
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if precision == "fp32":
        return float_path
    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        out = work / "fp16.onnx"
        half = convert_float_to_float16(onnx.load(str(float_path)), keep_io_types=True)
        _topological_sort(half.graph)
        onnx.save(half, str(out))
        return out
    pre = _preprocess(float_path, work / "pre.onnx")
    out = work / f"{precision}.onnx"
    if precision == "int8-dynamic":
        quantize_dynamic(
            str(pre),
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["Conv", "MatMul", "Gemm"],
            # quantize_dynamic rewrites a Gemm as MatMul (+ Add) named '<gemm>_MatMul' first
            nodes_to_exclude=[*exclude, *(f"{n}_MatMul" for n in exclude)],
        )
        return out
    if precision == "int8":
        if float_input:
            exclude = (*exclude, *input_encoding_nodes(onnx.load(str(pre))))
        quantize_static(
            str(pre),
            str(out),
            _Calibration(input_name, calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=list(exclude),
        )
        return out
    raise InternalError(f"onnx has no precision {precision!r} (plan() let it through)")


def _spec(value_info, layout: str | None, kind: str | None) -> TensorSpec:
    dims = value_info.type.tensor_type.shape.dim
    dynamic = bool(dims) and not dims[0].HasField("dim_value")
    shape = [1 if (i == 0 and dynamic) else int(d.dim_value) for i, d in enumerate(dims)]
    return TensorSpec(
        shape=shape,
        dtype=_DTYPES.get(value_info.type.tensor_type.elem_type, "other"),
        layout=layout,
        kind=kind,
        dynamic_batch=dynamic,
    )


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
    """program → ONNX float → quantize → checker → metadata; returns the record without parity.
    ``float_input`` (int8): the input encoding stays float (export/int8_io.py)."""
    import onnx

    with tempfile.TemporaryDirectory(prefix="tinyship-onnx-") as tmp:
        work = Path(tmp)
        float_path = export_float(program, card, work / "float.onnx")
        input_name = onnx.load(str(float_path)).graph.input[0].name
        path = _quantize(precision, float_path, work, calibration, input_name, exclude, float_input)
        model = onnx.load(str(path))
        del model.metadata_props[:]
        for k, v in card_metadata(card, card_sha256).items():
            model.metadata_props.add(key=k, value=v)
        model.metadata_props.add(key="tinyship.precision", value=precision)
        model.producer_name = "tinyship"
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(out_path))
    record = ArtifactRecord(
        file=out_path.name,
        format="onnx",
        precision=precision,
        input=_spec(model.graph.input[0], card["input"].get("layout"), None),
        output=_spec(model.graph.output[0], None, "logits"),
        excluded_layers=list(exclude),
    )
    if precision == "int8-dynamic":
        record.notes.append(
            "dynamic int8: Conv/MatMul/Gemm weights int8 per channel (ConvInteger/MatMulInteger), "
            "activations quantized at run time; the rest stays float32"
        )
    return record


def _session(model: str | bytes):
    """A CPU session with one thread: these models are tiny, and idle spinning threads only steal CPU."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def predict(path: Path, x: np.ndarray) -> np.ndarray:
    sess = _session(str(path))
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: b})[0] for b in batches(x, 256)]).astype(
        np.float32
    )


def runtime() -> str:
    import onnxruntime as ort

    return f"onnxruntime {ort.__version__}"


def _with_all_outputs(model):
    """A copy of ``model`` whose every node output is also a graph output (per-layer dumps)."""
    import onnx

    model = onnx.shape_inference.infer_shapes(model)
    known = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for out in node.output:
            if out and out not in known:
                model.graph.output.append(onnx.helper.make_empty_tensor_value_info(out))
                known.add(out)
    return model


def _dump(model, x: np.ndarray) -> dict[str, np.ndarray]:
    sess = _session(_with_all_outputs(model).SerializeToString())
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: x})))


def layer_errors(
    student: Any,
    precision: str,
    out_path: Path,
    exclude: tuple[str, ...],
    float_input: bool = False,
) -> list[dict[str, Any]]:
    """Float vs quantized activations, node by node, worst first (onnxruntime's qdq_loss_debug idea).

    Each float node output is compared with the dequantized value the QDQ model
    carries for the same tensor (``<name>_DequantizeLinear_Output`` when quantized).
    """
    import onnx

    x = student.calibration[:128]
    with tempfile.TemporaryDirectory(prefix="tinyship-onnx-dbg-") as tmp:
        work = Path(tmp)
        pre = _preprocess(
            export_float(student.program, student.card, work / "float.onnx"), work / "pre.onnx"
        )
        float_model = onnx.load(str(pre))
    quant = _dump(onnx.load(str(out_path)), x)
    ref = _dump(float_model, x)
    errors = []
    for node in float_model.graph.node:
        if node.op_type in ("Constant", "Shape", "Reshape", "Flatten") or node.name in exclude:
            continue
        out = node.output[0]
        got = quant.get(f"{out}_DequantizeLinear_Output", quant.get(out))
        if got is None or out not in ref or got.shape != ref[out].shape:
            continue
        errors.append(
            {
                "layer": node.name,
                "op": node.op_type,
                "error": round(channel_error(ref[out], got), 6),
            }
        )
    return sorted(errors, key=lambda e: -e["error"])


FORMAT = register(
    Format(
        name="onnx",
        ext="onnx",
        precisions=("fp32", "fp16", "int8-dynamic", "int8"),
        convert=convert,
        predict=predict,
        runtime=runtime,
        layer_errors=layer_errors,
        fallback_precisions=("int8", "int8-dynamic"),
        float_input_precisions=("int8",),
        runtime_family="onnxruntime",
        device_runtimes=(DeviceRuntime(("host", "sbc", "phone"), "onnxruntime"),),
        not_on_reason="onnxruntime does not run on this device class (no OS, or not in its builds)",
        rank=10,
    )
)
