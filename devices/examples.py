"""ship/examples/: one runnable Python program per shipped ONNX and TFLite file, and
ship/preprocess.json, the preprocessing contract every example applies.

An example is named after the file it runs (``model.int8-full.tflite.py``), takes the user's
raw data as its one argument (a CSV, an .npy of raw features, or a folder of PNG images) and
prints one label per line, with the class names as the data has them. It needs numpy and the
file's runtime only: the preprocessing is ``examples/preprocess.py``, a copy of
:mod:`devices.examples_preprocess`. The ship step runs every example on the raw holdout
(devices/examples_check.py) and MODEL_CARD.md shows the examples' own text, so what a user
reads is what was run.

Example kinds are looked up by format in :data:`KINDS`; another kind plugs in with
:func:`register` (devices/README.md, "Shipped examples").
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from ground import rundir

from . import examples_preprocess

EXAMPLES = "examples"
PREPROCESS = "preprocess.json"
SCHEMA = "tinyship.preprocess/1"

#: format -> function(artifact record) returning the lines of ``predict(x)`` for that file.
KINDS: dict[str, Callable[[dict], list[str]]] = {}


def register(fmt: str, predict_lines: Callable[[dict], list[str]]) -> None:
    """Ship an example with every file of format ``fmt``: ``predict_lines(artifact)`` returns
    the body of a ``predict(x) -> logits`` function (numpy in, numpy out) for that file."""
    KINDS[fmt] = predict_lines


def _onnx(art: dict) -> list[str]:
    return [
        "def predict(x):",
        '    """Logits from the ONNX file, 256 rows at a time (onnxruntime)."""',
        "    import onnxruntime as ort",
        "",
        '    sess = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])',
        "    name = sess.get_inputs()[0].name",
        "    parts = [sess.run(None, {name: x[i : i + 256]})[0] for i in range(0, len(x), 256)]",
        "    return np.concatenate(parts).astype(np.float32)",
    ]


def _tflite(art: dict) -> list[str]:
    quantized_in = ((art.get("input") or {}).get("dtype") or "float32") != "float32"
    quantized_out = ((art.get("output") or {}).get("dtype") or "float32") != "float32"
    lines = [
        "def predict(x):",
        '    """Logits from the TFLite file, one row at a time (its batch is 1; LiteRT)."""',
        "    from ai_edge_litert.interpreter import Interpreter",
        "",
        "    it = Interpreter(model_path=str(MODEL))",
        "    it.allocate_tensors()",
        "    i, o = it.get_input_details()[0], it.get_output_details()[0]",
        "    out = []",
        "    for row in x:",
        "        v = row[None]",
    ]
    if quantized_in:
        lines += [
            "        # integer input: quantize with the file's own scale and zero point",
            '        s, z = i["quantization"]',
            '        info = np.iinfo(i["dtype"])',
            '        v = np.clip(np.round(v / s) + z, info.min, info.max).astype(i["dtype"])',
        ]
    lines += [
        '        it.set_tensor(i["index"], v)',
        "        it.invoke()",
        '        y = it.get_tensor(o["index"])',
    ]
    if quantized_out:
        lines += [
            "        # integer output: dequantize with the file's own scale and zero point",
            '        s, z = o["quantization"]',
            "        y = (y.astype(np.float32) - z) * s",
        ]
    return [*lines, "        out.append(y.astype(np.float32))", "    return np.concatenate(out)"]


register("onnx", _onnx)
register("tflite", _tflite)


def example_name(file: str) -> str:
    return f"{file}.py"


def source(art: dict, card: dict, contract: dict) -> str:
    """The whole example program for one shipped file."""
    runtime = {"onnx": "onnxruntime", "tflite": "ai-edge-litert"}.get(art["format"], "its runtime")
    takes = {
        "table": "a CSV with a header row holding the columns "
        + ", ".join(c["name"] for c in contract.get("columns") or [])
        + " (a label column, if present, is ignored)",
        "image_folder": "a folder of PNG images (subfolders are read in sorted order)",
    }.get(contract["kind"])
    lines = [
        "#!/usr/bin/env python3",
        f'"""Run {art["file"]} on your raw data; prints one label per line.',
        "",
        f"Usage: python {example_name(art['file'])} DATA",
        f"DATA: {takes + '; or ' if takes else ''}an .npy of raw features "
        f"[n, {', '.join(map(str, contract['input']['shape']))}].",
        "The model's graph normalizes and one-hots by itself: feed values as the data file has",
        "them. preprocess.py applies ../preprocess.json (category codes, fill values for missing",
        f"entries). Needs numpy and {runtime}. Written by tinyship for the run {card.get('run')!r}.",
        '"""',
        "",
        "import sys",
        "from pathlib import Path",
        "",
        "import numpy as np",
        "",
        "HERE = Path(__file__).resolve().parent",
        "sys.path.insert(0, str(HERE))",
        "sys.dont_write_bytecode = True  # no __pycache__ in the shipped folder (SHA256SUMS)",
        "import preprocess  # noqa: E402  (examples/preprocess.py: the contract, in code)",
        "",
        f'MODEL = HERE.parent / "{art["file"]}"',
        "",
        "",
        *KINDS[art["format"]](art),
        "",
        "",
        "def main(data: str) -> None:",
        f'    contract = preprocess.load(HERE.parent / "{PREPROCESS}")',
        "    x = preprocess.read(data, contract)  # float32 [n, *input shape], raw values",
        "    for label in preprocess.labels(predict(x), contract):",
        "        print(label)",
        "",
        "",
        'if __name__ == "__main__":',
        "    if len(sys.argv) != 2:",
        '        sys.exit(f"usage: python {sys.argv[0]} DATA  (a CSV, an .npy, or an image folder)")',
        "    main(sys.argv[1])",
    ]
    return "\n".join(lines) + "\n"


def contract(card: dict) -> dict:
    """ship/preprocess.json: the card's input contract, with the shape and the labels."""
    inp = card.get("input") or {}
    pre = dict(inp.get("preprocess") or {"kind": "array", "columns": None, "missing": "error"})
    return {
        "schema": SCHEMA,
        **pre,
        "input": {
            "shape": list(inp.get("shape") or []),
            "dtype": "float32",
            "layout": inp.get("layout"),
            "values": "raw: the graph's first ops normalize and one-hot; never scale here",
        },
        "labels": [str(v) for v in card.get("labels") or []],
    }


def write(ship_dir: Path, card: dict, arts: list[dict]) -> dict[str, str]:
    """Write preprocess.json and examples/ (preprocess.py and one program per ONNX / TFLite
    file in ``arts``); returns file -> its example's path relative to ``ship_dir``."""
    pre = contract(card)
    rundir.atomic_write_json(ship_dir / PREPROCESS, pre)
    folder = ship_dir / EXAMPLES
    folder.mkdir(exist_ok=True)
    shutil.copyfile(examples_preprocess.__file__, folder / "preprocess.py")
    written = {}
    for art in arts:
        if art["format"] not in KINDS:
            continue
        path = folder / example_name(art["file"])
        rundir.atomic_write_bytes(path, source(art, card, pre).encode())
        written[art["file"]] = f"{EXAMPLES}/{path.name}"
    return written


def remove(ship_dir: Path, file: str) -> None:
    """Take a refused file's example out with it."""
    (ship_dir / EXAMPLES / example_name(file)).unlink(missing_ok=True)
