"""The generated zoo (issue 37): deterministic specs and files, and the estimator fitted on it."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from benchmarks import zoo_models
from devices import zoo_fit
from ground.errors import UserError


def test_specs_are_deterministic_and_cover_the_issue():
    a, b = zoo_models.specs(), zoo_models.specs()
    assert a == b
    assert len(a) >= 40 and len({s["name"] for s in a}) == len(a)
    macs = [s["macs"] for s in a]
    assert min(macs) >= 10_000 and max(macs) <= 20_000_000
    assert min(macs) < 20_000 and max(macs) > 15_000_000  # the range is used, not just allowed
    ops = {layer[0] for s in a for layer in s["layers"]}
    assert {"conv", "dw", "pw", "fc", "res", "cat", "maxpool", "avgpool"} <= ops
    assert len({tuple(s["input"]) for s in a}) > 20
    assert {layer[2] for s in a for layer in s["layers"] if layer[0] == "conv"} >= {1, 3, 5}
    assert [zoo_models.spec_key(s) for s in a] == [zoo_models.spec_key(s) for s in b]
    assert zoo_models.specs(seed=1) != a


def test_walk_counts_macs_like_the_file():
    """The spec's MAC count equals what the analysis of the built file finds."""
    from devices import analyse

    spec = zoo_models.specs()[1]
    path = zoo_models.build(spec)
    a = analyse(path)
    assert a.macs == spec["macs"]


def test_build_is_deterministic(tmp_path):
    spec = min(zoo_models.specs(), key=lambda s: s["macs"])
    one = zoo_models.build(spec, tmp_path / "a")
    two = zoo_models.build(spec, tmp_path / "b")
    assert hashlib.sha256(one.read_bytes()).digest() == hashlib.sha256(two.read_bytes()).digest()
    assert zoo_models.build(spec, tmp_path / "a") == one  # cached by key


def _x(rng) -> dict[str, float]:
    """A synthetic feature row (the fit's own input), as zoo_fit.features makes from a file."""
    x = {f: float(rng.integers(0, 2_000_000)) for f in zoo_fit.FEATURES}
    x.update(n_ops=float(rng.integers(3, 40)), const=1.0)
    return x


def test_fit_recovers_known_costs_and_lomo_is_exact_then():
    rng = np.random.default_rng(0)
    theta = dict(zip(zoo_fit.FEATURES, rng.uniform(0.5, 30, len(zoo_fit.FEATURES))))
    theta.update(n_ops=3000.0, const=20000.0)
    xs = [_x(rng) for _ in range(16)]
    cyc = [sum(theta[f] * x[f] for f in zoo_fit.FEATURES) for x in xs]
    f = zoo_fit.fit("cortex-m4f", xs, cyc)
    for k, v in theta.items():
        assert f.theta[k] == pytest.approx(v, rel=1e-6)
    rows = zoo_fit.lomo("cortex-m4f", [f"m{i}" for i in range(16)], xs, cyc)
    assert all(r["ratio"] == pytest.approx(1.0, rel=1e-6) for r in rows)
    assert zoo_fit.share_within(rows) == 1.0


def test_lomo_sees_a_model_the_others_do_not_explain():
    rng = np.random.default_rng(1)
    xs = [_x(rng) for _ in range(16)]
    cyc = [sum(x.values()) for x in xs]
    cyc[3] *= 2.0  # one model twice as slow as the costs say
    rows = zoo_fit.lomo("cortex-m7", [f"m{i}" for i in range(16)], xs, cyc)
    assert rows[3]["ratio"] > 1.5
    assert zoo_fit.share_within(rows) < 1.0


def test_features_of_a_file():
    """Every MAC of a built zoo file lands in one MAC feature; every operator is counted."""
    from devices import analyse

    spec = next(s for s in zoo_models.specs() if s["family"] == "mixed")
    a = analyse(zoo_models.build(spec))
    x = zoo_fit.features(a)
    assert (
        sum(x[k] for k in ("conv", "pointwise", "depthwise3x3", "depthwise", "fc"))
        == a.macs
        == spec["macs"]
    )
    assert x["n_ops"] == len(a.ops) and x["pool"] > 0 and x["arith"] > 0 and x["move"] > 0


def test_fit_refuses_too_few_models():
    rng = np.random.default_rng(2)
    n = len(zoo_fit.FEATURES)
    with pytest.raises(UserError, match=f"need at least {n}"):
        zoo_fit.fit("cortex-m4f", [_x(rng) for _ in range(3)], [1e5] * 3)
    with pytest.raises(UserError, match="must be > 0"):
        zoo_fit.fit("cortex-m4f", [_x(rng) for _ in range(n)], [0.0] * n)


def test_committed_fit_predicts():
    from devices import estimator_bands

    doc = estimator_bands.document()
    assert not isinstance(doc, str), doc
    from devices import analyse

    a = analyse(zoo_models.build(zoo_models.specs()[0]))
    for core in zoo_models.CORES:
        c = zoo_fit.predict_cycles(core, a)
        assert c is not None and c > 0
    assert zoo_fit.predict_cycles("pxa270", a) is None


@pytest.mark.slow
def test_tiny_zoo_emulated_fit_and_lomo():
    """The smallest zoo models built, emulated on the M4F, fitted and checked leave-one-out."""
    from devices import analyse

    small = sorted(zoo_models.specs(), key=lambda s: s["macs"])[: len(zoo_fit.FEATURES) + 2]
    rows = [zoo_models.emulate_one(zoo_models.build(s), "cortex-m4f") for s in small]
    assert all(r["bit_exact"]["identical"] and r["cycles"] > 0 for r in rows)
    xs = [zoo_fit.features(analyse(zoo_models.build(s))) for s in small]
    lomo = zoo_fit.lomo("cortex-m4f", [s["name"] for s in small], xs, [r["cycles"] for r in rows])
    assert all(r["ratio"] and 0.5 < r["ratio"] < 2 for r in lomo)
