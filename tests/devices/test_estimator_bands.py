"""Error bands per record (issue 37): lookup rules, never None, and the committed file's schema."""

from __future__ import annotations

import json

import pytest

from devices import estimator_bands as eb
from ground.errors import UserError


def _entry(**kw) -> dict:
    e = {
        "estimator": "mcu-stack-v2", "core": "cortex-m4f", "stack": "x-cube-ai", "op_mix": "any",
        "dtype": "int8", "transferred": False, "ratio_low": 0.9, "ratio_high": 1.1, "n": 4,
        "source": "test", "note": "own",
    }  # fmt: skip
    e.update(kw)
    return e


def _doc(entries: list[dict]) -> dict:
    return {
        "schema": eb.SCHEMA,
        "generated": {"commit": "abc", "machine": "here", "date": "today", "command": "cmd"},
        "widest": {"ratio_low": 0.3, "ratio_high": 4.0, "n": 9, "source": "envelope", "note": "w"},
        "bands": entries,
    }


@pytest.fixture
def bands_file(tmp_path):
    entries = [
        _entry(),
        _entry(op_mix="separable", ratio_low=0.95, ratio_high=1.05, note="sep"),
        _entry(transferred=True, ratio_low=0.7, ratio_high=1.6, note="transferred"),
        _entry(core="any", op_mix="fc", ratio_low=0.8, ratio_high=1.2, note="pooled fc"),
    ]
    p = tmp_path / "bands.json"
    p.write_text(json.dumps(_doc(entries)))
    return p


@pytest.mark.parametrize(
    "work, mix",
    [
        ({"conv": 10, "pointwise": 2, "depthwise": 1}, "conv"),
        ({"conv": 1, "pointwise": 5, "depthwise": 1}, "separable"),
        ({"fc": 100, "conv": 10}, "fc"),
        ({"conv": 4, "fc": 3, "depthwise": 3}, "mixed"),
        ({"elementwise": 1000}, "elementwise"),
        ({}, "elementwise"),
    ],
)
def test_op_mix(work, mix):
    assert eb.op_mix(work) == mix


def test_op_mix_rejects_bad_work():
    with pytest.raises(UserError, match="must be >= 0"):
        eb.op_mix({"conv": -1})
    with pytest.raises(UserError, match="dict of work"):
        eb.op_mix([1, 2])


def test_exact_then_pooled(bands_file):
    b = eb.band_for("cortex-m4f", "x-cube-ai", "separable", "int8", False, path=bands_file)
    assert (b["ratio_low"], b["ratio_high"], b["note"]) == (0.95, 1.05, "sep")
    assert set(b) == set(eb.BAND_KEYS)
    b = eb.band_for("cortex-m4f", "x-cube-ai", "conv", "int8", False, path=bands_file)
    assert (b["ratio_low"], b["ratio_high"]) == (0.9, 1.1) and "pooled over op mixes" in b["note"]
    b = eb.band_for("cortex-m7", "x-cube-ai", "fc", "int8", False, path=bands_file)
    assert (b["ratio_low"], b["ratio_high"]) == (0.8, 1.2) and "pooled over cores" in b["note"]


def test_transferred_gets_its_own_wider_band(bands_file):
    own = eb.band_for("cortex-m4f", "x-cube-ai", "conv", "int8", False, path=bands_file)
    tr = eb.band_for("cortex-m4f", "x-cube-ai", "conv", "int8", True, path=bands_file)
    assert tr["ratio_low"] < own["ratio_low"] and tr["ratio_high"] > own["ratio_high"]
    assert "transferred" in tr["note"]
    # a transferred board on a core with no transferred band: never the non-transferred one
    tr7 = eb.band_for("cortex-m7", "x-cube-ai", "separable", "int8", True, path=bands_file)
    assert (tr7["ratio_low"], tr7["ratio_high"]) == (0.3, 4.0)
    assert "never borrowed" in tr7["note"]


def test_fp32_never_borrows_the_int8_band(bands_file):
    b = eb.band_for(
        "cortex-m4f", "x-cube-ai", "separable", "fp32 (on the fp32 peak)", False, path=bands_file
    )
    assert (b["ratio_low"], b["ratio_high"]) == (0.3, 4.0)
    assert "fp32" in b["note"] and "widest" in b["note"]


def test_never_none(bands_file, tmp_path):
    for args in [
        ("pxa270", "tflm-reference", "mixed", "int8", False),
        ("cortex-m85", "x-cube-ai", "conv", "int16", True),
    ]:
        b = eb.band_for(*args, path=bands_file)
        assert b is not None and b["ratio_low"] <= 1 <= b["ratio_high"] and b["note"]
    missing = eb.band_for(
        "cortex-m4f", "x-cube-ai", "conv", "int8", False, path=tmp_path / "none.json"
    )
    assert missing["ratio_low"] == eb.NO_FILE_BAND[0] and "not measured" in missing["note"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "other"}))
    b = eb.band_for("cortex-m4f", "x-cube-ai", "conv", "int8", False, path=bad)
    assert b["n"] == 0 and "unusable" in b["note"]


