"""Which operators a .tflite uses, and how a firmware registers exactly those with TFLite Micro.

The names come from the file (every subgraph's operator codes, parsed in a child process since the
file is untrusted); the registration calls come from the tree's own ``micro_mutable_op_resolver.h``
(``AddConv2D()`` registers ``BuiltinOperator_CONV_2D``), so an op this TFLite Micro lacks is refused
before anything is compiled, with its name. The library sources an op needs are found the same way:
the kernel file that defines ``Register_<OP>`` and its ``<stem>_common.cc`` siblings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ground.errors import UserError

_ADD = re.compile(
    r"TfLiteStatus (Add\w+)\((?:(?!TfLiteStatus).)*?return AddBuiltin\(\s*BuiltinOperator_(\w+)",
    re.S,
)
_REG = re.compile(r"TFLMRegistration\s+Register_(\w+)\s*\(\s*\)\s*\{")
RESOLVER_H = "tensorflow/lite/micro/micro_mutable_op_resolver.h"
KERNELS = "tensorflow/lite/micro/kernels/"


_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8"}


@dataclass
class ModelOps:
    builtins: list[str]  # BuiltinOperator names, sorted
    customs: list[str]
    inputs: list[dict] | None = None  # per graph input: dtype, shape, scale, zero_point
    outputs: list[dict] | None = None
    float_tensors: int = 0  # float32/float16 tensors of the main graph that are not constants


def _read_ops(path: str) -> dict:
    from ground.errors import require

    schema = require("ai_edge_litert.schema_py_generated", "tflite", "reading a TFLite flatbuffer")
    buf = Path(path).read_bytes()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise UserError(f"'{path}' is not a TFLite flatbuffer (no 'TFL3' identifier at byte 4).")
    model = schema.ModelT.InitFromPackedBuf(buf, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    used: set[int] = set()
    for sg in model.subgraphs or []:
        used |= {op.opcodeIndex for op in sg.operators or []}
    builtins, customs = set(), set()
    for i in sorted(used):
        c = model.operatorCodes[i]
        code = max(int(c.builtinCode or 0), int(c.deprecatedBuiltinCode or 0))
        if c.customCode:
            customs.add(
                c.customCode.decode() if isinstance(c.customCode, bytes) else str(c.customCode)
            )
        else:
            builtins.add(names.get(code, f"OP_{code}"))
    sg = model.subgraphs[0]

    def spec(t: int) -> dict:
        tt = sg.tensors[t]
        q = tt.quantization
        scale = None if q is None or q.scale is None or not len(q.scale) else float(q.scale[0])
        zp = (
            None
            if q is None or q.zeroPoint is None or not len(q.zeroPoint)
            else int(q.zeroPoint[0])
        )
        return {"dtype": _DTYPES.get(tt.type, f"type{tt.type}"), "scale": scale, "zero_point": zp,
                "shape": [int(v) for v in (tt.shape if tt.shape is not None else [])]}  # fmt: skip

    floats = sum(
        1
        for tt in sg.tensors or []
        if tt.type in (0, 1) and not (model.buffers[tt.buffer].data is not None
                                      and len(model.buffers[tt.buffer].data))
    )  # fmt: skip
    return {"builtins": sorted(builtins), "customs": sorted(customs),
            "inputs": [spec(t) for t in sg.inputs], "outputs": [spec(t) for t in sg.outputs],
            "float_tensors": floats}  # fmt: skip


def read(path: Path) -> ModelOps:
    """The operators ``path`` uses (parsed in a child process: a parser crash is a UserError)."""
    from ground import isolate

    d = isolate.in_child(_read_ops, str(path), what=f"model '{path}'")
    return ModelOps(**d)


def resolver_calls(root: Path) -> dict[str, str]:
    """BuiltinOperator name -> the MicroMutableOpResolver method that registers it, from the tree."""
    text = (root / RESOLVER_H).read_text()
    return {op: add for add, op in _ADD.findall(text)}


def registrations(root: Path, ops: ModelOps) -> list[str]:
    """The resolver calls for ``ops``, or a UserError naming each op this TFLite Micro lacks."""
    calls = resolver_calls(root)
    lacking = [o for o in ops.builtins if o not in calls]
    if ops.customs or lacking:
        what = [f"custom op '{c}'" for c in ops.customs] + lacking
        raise UserError(
            f"TFLite Micro ({root}) has no kernel for {', '.join(what)}; the file cannot run on a "
            "microcontroller with it. Re-export without those ops (TFLM's ops: the Add* methods of "
            f"{RESOLVER_H})."
        )
    return [calls[o] for o in ops.builtins]


def kernel_sources(root: Path, all_sources: list[str], ops: ModelOps) -> list[str]:
    """The library sources a firmware for ``ops`` needs: everything but the op kernels, plus the
    kernel files that define each op's ``Register_<OP>`` and their ``_common`` siblings."""
    registers: dict[str, list[str]] = {}
    kernel_files = [s for s in all_sources if s.startswith(KERNELS)]
    for rel in kernel_files:
        for name in _REG.findall((root / rel).read_text(errors="replace")):
            registers.setdefault(name, []).append(rel)
    op_files = {f for files in registers.values() for f in files}
    stems = {Path(f).stem for f in op_files}
    helpers = {s for s in kernel_files if any(Path(s).stem.startswith(t + "_") for t in stems)}
    want = [s for s in all_sources if s not in op_files and s not in helpers]
    calls = resolver_calls(root)
    text = (root / RESOLVER_H).read_text()
    for op in ops.builtins:
        m = re.search(rf"{calls[op]}\((?:(?!TfLiteStatus).)*?Register_(\w+)\(\)", text, re.S)
        for rel in registers.get(m.group(1) if m else op, []):
            want.append(rel)
            stem = Path(rel).stem
            want += [s for s in kernel_files if Path(s).stem.startswith(stem + "_")]
    want += _included_helpers(root, want, helpers)
    return sorted(set(want), key=all_sources.index)


_KERNEL_INCLUDE = re.compile(r'#include\s+"(' + re.escape(KERNELS) + r'[\w/]+\.h)"')


def _included_helpers(root: Path, sources: list[str], helpers: set[str]) -> list[str]:
    """The ``<stem>_common`` sources behind the kernel headers ``sources`` include, through
    headers: depthwise_conv_common.cc uses conv_common.cc's tensor indices via conv.h, so a model
    with DEPTHWISE_CONV_2D and no CONV_2D failed to link without it."""
    by_stem: dict[str, list[str]] = {}
    for h in helpers:
        by_stem.setdefault(Path(h).stem.rsplit("_", 1)[0], []).append(h)
    seen: set[str] = set()
    todo = [s for s in sources if s.startswith(KERNELS)]
    out: list[str] = []
    while todo:
        rel = todo.pop()
        if rel in seen or not (root / rel).is_file():
            continue
        seen.add(rel)
        for header in _KERNEL_INCLUDE.findall((root / rel).read_text(errors="replace")):
            todo.append(header)
            found = by_stem.get(Path(header).stem, [])
            out += found
            todo += found
    return out
