"""The stream benchmark's views of a scored stream: detection and false alarms per noise kind,
and the sweep's table. The scoring itself and the sweep live in :mod:`distill.decision_scoring`
(``data.decision.choose: validation`` picks from the same sweep at distill time)."""

from __future__ import annotations

import numpy as np

from benchmarks import common
from distill.audio_decision import DecisionRule
from distill.audio_streams import ACCEPT_AFTER_S as ACCEPT_AFTER_S
from distill.decision_scoring import LATENCY_BOUND_MS as LATENCY_BOUND_MS
from distill.decision_scoring import pick as pick
from distill.decision_scoring import score as score
from distill.decision_scoring import sweep as sweep
from distill.decision_scoring import vote_decide as vote_decide
from distill.decision_scoring import word_decisions


def _span_of(spans: list[tuple[int, int, str]], t: int) -> str:
    """The noise kind of the span that holds a decision at sample ``t``."""
    ends = np.array([e for _, e, _ in spans], dtype=np.int64)
    i = min(int(np.searchsorted(ends, t)), len(spans) - 1)
    return spans[i][2]


def false_alarms_by_noise(
    events: list, decisions: list, spans: list[tuple[int, int, str]], sr: int
) -> dict[str, int]:
    """False alarms per background kind, by the noise spans the stream was laid with
    (:class:`distill.audio_streams.Stream`); every kind the spans hold has a count."""
    used = {k for inside in word_decisions(events, decisions, sr) for k, _, _ in inside}
    out = {k: 0 for _, _, k in spans}
    for t, _ in (d for k, d in enumerate(decisions) if k not in used):
        out[_span_of(spans, t)] += 1
    return out


def by_noise(events: list, decisions: list, kw: list[int], spans: list, sr: int) -> dict:
    """Detection per noise kind of the words' own spans, so the gap shows where it lies."""
    kinds = [_span_of(spans, s + 1) for s, _, _ in events]
    return {
        kind: score([ev for ev, k in zip(events, kinds, strict=True) if k == kind],
                    decisions, kw, 0, sr)["detected"]
        for kind in dict.fromkeys(kinds)
    }  # fmt: skip


def _cell(s: dict) -> str:
    """Detection and median latency (none when nothing was detected)."""
    lat = s["latency_ms_median"]
    return f"{s['detected']:.3f} ({'-' if lat is None else f'{lat:.0f} ms'})"


def sweep_table(sweep_data: dict, rule: DecisionRule) -> str:
    """Detection / wrong keyword / false alarms per hour for each smooth/threshold and SNR."""
    snrs = list(sweep_data)
    rows = []
    for key in [k for k in sweep_data[snrs[0]] if "v" not in k]:
        row: list = [key]
        for snr in snrs:
            s = sweep_data[snr][key]
            fa = s["false_alarms_per_hour"]
            row.append(f"{s['detected']:.3f} / {s['wrong_keyword']:.3f} / {fa:.1f}")
        rows.append(row)
    head = ["smooth / threshold", *(f"{snr} dB: detected / wrong / FA per h" for snr in snrs)]
    picks = []
    for bound in (None, LATENCY_BOUND_MS):
        for name, votes in (("mean rule", False), ("vote rule (k v m: m votes of k)", True)):
            key = pick(sweep_data, votes, bound)
            cells = [_cell(sweep_data[snr][key]) for snr in snrs] if key else []
            which = "T36c" if bound is None else f"T36f (median <= {bound:g} ms)"
            picks.append([which, name, key or "none qualifies", *(cells or ["-"] * len(snrs))])
    return (
        f"## Sweep (hop {rule.hop_ms:g} ms, refractory {rule.refractory_ms:g} ms kept)\n\n"
        + common.table(head, rows)
        + "\n\n## Picks of rules T36c and T36f (RESULTS.notes.md), detection (median latency)"
        + " per SNR\n\n"
        + common.table(["rule", "family", "pick", *(f"{snr} dB" for snr in snrs)], picks)
    )
