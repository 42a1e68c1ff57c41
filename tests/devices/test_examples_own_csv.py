"""Issue 34, end to end on a user's own CSV: string categories, missing values and categories
the training file lacks, distilled, exported and profiled with the recipe's defaults for the
contract; each shipped example, run on the user's own test CSV (the holdout, label column and
all), prints labels whose accuracy is the card's figure for its file, to the digit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "distill"))

from test_csv_contract import adult_like  # noqa: E402


@pytest.mark.slow
def test_examples_on_the_raw_test_csv_reproduce_each_files_accuracy(tmp_path):
    import devices
    import distill
    import export

    (tmp_path / "train.csv").write_text(adult_like(400, 0)[0])
    test_text, test_labels = adult_like(120, 1, extra_work=("Navy", "Guild"))
    (tmp_path / "test.csv").write_text(test_text)
    recipe = {
        "data": {"name": "csv", "path": "train.csv", "test_path": "test.csv", "label": "label"},
        "teacher": {"library": ["logreg", "rf"]},
        "transfer": {"method": "munge", "size_multiplier": 2},
        "student": {"kind": "mlp", "hidden": [16]},
        "train": {"epochs": 8, "batch_size": 64, "baseline": False},
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    run = tmp_path / "run"
    card = distill.run(tmp_path / "r.yaml", run, progress=False).card
    pre = card["input"]["preprocess"]
    assert pre["holdout"]["unseen"]["workclass"] > 0 and pre["holdout"]["filled"]["age"] > 0
    export.run(run, formats=["onnx", "tflite"], force=True, keep_going=True, progress=False)
    devices.profile(run, ["host"], force=True, settings=devices.Settings(runs=2, warmup=0))
    manifest = json.loads((run / "ship" / "manifest.json").read_text())
    files = [f for f in manifest["files"] if f["format"] in ("onnx", "tflite")]
    assert files and not manifest["refused"]
    assert all(f["example_check"]["data"] == "holdout_raw.csv" for f in files)
    for f in files:
        out = subprocess.run(
            [sys.executable, str(run / "ship" / f["example"]), str(tmp_path / "test.csv")],
            capture_output=True, text=True, check=True, cwd=tmp_path,
        )  # fmt: skip
        printed = out.stdout.split("\n")[:-1]
        acc = round(float(np.mean([a == b for a, b in zip(printed, test_labels)])), 6)
        assert len(printed) == len(test_labels) and acc == f["accuracy"], f["file"]
        assert "missing values filled" in out.stderr and "unseen categories" in out.stderr
    text = (run / "ship" / "MODEL_CARD.md").read_text()
    h = pre["holdout"]
    n_filled, n_unseen = sum(h["filled"].values()), sum(h["unseen"].values())
    assert f"{n_filled} missing values filled, {n_unseen} unseen categories" in text


@pytest.mark.slow
def test_examples_on_a_raw_png_test_folder_reproduce_each_files_accuracy(tmp_path):
    """An image folder with its own test folder: each example, given the test folder of PNGs,
    reproduces its file's holdout accuracy (the PNG reader is the examples' own, no Pillow)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    import devices
    import distill
    import export

    d = load_digits()
    truth = []
    for i, (img, y) in enumerate(zip(d.images[:600], d.target[:600])):
        split = "test" if i % 4 == 0 else "train"
        folder = tmp_path / split / f"digit{y}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 15).astype(np.uint8), "L").save(folder / f"{i:04d}.png")
    for folder in sorted((tmp_path / "test").iterdir()):
        truth += [folder.name] * len(list(folder.glob("*.png")))
    recipe = {
        "data": {"name": "image_folder", "path": "train", "test_path": "test", "grayscale": True},
        "teacher": {"library": ["logreg", "knn"]},
        "transfer": {"method": "munge", "size_multiplier": 2},
        "student": {"kind": "mlp", "hidden": [32]},
        "train": {"epochs": 8, "batch_size": 64, "baseline": False},
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    run = tmp_path / "run"
    distill.run(tmp_path / "r.yaml", run, progress=False)
    export.run(run, formats=["onnx", "tflite"], force=True, keep_going=True, progress=False)
    devices.profile(run, ["host"], force=True, settings=devices.Settings(runs=2, warmup=0))
    manifest = json.loads((run / "ship" / "manifest.json").read_text())
    files = [f for f in manifest["files"] if f["format"] in ("onnx", "tflite")]
    assert files and not manifest["refused"]
    for f in files:
        out = subprocess.run(
            [sys.executable, str(run / "ship" / f["example"]), str(tmp_path / "test")],
            capture_output=True, text=True, check=True, cwd=tmp_path,
        )  # fmt: skip
        printed = out.stdout.split("\n")[:-1]
        acc = round(float(np.mean([a == b for a, b in zip(printed, truth)])), 6)
        assert len(printed) == len(truth) and acc == f["accuracy"], f["file"]
