"""The front-end's cost model is the shipped C's emulated cycles, fitted (devices/frontend.py and
devices/frontend_cycles.json, written by benchmarks/frontend_cycles.py; issues 35-37)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from devices import frontend as F
from devices.catalog import load_catalog
from ground.errors import InternalError

REPO = Path(__file__).resolve().parents[2]
PARTS = ("frame", "window", "streaming", "clip")


def _recipe_card() -> dict:
    from distill.audio_frontend import FrontEnd

    recipe = yaml.safe_load((REPO / "recipes" / "kws_fsdd.yaml").read_text())
    return FrontEnd.from_section(recipe["data"]["frontend"]).card()


def _estimated(m: dict, doc: dict) -> dict[str, float]:
    frame, window = F.cycles(m["frontend"], m["core"], m["samples_per_frame"], doc)
    return {"frame": frame, "window": window, "streaming": frame + window,
            "clip": m["frontend"]["frames"] * frame + window}  # fmt: skip


def _measured(m: dict) -> dict[str, float]:
    return {"frame": m["frame_cycles"], "window": m["window_cycles"],
            "streaming": m["frame_cycles"] + m["window_cycles"], "clip": m["clip_cycles"]}  # fmt: skip


def test_the_table_names_where_it_comes_from_and_calibrates_the_m_cores():
    doc = F.cycle_table()
    assert F.check_table(doc) is None
    gen = doc["generated"]
    assert {"qemu", "compiler", "tflite_micro"} <= set(gen["versions"]) and gen["command"]
    assert {"cortex-m4f", "cortex-m7", "cortex-m33", "cortex-m55"} <= set(doc["cores"])
    for core, c in doc["cores"].items():
        assert c["configurations"]["held_out"] >= 4, core  # validated on configurations not fitted
        assert sum(c["frame"].values()) > 0 and sum(c["window"].values()) > 0


def test_the_estimate_reproduces_every_emulated_count_within_the_stated_error():
    """Through the estimate's own code path (terms from the card, the table's coefficients): each
    measured configuration, fitted or held out, within the error its core's entry states."""
    doc = F.cycle_table()
    seen = set()
    for m in doc["measurements"]:
        stated = doc["cores"][m["core"]]["error"][m["set"]]
        est, meas = _estimated(m, doc), _measured(m)
        for k in PARTS:
            assert abs(est[k] / meas[k] - 1) <= stated[k] + 1e-4, (m["config"], m["core"], k)
        seen.add((m["config"], m["core"]))
    assert {("recipe", c) for c in doc["cores"]} <= seen  # the calibration config on every core


def test_the_recipes_m4f_record_is_the_calibrated_c_not_the_flop_guess():
    """On the STM32L4R5 the recipe's streaming front-end costs one frame (hop samples) plus one
    window, by the table's coefficients for the Cortex-M4F, at 120 MHz; its measured figure (the
    recipe row) is within the stated error of that."""
    doc, card = F.cycle_table(), _recipe_card()
    dev = load_catalog().get("cortex-m4f-stm32l4r5")
    st, w = F.frontend_estimate(card, dev, "streaming"), F.frontend_estimate(card, dev)
    frame, window = F.cycles(card, "cortex-m4f", card["hop"], doc)
    assert st["cycles"] == round(frame + window) and st["calibrated_core"] == "cortex-m4f"
    assert st["ms"] == pytest.approx((frame + window) / 120e6 * 1e3)
    assert "emulated on cortex-m4f" in st["model"] and "NOT calibrated" not in st["model"]
    assert w["cycles"] > card["frames"] * st["frame_cycles"] > st["cycles"]
    row = next(
        m for m in doc["measurements"] if m["config"] == "recipe" and m["core"] == "cortex-m4f"
    )
    meas = row["frame_cycles"] + row["window_cycles"]
    err = doc["cores"]["cortex-m4f"]["error"]["fit"]["streaming"]
    per_sample = doc["cores"]["cortex-m4f"]["frame"]["samples"]  # the row pushed 163.3, not 160
    hop_shift = per_sample * (row["samples_per_frame"] - card["hop"])
    assert abs((st["cycles"] + hop_shift) / meas - 1) <= err + 1e-4
    # the flop model it replaces: flops / (2 x 1 fp32 MAC/cycle x 0.5) + 40 cycles per log
    assert st["cycles"] > 4 * (st["flops"] / (2 * 1 * 0.5) + 40 * st["logs"])


@pytest.mark.parametrize("device", ["rpi4", "phone-flagship-x3", "hearing-apollo3-blue"])
def test_a_core_not_in_the_table_is_scaled_from_the_reference_and_says_so(device):
    doc, card = F.cycle_table(), _recipe_card()
    dev = load_catalog().get(device)
    est = F.frontend_estimate(card, dev, "streaming")
    core = (dev.emulation or {}).get("core")
    if core in doc["cores"]:  # an Apollo3 is a Cortex-M4F board: calibrated, not scaled
        assert est["calibrated_core"] == core and "NOT calibrated" not in est["model"]
        return
    ref = doc["reference"]
    frame, window = F.cycles(card, ref["core"], card["hop"], doc)
    scale = ref["fp32_macs_per_cycle"] / dev.macs_per_cycle("fp32")
    assert est["cycles"] == round(scale * (frame + window)) and est["calibrated_core"] is None
    assert est["held_out_error"] is None and "no error measured on this core" in est["model"]
    assert f"NOT calibrated on this device's core ({core or 'none emulated'})" in est["model"]
    assert ref["core"] in est["model"]


def test_a_device_with_no_calibration_and_no_fpu_figure_leaves_the_cost_out_and_says_why():
    est = F.frontend_estimate(_recipe_card(), load_catalog().get("pda-pxa270"))
    assert est["ms"] is None and "pxa270" in est["why"] and "not calibrated" in est["why"]


def test_a_card_without_the_fields_the_model_needs_is_left_out_with_the_field_named():
    card = {k: v for k, v in _recipe_card().items() if k != "hop"}
    est = F.frontend_estimate(card, load_catalog().get("cortex-m4f-stm32l4r5"))
    assert est["ms"] is None and "lacks hop" in est["why"]


def test_a_missing_or_corrupt_table_is_an_error_naming_the_file_and_the_fix(tmp_path, monkeypatch):
    """Documented choice: the table ships with tinyship, so no table is our fault (InternalError,
    exit 3) and never a quiet switch to another cost model."""
    with pytest.raises(InternalError, match=r"nope\.json is missing.*frontend_cycles --write"):
        F.cycle_table(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InternalError, match=r"could not be read.*--write"):
        F.cycle_table(bad)
    doc = json.loads(F.CYCLES_FILE.read_text())
    doc["cores"]["cortex-m4f"]["frame"]["butterflies"] = -1.0
    bad.write_text(json.dumps(doc))
    with pytest.raises(InternalError, match=r"corrupt \(cores\.cortex-m4f\.frame lacks"):
        F.cycle_table(bad)
    monkeypatch.setattr(F, "CYCLES_FILE", tmp_path / "gone.json")
    with pytest.raises(InternalError, match="gone.json is missing"):
        F.frontend_estimate(_recipe_card(), load_catalog().get("cortex-m4f-stm32l4r5"))
