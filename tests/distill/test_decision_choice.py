"""distill/decision_choice.py: the trained student picks its decision rule on validation streams."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from distill.audio_decision import DecisionRule
from distill.decision_choice import rule_from_key
from ground.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
FSDD = ROOT / ".." / "shared" / "data" / "fsdd" / "recordings"


def test_rule_from_key_reads_the_sweeps_mean_and_vote_keys():
    base = DecisionRule(100.0, 5, 0.5, 1000.0, 0, "validation", 30.0)
    mean = rule_from_key(base, "4/0.7")
    assert (mean.smooth, mean.threshold, mean.votes) == (4, 0.7, 0)
    vote = rule_from_key(base, "6v2/0.6")
    assert (vote.smooth, vote.threshold, vote.votes) == (6, 0.6, 2)
    assert (vote.hop_ms, vote.refractory_ms, vote.choose) == (100.0, 1000.0, "validation")


def test_choose_is_a_checked_recipe_key():
    with pytest.raises(UserError, match="data.decision"):
        DecisionRule.from_section({"choose": "test"}, 20.0)
    assert DecisionRule.from_section({}, 20.0).choose == "fixed"


def _recipe(tmp_path: Path, **decision) -> Path:
    recipe = yaml.safe_load((ROOT / "recipes" / "kws_stream.yaml").read_text())
    recipe["data"].update(path=str(FSDD.resolve()), glob="[0-2]_*_[0-9].wav", cache=False)
    recipe["data"]["keywords"] = [1, 2]
    recipe["data"]["decision"].update(decision)
    recipe["teacher"] = {"library": ["summary_logreg"], "selection": "none"}
    recipe["transfer"]["size_multiplier"] = 2
    recipe["train"].update(epochs=1)
    path = tmp_path / "kws.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_a_distilled_card_states_the_rule_it_picked_and_how(tmp_path):
    """A real (one-epoch) student: the card's rule is the pick, or the recipe's when none met
    the bounds, and the recorded validation figures are the rule's and within the bounds."""
    from distill import pipeline

    path = _recipe(tmp_path, choose="validation", choose_minutes=1.0, smooth=5, threshold=0.5)
    pipeline.run(path, tmp_path / "run", progress=False)
    dec = json.loads((tmp_path / "run" / "student" / "card.json").read_text())["input"]["decision"]
    chosen = dec["chosen"]
    assert chosen["recipe_rule"] == "5/0.5" and set(chosen["validation"]) == {"20", "10", "5", "0"}
    assert "stream seed 0" in chosen["on"] and "1 min" in chosen["on"]
    if chosen["pick"] is None:
        assert (dec["smooth"], dec["threshold"], dec["votes"]) == (5, 0.5, 0)
        assert "recipe's is kept" in chosen["note"]
    else:
        want = rule_from_key(DecisionRule(), chosen["pick"])
        assert (dec["smooth"], dec["threshold"], dec["votes"]) == (
            want.smooth,
            want.threshold,
            want.votes,
        )
        v = chosen["validation"]
        assert all(s["wrong_keyword"] <= 0.02 for s in v.values())
        assert all(v[s]["false_alarms_per_hour"] <= 1.0 for s in ("20", "10"))
        assert all(v[s]["latency_ms_median"] <= 300.0 for s in ("20", "10", "5"))
    assert f"{dec['threshold']:g}" in dec["rule"]
    from distill.__main__ import summary

    card = json.loads((tmp_path / "run" / "student" / "card.json").read_text())
    assert "picked on validation streams; recipe 5/0.5" in summary(card, {})


def test_a_fixed_rule_is_shipped_as_given(tmp_path):
    from distill import pipeline

    path = _recipe(tmp_path, choose="fixed", smooth=4, threshold=0.6)
    pipeline.run(path, tmp_path / "run", progress=False)
    dec = json.loads((tmp_path / "run" / "student" / "card.json").read_text())["input"]["decision"]
    assert "chosen" not in dec and (dec["smooth"], dec["threshold"]) == (4, 0.6)


def test_a_recipe_rule_off_the_sweeps_grid_is_scored_for_the_record(tmp_path):
    """smooth 12 and threshold 0.65 are on no sweep row: with no pick, the record still shows
    the recipe's own rule on the validation streams (it raised KeyError before)."""
    from distill import pipeline

    path = _recipe(tmp_path, choose="validation", choose_minutes=1.0, smooth=12, threshold=0.65)
    pipeline.run(path, tmp_path / "run", progress=False)
    dec = json.loads((tmp_path / "run" / "student" / "card.json").read_text())["input"]["decision"]
    chosen = dec["chosen"]
    assert chosen["recipe_rule"] == "12/0.65" and set(chosen["validation"]) == {
        "20",
        "10",
        "5",
        "0",
    }
    if chosen["pick"] is None:
        assert (dec["smooth"], dec["threshold"]) == (12, 0.65)
        assert all(0.0 <= v["detected"] <= 1.0 for v in chosen["validation"].values())


def test_rule_key_and_rule_from_key_are_inverses():
    from distill.decision_scoring import rule_key

    for smooth, votes, th in [(5, 0, 0.5), (6, 2, 0.6), (12, 0, 0.65)]:
        r = rule_from_key(DecisionRule(), rule_key(smooth, votes, th))
        assert (r.smooth, r.votes, r.threshold) == (smooth, votes, th)
