"""Done-when tests of issue 13: the user's own data and models, fed raw, and a student that takes raw rows.

Each test distills from files a user would have (a CSV with a categorical column and string labels,
an npz with its own test split, a folder of PNGs), with a teacher trained on the raw columns, and
checks the teacher's holdout accuracy against the model's own, the student against the teacher, and
an exported ONNX file on the raw test rows against the student.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from distill import run as distill

COLOURS = ("red", "green", "blue")


def _rows(n: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str], list[str]]:
    """Columns on very different scales (income ~5e4, age ~50) plus a colour; three string labels."""
    income = rng.normal(50000, 15000, n)
    age = rng.uniform(18, 80, n)
    noise = rng.normal(0.5, 0.2, n)
    colour = rng.choice(COLOURS, n)
    effect = np.select([colour == "red", colour == "blue"], [1.0, -1.0], 0.0)
    score = (income - 50000) / 15000 + (age - 49) / 18 + effect
    label = np.where(score > 0.6, "high", np.where(score < -0.6, "low", "mid"))
    return np.stack([income, age, noise], 1), list(colour), list(label)


def _write_csv(path: Path, num: np.ndarray, colour: list[str], label: list[str]) -> None:
    lines = ["income,age,noise,colour,band"]
    lines += [
        f"{a:.2f},{b:.3f},{c:.4f},{col},{lab}" for (a, b, c), col, lab in zip(num, colour, label)
    ]
    path.write_text("\n".join(lines) + "\n")


def _encode(num: np.ndarray, colour: list[str]) -> np.ndarray:
    """The documented raw layout: feature columns in file order, a category as its index in the
    sorted training values (blue=0, green=1, red=2)."""
    codes = {c: i for i, c in enumerate(sorted(COLOURS))}
    x = np.column_stack([num, [codes[c] for c in colour]])
    return np.round(x.astype(np.float64), 4).astype(np.float32)  # as written to the CSV


def _onnx_accuracy(path: Path, x: np.ndarray, y: np.ndarray, output: str | None = None) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = output or sess.get_outputs()[0].name
    (out,) = sess.run([name], {sess.get_inputs()[0].name: x.astype(np.float32)})
    return float((np.asarray(out).argmax(1) == y).mean())


def _export_onnx_fp32(run: Path) -> dict:
    from export import run as export_run

    export_run(run, formats=["onnx"], precisions=["fp32"], force=True)
    return json.loads((run / "export" / "exports.json").read_text())


def test_csv_with_skl2onnx_member_trained_on_raw_columns(tmp_path):
    from skl2onnx import to_onnx
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(0)
    num, col, lab = _rows(900, rng)
    num_t, col_t, lab_t = _rows(300, rng)
    (tmp_path / "data").mkdir()
    _write_csv(tmp_path / "data" / "train.csv", num, col, lab)
    _write_csv(tmp_path / "data" / "test.csv", num_t, col_t, lab_t)
    labels = sorted(set(lab))  # high, low, mid: string labels map to sorted indices
    x, x_test = _encode(_rows_from_csv(num), col), _encode(_rows_from_csv(num_t), col_t)
    y = np.array([labels.index(v) for v in lab])
    y_test = np.array([labels.index(v) for v in lab_t])
    gb = GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=0).fit(x, y)
    onx = to_onnx(gb, x[:1], options={id(gb): {"zipmap": False}}, target_opset=17)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "gb.onnx").write_bytes(onx.SerializeToString())
    own = _onnx_accuracy(tmp_path / "models" / "gb.onnx", x_test, y_test, "probabilities")

    recipe = {
        "data": {
            "name": "csv",
            "path": "../data/train.csv",
            "test_path": "../data/test.csv",
            "label": "band",
            "categorical": ["colour"],
        },  # normalize: column (the default)
        "teacher": {"members": [{"name": "gb", "kind": "onnx", "path": "../models/gb.onnx"}]},
        "transfer": {"method": "munge", "size_multiplier": 4},
        "student": {"kind": "mlp", "hidden": [32]},
        "train": {"epochs": 20, "lr": 0.01, "batch_size": 128, "patience": 20, "baseline": False},
        "export": {"thresholds": {"agreement": 0.99}},
    }
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "csv.yaml").write_text(yaml.safe_dump(recipe))
    res = distill(tmp_path / "recipes" / "csv.yaml", tmp_path / "run", progress=False)
    m = res.card["metrics"]["holdout"]
    print(
        f"csv: gb own {own:.4f} teacher {m['teacher']['accuracy']:.4f} student {m['student']['accuracy']:.4f}"
    )
    assert res.card["labels"] == labels and m["n"] == 300
    assert m["teacher"]["accuracy"] == pytest.approx(own, abs=1e-9)
    assert m["student"]["accuracy"] >= own - 0.03
    member = res.card["teacher"]["members"][0]
    assert member["input"] == "raw" and member["output"] == "probs"
    assert member["output_name"] == "probabilities"
    spec = res.card["input"]
    assert spec["shape"] == [4] and spec["dtype"] == "float32" and spec["raw"] is True
    assert spec["columns"] == ["income", "age", "noise", "colour"]
    assert spec["nominal"] == {
        "colour": {"codes": ["blue", "green", "red"], "one_hot_in_graph": True}
    }

    exports = _export_onnx_fp32(tmp_path / "run")
    (art,) = exports["artifacts"]
    onnx_acc = _onnx_accuracy(tmp_path / "run" / "export" / art["file"], x_test, y_test)
    print(f"csv: exported fp32 onnx on raw test rows {onnx_acc:.4f}")
    assert onnx_acc == pytest.approx(m["student"]["accuracy"], abs=1e-9)
    ho = np.load(tmp_path / "run" / "student" / "holdout.npz")
    np.testing.assert_allclose(ho["x"], x_test, rtol=1e-6)  # parity is checked on raw rows


def _rows_from_csv(num: np.ndarray) -> np.ndarray:
    """The numeric columns as the CSV holds them (rounded as written)."""
    return np.column_stack([np.round(num[:, 0], 2), np.round(num[:, 1], 3), np.round(num[:, 2], 4)])


def test_readme_python_member_example_runs(tmp_path, capsys):
    """The example in distill/README.md, executed as written (its run folder moved to tmp)."""
    readme = (Path(__file__).resolve().parents[2] / "distill" / "README.md").read_text()
    section = readme[readme.index("## Your own models from Python") :]
    code = section[section.index("```python") + len("```python") : section.index("```\n", 10)]
    assert "import pickle" not in code
    code = code.replace('"build/python-member"', repr(str(tmp_path / "run")))
    scope: dict = {"__name__": "readme_example"}
    exec(compile(code, "distill/README.md", "exec"), scope)  # noqa: S102 - our own README
    card = scope["result"].card
    (member,) = card["teacher"]["members"]
    assert member["kind"] == "python" and member["input"] == "raw" and member["bytes"] is None
    assert card["metrics"]["holdout"]["teacher"]["accuracy"] > 0.8


def _digits_npz(path: Path) -> dict[str, np.ndarray]:
    """scikit-learn's digits as a user's npz with its own test split (raw pixels 0..16)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order].astype(np.float32), y[order].astype(np.int64)
    a = {"x_train": x[:1300], "y_train": y[:1300], "x_test": x[1300:], "y_test": y[1300:]}
    np.savez(path, **a)
    return a


