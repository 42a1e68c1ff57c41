"""Streams for a keyword spotter: words of one split over changing background, with where each
word and each stretch of noise lies. The stream benchmark (``benchmarks/kws_stream.py``) plays the
holdout's; ``data.decision.choose: validation`` plays the validation split's to pick the rule.

Each word has its own noise (kind and level): 1-2.5 s of it before the word and
``ACCEPT_AFTER_S`` after. The noise is white, pink and babble in turn; babble is summed from the
split's non-keyword clips (no keyword in it), and since rule T36m of the other speakers only.
After the words, background alone, its kind changing every ``TAIL_CHUNK_S``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ground.errors import UserError

from . import audio_augment as aug
from .audio import holdout_clips, read_wav

ACCEPT_AFTER_S = 1.0  # a word can be decided until 1 s after its end (the window still holds it)
TAIL_CHUNK_S = 10.0  # the background-only tail changes noise kind every this many seconds


def split_words(
    cfg: dict, max_words: int | None, split: str = "holdout"
) -> list[tuple[np.ndarray, int, str]]:
    """(samples, class index, speaker) of the split's clips; non-keywords as _unknown_."""
    labels, fe = cfg["labels"], cfg["fe"]
    out = []
    for c in holdout_clips(cfg["data"], split):
        y = labels.index(c.label) if c.label in labels else labels.index("_unknown_")
        out.append((read_wav(c.path, fe.sample_rate), y, c.speaker or ""))
    if max_words is not None:
        out = [out[i] for i in np.random.default_rng(0).permutation(len(out))[:max_words]]
    return out


def babble_pool(words: list, kw: list[int]) -> list[tuple[np.ndarray, str]]:
    """(samples, speaker) of the split's non-keyword clips: speech with no keyword in it."""
    return [(w, spk) for w, y, spk in words if y not in kw]


def noise_kinds(words: list, kw: list[int]) -> tuple[list, list[str]]:
    """(the babble pool, the noise kinds in turn): babble only where the split has non-keywords."""
    pool = babble_pool(words, kw)
    return pool, ["white", "pink", *(["babble"] if pool else [])]


@dataclass
class Stream:
    """A stream's samples, (start, end, class) of every word, samples of background outside the
    words' accept intervals, and (start, end, kind) of every stretch of one noise: a decision at
    sample t lies in the span with start < t <= end (a window ending at t holds sample t - 1)."""

    x: np.ndarray
    events: list[tuple[int, int, int]]
    bg: int
    spans: list[tuple[int, int, str]]


def word_pool(pool: list, speaker: str, own_voice: bool) -> list[np.ndarray]:
    """The clips one word's babble is made of: every speaker's, or (rule T36m) all but its own."""
    out = [w for w, s in pool if own_voice or s != speaker or not s]
    if pool and not out:
        raise UserError(
            f"--babble-voices others leaves no babble for speaker '{speaker}': the split's "
            "non-keyword clips are all theirs. Use --babble-voices all, or a split with more "
            "speakers."
        )
    return out


def build_stream(
    words: list, snr: float, kinds: list[str], pool: list, bg_s: float, sr: int, rng, gap,
    own_voice: bool = False,
) -> Stream:  # fmt: skip
    """Each word has its own noise (kind and level): ``gap`` seconds of it before the word and
    ``ACCEPT_AFTER_S`` after, so the noise never changes within a window that holds the word or
    is scored for it (rule T36c: a change at the word's end made those windows wrong). A word's
    babble leaves out its own speaker unless ``own_voice`` (rule T36m); the tail keeps all."""
    parts, events, pos, levels = [np.zeros(sr)], [], sr, []
    spans = [(0, sr, "digital silence")]
    after = int(ACCEPT_AFTER_S * sr)
    everyone = [w for w, _ in pool]
    for k, i in enumerate(rng.permutation(len(words))):
        w, y, spk = words[i]
        g = int(rng.uniform(*gap) * sr)
        seg = np.zeros(g + len(w) + after)
        seg[g : g + len(w)] = w
        kind = kinds[k % len(kinds)]
        bg = aug.noise(kind, len(seg), rng, word_pool(pool, spk, own_voice), 5)
        s = aug.scale_to_snr(w, bg[g : g + len(w)], snr)
        levels.append(s * np.sqrt(aug.power(bg)))
        parts.append(np.clip(seg + s * bg, -1, 1))
        events.append((pos + g, pos + g + len(w), int(y)))
        spans.append((pos, pos + len(seg), kind))
        pos += len(seg)
    busy = sum(min(e + after, pos) - s for s, e, _ in events)
    tail = max(0, int(bg_s * sr) - (pos - busy)) + sr
    level = float(np.median(levels)) if levels else 10 ** (-40 / 20)
    chunk = int(TAIL_CHUNK_S * sr)
    for k, s in enumerate(range(0, tail, chunk)):
        n = min(chunk, tail - s)
        bg = aug.noise(kinds[k % len(kinds)], n, rng, everyone, 5)
        parts.append(np.clip(bg * level / np.sqrt(aug.power(bg)), -1, 1))
        spans.append((pos + s, pos + s + n, kinds[k % len(kinds)]))
    x = np.concatenate(parts)
    return Stream(x, events, len(x) - busy, spans)


def lay_streams(
    words: list, kw: list[int], snrs, minutes: float, sr: int, seed: int, gap,
    own_voice: bool = False,
) -> Iterator[tuple[float, Stream]]:  # fmt: skip
    """One stream per SNR, the j-th from its own generator ``[seed, j]``, each built when it is
    asked for: a caller holds one stream of ``minutes`` of background in memory, not all."""
    pool, kinds = noise_kinds(words, kw)
    for j, snr in enumerate(snrs):
        rng = np.random.default_rng([seed, j])
        yield snr, build_stream(words, snr, kinds, pool, 60.0 * minutes, sr, rng, gap, own_voice)
