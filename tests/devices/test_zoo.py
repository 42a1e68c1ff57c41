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
    x = {f: float(rng.integers(0, 2_000_000)) for f in zoo_fit.ALL_FEATURES}
    x.update(n_ops=float(rng.integers(3, 40)), const=1.0)
    return x


@pytest.mark.parametrize("core", ["cortex-m4f", "cortex-m55"])
def test_fit_recovers_known_costs_and_lomo_is_exact_then(core):
    rng = np.random.default_rng(0)
    names = zoo_fit.features_for(core)
    theta = dict(zip(names, rng.uniform(0.5, 30, len(names))))
    theta.update(n_ops=3000.0, const=20000.0)
    xs = [_x(rng) for _ in range(len(names) + 2)]
    cyc = [sum(theta[f] * x[f] for f in names) for x in xs]
    f = zoo_fit.fit(core, xs, cyc)
    assert list(f.theta) == list(names)
    for k, v in theta.items():
        assert f.theta[k] == pytest.approx(v, rel=1e-6)
    rows = zoo_fit.lomo(core, [f"m{i}" for i in range(len(xs))], xs, cyc)
    assert all(r["ratio"] == pytest.approx(1.0, rel=1e-6) for r in rows)
    assert zoo_fit.share_within(rows) == 1.0


def test_each_core_fits_its_own_features():
    """The M55 is fitted on Helium loop counts, the others on v1's work plus MEAN; every feature a
    core uses is one ``features`` computes."""
    m55, m4 = zoo_fit.features_for("cortex-m55"), zoo_fit.features_for("cortex-m4f")
    assert "conv_iters" in m55 and "conv" not in m55 and "conv" in m4 and "conv_iters" not in m4
    assert "mean" in m55 and "mean" in m4
    assert set(m55) | set(m4) == set(zoo_fit.ALL_FEATURES)
    assert zoo_fit.features_for("cortex-m7") == zoo_fit.features_for("cortex-m33") == m4


def test_lomo_sees_a_model_the_others_do_not_explain():
    rng = np.random.default_rng(1)
    n = len(zoo_fit.features_for("cortex-m7")) + 4
    xs = [_x(rng) for _ in range(n)]
    cyc = [sum(x[f] for f in zoo_fit.features_for("cortex-m7")) for x in xs]
    cyc[3] *= 2.0  # one model twice as slow as the costs say
    rows = zoo_fit.lomo("cortex-m7", [f"m{i}" for i in range(n)], xs, cyc)
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
    assert x["n_ops"] == len(a.ops) and x["arith"] > 0 and x["move"] > 0
    pool = sum(op.work for op in a.ops if op.kind == "pool" and op.op != "MEAN")
    mean = sum(op.work for op in a.ops if op.op == "MEAN")
    assert (x["pool"], x["mean"]) == (pool, mean) and mean > 0  # global average pooling is MEAN
    # every conv/depthwise/FC op has Helium loop counts at least its MACs / (4 x 16) ... at most MACs
    loops = ("conv_iters", "pointwise_iters", "depthwise_iters", "fc_iters")
    assert a.macs / 64 <= sum(x[k] for k in loops) <= a.macs


def _op(kind: str, macs: int, kernel: int, out_ch: int, out_elems: int, in_bytes: int):
    from devices.graph_costs import OpCost

    op = {"conv": "CONV_2D", "depthwise_conv": "DEPTHWISE_CONV_2D"}.get(kind, "FULLY_CONNECTED")
    return OpCost(0, op, kind, "int8", macs, 0, in_bytes, out_elems, kernel, out_elems, out_ch)


def _analysis(*ops):
    from devices.analysis import Analysis

    return Analysis(
        file="t", format="tflite", bytes=0, params=0, macs=sum(op.macs for op in ops),
        weight_bytes=0, weight_bytes_by_dtype={}, activation_bytes=0, peak_activation_bytes=0,
        peak_live_bytes=0, n_ops=len(ops), ops=list(ops),
    )  # fmt: skip


