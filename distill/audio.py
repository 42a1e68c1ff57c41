"""``data.name: audio_folder``: WAV folders -> front-end features, split by take or by speaker.

``data: {name: audio_folder, path, ...}`` reads 16-bit PCM WAV files (:mod:`distill.audio_clips`):
one subfolder per class (``labels_from: folder``) or labels parsed from the file name with a
pattern such as FSDD's ``{label}_{speaker}_{index}.wav``. Every clip is brought to a fixed
length (zero padding / cropping around the middle) and turned into ``[1, coefficients,
frames]`` by the front-end (:mod:`distill.audio_frontend`), whose parameters go into the card.

With ``data.augment`` set (a stream, not clips: :mod:`distill.audio_classes`), the classes are
``data.keywords`` then ``_silence_`` and ``_unknown_``, the training and validation rows are
words placed at random offsets in noisy 1 s windows (:mod:`distill.audio_augment`), and the
decision rule of ``data.decision`` (:mod:`distill.audio_decision`) goes into the card.

Splits: ``holdout_index_max`` puts the takes with ``{index} <= max`` into the holdout (FSDD's
official split: takes 0-4 of every speaker x digit are its 300-clip test set);
``holdout_speakers`` holds out whole speakers (leave-one-speaker-out). The validation split
is drawn from the remaining training clips, or with ``val_speakers`` it is those speakers'
remaining clips (a voice the training never heard: what the student search ranks on);
nothing is selected on the holdout.

The front-end and clip-reading names are re-exported here, where other modules import them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ground.errors import UserError

from .audio_augment import augment_config
from .audio_classes import babble_pools, class_names, features, holdout_rows, split_rows
from .audio_clips import (
    Clip,
    _sorted_labels,
    clip_features,
    compile_pattern,
    list_clips,
    read_wav,
)
from .audio_decision import DecisionRule
from .audio_frontend import FRONTEND_FIELDS, FrontEnd, frontend_ops
from .data_files import REPO_ROOT, resolve_path
from .dataset import Dataset
from .splits import _limit

__all__ = [
    "FRONTEND_FIELDS",
    "Clip",
    "FrontEnd",
    "clip_features",
    "compile_pattern",
    "frontend_ops",
    "list_clips",
    "holdout_clips",
    "load_audio_folder",
    "read_wav",
]

Splits = tuple[np.ndarray, np.ndarray, np.ndarray]  # train, validation, holdout clip indices


def _check_speakers(cfg: dict, speakers: np.ndarray) -> None:
    """Every speaker a split key names must exist, and no speaker is both held out and validation."""
    known = sorted(set(speakers.tolist()) - {""})
    for key in ("holdout_speakers", "val_speakers"):
        unknown = [s for s in cfg[key] or [] if s not in known]
        if unknown:
            raise UserError(
                f"recipe key 'data.{key}' names {unknown}, not among the speakers found via "
                f"data.pattern: {known}."
            )
    both = sorted(set(cfg["val_speakers"] or []) & set(cfg["holdout_speakers"] or []))
    if both:
        raise UserError(
            f"recipe keys 'data.val_speakers' and 'data.holdout_speakers' both name {both}; a "
            "speaker is either validation or holdout. Drop it from one of them."
        )


def _holdout_by_rule(cfg: dict, clips: list[Clip], speakers: np.ndarray) -> np.ndarray:
    """The clips the recipe holds out by rule: takes up to holdout_index_max, holdout_speakers."""
    ho = np.zeros(len(clips), bool)
    if cfg["holdout_index_max"] is not None:
        if any(c.index is None for c in clips):
            raise UserError(
                "data.holdout_index_max needs an {index} field in data.pattern "
                "(e.g. '{label}_{speaker}_{index}.wav')."
            )
        ho |= np.array([c.index <= cfg["holdout_index_max"] for c in clips])
    _check_speakers(cfg, speakers)
    if cfg["holdout_speakers"]:
        ho |= np.isin(speakers, cfg["holdout_speakers"])
    return ho


def _split_clips(cfg: dict, clips: list[Clip], speakers: np.ndarray) -> Splits:
    """Train / validation / holdout indices: held out by rule or at random, then validation by
    speaker or at random from the rest; every split must keep clips."""
    ho = _holdout_by_rule(cfg, clips, speakers)
    rest = np.flatnonzero(~ho)
    if ho.any():
        ho_idx = np.flatnonzero(ho)
    else:
        perm = np.random.default_rng(cfg["split_seed"]).permutation(rest)
        n_ho = int(round(len(clips) * cfg["holdout_fraction"]))
        ho_idx, rest = np.sort(perm[:n_ho]), perm[n_ho:]
    if cfg["val_speakers"]:
        in_val = np.isin(speakers[rest], cfg["val_speakers"])
        va_idx, tr_idx = rest[in_val], rest[~in_val]
    else:
        perm = np.random.default_rng(cfg["split_seed"] + 1).permutation(rest)
        n_val = max(1, int(round(len(rest) * cfg["val_fraction"])))
        va_idx, tr_idx = perm[:n_val], perm[n_val:]
    if len(tr_idx) < 2 or len(ho_idx) < 1 or len(va_idx) < 1:
        raise UserError(
            f"audio_folder: {len(clips)} clips leave {len(tr_idx)} for training, {len(va_idx)} for "
            f"validation and {len(ho_idx)} for the holdout; each split needs clips. Add files or "
            "change the holdout and validation keys."
        )
    return tr_idx, va_idx, ho_idx


def _audio_source(
    cfg: dict, root: Path, n_clips: int, fe: FrontEnd, speakers: np.ndarray, splits: Splits
) -> dict:
    """The card's ``data.source`` for an audio folder: front-end, speakers per split, split rules."""
    tr_idx, va_idx, ho_idx = splits
    return {
        "path": str(root),
        "loader": "audio_folder",
        "n_clips": n_clips,
        "frontend": fe.card(),
        "speakers": {
            split: sorted(set(speakers[i].tolist()) - {""})
            for split, i in (("train", tr_idx), ("val", va_idx), ("holdout", ho_idx))
        },
        "holdout_rule": (
            f"index <= {cfg['holdout_index_max']}" if cfg["holdout_index_max"] is not None else ""
        )
        + (f" speakers {cfg['holdout_speakers']}" if cfg["holdout_speakers"] else "")
        or f"random {cfg['holdout_fraction']:g} of the clips (seed {cfg['split_seed']})",
        "val_rule": f"speakers {cfg['val_speakers']}"
        if cfg["val_speakers"]
        else f"random {cfg['val_fraction']:g} of the training clips",
    }


