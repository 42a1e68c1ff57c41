"""Rule V37 (issue 37 task B): mcu-stack-v3 replaces v2 only with no published run outside +-25% and
a share within +-10% at least v2's, both with each model withheld from every stack's fit."""

from __future__ import annotations

import pytest


def _rows(ratios: list[float | None]) -> list[dict]:
    return [
        {"stack": "s", "model": f"m{i}", "board": "b", "published_ms": 1.0, "lomo_everywhere": r,
         "lobo_everywhere": r, "lomo_lobo_everywhere": r}
        for i, r in enumerate(ratios)
    ]  # fmt: skip


@pytest.mark.parametrize(
    "v2, v3, passes, why",
    [
        ([1.0, 1.3, 1.05, 0.95], [1.02, 1.2, 1.05, 0.96], True, "PASS"),
        ([1.0, 1.3, 1.05, 0.95], [1.02, 1.35, 1.0, 1.0], False, "1 of 4 runs outside"),  # a miss
        ([1.0, 1.05, 1.05, 0.95], [1.02, 1.2, 1.2, 0.96], False, "v3 50.0%, v2 100.0%"),  # fewer
        ([1.0, 1.05, 1.05, 0.95], [1.0, 1.0, 1.0, None], False, "no estimate for some runs"),
    ],
)
def test_rule_v37(v2, v3, passes, why):
    from benchmarks import estimator_v3

    v = estimator_v3.verdict(_rows(v2), _rows(v3))
    assert v["pass"] is passes
    text = "\n".join(estimator_v3.lines(_rows(v2), _rows(v3), v, {}))
    assert why in text and ("v3 replaces v2" in text) is passes and estimator_v3.RULE_V3 in text


def test_the_edge_of_the_tolerance_counts_as_within():
    from benchmarks import ratios

    # true/estimated 0.8 is an estimate 25% high: within +-25%, as estimator_validation counts it
    assert ratios.within([0.8, 1 / 1.1], 0.25) == 1.0
    assert ratios.within([0.79], 0.25) == 0.0
    assert ratios.within([], 0.1) is None