def _train_torch_mlp(x: np.ndarray, y: np.ndarray):
    """The user's own torch model, trained on the raw pixels (no normalization anywhere)."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(150):  # full batch: a few seconds on one core
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.eval()


def test_npz_with_pt2_logits_member_beside_a_library_model(tmp_path):
    import torch

    a = _digits_npz(tmp_path / "digits.npz")
    net = _train_torch_mlp(a["x_train"], a["y_train"])
    with torch.no_grad():
        own = float((net(torch.from_numpy(a["x_test"])).argmax(1).numpy() == a["y_test"]).mean())
    batch = torch.export.Dim("batch")
    ep = torch.export.export(net, (torch.zeros(4, 64),), dynamic_shapes=({0: batch},))
    torch.export.save(ep, str(tmp_path / "net.pt2"))

    recipe = {
        "data": {"name": "npz", "path": "digits.npz"},  # normalize: column (the default)
        "teacher": {
            "library": ["logreg"],
            "members": [{"name": "net", "kind": "pt2", "path": "net.pt2", "output": "logits"}],
        },
        "transfer": {"method": "munge", "size_multiplier": 4},
        "student": {"kind": "mlp", "hidden": [64]},
        "train": {"epochs": 20, "lr": 0.01, "batch_size": 128, "patience": 20, "baseline": False},
        "export": {"thresholds": {"agreement": 0.99}},
    }
    (tmp_path / "npz.yaml").write_text(yaml.safe_dump(recipe))
    res = distill(tmp_path / "npz.yaml", tmp_path / "run", progress=False)
    card = res.card
    m = card["metrics"]["holdout"]
    print(
        f"npz: pt2 own {own:.4f} card {m['members']['net']['accuracy']:.4f} logreg "
        f"{m['members']['logreg']['accuracy']:.4f} teacher {m['teacher']['accuracy']:.4f} "
        f"student {m['student']['accuracy']:.4f}"
    )
    # the given test split is the holdout, whole and alone; validation came out of x_train
    assert m["n"] == card["data"]["n_holdout"] == len(a["x_test"])
    assert card["data"]["n_train"] + card["data"]["n_val"] == len(a["x_train"])
    ho = np.load(tmp_path / "run" / "student" / "holdout.npz")
    np.testing.assert_array_equal(ho["x"], a["x_test"])
    np.testing.assert_array_equal(ho["y"], a["y_test"])
    members = {r["name"]: r for r in card["teacher"]["members"]}
    assert set(members) == {"net", "logreg"}
    assert members["net"]["kind"] == "pt2" and members["net"]["input"] == "raw"
    assert members["net"]["output"] == "logits" and members["logreg"]["input"] == "normalized"
    assert m["members"]["net"]["accuracy"] == pytest.approx(own, abs=1e-9)
    assert m["student"]["accuracy"] >= m["teacher"]["accuracy"] - 0.03
    assert card["input"]["shape"] == [64] and card["input"]["raw"] is True

    exports = _export_onnx_fp32(tmp_path / "run")
    (art,) = exports["artifacts"]
    onnx_acc = _onnx_accuracy(tmp_path / "run" / "export" / art["file"], a["x_test"], a["y_test"])
    print(f"npz: exported fp32 onnx on raw test rows {onnx_acc:.4f}")
    assert onnx_acc == pytest.approx(m["student"]["accuracy"], abs=1e-9)


SIDES = ("bottom", "left", "right", "top")  # the bright half of each class's images
HALVES = {"top": np.s_[:8], "bottom": np.s_[8:], "left": np.s_[:, :8], "right": np.s_[:, 8:]}


def _write_pngs(root: Path, per_class: int, rng: np.random.Generator) -> None:
    """RGB 16x16 PNGs: noise in a random colour, one half brighter by class."""
    from PIL import Image

    for side in SIDES:
        (root / side).mkdir(parents=True)
        for i in range(per_class):
            a = rng.normal(70, 25, (16, 16, 3)) * rng.uniform(0.6, 1.0, 3)
            a[HALVES[side]] += rng.uniform(70, 120)
            Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(root / side / f"{i}.png")


def _read_pngs(root: Path, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The documented contract, read independently: RGB, bilinear resize, [C, H, W], 0..255."""
    from PIL import Image

    xs, ys = [], []
    for ci, side in enumerate(SIDES):
        for f in sorted((root / side).glob("*.png")):
            with Image.open(f) as im:
                im = im.convert("RGB").resize((hw[1], hw[0]), Image.BILINEAR)
                xs.append(np.asarray(im, np.float32).transpose(2, 0, 1))
                ys.append(ci)
    return np.stack(xs), np.array(ys)


