"""recipes/demo.yaml end to end (slow: fits the whole 10-model teacher library)."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.run import distill

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_recipe_meets_its_done_criteria(tmp_path):
    card = distill(REPO / "recipes" / "demo.yaml", tmp_path / "demo", progress=False).card
    h = card["metrics"]["holdout"]
    # the ensemble at least matches the single model validation would have picked
    assert h["teacher"]["accuracy"] >= h["teacher"]["validation_pick"]["accuracy"]
    # NOTE: beating the best member picked with hindsight on the holdout is not asserted: on digits the
    # SVM alone reaches 0.997 (358/359) and the ensemble ties it (see the report), so it is not reliable.
    assert h["student"]["accuracy"] >= h["baseline"]["accuracy"]
    assert card["sizes"]["ratio"] <= 0.01
    assert card["lineage"]["timings_s"]["total"] < 240