def load_audio_folder(cfg: dict) -> Dataset:
    """WAV clips -> front-end features [n, coeffs*frames] with image shape [1, coeffs, frames]."""
    if not cfg["path"]:
        raise UserError(
            "recipe key 'data.path' is required for data.name: audio_folder "
            "(a folder of .wav files, e.g. ../shared/data/fsdd/recordings)."
        )
    root = resolve_path(cfg["path"], "data.path")
    if not root.is_dir():
        raise UserError(f"recipe key 'data.path' must be a folder of .wav files; '{root}' is not.")
    fe = FrontEnd.from_section(cfg["frontend"])
    clips = list_clips(root, cfg)
    labels = _sorted_labels({c.label for c in clips})
    y = np.array([labels.index(c.label) for c in clips], np.int64)
    speakers = np.array([c.speaker or "" for c in clips])
    tr_idx, va_idx, ho_idx = splits = _split_clips(cfg, clips, speakers)
    if cfg["augment"] is not None:
        return _limit(_stream_dataset(cfg, root, clips, labels, speakers, splits, fe), cfg)
    for key in ("keywords", "decision"):
        if cfg[key] is not None:
            raise UserError(
                f"recipe key 'data.{key}' needs data.augment (the stream's windows and its "
                "_silence_ / _unknown_ classes); add 'augment: {}' for the defaults or drop it."
            )

    cache_dir = REPO_ROOT / "build" / "cache" if cfg["cache"] else None
    feats = clip_features(clips, fe, cache_dir).reshape(len(clips), -1)
    ds = Dataset(
        _name(root),
        feats[tr_idx],
        y[tr_idx],
        feats[va_idx],
        y[va_idx],
        feats[ho_idx],
        y[ho_idx],
        labels,
        np.zeros(feats.shape[1], bool),
        fe.shape,
        _audio_source(cfg, root, len(clips), fe, speakers, splits),
    )
    return _limit(ds, cfg)


