"""Issue 34: every shipped file is run the way its own instructions say before it ships.

ship/examples/<file>.py is run on the raw holdout in a subprocess (as a user would) and must
reproduce the accuracy exports.json records for its file; MODEL_CARD.md shows the examples'
own text and no preprocessing step they do not run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from devices import examples, examples_preprocess
from ground import rundir


def _manifest(run) -> dict:
    return json.loads((run / "ship" / "manifest.json").read_text())


def test_every_shipped_onnx_and_tflite_file_has_an_example_that_reproduces_its_accuracy(
    profiled_run, tmp_path
):
    ship = profiled_run / "ship"
    exports = {
        a["file"]: a for a in json.loads((profiled_run / rundir.EXPORTS).read_text())["artifacts"]
    }
    files = [f for f in _manifest(profiled_run)["files"] if f["format"] in ("onnx", "tflite")]
    assert {f["format"] for f in files} == {"onnx", "tflite"}
    ho = np.load(profiled_run / rundir.HOLDOUT)
    np.save(tmp_path / "raw.npy", ho["x"])  # the raw holdout, as a user would pass it
    truth = [str(int(v)) for v in ho["y"]]
    for f in files:
        assert f["example"] == f"examples/{f['file']}.py"
        assert f["example_check"]["passed"] and f["example_check"]["accuracy"] == f["accuracy"]
    # run two of them again here, from another folder, exactly as the card says
    for f in (files[0], files[-1]):
        out = subprocess.run(
            [sys.executable, str(ship / f["example"]), str(tmp_path / "raw.npy")],
            capture_output=True, text=True, cwd=tmp_path, check=True,
        ).stdout.split()  # fmt: skip
        acc = round(float(np.mean([a == b for a, b in zip(out, truth)])), 6)
        assert len(out) == len(truth) and acc == exports[f["file"]]["accuracy"]


def test_the_model_card_shows_the_examples_and_no_step_they_do_not_run(profiled_run):
    ship = profiled_run / "ship"
    text = (ship / "MODEL_CARD.md").read_text()
    # issue 34: the card told users to normalize although normalization is the graph's first op
    assert "x_raw -" not in text and "apply it before calling the model" not in text
    assert "do not normalize before feeding" in text
    blocks = re.findall(r"### `(examples/[^`]+)`\n\n```python\n(.*?)\n```", text, re.S)
    assert {b[0].split(".")[-2] for b in blocks} == {"onnx", "tflite"}
    for path, code in blocks:  # every snippet is an example's text, verbatim
        assert (ship / path).read_text().rstrip("\n") == code
    for f in _manifest(profiled_run)["files"]:
        if f["format"] in ("onnx", "tflite"):
            assert f"`python {f['example']} DATA`" in text
    pre = json.loads((ship / "preprocess.json").read_text())
    assert pre["schema"] == examples.SCHEMA and pre["input"]["shape"] == [1, 8, 8]
    assert (ship / "examples" / "preprocess.py").read_text() == open(
        examples_preprocess.__file__
    ).read()


def test_a_file_whose_example_disagrees_is_refused(exported_run, tmp_path, monkeypatch):
    import devices

    run = tmp_path / "cnn"
    shutil.copytree(exported_run, run)

    def broken(art: dict) -> list[str]:  # an example whose predict ignores its input
        return ["def predict(x):", "    return np.eye(10, dtype=np.float32)[np.zeros(len(x), int)]"]

    monkeypatch.setitem(examples.KINDS, "onnx", broken)
    rep = devices.profile(run, ["host"], force=True, settings=devices.Settings(runs=2, warmup=0))
    m = _manifest(run)
    refused = {c["file"]: c for c in m["refused"]}
    assert refused and all(f.endswith(".onnx") for f in refused)
    assert not any(f["file"].endswith(".onnx") for f in m["files"]) and m["files"]
    for f, c in refused.items():
        assert "differs from the recorded" in c["reason"]
        assert (
            not (run / "ship" / f).exists() and not (run / "ship" / "examples" / f"{f}.py").exists()
        )
        assert f not in rep.ship
    assert "refused, not shipped" in (run / "ship" / "MODEL_CARD.md").read_text()


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P"])
@pytest.mark.parametrize("grayscale", [True, False])
def test_png_reader_gives_the_image_loaders_pixels(tmp_path, mode, grayscale):
    """The example's numpy-only PNG reader against the training loader (Pillow)."""
    from PIL import Image

    from distill.loaders.image_folder import _read_image_folder

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for k in range(3):
            a = rng.integers(0, 256, (7, 9, 4), dtype=np.uint8)
            im = Image.fromarray(a, "RGBA").convert(mode)
            im.save(tmp_path / "imgs" / c / f"{k}.png", optimize=k == 1)
    x, _, _, hw = _read_image_folder(tmp_path / "imgs", "data.path", None, grayscale, None)
    shape = [1 if grayscale else 3, *hw]
    contract = {"input": {"shape": shape}, "image": {"grayscale": grayscale, "size": list(hw)}}
    got = examples_preprocess.read(tmp_path / "imgs", contract)
    np.testing.assert_array_equal(got.reshape(len(got), -1), x)


def test_a_nan_input_is_filled_or_refused_never_fed(capsys):
    """issue 34: a NaN input gave NaN outputs; the shipped preprocessing fills it with the
    recorded fill value where one was learned, and refuses it (naming the row) where none was."""
    x = np.array([[1.0, np.nan], [np.nan, 2.0]], np.float32)
    table = {
        "kind": "table",
        "missing": "median",
        "columns": [{"name": "a", "kind": "numeric", "fill": 5.0}, {"name": "b", "kind": "numeric", "fill": 7.0}],
        "input": {"shape": [2]},
    }  # fmt: skip
    got = examples_preprocess.from_array(x, table, "x.npy")
    np.testing.assert_array_equal(got, [[1.0, 7.0], [5.0, 2.0]])
    assert "2 missing values filled" in capsys.readouterr().err
    array = {"kind": "array", "missing": "error", "columns": None, "input": {"shape": [2]}}
    with pytest.raises(examples_preprocess.InputError, match=r"x.npy row 0, column '1': missing"):
        examples_preprocess.from_array(x, array, "x.npy")
