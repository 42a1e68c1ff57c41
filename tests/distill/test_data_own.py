"""The user's own data: CSV, npz with given splits, image folders, paths relative to the recipe."""

from __future__ import annotations

import numpy as np
import pytest

from distill.data import DATA_FIELDS, LOADER_FIELDS, LOADERS, load_data, register_loader
from ground.errors import UserError

CSV = """size,colour,weight,kind
1.0,red,3.5,apple
2.0,green,1.0,pear
1.5,red,2.5,apple
3.0,blue,4.0,plum
2.5,green,1.5,pear
1.2,blue,3.0,plum
"""
# The loaders refuse fewer than distill.data.MIN_ROWS (20) rows: the same six rows four times.
CSV24 = CSV + "".join(CSV.splitlines(keepends=True)[1:]) * 3


def _csv(tmp_path, text=CSV, name="fruit.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_categorical_auto_and_string_labels(tmp_path):
    _csv(tmp_path, CSV24)
    ds = load_data(
        {"name": "csv", "path": "fruit.csv", "label": "kind", "holdout_fraction": 0.2},
        base_dir=tmp_path,
    )
    assert ds.labels == ["apple", "pear", "plum"]
    assert ds.columns == ["size", "colour", "weight"]
    assert ds.nominal.tolist() == [False, True, False]
    assert ds.categories == {1: ["blue", "green", "red"]}
    x = np.concatenate([ds.x_train, ds.x_val, ds.x_holdout])
    y = np.concatenate([ds.y_train, ds.y_val, ds.y_holdout])
    assert len(x) == 24 and set(x[:, 1].tolist()) == {0.0, 1.0, 2.0}
    # each row's label index matches its name: apples are red (code 2) in this file
    assert set(x[y == 0, 1].tolist()) == {2.0}
    assert ds.input_encoding()["nominal"] == {"colour": ["blue", "green", "red"]}


def test_csv_separate_test_file_is_the_holdout(tmp_path):
    _csv(tmp_path)
    _csv(tmp_path, "size,colour,weight,kind\n9.0,red,9.5,plum\n8.0,green,8.0,apple\n", "test.csv")
    ds = load_data(
        {"name": "csv", "path": "fruit.csv", "test_path": "test.csv", "label": "kind"},
        base_dir=tmp_path,
    )
    np.testing.assert_array_equal(ds.x_holdout, [[9.0, 2.0, 9.5], [8.0, 1.0, 8.0]])
    assert ds.y_holdout.tolist() == [2, 0]
    assert len(ds.x_train) + len(ds.x_val) == 6
    assert 9.0 not in np.concatenate([ds.x_train, ds.x_val])[:, 0]


def test_csv_missing_value_is_filled_by_default_and_refused_on_request(tmp_path):
    _csv(tmp_path, CSV24.replace("2.0,green,1.0", "2.0,green,", 1))
    section = {"name": "csv", "path": str(tmp_path / "fruit.csv"), "label": "kind"}
    with pytest.raises(UserError, match=r"line 3, column 'weight': missing value.*data.impute"):
        load_data({**section, "impute": "error"})
    ds = load_data(section)  # default data.impute: median
    x = np.concatenate([ds.x_train, ds.x_val, ds.x_holdout])
    assert (
        3.0 in x[:, 2]
    )  # median of the 23 weights left (3.5, 2.5, 4.0, 1.5, 3.0 four times, 1.0 three)
    weight = ds.preprocess["columns"][2]
    assert weight == {"name": "weight", "kind": "numeric", "fill": 3.0}  # recorded, not only used


def test_csv_errors_name_the_value_and_fix(tmp_path):
    p = _csv(tmp_path)
    base = {"name": "csv", "path": str(p)}
    with pytest.raises(UserError, match=r"'data.label' is 'type', not a column .*'kind'"):
        load_data({**base, "label": "type"})
    with pytest.raises(
        UserError, match=r"line 2, column 'colour': 'red' is not a number.*categorical"
    ):
        load_data({**base, "label": "kind", "categorical": []})
    with pytest.raises(UserError, match=r"data.categorical' names \['shape'\]"):
        load_data({**base, "label": "kind", "categorical": ["shape"]})
    with pytest.raises(UserError, match=r"recipe key 'data.size' is not known"):
        load_data({**base, "label": "kind", "size": [4, 4]})


def _npz_splits(tmp_path, with_val: bool):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.normal(size=(80, 3)).astype(np.float32),
        "y_train": np.arange(80) % 2,
        "x_test": rng.normal(size=(20, 3)).astype(np.float32) + 100,
        "y_test": np.arange(20) % 2,
        "labels": np.array(["no", "yes"]),
    }
    if with_val:
        arrays["x_val"] = rng.normal(size=(10, 3)).astype(np.float32) - 100
        arrays["y_val"] = np.arange(10) % 2
    np.savez(tmp_path / "d.npz", **arrays)
    return arrays


