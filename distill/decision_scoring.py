"""How a stream's decisions are scored, and the sweep of decision rules that rules T36b-T36n pick
from (the stream benchmark, and ``data.decision.choose: validation`` at distill time).

A keyword word is *detected* when its keyword is declared between its start and
``ACCEPT_AFTER_S`` after its end; *wrong* when another keyword is declared there; a non-keyword
word is *falsely accepted* when any keyword is; every other decision is a *false alarm*."""

from __future__ import annotations

from typing import Any

import numpy as np

from .audio_streams import ACCEPT_AFTER_S

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


def rule_key(smooth: int, votes: int, threshold: float) -> str:
    """A rule's name in a sweep: "k/th" (mean rule) or "kvm/th" (m votes of k)."""
    return f"{smooth}/{threshold:g}" if votes == 0 else f"{smooth}v{votes}/{threshold:g}"


def score_rule(
    p: np.ndarray, ends: np.ndarray, events: list, bg: int, sr: int, kw: list[int],
    smooth: int, votes: int, threshold: float, refractory: int,
) -> dict[str, Any]:  # fmt: skip
    """One rule's decisions over a stream's posteriors, scored (:func:`score`)."""
    d = [(int(ends[t]), c) for t, c in vote_decide(p, kw, smooth, votes, threshold, refractory)]
    return score(events, d, kw, bg, sr)


def sweep(cfg: dict, p: np.ndarray, ends: np.ndarray, events: list, bg: int, sr: int) -> dict:
    """The stream scored under other smoothing lengths and thresholds, mean rule ("k/th") and
    vote rule ("kvm/th": m votes of k), hop and refractory kept (rules T36b, T36c)."""
    ref = cfg["rule"].refractory_steps
    grid = [(k, 0) for k in SWEEP_SMOOTH] + [(k, m) for k in VOTE_SMOOTH for m in range(2, k + 1)]
    return {
        rule_key(k, m, th): score_rule(p, ends, events, bg, sr, cfg["kw"], k, m, th, ref)
        for k, m in grid
        for th in SWEEP_THRESHOLDS
    }


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