def test_image_folder_of_generated_pngs_distills_and_exports(tmp_path):
    rng = np.random.default_rng(0)
    _write_pngs(tmp_path / "images" / "train", 12, rng)  # 48 training images
    _write_pngs(tmp_path / "images" / "test", 5, rng)  # 20 test images, the holdout
    x_test, y_test = _read_pngs(tmp_path / "images" / "test", (12, 12))
    recipe = {
        "data": {
            "name": "image_folder",
            "path": "images/train",
            "test_path": "images/test",
            "size": [12, 12],
        },
        "teacher": {"library": ["logreg", "knn"]},
        "transfer": {"method": "munge", "size_multiplier": 10},
        "student": {"kind": "cnn", "channels": [4, 8]},
        "train": {"epochs": 20, "lr": 0.01, "batch_size": 64, "patience": 20, "baseline": False},
        "export": {"thresholds": {"agreement": 0.95}},
    }
    (tmp_path / "images.yaml").write_text(yaml.safe_dump(recipe))
    res = distill(tmp_path / "images.yaml", tmp_path / "run", progress=False)
    card = res.card
    m = card["metrics"]["holdout"]
    print(f"images: teacher {m['teacher']['accuracy']:.4f} student {m['student']['accuracy']:.4f}")
    assert card["labels"] == list(SIDES) and m["n"] == len(x_test) == 20
    spec = card["input"]
    assert spec["shape"] == [3, 12, 12] and spec["layout"] == "NCHW" and spec["raw"] is True
    ho = np.load(tmp_path / "run" / "student" / "holdout.npz")
    np.testing.assert_array_equal(ho["x"].reshape(x_test.shape), x_test)
    assert m["teacher"]["accuracy"] >= 0.9  # the bright half is plain to see: chance is 0.25
    assert m["student"]["accuracy"] >= m["teacher"]["accuracy"] - 0.1  # 2 of 20 rows

    exports = _export_onnx_fp32(tmp_path / "run")
    (art,) = exports["artifacts"]
    import onnx

    model = onnx.load(tmp_path / "run" / "export" / art["file"])
    dims = [d.dim_value or d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [3, 12, 12]
    onnx_acc = _onnx_accuracy(tmp_path / "run" / "export" / art["file"], x_test, y_test)
    print(f"images: exported fp32 onnx on the PNGs' raw pixels {onnx_acc:.4f}")
    assert onnx_acc == pytest.approx(m["student"]["accuracy"], abs=1e-9)
