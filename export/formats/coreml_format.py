"""Core ML (ML program) through coremltools, checked by structure on Linux.

Precisions: ``fp32`` and ``fp16`` (compute precision of the ML program);
``int8-weights`` (``linear_quantize_weights``), ``palette6`` / ``palette4``
(``palettize_weights``, k-means look-up tables), each compressed from the fp16
program. coremltools cannot run predictions on Linux, so there the saved package
is checked by structure (inputs/outputs, ops, weight dtypes read back from the
file) and numeric parity is listed in ``not_checked``; on macOS it is run.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ground import errors

from ..records import ArtifactRecord, TensorSpec
from ..registry import DeviceRuntime, Format, register
from .common import card_metadata

EXTRA = "coreml"
NOT_ON_LINUX = (
    "numeric parity: Core ML prediction needs macOS (coremltools cannot run predictions on Linux)"
)
_PALETTE_BITS = {"palette6": 6, "palette4": 4}


def _ct():
    return errors.require("coremltools", EXTRA, "Core ML export")


def _compress(model, precision: str):
    import coremltools.optimize.coreml as cto

    if precision == "int8-weights":
        config = cto.OptimizationConfig(
            global_config=cto.OpLinearQuantizerConfig(
                mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=0
            )
        )
        return cto.linear_quantize_weights(model, config)
    if precision in _PALETTE_BITS:
        config = cto.OptimizationConfig(
            global_config=cto.OpPalettizerConfig(
                mode="kmeans", nbits=_PALETTE_BITS[precision], weight_threshold=0
            )
        )
        return cto.palettize_weights(model, config)
    return model


def structure(path: Path) -> dict[str, Any]:
    """What the saved package holds, read back from its spec: I/O, op counts, weight dtypes."""
    ct = _ct()
    from coremltools.proto import MIL_pb2

    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()

    def io(features) -> list[dict[str, Any]]:
        out = []
        for f in features:
            arr = f.type.multiArrayType
            out.append(
                {
                    "name": f.name,
                    "shape": [int(s) for s in arr.shape],
                    "dtype": {65568: "float32", 65552: "float16", 131104: "int32"}.get(
                        arr.dataType, str(arr.dataType)
                    ),
                }
            )
        return out

    ops, weights, lut_sizes = Counter(), Counter(), set()
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                ops[op.type] += 1
                if not op.type.startswith("const"):
                    continue
                for name, attr in op.attributes.items():
                    if attr.WhichOneof("value") == "blobFileValue" and attr.type.HasField(
                        "tensorType"
                    ):
                        dtype = MIL_pb2.DataType.Name(attr.type.tensorType.dataType)
                        weights[f"{op.type}.{name}:{dtype}" if op.type != "const" else dtype] += 1
                        if (
                            name == "lut"
                        ):  # palette entries = the LUT's largest dimension (2**nbits)
                            lut_sizes.add(
                                max(int(d.constant.size) for d in attr.type.tensorType.dimensions)
                            )
    return {
        "inputs": io(spec.description.input),
        "outputs": io(spec.description.output),
        "ops": dict(sorted(ops.items())),
        "weight_dtypes": dict(sorted(weights.items())),
        "palette_entries": sorted(lut_sizes),
        "spec_version": int(spec.specificationVersion),
        "metadata": dict(spec.description.metadata.userDefined),
    }


def convert(
    program: Any,
    card: dict[str, Any],
    calibration: np.ndarray,
    precision: str,
    out_path: Path,
    *,
    card_sha256: str = "",
    exclude: tuple[str, ...] = (),
) -> ArtifactRecord:
    """program (decomposed ATen) → ML program → compress → metadata → .mlpackage; structure in the record."""
    ct = _ct()
    shape = [1, *card["input"]["shape"]]
    in_name, out_name = card["input"].get("name", "input"), card["output"].get("name", "logits")
    compute = ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16
    model = ct.convert(
        program.run_decompositions({}),
        convert_to="mlprogram",
        compute_precision=compute,
        inputs=[ct.TensorType(name=in_name, shape=shape, dtype=np.float32)],
        outputs=[ct.TensorType(name=out_name, dtype=np.float32)],
    )
    model = _compress(model, precision)
    model.author = "tinyship"
    model.version = str(card.get("run"))
    model.short_description = (
        f"{(card.get('student') or {}).get('arch')} student of run {card.get('run')}, "
        f"{precision}; outputs logits over {len(card.get('labels', []))} classes"
    )
    meta = card_metadata(card, card_sha256)
    meta.update({"tinyship.precision": precision, "labels": json.dumps(card.get("labels", []))})
    for k, v in meta.items():
        model.user_defined_metadata[k] = v
    model.save(str(out_path))
    info = structure(out_path)
    spec_in, spec_out = info["inputs"][0], info["outputs"][0]
    rec = ArtifactRecord(
        file=out_path.name,
        format="coreml",
        precision=precision,
        input=TensorSpec(
            shape=spec_in["shape"] or shape,
            dtype=spec_in["dtype"],
            layout=card["input"].get("layout"),
        ),
        output=TensorSpec(
            shape=spec_out["shape"] or [1, int(card["output"]["num_classes"])],
            dtype=spec_out["dtype"],
            kind="logits",
        ),
        structure=info,
    )
    if exclude:
        rec.notes.append(
            f"layers kept float were asked ({list(exclude)}) but Core ML compression here is global"
        )
    return rec


def cannot_run() -> str | None:
    return None if sys.platform == "darwin" else NOT_ON_LINUX


def predict(path: Path, x: np.ndarray) -> np.ndarray:
    """macOS only: Core ML's own predictions, one example at a time."""
    ct = _ct()
    model = ct.models.MLModel(str(path))
    spec = model.get_spec()
    in_name, out_name = spec.description.input[0].name, spec.description.output[0].name
    return np.concatenate(
        [
            np.asarray(model.predict({in_name: row[None]})[out_name], dtype=np.float32).reshape(
                1, -1
            )
            for row in x
        ]
    )


def runtime() -> str:
    from importlib import metadata

    return f"coremltools {metadata.version('coremltools')} (Core ML, macOS)"


FORMAT = register(
    Format(
        name="coreml",
        ext="mlpackage",
        precisions=("fp32", "fp16", "int8-weights", "palette6", "palette4"),
        convert=convert,
        predict=predict,
        runtime=runtime,
        cannot_run=cannot_run,
        runtime_family="coreml",
        device_runtimes=(DeviceRuntime(("apple",), "Core ML"),),
        not_on_reason="Core ML runs only on Apple devices; no Apple device in this catalog "
        "(add one with --catalog)",
        rank=30,
    )
)