@pytest.mark.parametrize(
    "cin, lanes",
    [(16, 9), (17, 10), (1, 1)],  # 3x3 taps x C_in rounded up to 16 lanes per vector
)
def test_helium_counts_follow_lanes_and_blocks(cin, lanes):
    """A 3x3 conv, 10 output pixels (3 blocks of 4), 8 output channels: per block and channel,
    ceil(9 x C_in / 16) vector iterations; im2col copies one tap per call, C_in rounded to 16."""
    hw, co = 10, 8
    conv = _op("conv", hw * co * 9 * cin, 9, co, hw * co, hw * cin)
    x = zoo_fit.features(_analysis(conv))
    assert x["conv_iters"] == 3 * co * lanes and x["conv_blocks"] == 3 * co
    assert x["conv_copies"] == hw * 9 and x["conv_copy_iters"] == hw * 9 * -(-cin // 16)
    assert x["conv"] == conv.macs  # the other cores still see MACs


def test_helium_depthwise_and_fc_counts():
    # depthwise 3x3, 20 channels, 6 output pixels (stride 1: input bytes = pixels x channels)
    dw = _op("depthwise_conv", 6 * 20 * 9, 9, 20, 6 * 20, 6 * 20)
    x = zoo_fit.features(_analysis(dw))
    assert (x["depthwise_iters"], x["depthwise_blocks"]) == (2 * 5 * 9, 2 * 5)
    assert (x["depthwise_copies"], x["depthwise_copy_iters"]) == (6 * 9, 6 * 9 * 2)
    # one input channel, 12 outputs (> 8): CMSIS-NN runs it as a conv on the M55
    one = _op("depthwise_conv", 6 * 12 * 9, 9, 12, 6 * 12, 8 * 8)
    x = zoo_fit.features(_analysis(one))
    assert x["depthwise_iters"] == 0 and x["conv_iters"] == 2 * 12 * 1
    fc = _op("fully_connected", 33 * 10, 0, 0, 10, 33)  # 33 inputs, 10 outputs
    x = zoo_fit.features(_analysis(fc))
    assert x["fc_iters"] == 3 * 3 and x["fc_out"] == 10


def test_fit_refuses_too_few_models():
    rng = np.random.default_rng(2)
    n = len(zoo_fit.features_for("cortex-m4f"))
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
    old = {**doc, "zoo_fit": {**doc["zoo_fit"], "estimator": "zoo-cycles-v1"}}
    assert zoo_fit.from_document(old, "cortex-m4f") is None  # another version's costs: not used


def test_fresh_zoo_is_new_and_spans_the_same_range():
    """The fresh zoo (issue 37's out-of-sample check) shares no spec or file key with v1, keeps
    the families and limits, and spans the MAC range."""
    v1, fresh = zoo_models.zoo_specs("v1"), zoo_models.zoo_specs("fresh")
    assert fresh == zoo_models.zoo_specs("fresh") and len(fresh) == zoo_models.FRESH["n"] >= 16
    assert not {zoo_models.spec_key(s) for s in fresh} & {zoo_models.spec_key(s) for s in v1}
    assert not {(tuple(s["input"]), str(s["layers"])) for s in fresh} & {
        (tuple(s["input"]), str(s["layers"])) for s in v1
    }
    assert {s["family"] for s in fresh} == set(zoo_models.FAMILIES)
    assert all(s["generator"] == zoo_models.FRESH["generator"] for s in fresh)
    macs = [s["macs"] for s in fresh]
    assert min(macs) < 1e5 and max(macs) > 1e7 and max(macs) <= zoo_models.MAX_MACS
    for s in fresh:
        assert zoo_models.weight_bytes(s["input"], s["layers"]) <= zoo_models.MAX_WEIGHT_BYTES
    with pytest.raises(UserError, match="not one of v1, fresh"):
        zoo_models.zoo_specs("v3")


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
