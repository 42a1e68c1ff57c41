"""Data loaders: deterministic disjoint splits, the real files' quirks, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from distill.data import LOADERS, Normalizer, _split, load_data
from ground.errors import UserError


def test_digits_splits_are_deterministic_and_disjoint():
    a, b = load_data({"name": "digits"}), load_data({"name": "digits"})
    np.testing.assert_array_equal(a.x_holdout, b.x_holdout)
    assert a.image_shape == (1, 8, 8) and a.num_classes == 10
    n = len(a.x_train) + len(a.x_val) + len(a.x_holdout)
    assert n == 1797 and len(a.x_holdout) == round(0.2 * 1797)
    c = load_data({"name": "digits", "split_seed": 1})
    assert not np.array_equal(a.x_holdout, c.x_holdout)
    tr, va, ho = _split(1797, 0.15, 0.2, 0)
    assert len(set(tr) | set(va) | set(ho)) == 1797 == len(tr) + len(va) + len(ho)


def test_normalizer_is_fitted_on_train_only():
    x = np.array([[0.0, 1.0], [2.0, 1.0]], np.float32)
    col = Normalizer.fit(x, "column")
    np.testing.assert_allclose(col(x), [[-1, 0], [1, 0]])  # a constant column keeps std 1
    sc = Normalizer.fit(x, "scalar")
    assert (
        sc.card()["mean"] == pytest.approx(1.0)
        and sc.card()["note"] == "x_model = (x_raw - mean) / std"
    )


def test_unknown_data_name():
    with pytest.raises(
        UserError,
        match=r"data.name' must be one of 'adult', 'audio_folder', 'csv', 'digits', 'image_folder', "
        r"'letter', 'mnist', 'npz'; got 'cifar'",
    ):
        load_data({"name": "cifar"})


def test_missing_path_names_it_and_the_fix(tmp_path):
    with pytest.raises(
        UserError,
        match=r"data.path' points to '.*nowhere.npz', which does not exist .* relative to the recipe file",
    ):
        load_data({"name": "npz", "path": str(tmp_path / "nowhere.npz")})


def test_nan_in_npz_is_counted_and_located(tmp_path):
    x = np.ones((50, 3), np.float32)
    x[7, 2] = np.nan
    x[9, 0] = np.inf
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(50) % 2)
    with pytest.raises(UserError, match=r"has 2 NaN/inf values \(first at row 7, column 2\)"):
        load_data({"name": "npz", "path": str(tmp_path / "d.npz")})


def test_npz_images_keep_their_shape(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "img.npz", x=rng.random((60, 5, 6), dtype=np.float32), y=np.arange(60) % 3)
    ds = load_data({"name": "npz", "path": str(tmp_path / "img.npz")})
    assert ds.image_shape == (1, 5, 6) and ds.n_features == 30 and ds.num_classes == 3


def test_npz_with_pickled_objects_is_refused(tmp_path):
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}] * 20, dtype=object), y=np.zeros(20, int))
    with pytest.raises(UserError, match=r"cannot be read as an .npz without pickles"):
        load_data({"name": "npz", "path": str(tmp_path / "obj.npz")})


def test_adult_real_file_quirks(shared_data):
    ds = load_data({"name": "adult", "path": str(shared_data / "uci_adult")})
    assert ds.nominal.sum() == 8 and ds.nominal.shape == (14,)
    assert len(ds.x_holdout) == 16281  # the test file: header line skipped, trailing dots stripped
    assert len(ds.x_train) + len(ds.x_val) == 32561
    assert ds.labels == ["<=50K", ">50K"]
    assert (ds.y_holdout == 1).sum() == 3846  # '>50K.' rows of adult.test
    # nominal columns hold integer codes
    assert np.all(ds.x_train[:, ds.nominal] == np.round(ds.x_train[:, ds.nominal]))


@pytest.mark.parametrize(
    "task,classes,positives", [("letters", 26, None), ("p1", 2, 753), ("p2", 2, None)]
)
def test_letter_tasks(shared_data, task, classes, positives):
    ds = load_data({"name": "letter", "path": str(shared_data / "uci_letter"), "task": task})
    assert ds.num_classes == classes and ds.n_features == 16
    y = np.concatenate([ds.y_train, ds.y_val, ds.y_holdout])
    assert len(y) == 20000
    if positives is not None:
        assert int(y.sum()) == positives  # 753 'O' rows in letter-recognition.data


def test_mnist_sha256_and_shapes(shared_data):
    ds = load_data(
        {"name": "mnist", "path": str(shared_data / "mnist"), "max_train": 500, "max_val": 100}
    )
    assert ds.image_shape == (1, 28, 28) and len(ds.x_holdout) == 10000
    assert (ds.y_holdout == 3).sum() == 1010  # the figure Hinton et al. 2015 quote
    assert len(ds.x_train) == 500 and ds.x_train.max() == 255.0


def test_loader_registry_matches_recipe_choices():
    from distill.data import DATA_FIELDS

    assert DATA_FIELDS["name"].choices == tuple(
        sorted(LOADERS)
    )  # sorted: import order must not matter


# ---- bad data sets end in one UserError (issue 14 items 6 and 7) ----


@pytest.mark.parametrize("n", [0, 5])
def test_npz_with_0_or_5_rows(tmp_path, n):
    np.savez(tmp_path / "d.npz", x=np.ones((n, 3), np.float32), y=np.arange(n) % 2)
    with pytest.raises(
        UserError, match=r"holds 0 rows|5 rows is too small: tinyship needs at least 20"
    ):
        load_data({"name": "npz", "path": str(tmp_path / "d.npz")})


@pytest.mark.parametrize("label", [2**62, 10**9])
def test_npz_with_a_huge_label_is_refused_at_once(tmp_path, label):
    y = np.arange(60) % 2
    y[3] = label
    np.savez(tmp_path / "d.npz", x=np.ones((60, 3), np.float32), y=y)
    with pytest.raises(UserError, match=rf"y holds the label {label}; .*C at most 10000"):
        load_data({"name": "npz", "path": str(tmp_path / "d.npz")})


def test_a_label_only_in_the_holdout_is_refused(tmp_path):
    from distill.data import _split

    n = 100
    _, _, ho = _split(n, 0.15, 0.2, 0)
    y = np.arange(n) % 2
    y[ho[0]] = 2  # class 2 exists only in the holdout split
    np.savez(
        tmp_path / "d.npz", x=np.random.default_rng(0).normal(size=(n, 3)).astype(np.float32), y=y
    )
    with pytest.raises(
        UserError, match=r"holdout split has labels \['2'\] that the training split never has"
    ):
        load_data({"name": "npz", "path": str(tmp_path / "d.npz")})
