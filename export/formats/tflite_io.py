"""Float32 logits out of a full-integer .tflite: one DEQUANTIZE appended to the flatbuffer.

LiteRT Torch's static PT2E conversion drops the graph's last dequantize, so a full-integer file
returns int8 logits even when its input is float32. For the float-I/O variant (export/int8_io.py)
the output is made float32 here, in the file itself, with the op TFLite and TFLite Micro both
run: the int8 tensor stays, a DEQUANTIZE maps it to a new float32 graph output.
"""

from __future__ import annotations

from pathlib import Path

from ground import errors

EXTRA = "tflite"
_DEQUANTIZE_INT8_VERSION = 2  # TFLite's DEQUANTIZE op version for int8 input


def _schema():
    return errors.require("ai_edge_litert.schema_py_generated", EXTRA, "TFLite float output")


def _dequantize_code(model, s) -> int:
    """Index of the DEQUANTIZE operator code, added when the file has none."""
    for i, oc in enumerate(model.operatorCodes):
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == s.BuiltinOperator.DEQUANTIZE:
            return i
    oc = s.OperatorCodeT()
    oc.builtinCode = oc.deprecatedBuiltinCode = s.BuiltinOperator.DEQUANTIZE
    oc.version = _DEQUANTIZE_INT8_VERSION
    model.operatorCodes.append(oc)
    return len(model.operatorCodes) - 1


def dequantize_output(path: Path) -> bool:
    """Make the first output of ``path`` float32 (in place); False when it already is."""
    import flatbuffers

    s = _schema()
    model = s.ModelT.InitFromPackedBuf(Path(path).read_bytes(), 0)
    sg = model.subgraphs[0]
    old = int(sg.outputs[0])
    q = sg.tensors[old]
    if q.type == s.TensorType.FLOAT32:
        return False
    code = _dequantize_code(model, s)
    model.buffers.append(s.BufferT())
    out = s.TensorT()
    out.name, q.name = q.name, (q.name or b"output") + b"_int8"
    out.type = s.TensorType.FLOAT32
    out.shape, out.shapeSignature = q.shape, q.shapeSignature
    out.buffer = len(model.buffers) - 1
    sg.tensors.append(out)
    new = len(sg.tensors) - 1
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = code, [old], [new]
    op.builtinOptionsType = s.BuiltinOptions.DequantizeOptions
    op.builtinOptions = s.DequantizeOptionsT()
    sg.operators.append(op)
    sg.outputs = [new if int(i) == old else int(i) for i in sg.outputs]
    for sig in model.signatureDefs or []:
        for o in sig.outputs or []:
            if o.tensorIndex == old:
                o.tensorIndex = new
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    Path(path).write_bytes(bytes(builder.Output()))
    return True
