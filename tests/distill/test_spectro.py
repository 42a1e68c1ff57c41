"""Audio-shaped teacher members and the shift_mix transfer set."""

from __future__ import annotations

import numpy as np
import pytest

from distill import spectro_library
from distill.library import SHAPED, build_library
from distill.transfer import make_transfer
from ground.errors import UserError

SHAPE = (1, 4, 10)


def maps(n: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.standard_normal((n, *SHAPE)).astype(np.float32)
    x[y == 1, 0, 0, :] += 3.0  # class 1: energy in the first coefficient
    return x.reshape(n, -1), y


def test_shift_mix_rows_are_shifted_copies_with_edges_repeated():
    x, _ = maps()
    cfg = {
        "method": "shift_mix",
        "size_multiplier": 3,
        "shift_frames": 2,
        "mix_prob": 0.0,
        "noise": 0.0,
    }
    t = make_transfer(cfg, x, np.zeros(x.shape[1], bool), seed=0, image_shape=SHAPE)
    assert t.shape == (36, 40) and np.array_equal(t[:12], x)
    src = x.reshape(12, 4, 10)
    for row in t[12:].reshape(-1, 4, 10):
        hits = [
            (i, s)
            for i in range(12)
            for s in range(-2, 3)
            if np.array_equal(row, src[i][:, np.clip(np.arange(10) - s, 0, 9)])
        ]
        assert hits, "every synthetic row is a training row shifted by <= 2 frames"
    mixed = make_transfer(
        {**cfg, "mix_prob": 1.0, "mix_weight": 0.5, "noise": 0.1},
        x,
        np.zeros(40, bool),
        seed=0,
        image_shape=SHAPE,
    )
    assert np.isfinite(mixed).all() and not np.array_equal(mixed[12:], t[12:])


def test_shift_mix_needs_image_shaped_rows():
    x, _ = maps()
    with pytest.raises(UserError, match=r"shift_mix' needs image-shaped rows"):
        make_transfer({"method": "shift_mix"}, x, np.zeros(40, bool), seed=0)


def test_summary_features_and_conv_members_fit_and_predict(monkeypatch):
    x, y = maps(40)
    s = spectro_library.summarize(x, SHAPE)
    assert s.shape == (40, 5 * 4)
    np.testing.assert_allclose(s[:, :4], x.reshape(40, 4, 10).mean(2), rtol=1e-5)
    monkeypatch.setattr(spectro_library, "EPOCHS", 2)
    monkeypatch.setattr(spectro_library, "FCN_EPOCHS", 2)
    members = build_library(
        ["summary_logreg", "spec_dscnn_w48", "spec_fcn_w32", "spec_fcn_w32_b", "spec_fcn_w64"],
        x,
        y,
        seed=0,
        num_classes=2,
        input_shape=SHAPE,
    )
    for m in members.values():
        p = m.predict_proba(x)
        assert p.shape == (40, 2) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert members["summary_logreg"].predict_proba(x).argmax(1).tolist() == y.tolist()
    assert {"spec_cnn_w16", "spec_dscnn_w64", "summary_svm", "spec_fcn_w32_d"} <= SHAPED
    # the fcn names are one net at different seeds: same shapes, different weights
    a, b = (members[n].module.state_dict() for n in ("spec_fcn_w32", "spec_fcn_w32_b"))
    assert a.keys() == b.keys() and not all(a[k].equal(b[k]) for k in a)
    # the wide net is the same net at twice the widths
    wide = members["spec_fcn_w64"].module.state_dict()
    assert wide.keys() == a.keys() and wide["0.weight"].shape[0] == 2 * a["0.weight"].shape[0]


def test_shaped_library_models_refuse_flat_data():
    x, y = maps()
    with pytest.raises(UserError, match=r"need image-shaped rows \(\[C, H, W\]"):
        build_library(["summary_svm"], x, y, seed=0, num_classes=2)


def test_frequency_warp_moves_formants_and_is_identity_at_one():
    """transfer.warp: a log-mel peak moves up for alpha > 1 and down for alpha < 1; on MFCCs the
    same through the DCT (the front-end's own matrix); alpha = 1 changes nothing."""
    from distill.audio import FrontEnd
    from distill.transfer import warp_maps, warp_matrix

    for features in ("logmel", "mfcc"):
        fe = FrontEnd(features=features, n_mels=40, n_mfcc=20, hop=160)
        card = fe.card()
        np.testing.assert_allclose(warp_matrix(card, 1.0), np.eye(fe.coefficients), atol=1e-9)
        env = np.exp(-0.5 * ((np.arange(40) - 15) / 2.0) ** 2)  # one formant at band 15
        feats = env if features == "logmel" else fe.dct_matrix() @ env
        peaks = {}
        for a in (0.85, 1.0, 1.15):
            m = warp_maps(feats[None, :, None], np.array([a]), card)[0, :, 0]
            back = m if features == "logmel" else fe.dct_matrix().T @ m
            peaks[a] = int(np.argmax(back))
        assert peaks[0.85] < peaks[1.0] == 15 < peaks[1.15], (features, peaks)


def test_warp_needs_a_front_end_and_zero_keeps_the_transfer_set():
    x, _ = maps()
    cfg = {"method": "shift_mix", "size_multiplier": 2, "noise": 0.1}
    base = make_transfer(cfg, x, np.zeros(40, bool), seed=0, image_shape=SHAPE)
    same = make_transfer({**cfg, "warp": 0.0}, x, np.zeros(40, bool), seed=0, image_shape=SHAPE)
    assert np.array_equal(base, same)
    with pytest.raises(UserError, match=r"transfer.warp needs the audio front-end"):
        make_transfer({**cfg, "warp": 0.1}, x, np.zeros(40, bool), seed=0, image_shape=SHAPE)