def test_bad_arguments_name_the_value(bands_file):
    with pytest.raises(UserError, match="op_mix 'convs' is not one of"):
        eb.band_for("cortex-m4f", "x-cube-ai", "convs", "int8", False, path=bands_file)
    with pytest.raises(UserError, match="estimator 'v9'"):
        eb.band_for(
            "cortex-m4f", "x-cube-ai", "conv", "int8", False, estimator="v9", path=bands_file
        )
    with pytest.raises(UserError, match="dtype must be"):
        eb.band_for("cortex-m4f", "x-cube-ai", "conv", "", False, path=bands_file)


def test_check_document_catches_bad_entries():
    assert eb.check_document(_doc([_entry()])) is None
    assert "ratio_low" in eb.check_document(_doc([_entry(ratio_low=2.0, ratio_high=1.0)]))
    assert "lacks" in eb.check_document(_doc([{k: v for k, v in _entry().items() if k != "n"}]))
    d = _doc([_entry()])
    d["generated"]["commit"] = ""
    assert "commit" in eb.check_document(d)


def test_committed_bands_file():
    """The committed file is valid, written with its provenance, and keeps the rules."""
    doc = eb.document()
    assert not isinstance(doc, str), doc
    assert eb.check_document(doc) is None
    w = doc["widest"]
    own = {
        (e["estimator"], e["stack"], e["core"], e["op_mix"]): e
        for e in doc["bands"]
        if not e["transferred"]
    }
    for e in doc["bands"]:
        assert w["ratio_low"] <= e["ratio_low"] <= 1 <= e["ratio_high"] <= w["ratio_high"]
        o = own.get((e["estimator"], e["stack"], e["core"], e["op_mix"]))
        if e["transferred"] and o:
            assert e["ratio_low"] <= o["ratio_low"] and e["ratio_high"] >= o["ratio_high"]
    assert not [e for e in doc["bands"] if e["dtype"] == "fp32"], "an fp32 band needs fp32 data"
    cores = doc["zoo_fit"]["cores"]
    assert {"cortex-m4f", "cortex-m7", "cortex-m33", "cortex-m55"} <= set(cores)


def test_a_band_of_too_few_cases_is_pooled_further(tmp_path):
    entries = [
        _entry(n=eb.MIN_N),
        _entry(op_mix="conv", n=eb.MIN_N - 1, ratio_low=0.99, ratio_high=1.01),
    ]
    p = tmp_path / "bands.json"
    p.write_text(json.dumps(_doc(entries)))
    b = eb.band_for("cortex-m4f", "x-cube-ai", "conv", "int8", False, path=p)
    assert (b["ratio_low"], b["ratio_high"], b["n"]) == (0.9, 1.1, eb.MIN_N)
    assert "pooled further" in b["note"]


def _validation() -> dict:
    from pathlib import Path

    p = Path(__file__).resolve().parents[2] / "benchmarks/results/estimator_validation.json"
    return json.loads(p.read_text())["results"]


def test_published_misses_are_listed_and_inside_the_band_their_records_get():
    """Rule (b) of issue 37: each published run outside +-25% (model withheld from every stack) is
    listed with what a person stated about it, and a record of its (core, stack, op mix) gets a band
    from the committed file that holds it."""
    res = _validation()
    out = [r for r in res["published"] if abs(1 / r["lomo_everywhere"] - 1) > 0.25]
    assert [(m["stack"], m["model"], m["board"]) for m in res["misses"]] == [
        (r["stack"], r["model"], r["board"]) for r in out
    ]
    for m in res["misses"]:
        assert m["stated"], m
        b = eb.band_for(m["core"], m["stack"], m["op_mix"], "int8", False)
        assert b["ratio_low"] <= m["lomo_everywhere"] <= b["ratio_high"], (m, b)


def test_miss_lines_say_unexplained_and_whether_the_band_covers():
    from benchmarks.estimator_validation import miss_lines
    from devices import load_catalog

    cat = load_catalog()
    doc = _doc([_entry(stack="microtvm-cmsis-nn", ratio_low=0.9, ratio_high=1.2)])
    miss = {"stack": "microtvm-cmsis-nn", "model": "ad", "board": "cortex-m4f-stm32l4r5",
            "core": "cortex-m4f", "op_mix": "fc", "lomo_everywhere": 1.5}  # fmt: skip
    (line,) = miss_lines(cat, [miss], doc)
    assert "unexplained" in line and "does NOT cover" in line and "0.90-1.20" in line
    (line,) = miss_lines(
        cat, [{**miss, "model": "ic", "op_mix": "conv", "lomo_everywhere": 1.1}], doc
    )
    assert "no stated version difference" in line and "covers the miss" in line
    assert "Outputs per conv MAC: ic 0.0069" in line  # from the catalog's ResNet-8 work
