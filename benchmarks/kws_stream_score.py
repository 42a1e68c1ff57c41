"""How a stream's decisions are scored, and the sweep of decision rules that rules T36b-T36i pick
from: split from :mod:`benchmarks.kws_stream`, which builds the streams and runs the model.

A keyword word is *detected* when its keyword is declared between its start and
``ACCEPT_AFTER_S`` after its end; *wrong* when another keyword is declared there; a non-keyword
word is *falsely accepted* when any keyword is; every other decision is a *false alarm*."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks import common
from distill.audio_decision import DecisionRule

ACCEPT_AFTER_S = 1.0  # a word can be decided until 1 s after its end (the window still holds it)
LATENCY_BOUND_MS = 300.0  # rule T36f's pick: median decision this soon after the word (issue 36)


def word_decisions(events: list, decisions: list, sr: int) -> list[list[tuple[int, int, int]]]:
    """For every word, (index, sample, class) of the decisions in its accept interval: from its
    start to ``ACCEPT_AFTER_S`` after its end. A decision in none of them is a false alarm."""
    after = int(ACCEPT_AFTER_S * sr)
    return [
        [(k, t, c) for k, (t, c) in enumerate(decisions) if start <= t <= end + after]
        for start, end, _ in events
    ]


def score(events: list, decisions: list, kw: list[int], bg_samples: int, sr: int) -> dict[str, Any]:
    """Detection, wrong-keyword and false-accept shares, false alarms per hour, latencies."""
    used, lat = set(), []
    n_kw = n_det = n_wrong = n_unk = n_fa_unk = 0
    for (_, end, y), inside in zip(events, word_decisions(events, decisions, sr), strict=True):
        used.update(k for k, _, _ in inside)
        if y in kw:
            n_kw += 1
            hit = [t for _, t, c in inside if c == y]
            n_det += bool(hit)
            n_wrong += any(c != y for _, _, c in inside)
            if hit:
                lat.append(1000.0 * (hit[0] - end) / sr)
        else:
            n_unk += 1
            n_fa_unk += bool(inside)
    fa = len(decisions) - len(used)
    hours = bg_samples / sr / 3600.0
    return {
        "keyword_words": n_kw,
        "detected": n_det / max(n_kw, 1),
        "wrong_keyword": n_wrong / max(n_kw, 1),
        "unknown_words": n_unk,
        "unknown_false_accept": n_fa_unk / n_unk if n_unk else None,
        "false_alarms": fa,
        "background_hours": round(hours, 4),
        "false_alarms_per_hour": fa / hours if hours > 0 else None,
        "latency_ms_median": float(np.median(lat)) if lat else None,
        "latency_ms_p90": float(np.percentile(lat, 90)) if lat else None,
    }


def _span_of(spans: list[tuple[int, int, str]], t: int) -> str:
    """The noise kind of the span that holds a decision at sample ``t``."""
    ends = np.array([e for _, e, _ in spans], dtype=np.int64)
    i = min(int(np.searchsorted(ends, t)), len(spans) - 1)
    return spans[i][2]


def false_alarms_by_noise(
    events: list, decisions: list, spans: list[tuple[int, int, str]], sr: int
) -> dict[str, int]:
    """False alarms per background kind, by the noise spans the stream was laid with
    (:class:`benchmarks.kws_stream.Stream`); every kind the spans hold has a count."""
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


SWEEP_SMOOTH = tuple(range(1, 11))  # inferences: up to 600 ms at hop 60, 1 s at hop 100 (T36i)
SWEEP_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
VOTE_SMOOTH = (2, 3, 4, 5, 6, 7)


def vote_decide(
    p: np.ndarray, kw: list[int], smooth: int, votes: int, threshold: float, refractory: int
) -> list[tuple[int, int]]:
    """(inference, class) of every decision: the shipped mean rule (``votes`` 0), or the vote
    rule that rule T36c compared with it: the keyword must also be the top class (of all classes) in
    at least ``votes`` of the last ``smooth`` inferences. Vectorized for the sweep; with
    ``votes`` 0 it decides as :class:`distill.audio_decision.Decider` does (tested)."""
    p = np.asarray(p, dtype=np.float64)
    t_all = np.arange(len(p))
    lo = np.maximum(t_all + 1 - smooth, 0)

    def window_sum(a: np.ndarray) -> np.ndarray:
        c = np.concatenate([np.zeros((1, a.shape[1])), np.cumsum(a, axis=0)])
        return c[t_all + 1] - c[lo]

    avg = (window_sum(p) / (t_all + 1 - lo)[:, None])[:, kw]
    k = avg.argmax(1)
    ok = avg[t_all, k] >= threshold
    if votes > 0:
        top = np.eye(p.shape[1])[p.argmax(1)]
        ok &= window_sum(top)[:, kw][t_all, k] >= votes
    out, quiet_until = [], -1
    for t in np.flatnonzero(ok):
        if t > quiet_until:
            out.append((int(t), int(kw[k[t]])))
            quiet_until = t + refractory
    return out


def sweep(cfg: dict, p: np.ndarray, ends: np.ndarray, events: list, bg: int, sr: int) -> dict:
    """The stream scored under other smoothing lengths and thresholds, mean rule ("k/th") and
    vote rule ("kvm/th": m votes of k), hop and refractory kept (rules T36b, T36c)."""
    out, ref = {}, cfg["rule"].refractory_steps
    grid = [(k, 0) for k in SWEEP_SMOOTH] + [(k, m) for k in VOTE_SMOOTH for m in range(2, k + 1)]
    for k, m in grid:
        for th in SWEEP_THRESHOLDS:
            d = [(int(ends[t]), c) for t, c in vote_decide(p, cfg["kw"], k, m, th, ref)]
            key = f"{k}/{th:g}" if m == 0 else f"{k}v{m}/{th:g}"
            out[key] = score(events, d, cfg["kw"], bg, sr)
    return out


def pick(sweep_data: dict, votes: bool, max_latency_ms: float | None = None) -> str | None:
    """Rule T36b/T36c's pick in one family: wrong keyword <= 2% at every SNR and <= 1 false
    alarm per hour at 20 and 10 dB; then detection at 10 dB, at 5 dB, the larger threshold.
    Rule T36f adds ``max_latency_ms``: the median latency at 20, 10 and 5 dB at most that."""
    if "10" not in sweep_data:
        return None

    def quick(k: str) -> bool:
        if max_latency_ms is None:
            return True
        lat = [sweep_data[s][k]["latency_ms_median"] for s in ("20", "10", "5") if s in sweep_data]
        return all(v is not None and v <= max_latency_ms for v in lat)

    keys = [k for k in sweep_data["10"] if ("v" in k) == votes]
    ok = [
        k
        for k in keys
        if all(sweep_data[s][k]["wrong_keyword"] <= 0.02 for s in sweep_data)
        and all(
            sweep_data[s][k]["false_alarms_per_hour"] <= 1.0
            for s in ("20", "10")
            if s in sweep_data
        )
        and quick(k)
    ]
    if not ok:
        return None
    return max(
        ok,
        key=lambda k: (
            sweep_data["10"][k]["detected"],
            sweep_data.get("5", sweep_data["10"])[k]["detected"],
            float(k.split("/")[1]),
        ),
    )


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
