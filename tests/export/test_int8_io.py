"""Issue 34: static int8 files on raw tabular columns (wine: 0.1 to 1,680).

With int8 input the one input scale cannot hold such columns and the file fails its gate
(0.41 agreement on a user's wine CSV); the float-I/O variant normalizes in float, quantizes
after, and passes the same gate. Images keep int8 I/O. exports.json says which I/O each file
has and why.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import export
from export.int8_io import choose
from ground.errors import UserError

sys.path.insert(0, str(Path(__file__).parent))

from tabular_fixture import make_wine_run  # noqa: E402

STATIC = ["int8", "int8-full"]  # onnx int8 (QDQ), tflite int8-full


@pytest.fixture(scope="module")
def wine_run(tmp_path_factory):
    return make_wine_run(tmp_path_factory.mktemp("wine") / "run")


def test_the_card_decides_the_io():
    column = {"input": {"normalization": {"mode": "column", "std": [0.12, 1.0, 327.0]}}}
    nominal = {"input": {"normalization": {"mode": "scalar"}, "nominal": {"colour": {}}}}
    image = {"input": {"normalization": {"mode": "scalar", "std": 5.9}}}
    assert choose(column).float_io and "from 0.12 to 327" in choose(column).why
    assert choose(nominal).float_io and "colour" in choose(nominal).why
    assert not choose(image).float_io and "one scale for every feature" in choose(image).why
    forced = choose(column, "int8")
    assert not forced.float_io and "export.int8_io: int8" in forced.why
    assert choose(image, "float").float_io


def test_int8_files_take_float_raw_input_on_wine_and_pass_the_gate(wine_run):
    from export.formats.tflite_io import dequantize_output

    report = export.run(wine_run, formats=["onnx", "tflite"], precisions=STATIC, progress=False)
    fp32 = report_student_accuracy(wine_run)  # the torch student: what every fp32 file matches
    for key in ("onnx:int8", "tflite:int8-full"):
        a = report.artifact(key)
        assert a.passed, a.failure()
        assert a.parity.threshold == 0.99  # the gate keeps its threshold
        assert abs(a.accuracy - fp32) <= 0.01, (key, a.accuracy, fp32)
        assert a.input.dtype == "float32" and a.output.dtype == "float32"
        assert a.input.quantization is None
        assert "normalized per column" in a.input.note and "float32 raw input" in a.input.note
    full = report.artifact("tflite:int8-full")
    assert full.tflm_parity is not None and full.tflm_parity.passed  # runs on TFLite Micro too
    assert report.settings["io"]["float_io"] is True
    # the float output is the file's own DEQUANTIZE of its int8 logits, added once
    assert dequantize_output(wine_run / "export" / full.file) is False


def report_student_accuracy(run: Path) -> float:
    with np.load(run / "student" / "holdout.npz") as z:
        return float((z["student_probs"].argmax(1) == z["y"]).mean())


def test_forced_int8_io_fails_on_wine_and_the_refusal_states_agreement_and_threshold(
    wine_run, tmp_path
):
    """The failure of issue 34, reproduced: int8 input with one scale for wine's raw columns."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(wine_run / "student", run / "student")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("export: {int8_io: int8, fallback: false}\n")
    with pytest.raises(UserError) as err:
        export.run(run, formats=["tflite"], precisions=["int8-full"], recipe=recipe, progress=False)
    msg = str(err.value)
    assert "model.int8-full.tflite" in msg
    agreement = float(msg.split("agreement ")[1].split()[0].rstrip(";"))
    assert agreement < 0.9 and "threshold 0.99" in msg
    assert not (run / "export").exists()
