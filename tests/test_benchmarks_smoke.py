"""Benchmarks: each imports and answers --help; the small pure helpers they rely on are right."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.run_all import NAMES


@pytest.mark.parametrize("name", NAMES + ("run_all",))
def test_help(name, capsys):
    mod = importlib.import_module(f"benchmarks.{name}")
    with pytest.raises(SystemExit) as exc:
        mod.main(["--help"])
    assert exc.value.code == 0
    assert "usage: python -m benchmarks." in capsys.readouterr().out


def test_rmse_against_binary_targets():
    from benchmarks.common import rmse_binary

    p = np.array([[0.2, 0.8], [0.6, 0.4]])
    assert rmse_binary(p, np.array([1, 0])) == pytest.approx(np.sqrt((0.2**2 + 0.4**2) / 2))


def test_epochs_scale_must_be_positive():
    from benchmarks import hinton_mnist

    with pytest.raises(SystemExit) as exc:
        hinton_mnist.main(["--epochs-scale", "0"])
    assert exc.value.code == 2


def test_digit_shift_moves_each_image_at_most_one_pixel():
    from benchmarks.ensemble_vs_member import shifted

    img = np.zeros((1, 64), np.float32)
    img[0, 3 * 8 + 4] = 1.0
    out = shifted(np.repeat(img, 300, 0), 8, np.random.default_rng(0))
    pos = out.argmax(1)
    assert out.sum(1).tolist() == [1.0] * 300
    assert set((pos // 8).tolist()) == {2, 3, 4} and set((pos % 8).tolist()) == {3, 4, 5}


# ---- issue 18: RMSE-based choices, the cache, one-hot (the papers' rules and quick runs: tests/benchmarks/)


def test_rmse_and_accuracy_rank_validation_predictions_differently():
    """Bucilua's nets are chosen by validation RMSE: a net that is right more often but confidently
    wrong once must lose to a hedging one, which accuracy would rank the other way."""
    import torch

    from benchmarks.common import val_score

    y = np.array([1, 1, 1, 1])

    def logits(p1):
        p = np.stack([1 - np.array(p1), np.array(p1)], 1)
        return torch.from_numpy(np.log(p))

    confident = logits([0.99, 0.99, 0.99, 1e-4])  # accuracy 0.75, RMSE 0.50
    hedging = logits([0.7, 0.7, 0.45, 0.45])  # accuracy 0.50, RMSE 0.44
    acc, rmse = val_score("accuracy", y), val_score("rmse", y)
    assert acc(confident) > acc(hedging)
    assert rmse(hedging) > rmse(confident)
    assert rmse(hedging)[0] == pytest.approx(-np.sqrt((0.09 * 2 + 0.55**2 * 2) / 4))


def _tiny_problem(n=300, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64)
    return x, y


def test_train_keeps_the_best_validation_rmse_epoch_or_the_last():
    import torch

    from benchmarks import common
    from distill.students import build_student

    x, y = _tiny_problem()
    xv, yv = _tiny_problem(200, seed=1)
    torch.manual_seed(0)
    net = build_student({"kind": "mlp", "hidden": [16]}, (6,), 2)
    fit = common.train(
        net, x, y, None, xv, yv, input_shape=(6,), epochs=12, loss="hard", seed=0,
        val_metric="rmse", keep="best", patience=50, lr=3e-2, batch_size=32,
    )  # fmt: skip
    scores = [h["val_score"][0] for h in fit.history]
    assert fit.best_epoch == int(np.argmax(scores)) + 1
    kept = common.rmse_binary(common.predict_proba(net, xv, (6,)), yv)
    assert kept == pytest.approx(-max(scores), abs=1e-6)
    torch.manual_seed(0)
    net = build_student({"kind": "mlp", "hidden": [16]}, (6,), 2)
    fit = common.train(
        net, x, y, None, xv, yv, input_shape=(6,), epochs=5, loss="hard", seed=0, keep="last",
        patience=1, lr=3e-2, batch_size=32,
    )  # fmt: skip
    assert fit.best_epoch == 5 and not fit.stopped_early
    assert [h["val_score"][0] for h in fit.history] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_cached_arrays_hit_on_the_same_key_and_miss_on_another(tmp_path):
    from benchmarks.common import cached_arrays

    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(3.0)}

    a, hit = cached_arrays("t", {"epochs": 60}, compute, root=tmp_path)
    b, hit2 = cached_arrays("t", {"epochs": 60}, compute, root=tmp_path)
    _, hit3 = cached_arrays("t", {"epochs": 61}, compute, root=tmp_path)
    assert (hit, hit2, hit3) == (False, True, False) and len(calls) == 2
    np.testing.assert_array_equal(a["a"], b["a"])


def test_one_hot_encodes_nominals_and_scales_continuous():
    from benchmarks.bucilua_munge import OneHot

    x = np.array([[1.0, 3.0], [3.0, 7.0], [5.0, 3.0]])
    enc = OneHot(x, np.array([False, True]))
    z = enc(np.vstack([x, [[3.0, 9.0]]]))
    assert enc.width == 3 and z.shape == (4, 3)
    np.testing.assert_allclose(z[:3, 0], (x[:, 0] - 3.0) / np.std(x[:, 0]), rtol=1e-6)
    np.testing.assert_array_equal(z[:, 1:], [[1, 0], [0, 1], [1, 0], [0, 0]])  # unseen value 9


def test_max_norm_projects_incoming_weights():
    import torch
    from torch import nn

    from benchmarks.common import max_norm

    net = max_norm(nn.Sequential(nn.Linear(4, 3)), 0.5)
    with torch.no_grad():
        net[0].weight.mul_(10.0)
    net(torch.zeros(1, 4))
    assert net[0].weight.norm(dim=1).max().item() <= 0.5 + 1e-6


def test_kws_candidates_names_round_trip_and_stacks_on_the_board():
    from benchmarks.kws_candidates import EXTRA, parse_names, stacks_on
    from devices.catalog import load_catalog
    from tinyship.search import spec_name

    names = EXTRA + ",dscnn-c32-b3-s2,dscnn-c24-b4-s1-k5-d2"
    # the recipe's student strides its blocks; a name without -d still means block_stride 1
    base = {"kind": "dscnn", "first_kernel": 3, "block_stride": 2, "dropout": 0.1, "search": {}}
    specs = parse_names(names, base)
    assert [spec_name(s) for s in specs] == names.split(",")
    assert specs[-1]["block_stride"] == 2 and specs[-1]["first_kernel"] == 5
    assert specs[-2]["block_stride"] == 1
    assert all(s["dropout"] == 0.1 and "search" not in s for s in specs)
    with pytest.raises(SystemExit, match="dscnn-c24-b3"):
        parse_names("dscnn-c24-b3", {})
    cat = load_catalog()
    on = stacks_on(cat, ["cortex-m4f-stm32l4r5"])
    assert on[0] == cat.default_stack
    assert set(on) == {
        s.name
        for s in cat.stacks.values()
        if "cortex-m4f-stm32l4r5" in {r["board"] for r in s.runs}
    }


def test_kws_speakers_verdict_a_clip_short_of_the_bar_fails_and_says_so():
    from benchmarks.kws_speakers import SPEAKERS, verdict

    folds = [{"distilled": 0.8499, "hard": 0.70}] * len(SPEAKERS)
    outcome, why = verdict(folds)
    assert outcome == "fail" and "84.99%" in why and "+14.99 points" in why
    assert verdict([{"distilled": 0.85, "hard": 0.80}] * len(SPEAKERS))[0] == "pass"
    assert verdict([{"distilled": 0.90, "hard": 0.86}] * len(SPEAKERS))[0] == "fail"  # gain < 5


@pytest.mark.skipif(
    not (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fsdd").is_dir(),
    reason="../shared/data/fsdd not present",
)
def test_kws_speakers_quick_averages_seeds_per_fold(tmp_path):
    """Two held-out speakers x two seeds on a few clips: each fold is the mean of its seeds, the
    issue's top-level folds shape stays, and two speakers of six is 'incomplete', not a verdict."""
    from benchmarks import kws_speakers

    argv = ["--quick", "--speakers", "george,nicolas", "--seeds", "0,1", "--search", "/none"]
    kws_speakers.main([*argv, "--work", str(tmp_path / "w"), "--out-dir", str(tmp_path)])
    doc = json.loads((tmp_path / "kws_speakers.json").read_text())
    assert [f["speaker"] for f in doc["folds"]] == ["george", "nicolas"]
    for f in doc["folds"]:
        assert [r["seed"] for r in f["seeds"]] == [0, 1]
        for k in ("teacher", "distilled", "hard"):
            assert f[k] == pytest.approx(sum(r[k] for r in f["seeds"]) / 2)
    res = doc["results"]
    assert res["verdict"] == "incomplete" and res["seeds"] == [0, 1]
    assert res["seed_sd"]["distilled"] is not None and doc["commit"] is not None
    md = (tmp_path / "kws_speakers.md").read_text()
    assert "seeds 0, 1: each fold's figures are the mean over them" in md
    # two worker processes give the same figures, fold by fold and seed by seed
    kws_speakers.main(
        [*argv, "--jobs", "2", "--work", str(tmp_path / "w2"), "--out-dir", str(tmp_path / "j2")]
    )
    assert json.loads((tmp_path / "j2" / "kws_speakers.json").read_text())["folds"] == doc["folds"]


def test_results_md_shows_every_result_file_as_written():
    """RESULTS.md is generated from the result files: each section must be its file's text (a
    figure edited by hand or a stale section fails here; refresh with `run_all --summary`)."""
    from benchmarks import common, run_all

    shown = (common.ROOT / "benchmarks" / "RESULTS.md").read_text()
    for name in run_all.NAMES + run_all.OWN_RUN:
        section = run_all._section(name)
        assert section in shown, (
            f"RESULTS.md is stale for {name}: python -m benchmarks.run_all --summary"
        )
    assert (common.ROOT / "benchmarks" / "RESULTS.notes.md").read_text() in shown
