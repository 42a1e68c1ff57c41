"""mcu-stack-v3: the reference models' layers from their shapes, the zoo estimate split into conv-like
and FC cycles, and the per-stack factors fitted and held out (issue 37, task B)."""

import dataclasses
import math

import pytest

from devices import analyse, load_catalog, reference_layers, stacks_v3, zoo_fit
from devices.estimator_bands import document
from ground.errors import UserError

CAT = load_catalog()
FIELDS = ("op", "kind", "dtype", "kernel", "macs", "out_elems", "out_channels", "in_bytes")


def _fits() -> dict[str, zoo_fit.CoreFit]:
    doc = document()
    assert not isinstance(doc, str), doc
    fits = {c: zoo_fit.from_document(doc, c) for c in ("cortex-m4f", "cortex-m7", "cortex-m33")}
    assert all(fits.values()), "the committed bands file lacks a zoo fit for a published core"
    return fits


def test_layer_shapes_of_kws_give_the_operators_of_its_file(shared_data):
    """The builder that writes ic and vww from their shapes, run on kws's shapes, gives the analysis
    of kws_ref_model.tflite op for op, and so the zoo estimator's features of the file."""
    a = analyse(shared_data / "mlperf_tiny" / "kws_ref_model.tflite")
    built = reference_layers.ops_from_shapes("kws")
    assert [[getattr(o, f) for f in FIELDS] for o in built] == [
        [getattr(o, f) for f in FIELDS] for o in a.ops
    ]
    shaped = reference_layers.reference_analysis(CAT, "kws")
    assert zoo_fit.features(shaped) == zoo_fit.features(a)


@pytest.mark.parametrize("model", ["ic", "vww", "kws"])
def test_layer_shapes_give_the_catalogs_counted_totals(model):
    ops = reference_layers.ops_from_shapes(model)
    reference_layers.check_totals(CAT, model, ops)  # raises on any difference
    t = reference_layers.totals(ops)
    assert t["n_ops"] == CAT.reference_models[model]["n_ops"] and t["outputs"] > 0


def test_a_catalog_that_disagrees_with_the_shapes_is_named():
    refs = {**CAT.reference_models, "ic": {**CAT.reference_models["ic"], "outputs": 1}}
    cat = dataclasses.replace(CAT, reference_models=refs)
    with pytest.raises(UserError, match=r"reference model 'ic'.*reference_models\.ic says"):
        reference_layers.reference_analysis(cat, "ic")
    with pytest.raises(UserError, match=r"no layer shapes for reference model 'lenet'; known: ic"):
        reference_layers.ops_from_shapes("lenet")


def test_the_split_adds_up_to_the_zoo_estimate_and_fc_is_only_fc():
    fits = _fits()
    feats = stacks_v3.reference_features(CAT)
    assert set(feats) == {"kws", "ad", "ic", "vww"}
    for cf in fits.values():
        for x in feats.values():
            conv, fc = stacks_v3.split_cycles(cf, x)
            assert conv + fc == pytest.approx(cf.predict(x), rel=1e-12)
        assert stacks_v3.split_cycles(cf, feats["ic"])[1] < 0.01 * cf.predict(feats["ic"])
        conv, fc = stacks_v3.split_cycles(cf, feats["ad"])
        assert fc > 0.9 * (conv + fc)  # the autoencoder is FC layers


def test_the_board_enters_through_its_issue_width_and_clock():
    fits, x = _fits(), stacks_v3.reference_features(CAT)["ic"]
    m7 = CAT.devices["cortex-m7-stm32h7a3"]
    conv, fc = stacks_v3.split_cycles(fits["cortex-m7"], x)
    b = stacks_v3.base_s(m7, x, fits)
    assert m7.value("issue_width") == 2
    assert b == pytest.approx((conv / (2 * m7.clock_hz), fc / (2 * m7.clock_hz)))
    pda = next(d for d in CAT.devices.values() if (d.emulation or {}).get("core") == "pxa270")
    assert stacks_v3.base_s(pda, x, fits) is None  # no zoo fit for its core: no v3 estimate


def _synthetic(k: dict[str, tuple[float, float]]):
    """The catalog with every published run replaced by what v3 with factors ``k`` predicts."""
    fits, feats = _fits(), stacks_v3.reference_features(CAT)
    stacks = {}
    for name, st in CAT.stacks.items():
        truth = stacks_v3.StackFitV3(name, *k[name], [], [], 0)
        runs = [
            {
                **r,
                "inferences_per_s": 1
                / truth.predict_s(feats[r["model"]], CAT.devices[r["board"]], fits),
            }
            for r in st.runs
        ]
        stacks[name] = dataclasses.replace(st, runs=runs)
    return dataclasses.replace(CAT, stacks=stacks), fits, feats


def test_the_fit_recovers_the_factors_that_made_the_runs():
    k = {"tflm-cmsis-nn": (2.0, 1.5), "x-cube-ai": (0.8, 1.3), "microtvm-cmsis-nn": (1.05, 1.2)}
    cat, fits, feats = _synthetic(k)
    for name, (kc, kf) in k.items():
        f = stacks_v3.fit_stack(cat, name, fits, feats)
        assert f.n_runs == len(CAT.stacks[name].runs)
        # the weak tie of log k_fc to log k_conv pulls a little against exact data
        assert f.k_conv == pytest.approx(kc, rel=0.02) and f.k_fc == pytest.approx(kf, rel=0.02)


def test_held_out_is_exact_when_one_factor_made_the_runs_and_ad_shows_the_fc_limit():
    """With k_fc = k_conv every held-out ratio is 1; with them apart, ad withheld (the only FC model)
    is predicted with k_conv: its ratio is about k_fc / k_conv, v3's known limit."""
    same = {n: (1.1, 1.1) for n in CAT.stacks}
    rows = stacks_v3.held_out(*_synthetic(same))
    assert len(rows) == sum(len(s.runs) for s in CAT.stacks.values())
    for r in rows:
        for rule in stacks_v3.RULES:
            assert r[rule] is None or r[rule] == pytest.approx(1.0, rel=1e-3)
        assert r["lobo_this_stack"] == r["lobo_everywhere"]
    apart = {n: (0.8, 1.3) for n in CAT.stacks}
    ad = [r for r in stacks_v3.held_out(*_synthetic(apart)) if r["model"] == "ad"]
    for r in ad:
        assert math.isclose(r["lomo_everywhere"], 1.3 / 0.8, rel_tol=0.08), r
