"""Hinton et al. 2015 §5 specialists: the mechanics, and a figure on sklearn digits.

Recorded figure (digits, 1,257 train / 359 holdout rows, scalar-normalized, generalist mlp [64]
15 epochs, 3 specialists x 8 epochs, top_n 2; see benchmarks/RESULTS.md): generalist 0.9582,
combined 0.9582 holdout accuracy, subsets [[0, 4, 6], [1, 8], [2, 3, 5, 7, 9]]. The specialists add
training on top of the generalist, so no improvement is
asserted; only that the combination is not worse by more than 2 points.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill import specialists as SP
from distill.data import Normalizer, load_data
from distill.students import STUDENTS
from ground.errors import UserError

SECTION = {
    "n_specialists": 3,
    "generalist": {"kind": "mlp", "hidden": [64]},
    "generalist_epochs": 15,
    "epochs": 8,
    "top_n": 2,
}


@pytest.fixture(scope="module")
def digits():
    ds = load_data({"name": "digits"})
    nz = Normalizer.fit(ds.x_train, "scalar")
    return ds, nz(ds.x_train), nz(ds.x_holdout)


@pytest.fixture(scope="module")
def fitted(digits):
    ds, xtr, _ = digits
    return SP.fit_specialists(SECTION, xtr, ds.y_train, input_shape=(64,), num_classes=10, seed=0)


def test_subsets_partition_the_classes(fitted):
    flat = sorted(c for s in fitted.subsets for c in s)
    assert flat == list(range(10))
    assert len(fitted.subsets) == 3 and all(fitted.subsets)


def test_confusable_subsets_group_classes_predicted_together():
    # classes 0/1 are confused with each other, 2/3 with each other: the clusters must find that
    rng = np.random.default_rng(0)
    p = np.zeros((400, 4))
    for i in range(400):
        pair = (0, 1) if i % 2 else (2, 3)
        a = rng.uniform(0.2, 0.8)
        p[i, pair[0]], p[i, pair[1]] = a, 1 - a
    assert SP.confusable_subsets(p, 2, seed=0) == [[0, 1], [2, 3]]


def test_dustbin_mapping():
    y = np.array([0, 1, 2, 3, 4, 5, 2])
    assert SP.dustbin_labels(y, [2, 5]).tolist() == [2, 2, 0, 2, 2, 1, 0]
    q = np.array([[0.1, 0.2, 0.3, 0.4]])
    np.testing.assert_allclose(SP.to_specialist_space(q, [3, 1]), [[0.4, 0.2, 0.4]])


@pytest.mark.parametrize("kind", [k for k in STUDENTS if k in ("mlp", "cnn", "dscnn")])
def test_specialist_copies_generalist_and_adds_a_dustbin(kind):
    spec = {"kind": kind}
    torch.manual_seed(0)
    g = SP.build_student(spec, (1, 8, 8), 10)
    s = SP.specialist_from(g, [2, 7])
    x = torch.randn(5, 1, 8, 8)
    g.eval(), s.eval()
    with torch.no_grad():
        gl, sl = g(x), s(x)
    assert sl.shape == (5, 3)
    torch.testing.assert_close(sl[:, :2], gl[:, [2, 7]])


def test_no_active_specialist_gives_the_generalist(fitted, digits):
    _, _, xho = digits
    pg, pms, _ = fitted.parts(xho[:50])
    none = np.zeros((50, len(fitted.subsets)), bool)
    q = SP.combine(pg, pms, fitted.subsets, none, steps=100)
    np.testing.assert_allclose(q, pg, atol=1e-9)


def test_combination_has_the_analytic_optimum():
    # one active specialist covering every class (dustbin 0): argmin KL(pg||q)+KL(pm||q) is (pg+pm)/2
    rng = np.random.default_rng(1)
    pg = rng.dirichlet(np.ones(5), size=20)
    pm = np.concatenate([rng.dirichlet(np.ones(5), size=20), np.zeros((20, 1))], axis=1)
    q = SP.combine(pg, [pm], [list(range(5))], np.ones((20, 1), bool), steps=1500, lr=0.05)
    np.testing.assert_allclose(q, (pg + pm[:, :5]) / 2, atol=2e-3)


def test_combined_probabilities_and_objective(fitted, digits):
    _, _, xho = digits
    pg, pms, act = fitted.parts(xho)
    assert act.any(), "top_n 2 must activate specialists"
    q = SP.combine(pg, pms, fitted.subsets, act, steps=200)
    assert (q >= 0).all()
    np.testing.assert_allclose(q.sum(1), 1.0, atol=1e-9)
    before = SP.kl_objective(pg, pg, pms, fitted.subsets, act)
    after = SP.kl_objective(q, pg, pms, fitted.subsets, act)
    assert after.sum() < before.sum()
    assert (after <= before + 1e-6).mean() > 0.98


def test_combined_not_worse_than_generalist(fitted, digits):
    ds, _, xho = digits
    report = SP.evaluate(fitted, xho, ds.y_holdout)
    print(
        f"\ndigits holdout n={report.n}: generalist {report.generalist_accuracy:.4f}, "
        f"combined {report.combined_accuracy:.4f}, subsets {report.subsets}, "
        f"mean active specialists {report.active_mean:.2f}"
    )
    assert report.generalist_accuracy > 0.85
    assert report.combined_accuracy >= report.generalist_accuracy - 0.02


def test_member_protocol(fitted, digits):
    _, _, xho = digits
    member = SP.SpecialistsMember(fitted)
    p = member.predict_proba(xho[:7])
    assert p.dtype == np.float32 and p.shape == (7, 10)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    nbytes, how = member.serialized_bytes()
    assert nbytes > 4 * sum(p.numel() for p in fitted.generalist.parameters())
    assert "3 specialists" in how
    ensemble = pytest.importorskip("distill.ensemble")
    t = ensemble.Teacher(members=[member], weights=np.ones(1), combine="mean")
    np.testing.assert_allclose(t.predict_proba(xho[:7]), p, atol=1e-5)


@pytest.mark.parametrize(
    "section, message",
    [
        (
            {"n_specialist": 2},
            r"recipe key 'specialists.n_specialist' is not known. Did you mean 'n_specialists'\?",
        ),
        (
            {"n_specialists": 11},
            r"'specialists.n_specialists' must be between 1 and the number of classes \(10\); got 11",
        ),
        ({"top_n": 0}, r"'specialists.top_n' must be in the range \[1, inf\]; got 0"),
        (
            {"top_n": 12},
            r"'specialists.top_n' must be at most the number of classes \(10\); got 12",
        ),
        (
            {"generalist": {"hidden": [8]}},
            r"'specialists.generalist': must be a student spec mapping with a 'kind' key",
        ),
    ],
)
def test_recipe_errors(section, message, digits):
    ds, xtr, _ = digits
    base = {"generalist_epochs": 1, "epochs": 1}
    with pytest.raises(UserError, match=message):
        SP.fit_specialists(
            {**base, **section},
            xtr[:200],
            ds.y_train[:200],
            input_shape=(64,),
            num_classes=10,
            seed=0,
        )


def test_specialists_teach_a_student_through_the_distill_stage(tmp_path):
    """The recipe's specialists section becomes the teacher of one small student (student/)."""
    import json

    from distill.pipeline import run as distill

    recipe = {
        "name": "spec-test",
        "data": {"name": "digits", "normalize": "scalar"},
        "specialists": {**SECTION, "generalist_epochs": 5, "epochs": 2, "combine_steps": 50},
        "teacher": {"selection": "none"},
        "transfer": {"method": "original"},
        "student": {"kind": "mlp", "hidden": [16]},
        "train": {"epochs": 3, "baseline": False},
    }
    res = distill(recipe, tmp_path / "run", progress=False)
    card = json.loads((tmp_path / "run" / "student" / "card.json").read_text())
    (member,) = card["teacher"]["members"]
    assert member["name"] == "specialists" and member["bytes"] > 0
    assert member["input"] == "normalized"  # fitted on data.normalize's features, fed them
    assert card["metrics"]["holdout"]["teacher"]["accuracy"] > 0.8
    assert res.card["metrics"]["holdout"]["student"]["accuracy"] > 0.5


def test_specialists_recipe_runs_through_the_cli(tmp_path, shared_data):
    """recipes/specialists.yaml through ``python -m distill``, epochs cut to seconds."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    repo = Path(__file__).resolve().parents[2]
    recipe = yaml.safe_load((repo / "recipes" / "specialists.yaml").read_text())
    recipe["data"]["path"] = str((repo / "recipes" / recipe["data"]["path"]).resolve())
    recipe["data"].update(max_train=1500, max_val=300, max_holdout=500)
    recipe["specialists"].update(generalist_epochs=2, epochs=1, combine_steps=20)
    recipe["transfer"]["size_multiplier"] = 1
    path = tmp_path / "specialists.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "PYTHONPATH": str(repo)}
    cmd = [sys.executable, "-m", "distill", "--recipe", str(path), "--out", str(tmp_path / "run")]
    proc = subprocess.run(
        [*cmd, "--epochs", "2", "--quiet"], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    card = json.loads((tmp_path / "run" / "student" / "card.json").read_text())
    assert [m["name"] for m in card["teacher"]["members"]] == ["specialists"]
    assert card["metrics"]["holdout"]["teacher"]["accuracy"] > 1 / 26  # better than chance
