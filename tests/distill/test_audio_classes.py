"""_silence_ / _unknown_ classes and the stream rows (issue 36), on real FSDD clips."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from distill.audio import read_wav
from distill.audio_classes import SILENCE, UNKNOWN, babble_pools, class_names
from distill.data import load_data
from ground.errors import UserError

FSDD = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "fsdd" / "recordings"
BASE = {
    "name": "audio_folder",
    "path": str(FSDD),
    "labels_from": "pattern",
    "pattern": "{label}_{speaker}_{index}.wav",
    "glob": "[0-3]_*_[0-9].wav",
    "holdout_index_max": 2,
    "cache": False,
    "frontend": {"hop": 160, "n_mfcc": 13, "utterance_norm": True},
}


def section(**kw) -> dict:
    return {**BASE, "augment": {"babble_talkers": 2}, "keywords": [1, 2, 3], **kw}


@pytest.fixture(scope="module")
def stream_ds():
    return load_data(section())


def test_classes_are_keywords_then_silence_and_unknown_and_disjoint():
    names, others = class_names(["0", "1", "2", "3"], [3, 1])
    assert names == ["1", "3", SILENCE, UNKNOWN] and others == ["0", "2"]
    assert not set(names[:-2]) & set(others)
    assert class_names(["a", "b"], None) == (["a", "b", SILENCE, UNKNOWN], [])
    with pytest.raises(UserError, match=r"data.keywords' is \[1, 7\].*not found: \['7'\]"):
        class_names(["0", "1"], [1, 7])


def test_stream_rows_hold_every_class_and_non_keywords_are_unknown(stream_ds):
    ds = stream_ds
    assert ds.labels == ["1", "2", "3", SILENCE, UNKNOWN]
    for y in (ds.y_train, ds.y_val, ds.y_holdout):
        assert set(np.unique(y)) <= set(range(5))
    assert set(np.unique(ds.y_train)) == set(range(5))
    src = ds.source
    assert src["classes"]["keywords"] == ["1", "2", "3"]
    assert src["classes"]["unknown_labels"] == ["0"]
    # the holdout: every test clip as given (digit 0 -> _unknown_) plus silence windows
    n_test = 4 * 6 * 3
    assert src["rows"]["holdout"] == {"word": n_test, "silence": 18}
    assert int((ds.y_holdout[:n_test] == 4).sum()) == 18
    assert src["decision"]["keywords"] == ["1", "2", "3"]
    assert src["decision"]["never_fire"] == [SILENCE, UNKNOWN]


def test_stream_rows_are_deterministic(stream_ds):
    again = load_data(section())
    np.testing.assert_array_equal(again.x_train, stream_ds.x_train)
    np.testing.assert_array_equal(again.y_val, stream_ds.y_val)
    other = load_data(section(augment={"babble_talkers": 2, "seed": 1}))
    assert not np.array_equal(other.x_train, stream_ds.x_train)
    np.testing.assert_array_equal(other.x_holdout[:72], stream_ds.x_holdout[:72])  # clips as given


def test_babble_never_holds_a_holdout_speaker_or_the_words_own_voice():
    speakers = np.array(["a", "a", "b", "c", "c", "d"])
    waves = [np.full(10, i, dtype=np.float64) for i in range(6)]
    train_idx = np.array([0, 2, 3])  # d (and clips 1, 4) held out
    pools = babble_pools(waves, speakers, train_idx)
    held = {1, 4, 5}
    for s, pool in pools.items():
        ids = {int(w[0]) for w in pool}
        assert not ids & held
        assert all(speakers[i] != s for i in ids)
    assert {int(w[0]) for w in pools["d"]} == {0, 2, 3}


def test_loader_babble_pools_exclude_holdout_speakers(monkeypatch):
    """Through the loader: every clip the babble of any row reads is a training clip of
    another speaker; george is held out and never heard in it."""
    import distill.audio as audio_mod

    seen = {}

    def spy(waves, speakers, train_idx):
        pools = babble_pools(waves, speakers, train_idx)
        seen["pools"], seen["speakers"], seen["waves"] = pools, speakers, waves
        return pools

    monkeypatch.setattr(audio_mod, "babble_pools", spy)
    load_data(section(holdout_speakers=["george"], holdout_index_max=None))
    by_id = {id(w): s for w, s in zip(seen["waves"], seen["speakers"], strict=True)}
    voices = {by_id[id(w)] for pool in seen["pools"].values() for w in pool}
    assert "george" not in voices and len(voices) == 5
    assert all(by_id[id(w)] != s for s, pool in seen["pools"].items() for w in pool)


def test_babble_of_non_keywords_reads_only_their_clips(monkeypatch):
    """babble_words: non_keywords: every clip a pool holds is a non-keyword label's ("0" here),
    and a recipe with no non-keyword label is refused, naming the key."""
    import distill.audio as audio_mod

    seen = {}

    def spy(waves, speakers, train_idx):
        seen["waves"] = [waves[i] for i in train_idx]
        return babble_pools(waves, speakers, train_idx)

    monkeypatch.setattr(audio_mod, "babble_pools", spy)
    load_data(section(augment={"babble_talkers": 2, "babble_words": "non_keywords"}))
    zeros = {read_wav(p, 8000).tobytes() for p in FSDD.glob("0_*_[3-9].wav")}  # takes 0-2 held out
    assert seen["waves"] and all(w.tobytes() in zeros for w in seen["waves"])
    with pytest.raises(UserError, match=r"data.augment.babble_words' is 'non_keywords'"):
        load_data(section(keywords=[0, 1, 2, 3], augment={"babble_words": "non_keywords"}))


def _wav(path: Path, seconds: float, seed: int) -> None:
    x = 0.3 * np.random.default_rng(seed).standard_normal(int(8000 * seconds))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def test_keys_that_need_augment_and_keywords_without_clips_are_refused(tmp_path):
    with pytest.raises(UserError, match=r"data.keywords' needs data.augment"):
        load_data({**BASE, "keywords": [1]})
    with pytest.raises(UserError, match=r"data.decision' needs data.augment"):
        load_data({**BASE, "decision": {}})
    names = ["a_s1_0", "a_s1_1", "a_s2_0", "b_s1_0", "b_s1_1", "b_s2_0", "c_s2_0"]
    for i, n in enumerate(names):
        _wav(tmp_path / f"{n}.wav", 0.3, i)
    cfg = {**BASE, "path": str(tmp_path), "glob": "*.wav", "holdout_index_max": None,
           "holdout_speakers": ["s2"], "augment": {"noise": ["white"]}, "val_fraction": 0.3}  # fmt: skip
    with pytest.raises(UserError, match=r"\['c'\] have no training clips.*Drop them"):
        load_data({**cfg, "keywords": ["a", "c"]})
    ds = load_data({**cfg, "keywords": ["a", "b"]})  # c is a non-keyword: held-out _unknown_
    assert ds.labels == ["a", "b", SILENCE, UNKNOWN] and UNKNOWN in [
        ds.labels[i] for i in ds.y_holdout
    ]


def test_non_speech_is_quieter_than_the_word():
    from distill.audio_augment import non_speech, power

    w = read_wav(FSDD / "0_lucas_10.wav", 8000)
    room = non_speech(w)
    assert 0 < len(room) < len(w) and power(room) < power(w) / 100
