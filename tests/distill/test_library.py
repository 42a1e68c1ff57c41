"""The model library: every registered model fits digits and gives valid probabilities."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from distill.building import build_teacher
from distill.ensemble import Teacher
from distill.library import MODELS, SHAPED, build_library
from ground.errors import UserError


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    """On the shared 2-core box, multi-threaded BLAS under load is 100x slower than one thread."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    return x[:700], d.target[:700], x[700:1100], d.target[700:1100]


@pytest.mark.parametrize("name", list(MODELS))
def test_each_model_fits_and_predicts(name, digits):
    x, y, xv, yv = digits
    shape = (1, 8, 8) if name in SHAPED else None  # conv / summary members need the image shape
    member = build_library([name], x, y, seed=0, input_shape=shape)[name]
    assert member.name == name and member.fit_seconds < 30
    p = Teacher([member], np.ones(1), num_classes=10).predict_proba(xv)
    assert p.shape == (len(xv), 10)
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)
    assert (p.argmax(1) == yv).mean() > 0.8, name
    nbytes, how = member.serialized_bytes()
    assert nbytes > 1000 and how
    assert member.fingerprint() == member.fingerprint()


def test_same_seed_same_model(digits):
    x, y, xv, _ = digits
    a = build_library(["torch_mlp", "rf"], x, y, seed=3)
    b = build_library(["torch_mlp", "rf"], x, y, seed=3)
    for n in a:
        np.testing.assert_allclose(a[n].predict_proba(xv), b[n].predict_proba(xv), atol=1e-6)
    assert a["rf"].fingerprint() == b["rf"].fingerprint()


def test_unknown_model_is_refused(digits):
    x, y, _, _ = digits
    with pytest.raises(
        UserError, match=r"library model\(s\) \['xgboost'\] are not known; allowed: rf, "
    ):
        build_library(["rf", "xgboost"], x, y, seed=0)


def test_build_teacher_from_library_runs_selection(digits):
    x, y, xv, yv = digits
    section = {
        "library": ["knn", "logreg", "mlp_small"],
        "selection_iters": 10,
        "selection_init": 1,
    }
    t = build_teacher(section, x, y, xv, yv, seed=0, base_dir=Path("."))
    d = t.describe()
    assert d["selection"]["metric"] == "nll" and len(d["selection"]["history"]) == 11
    assert abs(sum(m["weight"] for m in d["members"]) - 1) < 1e-6
    assert d["bytes"] == sum(m["bytes"] for m in d["members"] if m["weight"] > 0)
    with pytest.raises(UserError, match=r"teacher\.selection 'greedy' needs a validation split"):
        build_teacher(section, x, y, None, None, seed=0, base_dir=Path("."))
    t2 = build_teacher(
        {**section, "selection": "none"}, x, y, None, None, seed=0, base_dir=Path(".")
    )
    assert t2.selection is None and np.all(t2.weights == 1)


@pytest.mark.slow
def test_whole_library_fits_digits_in_under_a_minute_on_one_core():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    t0 = time.perf_counter()
    lib = build_library(list(MODELS), x[:1400], d.target[:1400], seed=0, input_shape=(1, 8, 8))
    total = time.perf_counter() - t0
    assert total < 60, {n: m.fit_seconds for n, m in lib.items()}