def _name(root: Path) -> str:
    return root.name if root.name != "recordings" else root.parent.name


def _stream_dataset(
    cfg: dict,
    root: Path,
    clips: list[Clip],
    labels: list[str],
    speakers: np.ndarray,
    splits: Splits,
    fe: FrontEnd,
) -> Dataset:
    """Keywords, ``_silence_`` and ``_unknown_`` as a stream meets them: augmented windows for
    training and validation, the clips as given plus silence for the holdout."""
    acfg = augment_config(cfg["augment"])
    classes, others = class_names(labels, cfg["keywords"])
    nk = len(classes) - 2
    y = np.array([nk + 1 if c.label in others else classes.index(c.label) for c in clips])
    tr_idx, va_idx, ho_idx = splits
    empty = [classes[k] for k in range(nk) if not np.any(y[tr_idx] == k)]
    if empty:
        raise UserError(
            f"recipe key 'data.keywords': {empty} have no training clips (check data.glob and "
            "the split keys), so the spotter could never learn them. Drop them from data.keywords."
        )
    waves = [read_wav(c.path, fe.sample_rate) for c in clips]
    pools = babble_pools(waves, speakers, _babble_idx(acfg, tr_idx, y, nk))
    n = fe.clip_samples
    tr = split_rows("train", tr_idx, waves, y, speakers, pools, acfg, n, nk)
    va = split_rows("val", va_idx, waves, y, speakers, pools, acfg, n, nk)
    fixed = np.stack([fe.fix_length(waves[i]) for i in ho_idx])
    ho = holdout_rows(ho_idx, fixed, waves, y, pools, acfg, n, nk)
    x_tr, x_va, x_ho = (features(fe, r) for r in (tr, va, ho))
    frame_ms = 1000.0 * fe.hop / fe.sample_rate
    rule = DecisionRule.from_section(cfg["decision"], frame_ms)
    source = {
        **_audio_source(cfg, root, len(clips), fe, speakers, splits),
        "classes": {
            "keywords": classes[:nk],
            "unknown_labels": others,
            "silence": "digital silence, generated noise and the clips' room tone",
            "unknown": "the non-keyword labels' clips, time-reversed and spliced keyword clips",
        },
        "augment": acfg,
        "rows": {"train": tr.counts(), "val": va.counts(), "holdout": ho.counts()},
        "decision": rule.card(classes, list(range(nk)), frame_ms),
    }
    return Dataset(
        _name(root), x_tr, tr.y, x_va, va.y, x_ho, ho.y, classes,
        np.zeros(x_tr.shape[1], bool), fe.shape, source,
    )  # fmt: skip


def _babble_idx(acfg: dict, tr_idx: np.ndarray, y: np.ndarray, nk: int) -> np.ndarray:
    """The training clips babble is summed from: all, or the non-keyword labels' only."""
    if acfg["babble_words"] == "all":
        return tr_idx
    idx = tr_idx[y[tr_idx] == nk + 1]
    if "babble" in acfg["noise"] and len(idx) == 0:
        raise UserError(
            "recipe key 'data.augment.babble_words' is 'non_keywords', and no training clip has "
            "a non-keyword label: keep 'all', or leave some labels out of data.keywords."
        )
    return idx


def holdout_clips(cfg: dict, split: str = "holdout") -> list[Clip]:
    """The clips of one split (default the holdout by rule: FSDD's test takes, or
    holdout_speakers) of a validated ``data`` section, as the loader splits them: the voices
    the stream benchmark plays (``val`` to choose a decision rule without the holdout)."""
    root = resolve_path(cfg["path"], "data.path")
    clips = list_clips(root, cfg)
    speakers = np.array([c.speaker or "" for c in clips])
    if split == "holdout" and not _holdout_by_rule(cfg, clips, speakers).any():
        raise UserError(
            "the stream benchmark needs a holdout by rule (data.holdout_index_max or "
            "data.holdout_speakers); this recipe holds out a random share of the clips."
        )
    names = ("train", "val", "holdout")
    if split not in names:
        raise UserError(f"split must be one of {', '.join(names)}; got {split!r}.")
    idx = _split_clips(cfg, clips, speakers)[names.index(split)]
    return [clips[i] for i in sorted(idx)]
