"""audio_folder loader and front-end: real WAV files, FSDD's official split, errors that teach."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from distill.audio import FrontEnd, frontend_ops, read_wav
from distill.data import load_data
from ground.errors import UserError

FSDD = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "fsdd" / "recordings"


def write_wav(path: Path, samples: np.ndarray, rate: int = 8000, width: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(width)
        w.setframerate(rate)
        if width == 2:
            w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
        else:
            w.writeframes(((samples + 1) * 127).astype(np.uint8).tobytes())


def tone(freq: float, seconds: float = 0.4, rate: int = 8000, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    return 0.5 * np.sin(2 * np.pi * freq * t) + noise


def test_frontend_shape_and_a_tone_lands_in_its_mel_band():
    fe = FrontEnd(features="logmel", n_mels=20, hop=160)
    assert fe.shape == (1, 20, 49) and fe.clip_samples == 8000
    x = fe(fe.fix_length(tone(1000.0, 1.0))[None])
    assert x.shape == (1, 1, 20, 49) and x.dtype == np.float32
    band = int(np.argmax(x[0, 0, :, 20]))
    edges = fe.mel_edges_hz()
    assert edges[band] < 1000.0 < edges[band + 2]  # the filter whose triangle holds 1 kHz
    np.testing.assert_array_equal(x, fe(fe.fix_length(tone(1000.0, 1.0))[None]))  # deterministic


def test_mfcc_is_the_dct_of_logmel_and_utterance_norm_removes_the_mean():
    wav = FrontEnd().fix_length(tone(700.0, 0.5))[None]
    lm = FrontEnd(features="logmel")(wav)[0, 0]
    mf = FrontEnd(features="mfcc", n_mfcc=13)(wav)[0, 0]
    np.testing.assert_allclose(mf, FrontEnd().dct_matrix() @ lm, rtol=1e-4, atol=1e-3)
    cmn = FrontEnd(utterance_norm=True)(wav)[0, 0]
    np.testing.assert_allclose(cmn.mean(axis=1), 0.0, atol=1e-4)


def test_lifter_scales_each_mfcc_by_htk_weights_and_goes_into_the_card():
    wav = FrontEnd().fix_length(tone(700.0, 0.5))[None]
    plain = FrontEnd(n_mfcc=13)(wav)[0, 0]
    fe = FrontEnd(n_mfcc=13, lifter=22)
    w = fe.lifter_weights()
    assert w[0] == 1.0 and w[1] == pytest.approx(1 + 11 * np.sin(np.pi / 22))
    np.testing.assert_allclose(fe(wav)[0, 0], plain * w[:, None], rtol=1e-5, atol=1e-4)
    card = fe.card()
    assert card["lifter"] == 22 and card["lifter_weights"][1] == pytest.approx(w[1])
    assert FrontEnd(features="logmel", lifter=22).lifter_weights().tolist() == [1.0] * 40
    assert frontend_ops(fe)["flops"] - frontend_ops(FrontEnd(n_mfcc=13))["flops"] == 13 * fe.frames


def test_frontend_ops_counts_the_mean_normalization():
    plain, normed = FrontEnd(n_mfcc=13), FrontEnd(n_mfcc=13, utterance_norm=True)
    extra = frontend_ops(normed)["flops"] - frontend_ops(plain)["flops"]
    assert extra == 2 * 13 * plain.frames
    assert (
        frontend_ops(FrontEnd(features="logmel", utterance_norm=True))["per_frame"]["cmn_flops"]
        == 80
    )


def test_fix_length_pads_and_crops_around_the_middle():
    fe = FrontEnd(clip_seconds=0.001 * 1000 / 8, sample_rate=8000, n_fft=64, hop=32)  # 1000 samples
    short = fe.fix_length(np.ones(10))
    assert len(short) == 1000 and short[495:505].sum() == 10 and short[:495].sum() == 0
    long = fe.fix_length(np.arange(3000.0))
    assert long[0] == 1000 and len(long) == 1000
    assert FrontEnd(align="start", clip_seconds=0.125).fix_length(np.arange(3000.0))[0] == 0


def test_frontend_ops_counts_fft_and_filterbank():
    fe = FrontEnd(n_fft=256, hop=128)
    ops = frontend_ops(fe)
    assert ops["frames"] == fe.frames == 61
    assert ops["per_frame"]["fft_flops"] == int(2.5 * 256 * 8)
    assert ops["per_frame"]["filterbank_macs"] == np.count_nonzero(fe.mel_matrix())
    assert ops["flops"] > ops["total"]["fft_flops"] > 0


def test_folder_layout_labels_and_card(tmp_path):
    for i, (name, f) in enumerate([("low", 300.0), ("high", 2500.0)]):
        for k in range(6):
            write_wav(tmp_path / name / f"{k}.wav", tone(f, seed=k + 10 * i))
    ds = load_data(
        {"name": "audio_folder", "path": str(tmp_path), "cache": False, "val_fraction": 0.2}
    )
    assert ds.labels == ["high", "low"] and ds.image_shape == (1, 13, 61)
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_holdout) == 12
    assert ds.x_train.shape[1] == 13 * 61
    fe = ds.source["frontend"]
    assert fe["sample_rate"] == 8000 and fe["frames"] == 61 and len(fe["mel_edges_hz"]) == 42


@pytest.mark.skipif(not FSDD.is_dir(), reason="../shared/data/fsdd not present")
def test_fsdd_official_split_puts_takes_0_to_4_in_the_holdout(tmp_path):
    ds = load_data(
        {
            "name": "audio_folder",
            "path": str(FSDD),
            "labels_from": "pattern",
            "pattern": "{label}_{speaker}_{index}.wav",
            "glob": "*_jackson_[0-7].wav",
            "holdout_index_max": 4,
            "cache": False,
        }
    )
    assert ds.labels == [str(i) for i in range(10)]
    assert len(ds.x_holdout) == 50 and len(ds.x_train) + len(ds.x_val) == 30
    assert np.bincount(ds.y_holdout).tolist() == [5] * 10
    assert ds.source["speakers"]["holdout"] == ["jackson"]
    loso = load_data(
        {
            "name": "audio_folder",
            "path": str(FSDD),
            "labels_from": "pattern",
            "pattern": "{label}_{speaker}_{index}.wav",
            "glob": "[01]_*_0.wav",
            "holdout_speakers": ["theo"],
            "cache": False,
        }
    )
    assert loso.source["speakers"]["holdout"] == ["theo"] and len(loso.x_holdout) == 2
    assert "theo" not in loso.source["speakers"]["train"] + loso.source["speakers"]["val"]
    # val_speakers: the validation split is exactly those speakers' non-holdout clips, and
    # none of their clips train; the official holdout keeps every speaker's takes 0-4
    grouped = load_data(
        {
            "name": "audio_folder",
            "path": str(FSDD),
            "labels_from": "pattern",
            "pattern": "{label}_{speaker}_{index}.wav",
            "glob": "[01]_*_[0-6].wav",
            "holdout_index_max": 4,
            "val_speakers": ["george", "jackson"],
            "cache": False,
        }
    )
    sp = grouped.source["speakers"]
    assert sp["val"] == ["george", "jackson"] and len(grouped.x_val) == 2 * 2 * 2
    assert not {"george", "jackson"} & set(sp["train"]) and len(grouped.x_train) == 4 * 2 * 2
    assert (
        len(sp["holdout"]) == 6 and grouped.source["val_rule"] == "speakers ['george', 'jackson']"
    )


def test_feature_cache_is_reused_and_keyed_on_settings(tmp_path):
    from distill.audio import Clip, clip_features

    write_wav(tmp_path / "a.wav", tone(440.0))
    clips = [Clip(tmp_path / "a.wav", "a", None, None)]
    fe = FrontEnd()
    a = clip_features(clips, fe, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    np.testing.assert_array_equal(a, clip_features(clips, fe, tmp_path / "cache"))
    clip_features(clips, FrontEnd(n_mfcc=10), tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2


def test_errors_name_the_value_and_the_fix(tmp_path):
    write_wav(tmp_path / "x" / "a.wav", tone(440.0), rate=16000)
    with pytest.raises(UserError, match=r"sampled at 16000 Hz .*sample_rate: 16000"):
        read_wav(tmp_path / "x" / "a.wav", 8000)
    write_wav(tmp_path / "y" / "b.wav", tone(440.0), width=1)
    with pytest.raises(UserError, match=r"8-bit samples; audio_folder reads 16-bit PCM"):
        read_wav(tmp_path / "y" / "b.wav", 8000)
    base = {"name": "audio_folder", "path": str(tmp_path), "cache": False}
    with pytest.raises(
        UserError, match=r"labels_from: pattern needs data.pattern with a \{label\}"
    ):
        load_data({**base, "labels_from": "pattern"})
    write_wav(tmp_path / "c.wav", tone(440.0))
    with pytest.raises(UserError, match=r"file 'c.wav' does not match data.pattern"):
        load_data({**base, "labels_from": "pattern", "pattern": "{label}_{speaker}.wav"})
    with pytest.raises(UserError, match=r"data.frontend.n_fft': must be a power of two"):
        load_data({**base, "frontend": {"n_fft": 200}})
    with pytest.raises(UserError, match=r"data.frontend.hopp' is not known. Did you mean 'hop'"):
        load_data({**base, "frontend": {"hopp": 100}})
    write_wav(tmp_path / "d_sam.wav", tone(440.0))
    speakers = {"labels_from": "pattern", "pattern": "{label}_{speaker}.wav", "glob": "d_*"}
    with pytest.raises(
        UserError, match=r"data.holdout_speakers' names \['zed'\], not among .*\['sam'\]"
    ):
        load_data({**base, **speakers, "holdout_speakers": ["zed"]})
    with pytest.raises(
        UserError, match=r"data.val_speakers' names \['zed'\], not among .*\['sam'\]"
    ):
        load_data({**base, **speakers, "val_speakers": ["zed"]})
    write_wav(tmp_path / "d_tom.wav", tone(440.0))
    with pytest.raises(UserError, match=r"both name \['sam'\]; a speaker is either validation"):
        load_data({**base, **speakers, "val_speakers": ["sam"], "holdout_speakers": ["sam"]})
    with pytest.raises(UserError, match=r"leave 0 for training, 1 for validation and 1 for the"):
        load_data({**base, **speakers, "val_speakers": ["sam"], "holdout_speakers": ["tom"]})
    with pytest.raises(UserError, match=r"no .wav files matching data.glob 'nomatch\*'"):
        load_data({**base, **speakers, "glob": "nomatch*"})
