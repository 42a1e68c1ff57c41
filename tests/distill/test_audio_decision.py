"""The shipped decision rule on synthetic posterior streams, and the stream front-end's ring."""

from __future__ import annotations

import numpy as np
import pytest

from distill.audio_decision import DecisionRule
from distill.audio_frontend import FrontEnd
from distill.audio_stream import stream_windows
from ground.errors import UserError

KW = [0, 1]  # classes 2 and 3 are _silence_ and _unknown_


def posteriors(rows: list[tuple[int, float]], n: int = 4) -> np.ndarray:
    """One row per inference: ``p`` on class ``c``, the rest spread over the others."""
    out = np.empty((len(rows), n))
    for t, (c, p) in enumerate(rows):
        out[t] = (1 - p) / (n - 1)
        out[t, c] = p
    return out


def test_smoothing_needs_the_average_over_the_last_inferences():
    rule = DecisionRule(hop_ms=100, smooth=3, threshold=0.7, refractory_ms=0)
    # one spike of 0.95 among silence averages to < 0.7: no decision
    p = posteriors([(2, 0.9), (0, 0.95), (2, 0.9), (2, 0.9)])
    assert rule.decide(p, KW) == []
    # three in a row: the third inference decides (mean 0.8 >= 0.7); the second did not (0.5)
    p = posteriors([(2, 0.9), (0, 0.8), (0, 0.8), (0, 0.8)])
    smooth = rule.decide(p, KW)
    assert smooth[0] == (3, 0)
    assert DecisionRule(smooth=1, threshold=0.7, refractory_ms=0).decide(p, KW)[0] == (1, 0)


def test_threshold_and_silence_unknown_never_fire():
    rule = DecisionRule(smooth=1, threshold=0.7, refractory_ms=0)
    assert rule.decide(posteriors([(0, 0.69)] * 5), KW) == []
    assert rule.decide(posteriors([(2, 0.99), (3, 0.99)]), KW) == []
    assert rule.decide(posteriors([(1, 0.7)]), KW) == [(0, 1)]


def test_refractory_period_makes_one_word_one_decision():
    rule = DecisionRule(hop_ms=100, smooth=1, threshold=0.5, refractory_ms=300)
    assert rule.refractory_steps == 3
    p = posteriors([(0, 0.9)] * 9)
    assert rule.decide(p, KW) == [(0, 0), (4, 0), (8, 0)]
    # a different keyword inside the period is suppressed too
    p = posteriors([(0, 0.9), (1, 0.9), (1, 0.9), (1, 0.9), (1, 0.9)])
    assert rule.decide(p, KW) == [(0, 0), (4, 1)]


def test_rule_from_recipe_checks_the_hop_and_writes_the_card():
    rule = DecisionRule.from_section({"hop_ms": 100, "threshold": 0.8}, frame_hop_ms=20.0)
    card = rule.card(["1", "2", "_silence_", "_unknown_"], KW, 20.0)
    assert card["hop_frames"] == 5 and card["inferences_per_second"] == 10.0
    assert card["keywords"] == ["1", "2"] and card["never_fire"] == ["_silence_", "_unknown_"]
    assert ">= 0.8" in card["rule"] and card["refractory_inferences"] == 10
    with pytest.raises(UserError, match=r"data.decision.hop_ms' is 50; .* whole number .*20 ms"):
        DecisionRule.from_section({"hop_ms": 50}, frame_hop_ms=20.0)
    with pytest.raises(UserError, match=r"data.decision.threshold"):
        DecisionRule.from_section({"threshold": 1.5}, frame_hop_ms=20.0)
    assert "top class" not in card["rule"] and card["votes"] == 0
    voted = DecisionRule.from_section({"smooth": 7, "votes": 7}, frame_hop_ms=20.0)
    said = voted.card(["1", "2", "_silence_", "_unknown_"], KW, 20.0)["rule"]
    assert "top class (of all classes) in at least 7 of those 7 inferences" in said
    with pytest.raises(UserError, match=r"data.decision.votes' is 4, more than the 3 .* at most 3"):
        DecisionRule.from_section({"smooth": 3, "votes": 4}, frame_hop_ms=20.0)


def test_votes_need_the_keyword_on_top_in_that_many_inferences():
    # keyword 0 passes 0.6 on average from the second inference on, but _unknown_ (class 3) is on
    # top in the first: on top in 1 of the last 2, then 2 of the last 3
    p = np.array([[0.4, 0.05, 0.05, 0.5], [0.9, 0.05, 0.03, 0.02], [0.9, 0.05, 0.03, 0.02]])
    assert DecisionRule(100.0, 3, 0.6, 1000.0, 0).decide(p, KW) == [(1, 0)]
    assert DecisionRule(100.0, 3, 0.6, 1000.0, 2).decide(p, KW) == [(2, 0)]
    assert DecisionRule(100.0, 3, 0.6, 1000.0, 3).decide(p, KW) == []


@pytest.mark.parametrize("norm", [True, False])
def test_stream_windows_equal_the_front_end_on_each_window(norm):
    """Frames computed once into a ring, normalized per window: the same numbers as the
    front-end on every 1 s window alone (what a device computing frame by frame must match)."""
    fe = FrontEnd(hop=160, n_fft=256, n_mfcc=13, lifter=22, utterance_norm=norm)
    x = np.random.default_rng(0).standard_normal(8000 * 3) * np.linspace(0.01, 0.5, 24000)
    w, ends = stream_windows(fe, x, hop_frames=5)
    assert w.shape == (21, 1, 13, 49) and ends[0] == 8000 and ends[1] - ends[0] == 800
    ref = fe(np.stack([x[e - 8000 : e] for e in ends]))
    np.testing.assert_allclose(w, ref, atol=1e-4)