@pytest.mark.parametrize("with_val", [False, True])
def test_npz_given_test_split_is_the_holdout(tmp_path, with_val):
    a = _npz_splits(tmp_path, with_val)
    ds = load_data({"name": "npz", "path": "d.npz"}, base_dir=tmp_path)
    np.testing.assert_array_equal(ds.x_holdout, a["x_test"])
    assert ds.labels == ["no", "yes"]
    assert (ds.x_train < 50).all() and (ds.x_val < 50).all()  # no test row trained or selected on
    if with_val:
        np.testing.assert_array_equal(ds.x_val, a["x_val"])
        np.testing.assert_array_equal(ds.x_train, a["x_train"])
    else:
        assert len(ds.x_train) + len(ds.x_val) == 80


def test_npz_half_split_is_refused(tmp_path):
    np.savez(
        tmp_path / "d.npz",
        x_train=np.ones((10, 2)),
        y_train=np.zeros(10, int),
        x_test=np.ones((3, 2)),
    )
    with pytest.raises(UserError, match=r"'x_test' without its pair"):
        load_data({"name": "npz", "path": str(tmp_path / "d.npz")})


def _pngs(root, n_per_class=6, size=(6, 5)):
    from PIL import Image

    rng = np.random.default_rng(1)
    for c, level in (("dark", 40), ("light", 210)):
        (root / c).mkdir(parents=True)
        for i in range(n_per_class):
            a = np.clip(level + rng.integers(-20, 20, size=(*size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(root / c / f"{i}.png")


def test_image_folder_reads_classes_and_shapes(tmp_path):
    _pngs(tmp_path / "train", 10)  # 20 rows: the loaders' minimum
    _pngs(tmp_path / "test", 2, size=(12, 10))
    ds = load_data(
        {"name": "image_folder", "path": "train", "test_path": "test", "grayscale": True},
        base_dir=tmp_path,
    )
    assert ds.labels == ["dark", "light"] and ds.image_shape == (1, 6, 5)
    assert (
        len(ds.x_holdout) == 4 and ds.n_features == 30
    )  # test images resized to the training size
    assert ds.x_holdout[ds.y_holdout == 0].mean() < 100 < ds.x_holdout[ds.y_holdout == 1].mean()
    rgb = load_data({"name": "image_folder", "path": str(tmp_path / "train"), "size": [4, 4]})
    assert rgb.image_shape == (3, 4, 4) and rgb.x_train.max() <= 255


def test_relative_paths_resolve_against_the_recipe_folder(tmp_path):
    (tmp_path / "data").mkdir()
    _csv(tmp_path / "data", CSV24)
    section = {"name": "csv", "path": "data/fruit.csv", "label": "kind"}
    assert load_data(section, base_dir=tmp_path).source["path"] == str(
        tmp_path / "data" / "fruit.csv"
    )
    with pytest.raises(UserError, match=r"relative to the recipe file's folder \(.*elsewhere\)"):
        load_data(section, base_dir=tmp_path / "elsewhere")
    absolute = {**section, "path": str(tmp_path / "data" / "fruit.csv")}
    assert load_data(absolute, base_dir=tmp_path / "elsewhere").num_classes == 3


def test_another_module_can_register_a_loader(tmp_path):
    import dataclasses

    from distill.data import from_pool
    from ground.recipe import Field

    def load_const(cfg):
        x = np.arange(40, dtype=np.float32).reshape(20, 2) + cfg["offset"]
        return from_pool(
            "const", x, np.arange(20) % 2, ["a", "b"], np.zeros(2, bool), None, cfg, {}
        )

    register_loader("const_test", load_const, {"offset": Field(int, 0, doc="unused")})
    try:
        assert "const_test" in DATA_FIELDS["name"].choices
        assert load_data({"name": "const_test", "offset": 1}).num_classes == 2
        with pytest.raises(UserError, match=r"'data.offset' is not known"):
            load_data({"name": "digits", "offset": 1})
    finally:
        del LOADERS["const_test"], LOADER_FIELDS["const_test"]
        DATA_FIELDS["name"] = dataclasses.replace(
            DATA_FIELDS["name"], choices=tuple(sorted(LOADERS))
        )


def test_class_count_is_bounded_for_every_loader(tmp_path, monkeypatch):
    """A label column holding an ID or a continuous value gives a class per row: refused with
    the count and the likely fix, whatever the loader (here CSV, whose labels are names)."""
    from distill import data

    rows = "".join(f"{i % 7}.0,red,{i}.5,k{i % 6}\n" for i in range(24))
    p = _csv(tmp_path, "size,colour,weight,kind\n" + rows)
    assert load_data({"name": "csv", "path": str(p), "label": "kind"}).num_classes == 6
    monkeypatch.setattr(data, "MAX_CLASSES", 5)
    with pytest.raises(UserError, match=r"has 6 classes; at most 5 .*data.label names the label"):
        load_data({"name": "csv", "path": str(p), "label": "kind"})
