"""Issue 34: the preprocessing contract of a user's CSV, and bad own data that gets exit 2 and a fix.

The contract (code maps, fill values, the unseen-category policy, holdout counts) is what
ship/preprocess.json carries; its reference implementation (devices/examples_preprocess.py,
shipped as examples/preprocess.py) must turn the raw holdout rows into exactly the rows the
loader gave the model, or no shipped example could reproduce the card's accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest

from devices import examples_preprocess
from distill.data import load_data
from distill.student_dir import write_raw_holdout
from ground.errors import UserError

WORK = ("Private", "Self-emp", "Gov")


def adult_like(n: int, seed: int, extra_work: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    """An adult-style CSV: numbers on very different scales, string categories, missing
    values ('?', empty, NA); ``extra_work`` adds categories the training file lacks."""
    rng = np.random.default_rng(seed)
    lines = ["age,workclass,income,hours,city,label"]
    labels = []
    for i in range(n):
        age = int(rng.integers(18, 80))
        work = str(rng.choice(WORK + extra_work))
        income = float(rng.normal(50000, 15000))
        hours = float(rng.uniform(10, 60))
        city = str(rng.choice(["Ulm", "Köln", "Graz"]))
        score = (income - 50000) / 15000 + (hours - 35) / 15 + (work == "Gov") * 0.8
        label = ">50K" if score > 0.3 else "<=50K"
        labels.append(label)
        cells = [str(age), work, f"{income:.2f}", f"{hours:.1f}", city, label]
        if i % 17 == 3:
            cells[0] = "?"
        if i % 23 == 5:
            cells[1] = ""
        if i % 29 == 7:
            cells[3] = "NA"
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n", labels


def _section(tmp_path, **extra) -> dict:
    return {"name": "csv", "path": str(tmp_path / "train.csv"), "label": "label", **extra}


def _reference_rows(tmp_path, ds) -> np.ndarray:
    """The raw holdout written as the run writes it, read back by the shipped reference code."""
    name = write_raw_holdout(tmp_path, ds)
    contract = {**ds.preprocess, "input": {"shape": [ds.n_features]}, "labels": ds.labels}
    return examples_preprocess.read(tmp_path / name, contract)


@pytest.mark.parametrize("with_test_file", [False, True])
def test_reference_preprocessing_reproduces_the_loaders_rows_exactly(tmp_path, with_test_file):
    text, _ = adult_like(160, 0)
    (tmp_path / "train.csv").write_text(text)
    extra = {}
    if with_test_file:
        (tmp_path / "test.csv").write_text(adult_like(60, 1, extra_work=("Navy", "Guild"))[0])
        extra["test_path"] = str(tmp_path / "test.csv")
    ds = load_data(_section(tmp_path, **extra))
    got = _reference_rows(tmp_path, ds)
    assert got.dtype == np.float32 and got.tobytes() == ds.x_holdout.tobytes()  # bit for bit
    cols = {c["name"]: c for c in ds.preprocess["columns"]}
    assert cols["workclass"]["categories"] == sorted(WORK)
    assert cols["hours"]["kind"] == "numeric" and cols["hours"]["fill"] is not None
    counts = ds.preprocess["holdout"]
    assert counts["rows"] == len(ds.y_holdout) and counts["filled"]["age"] > 0
    if with_test_file:  # unseen categories: counted, mapped to the most frequent (the default)
        assert counts["unseen"]["workclass"] > 0 and ds.preprocess["unseen"] == "most_frequent"


def test_unseen_category_policy_is_the_recipes_choice(tmp_path):
    (tmp_path / "train.csv").write_text(adult_like(120, 0)[0])
    (tmp_path / "test.csv").write_text(adult_like(40, 1, extra_work=("Navy",))[0])
    section = _section(tmp_path, test_path=str(tmp_path / "test.csv"))
    with pytest.raises(UserError, match=r"column 'workclass': category 'Navy'.*data.unseen"):
        load_data({**section, "unseen": "error"})
    ds = load_data({**section, "unseen": "unknown"})
    assert (ds.x_holdout[:, 1] == -1).sum() == ds.preprocess["holdout"]["unseen"]["workclass"] > 0
    assert _reference_rows(tmp_path, ds).tobytes() == ds.x_holdout.tobytes()


def test_latin1_csv_is_refused_with_the_encoding_option_then_read(tmp_path):
    text, _ = adult_like(60, 0)
    (tmp_path / "train.csv").write_bytes(text.encode("latin-1"))  # 'Köln' as one byte 0xF6
    with pytest.raises(UserError, match=r"line \d+ is not valid utf-8.*data.encoding: latin-1"):
        load_data(_section(tmp_path))
    ds = load_data(_section(tmp_path, encoding="latin-1"))
    assert "Köln" in ds.preprocess["columns"][4]["categories"]
    assert ds.preprocess["csv"]["encoding"] == "iso8859-1"  # Python's name for it
    assert _reference_rows(tmp_path, ds).tobytes() == ds.x_holdout.tobytes()


def test_semicolon_csv_with_decimal_commas_gets_a_hint_then_reads(tmp_path):
    text, _ = adult_like(60, 0)
    rows = [ln.split(",") for ln in text.splitlines()]
    (tmp_path / "train.csv").write_text(
        "\n".join(";".join(c.replace(".", ",") for c in r) for r in rows) + "\n"
    )
    with pytest.raises(UserError, match=r"column 'income' holds numbers written with a decimal "
                       r"comma \('\d+,\d+'\).*data.decimal: ','"):  # fmt: skip
        load_data(_section(tmp_path))  # the ';' is found; the decimal mark is never guessed
    ds = load_data(_section(tmp_path, decimal=","))
    assert ds.preprocess["csv"] == {"encoding": "utf-8", "delimiter": ";", "decimal": ","}
    assert not ds.nominal[2] and ds.x_train[:, 2].max() > 1000  # income read as numbers
    assert _reference_rows(tmp_path, ds).tobytes() == ds.x_holdout.tobytes()


def test_a_class_with_fewer_than_k_training_rows_is_warned_with_counts(tmp_path, capsys):
    text, _ = adult_like(80, 0)
    text += "40,Gov,50000.00,40.0,Ulm,rare\n"
    (tmp_path / "train.csv").write_text(text)
    ds = load_data(_section(tmp_path, holdout_fraction=0.1, split_seed=3))
    err = capsys.readouterr().err
    assert "fewer than 3 training rows ('rare': " in err and "Add rows" in err
    assert ds.warnings and "'rare'" in ds.warnings[0]


def _labels_only_onnx(path, width: int) -> None:
    """An ONNX classifier that returns the arg-max label only (int64 [n])."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ArgMax", ["x"], ["label"], axis=1, keepdims=0)],
        "labels_only",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [None])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_a_member_that_outputs_labels_only_is_told_what_to_output(tmp_path):
    from distill.file_members import OnnxMember
    from distill.members import check_probs

    _labels_only_onnx(tmp_path / "m.onnx", 4)
    with pytest.raises(UserError, match=r"outputs only \[\('label', 'tensor\(int64\)'\)\], class "
                       r"labels without probabilities.*one probability \(or logit\) per class"):  # fmt: skip
        OnnxMember("m", tmp_path / "m.onnx")
    labels = np.array([0, 2, 1])  # a Python member's predict_proba that returns labels
    for out in (labels, labels[:, None]):
        with pytest.raises(UserError, match=r"must output \[3, num_classes\].*Labels alone"):
            check_probs(out, "py", 3, 3)


def test_the_summary_says_the_holdouts_preprocessing_counts(tmp_path):
    from tinyship.summary import distill_summary

    (tmp_path / "train.csv").write_text(adult_like(120, 0)[0])
    (tmp_path / "test.csv").write_text(adult_like(40, 1, extra_work=("Navy",))[0])
    ds = load_data(_section(tmp_path, test_path=str(tmp_path / "test.csv")))
    h = ds.preprocess["holdout"]
    text = distill_summary({"input": {"preprocess": ds.preprocess}, "metrics": {}}, width=200)
    filled, unseen = sum(h["filled"].values()), sum(h["unseen"].values())
    assert filled and unseen
    assert (
        f"holdout preprocessing: {filled} missing values filled, {unseen} unseen categories" in text
    )
