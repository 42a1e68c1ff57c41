"""MODEL_CARD.md states a keyword spotter's decision rule as the card carries it (issue 36)."""

from __future__ import annotations

from devices import model_card

RULE = "every 100 ms score the last window; average the last 5; declare if >= 0.7"


def _card(decision: dict | None) -> dict:
    inp = {"name": "input", "shape": [1, 13, 49], "layout": "NCHW"}
    if decision is not None:
        inp["decision"] = decision
    return {"input": inp, "output": {"name": "logits", "num_classes": 10}}


def test_the_decision_rule_is_in_the_input_contract():
    lines = model_card._input_contract(
        _card({"rule": RULE, "never_fire": ["_silence_", "_unknown_"]}), {}, []
    )
    text = "\n".join(lines)
    assert f"decision rule on a stream: {RULE}" in text
    assert "`_silence_`, `_unknown_`" in text


def test_no_decision_no_line():
    text = "\n".join(model_card._input_contract(_card(None), {}, []))
    assert "decision rule" not in text


def test_a_picked_rule_says_how_it_was_picked_or_that_none_qualified():
    chosen = {
        "on": "validation streams",
        "by": "rule T36f",
        "recipe_rule": "5/0.5",
        "pick": "5/0.7",
        "validation": {"10": {"detected": 0.741, "false_alarms_per_hour": 0.0}},
    }
    text = "\n".join(model_card._input_contract(_card({"rule": RULE, "chosen": chosen}), {}, []))
    assert "picked for this model on validation streams, by rule T36f: 5/0.7" in text
    assert "the recipe's was 5/0.5" in text and "detected 74.1% with 0 false alarms" in text
    chosen["pick"] = None
    text = "\n".join(model_card._input_contract(_card({"rule": RULE, "chosen": chosen}), {}, []))
    assert "none met the bounds, so the recipe's 5/0.5 is kept" in text
