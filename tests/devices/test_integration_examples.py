"""ship/examples/ for firmware and app authors (issue 38): the TFLite Micro main.cc registers
exactly the file's operators and runs one holdout row on TFLite Micro built for this machine;
the Kotlin and Swift classes carry the same input contract as exports.json."""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest
import tflm_host

from devices import integration_examples as ie

NO_TREE = tflm_host.available()


def _shipped(run):
    exports = json.loads((run / "export" / "exports.json").read_text())
    arts = {a["file"]: a for a in exports["artifacts"]}
    return exports, arts


@pytest.mark.skipif(NO_TREE is not None, reason=str(NO_TREE))
def test_resolver_methods_are_the_headers_own():
    """Every builtin op the vendored TFLite Micro registers maps to its real Add* method."""
    text = (tflm_host.TREE / "tensorflow/lite/micro/micro_mutable_op_resolver.h").read_text()
    pairs = re.findall(
        r"TfLiteStatus (Add\w+)\((?:(?!TfLiteStatus).)*?return AddBuiltin\(\s*BuiltinOperator_(\w+)",
        text,
        re.S,
    )
    assert len(pairs) > 50
    assert [(ie.resolver_method(op), op) for _, op in pairs] == [(m, op) for m, op in pairs]


def test_main_cc_registers_exactly_the_files_operators(profiled_run):
    main_cc = (profiled_run / "ship" / "examples" / "tflm" / "main.cc").read_text()
    ops = ie.model_ops(profiled_run / "ship" / "model.int8-full.tflite")
    registered = re.findall(r"resolver\.(Add\w+)\(\);", main_cc)
    assert registered == [ie.resolver_method(o) for o in ops] and len(set(registered)) == len(ops)
    assert f"MicroMutableOpResolver<{len(ops)}>" in main_cc
    assert '#include "../../model.int8-full.c/model_data.h"' in main_cc


def test_kotlin_and_swift_carry_the_input_contract(profiled_run):
    exports, arts = _shipped(profiled_run)
    card = json.loads((profiled_run / "student" / "card.json").read_text())
    kt = (profiled_run / "ship" / "examples" / "android" / "TinyshipClassifier.kt").read_text()
    model = re.search(r'const val MODEL = "([^"]+)"', kt).group(1)
    art = arts[model]
    assert (profiled_run / "ship" / model).is_file() and model.endswith(".tflite")
    assert f"const val INPUT_LEN = {int(np.prod(art['input']['shape']))}" in kt
    assert f"const val NUM_CLASSES = {len(card['labels'])}" in kt
    if art["input"]["quantization"]:
        assert f"{art['input']['quantization']['scale']:.9g}f" in kt
    coreml = {**art, "file": "model.fp16.mlpackage", "format": "coreml", "precision": "fp16",
              "input": {**art["input"], "dtype": "float32", "quantization": None},
              "structure": {"inputs": [{"name": "x_in"}], "outputs": [{"name": "y_out"}]}}  # fmt: skip
    sw = ie.swift(coreml, card)
    assert 'forResource: "model.fp16", withExtension: "mlmodelc"' in sw
    assert '["x_in": x]' in sw and 'featureValue(for: "y_out")' in sw
    assert f"static let shape: [NSNumber] = [{', '.join(map(str, art['input']['shape']))}]" in sw


@pytest.mark.skipif(NO_TREE is not None, reason=str(NO_TREE))
def test_main_cc_compiles_against_tflite_micro_headers(profiled_run, tmp_path):
    """A syntax and type check against the vendored TFLite Micro (seconds; the run is slow)."""
    main_cc = profiled_run / "ship" / "examples" / "tflm" / "main.cc"
    p = subprocess.run(
        [
            "g++",
            "-std=c++17",
            "-fsyntax-only",
            *tflm_host.FLAGS[2:],
            *tflm_host.includes(),
            str(main_cc),
        ],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.skipif(NO_TREE is not None, reason=str(NO_TREE))
def test_main_cc_runs_on_tflite_micro_built_for_the_host(profiled_run, tmp_path):
    """TFLite Micro (reference kernels) built from the vendored tree for this machine; main.cc and
    the shipped C pair linked against it; the label it prints is the holdout row's prediction by
    the LiteRT interpreter on the same file. The first build takes minutes (cached after)."""
    ship = profiled_run / "ship"
    ops = ie.model_ops(ship / "model.int8-full.tflite")
    exe = tflm_host.link(
        ship / "examples" / "tflm" / "main.cc",
        [ship / "model.int8-full.c" / "model_data.c"],
        ops,
        tmp_path / "tinyship_example",
    )
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    m = re.search(r"label (\S+) \(output [-\d.]+\); expected (\S+); arena used (\d+)", out.stdout)
    assert m, out.stdout
    from devices.report_predict import predict

    exports, _ = _shipped(profiled_run)
    card = json.loads((profiled_run / "student" / "card.json").read_text())
    pred = predict(profiled_run, exports, ["model.int8-full.tflite"], card["labels"])
    assert m.group(1) == card["labels"][int(pred.pred["model.int8-full.tflite"][0])]
    assert m.group(2) == card["labels"][int(pred.y[0])]
