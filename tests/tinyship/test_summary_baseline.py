"""Issue 34: on wine with a foreign teacher the default student (0.907) trailed the same network
trained on hard labels (0.981) and nothing said so. The summary states the baseline beside the
student and flags a student that trails it."""

from __future__ import annotations

from tinyship.summary import distill_summary, trails_baseline


def _card(student: float, baseline: float | None) -> dict:
    holdout = {"n": 54, "teacher": {"accuracy": 0.98}, "student": {"accuracy": student}}
    if baseline is not None:
        holdout["baseline"] = {"accuracy": baseline}
    return {
        "metrics": {"holdout": holdout},
        "student": {"arch": "mlp"},
        "data": {"transfer": {"method": "original", "size_multiplier": 1}},
    }


def test_a_student_that_trails_the_hard_label_baseline_is_flagged():
    card = _card(0.9074, 0.9815)
    text = distill_summary(card)
    assert "baseline (hard labels)" in text and "98.15" in text
    flag = trails_baseline(card)
    assert flag in text.replace("\n", " ") or flag.split(":")[0] in text
    assert "trails the hard-label baseline" in flag and "7.4 points" in flag
    assert "transfer set original x1" in flag


def test_no_flag_when_the_student_ties_or_beats_it_or_no_baseline_was_trained():
    assert trails_baseline(_card(1.0, 0.9815)) is None
    assert trails_baseline(_card(0.9815, 0.9815)) is None
    assert trails_baseline(_card(0.9, None)) is None
    assert "WARNING" not in distill_summary(_card(1.0, 0.9815))
