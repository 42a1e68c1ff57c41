"""The front-end over a stream: each 20 ms frame computed once, windows sliced from a ring.

What a device does: every frame's liftered MFCCs (or log-mels) are computed when its samples
arrive and kept in a ring of one window's frames; every ``hop_frames`` frames the model scores
the ring, after the window normalization the front-end asks for (``utterance_norm``: each
coefficient's mean over the ring's frames, subtracted). :func:`stream_windows` does that over a
whole recorded stream and gives the same numbers as :class:`distill.audio_frontend.FrontEnd`
applied to each window alone (tests/distill/test_audio_stream.py holds them to 1e-4).
"""

from __future__ import annotations

import numpy as np

from ground.errors import UserError

from .audio_frontend import FrontEnd

FRAMES_AT_ONCE = 4096


def frame_features(fe: FrontEnd, samples: np.ndarray) -> np.ndarray:
    """Per-frame features [frames, coefficients] of a stream, before the window normalization
    (frame f covers samples f * hop .. f * hop + n_fft)."""
    x = np.asarray(samples, dtype=np.float64)
    n = 1 + (len(x) - fe.n_fft) // fe.hop if len(x) >= fe.n_fft else 0
    win, mel = fe.window(), fe.mel_matrix()
    dct = fe.dct_matrix() if fe.features == "mfcc" else None
    out = np.empty((n, fe.coefficients), np.float64)
    for s in range(0, n, FRAMES_AT_ONCE):
        f = np.arange(s, min(s + FRAMES_AT_ONCE, n))
        frames = x[f[:, None] * fe.hop + np.arange(fe.n_fft)[None, :]] * win
        feats = np.log((np.abs(np.fft.rfft(frames, axis=-1)) ** 2) @ mel.T + fe.log_floor)
        if dct is not None:
            feats = feats @ dct.T
            if fe.lifter:
                feats = feats * fe.lifter_weights()
        out[f] = feats
    return out


def stream_windows(
    fe: FrontEnd, samples: np.ndarray, hop_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every ``hop_frames`` frames, the window of ``fe.frames`` frames that ends there: features
    [T, 1, coefficients, frames] (float32) and the sample index where each window ends
    (its start + clip_samples, when a device would score it)."""
    if hop_frames < 1:
        raise UserError(f"hop_frames must be at least 1; got {hop_frames}.")
    feats = frame_features(fe, samples)
    t = (len(feats) - fe.frames) // hop_frames + 1 if len(feats) >= fe.frames else 0
    starts = np.arange(t) * hop_frames
    out = np.empty((t, 1, fe.coefficients, fe.frames), np.float32)
    for s in range(0, t, 1024):
        sl = starts[s : s + 1024]
        w = feats[sl[:, None] + np.arange(fe.frames)[None, :]]  # [b, frames, coeffs]
        if fe.utterance_norm:
            w = w - w.mean(axis=1, keepdims=True)
        out[s : s + len(sl), 0] = np.swapaxes(w, 1, 2)
    return out, starts * fe.hop + fe.clip_samples
