"""recipes/demo.yaml end to end (slow: fits the whole 10-model teacher library)."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.pipeline import run as distill

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_recipe_meets_its_done_criteria(tmp_path):
    card = distill(REPO / "recipes" / "demo.yaml", tmp_path / "demo", progress=False).card
    h = card["metrics"]["holdout"]
    # the ensemble at least matches the single model validation would have picked
    assert h["teacher"]["accuracy"] >= h["teacher"]["validation_pick"]["accuracy"]
    # NOTE: beating the best member picked with hindsight is not asserted. On this split the SVM makes
    # one holdout error, a '3' that nearly every library model reads as '5'; the ensemble makes that
    # same error and no other. benchmarks/ensemble_vs_member.py measures it over five splits.
    vs = h["teacher"]["best_member"]["vs_teacher"]
    n = h["n"]
    assert vs["teacher_errors"] == round(n * (1 - h["teacher"]["accuracy"]))
    assert vs["member_errors"] == round(n * (1 - h["teacher"]["best_member"]["accuracy"]))
    assert vs["teacher_errors"] == vs["only_teacher_wrong"] + len(vs["both_wrong"]["rows"])
    assert h["student"]["accuracy"] >= h["baseline"]["accuracy"]
    assert card["sizes"]["ratio"] <= 0.01
    assert card["lineage"]["timings_s"]["total"] < 240
