"""``_silence_`` and ``_unknown_``: the classes a keyword spotter on a stream needs, and its rows.

With ``data.augment`` set, the audio folder's labels split into keywords (``data.keywords``;
default every label) and the rest, and two classes are added after the keywords:

- ``_silence_``: windows of background alone: digital silence, the generated noises of
  ``data.augment.noise`` and the room tone cut from the split's own clips (their frames 30 dB
  under the loudest), at a level drawn from ``silence_dbfs``;
- ``_unknown_``: the clips of every non-keyword label, and time-reversed or spliced keyword
  clips (speech that is no keyword), placed and noised like the keywords.

Training and validation rows are augmented windows (:mod:`distill.audio_augment`); the holdout
keeps the test clips as the data set gives them (zero-padded, centred: the official split's
clip accuracy) plus ``_silence_`` windows cut from the holdout clips' room tone and noise.
Babble is summed from the *training* split's clips of speakers other than the word's own, so
no holdout or validation speaker's voice is ever in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ground.errors import UserError

from . import audio_augment as aug

SILENCE, UNKNOWN = "_silence_", "_unknown_"
SPLIT_CODES = {"train": 0, "val": 1, "holdout": 2}
CHUNK = 512  # windows through the front-end at a time


def class_names(labels: list[str], keywords: list | None) -> tuple[list[str], list[str]]:
    """(the classes: keywords in label order, then _silence_ and _unknown_; the non-keywords)."""
    if keywords is None:
        kw = list(labels)
    else:
        kw_given = [str(k) for k in keywords]
        missing = [k for k in kw_given if k not in labels]
        if missing or not kw_given or len(set(kw_given)) != len(kw_given):
            raise UserError(
                f"recipe key 'data.keywords' is {keywords!r}; it must list distinct labels of "
                f"the data ({', '.join(labels)}); not found: {missing}. Fix the list or leave "
                "it out (every label a keyword)."
            )
        kw = [lab for lab in labels if lab in kw_given]
    return [*kw, SILENCE, UNKNOWN], [lab for lab in labels if lab not in kw]


@dataclass
class Rows:
    """Windows of one split and where each came from."""

    waves: np.ndarray  # [n, samples]
    y: np.ndarray  # class index per window
    origin: np.ndarray  # "word", "silence" or "synthetic" per window

    def counts(self) -> dict[str, int]:
        kinds, n = np.unique(self.origin, return_counts=True)
        return {str(k): int(c) for k, c in zip(kinds, n, strict=True)}


def babble_pools(
    waves: list[np.ndarray], speakers: np.ndarray, train_idx: np.ndarray
) -> dict[str, list[np.ndarray]]:
    """For each speaker, the training clips of every *other* speaker (babble never holds the
    word's own voice, and never a clip outside the training split)."""
    out = {}
    for s in sorted(set(speakers.tolist())):
        out[s] = [waves[i] for i in train_idx if speakers[i] != s or s == ""]
    return out


def _per_keyword(y: np.ndarray, n_keywords: int, windows: int) -> float:
    return float(np.sum(y < n_keywords)) / max(n_keywords, 1) * windows


def split_rows(
    split: str,
    idx: np.ndarray,
    waves: list[np.ndarray],
    y: np.ndarray,
    speakers: np.ndarray,
    pools: dict[str, list[np.ndarray]],
    cfg: dict,
    n: int,
    n_keywords: int,
) -> Rows:
    """Augmented word windows of ``idx``'s clips, ``_silence_`` windows and synthetic unknowns."""
    code, seed = SPLIT_CODES[split], cfg["seed"]
    wpc = cfg["windows_per_clip"] if split == "train" else 1
    out, ys, origin = [], [], []
    row = 0
    for i in idx:
        for _ in range(wpc):
            rng = aug.row_rng(seed, code, row)
            out.append(aug.word_window(waves[i], n, cfg, rng, pools[speakers[i]]))
            ys.append(int(y[i]))
            origin.append("word")
            row += 1
    per_kw = _per_keyword(y[idx], n_keywords, wpc)
    every = _all_pool(pools)
    room = np.concatenate([aug.non_speech(waves[i]) for i in idx] or [np.zeros(0)])
    for _ in range(int(round(cfg["silence_share"] * per_kw))):
        out.append(aug.silence_window(n, cfg, aug.row_rng(seed, code, row), every, room))
        ys.append(n_keywords)
        origin.append("silence")
        row += 1
    kw_idx = idx[y[idx] < n_keywords]
    for _ in range(int(round(cfg["unknown_synthetic_share"] * per_kw)) if len(kw_idx) else 0):
        rng = aug.row_rng(seed, code, row)
        a = int(kw_idx[rng.integers(len(kw_idx))])
        others = idx[y[idx] != y[a]]
        b = int(others[rng.integers(len(others))]) if len(others) else a
        word = aug.reversed_or_spliced(waves[a], waves[b], rng)
        out.append(aug.word_window(word, n, cfg, rng, pools[speakers[a]]))
        ys.append(n_keywords + 1)
        origin.append("synthetic")
        row += 1
    return Rows(np.stack(out), np.asarray(ys, np.int64), np.asarray(origin))


def _all_pool(pools: dict[str, list[np.ndarray]]) -> list[np.ndarray]:
    """Every training clip once (the union of the per-speaker pools)."""
    seen: dict[int, np.ndarray] = {}
    for lst in pools.values():
        for w in lst:
            seen[id(w)] = w
    return list(seen.values())


def holdout_rows(
    idx: np.ndarray,
    fixed: np.ndarray,
    waves: list[np.ndarray],
    y: np.ndarray,
    pools: dict[str, list[np.ndarray]],
    cfg: dict,
    n: int,
    n_keywords: int,
) -> Rows:
    """The holdout clips as given (``fixed``: zero-padded, centred) and ``_silence_`` windows
    from their room tone and the noises, as many as one keyword's clips."""
    code, seed = SPLIT_CODES["holdout"], cfg["seed"]
    room = np.concatenate([aug.non_speech(waves[i]) for i in idx] or [np.zeros(0)])
    every = _all_pool(pools)
    n_sil = int(round(_per_keyword(y[idx], n_keywords, 1)))
    sil = [
        aug.silence_window(n, cfg, aug.row_rng(seed, code, r), every, room) for r in range(n_sil)
    ]
    w = np.concatenate([fixed, np.stack(sil)]) if sil else fixed
    ys = np.concatenate([y[idx], np.full(n_sil, n_keywords, np.int64)])
    origin = np.array(["word"] * len(idx) + ["silence"] * n_sil)
    return Rows(w, ys, origin)


def features(fe, rows: Rows) -> np.ndarray:
    """Front-end features of the windows, ``CHUNK`` at a time, flattened per row."""
    parts = [fe(rows.waves[s : s + CHUNK]) for s in range(0, len(rows.waves), CHUNK)]
    return np.concatenate(parts).reshape(len(rows.waves), -1)
