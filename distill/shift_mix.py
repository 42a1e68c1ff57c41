"""Time shifts, frequency warps and mixtures of spectrogram rows: the audio transfer set.

One of the transfer-set generators that :mod:`distill.transfer` names (``method: shift_mix``).
"""

from __future__ import annotations

import numpy as np

from ground.errors import UserError


def shift_mix(
    x: np.ndarray, nominal: np.ndarray, n_new: int, cfg: dict, rng: np.random.Generator
) -> np.ndarray:
    """Augmented copies of image-shaped rows (MFCC / log-mel maps, time along the last axis).

    Each synthetic row is a training row shifted in time by up to ``shift_frames`` frames
    (edge frames repeated, so padding stays silence-like), with ``warp`` > 0 warped in
    frequency by a factor in [1 - warp, 1 + warp] (a longer or shorter vocal tract:
    :func:`warp_maps`), with probability ``mix_prob`` blended with another row (weight of the
    other row uniform in [0, ``mix_weight``]), plus Gaussian noise of ``noise`` x each feature's
    standard deviation. MUNGE swaps single attributes between neighbours, which on a
    spectrogram tears its time structure apart; shifts are what a keyword spotter meets (the
    word anywhere in the window), warps what a new voice brings, and mixtures probe the teacher
    between the classes, where its soft targets carry the most (Hinton §2).
    """
    shape = cfg.get("image_shape")
    if not shape or len(shape) != 3:
        raise UserError(
            "transfer.method 'shift_mix' needs image-shaped rows ([C, H, W] with time along W, "
            "e.g. data.name: audio_folder); this data set's rows are flat. Use 'munge'."
        )
    n, w = len(x), int(shape[-1])
    maps = np.asarray(x, dtype=np.float32).reshape(n, -1, w)
    k = int(cfg["shift_frames"])
    src = rng.integers(0, n, n_new)  # first draw: shift_mix_origins replays it
    shift = rng.integers(-k, k + 1, n_new)
    mixed = rng.random(n_new) < cfg["mix_prob"]
    partner = rng.integers(0, n, n_new)
    weight = rng.uniform(0.0, cfg["mix_weight"], n_new) * mixed
    sd = x.std(axis=0).astype(np.float32).reshape(1, -1, w)
    if cfg["warp"] > 0 and not cfg.get("frontend"):
        raise UserError(
            "transfer.warp needs the audio front-end's settings (data.name: audio_folder); "
            "this data set has none. Set transfer.warp: 0."
        )
    # quantized to steps of 0.01 so rows sharing a factor share one warp matrix; drawn only
    # when asked, so warp: 0 leaves the random stream (and the transfer set) as it was
    alpha = (
        np.round(1.0 + rng.uniform(-cfg["warp"], cfg["warp"], n_new), 2)
        if cfg["warp"] > 0
        else None
    )
    out = np.empty((n_new, maps.shape[1], w), np.float32)
    t = np.arange(w)
    for s in range(0, n_new, 4096):
        sl = slice(s, min(s + 4096, n_new))
        idx = np.clip(t[None, :] - shift[sl, None], 0, w - 1)  # [b, W]
        a = np.take_along_axis(maps[src[sl]], idx[:, None, :], axis=2)
        if alpha is not None:
            a = warp_maps(a, alpha[sl], cfg["frontend"])
        lam = weight[sl, None, None].astype(np.float32)
        b = (1 - lam) * a + lam * maps[partner[sl]]
        if cfg["noise"] > 0:
            b += cfg["noise"] * sd * rng.standard_normal(b.shape, dtype=np.float32)
        out[sl] = b
    return out.reshape(n_new, -1)


def shift_mix_origins(n: int, n_new: int, seed: int) -> np.ndarray:
    """The training row each synthetic row of :func:`shift_mix` was made from (``src``).

    ``distill.transfer.make_transfer`` hands the generator ``np.random.default_rng(seed)``
    and ``src`` is its first draw, so the origins replay from the seed alone; a blended row
    keeps its origin because its partner weighs at most ``mix_weight`` (0.4 in the recipes).
    The hard-label baseline labels the transfer rows with these (``distill.pipeline``)."""
    return np.random.default_rng(seed).integers(0, n, n_new)


def warp_matrix(frontend: dict, alpha: float) -> np.ndarray:
    """Linear map of one frame's features for a frequency warp f -> alpha f (VTLP, Jaitly &
    Hinton 2013), done on the features because the transfer stage has no waveforms.

    Log-mel: the warped band centred at f reads the original log-mel envelope at f / alpha,
    interpolated linearly between band centres on the mel axis (clamped at the edges). MFCC:
    the same on the smooth envelope the kept coefficients describe, D W D^T with D the
    front-end's orthonormal DCT rows (so the map is n_mfcc x n_mfcc and exact for alpha = 1),
    between undoing and redoing the front-end's lifter.
    """
    from .audio import FrontEnd

    fe = FrontEnd.from_card(frontend)
    centres = fe.mel_edges_hz()[1:-1]
    n = len(centres)
    pos = np.interp(fe.hz_to_mel(centres / alpha), fe.hz_to_mel(centres), np.arange(n))
    lo = np.floor(pos).astype(int)  # the warped band reads between bands lo and hi
    hi = np.minimum(lo + 1, n - 1)
    frac = pos - lo
    w = np.zeros((n, n))
    w[np.arange(n), lo] += 1.0 - frac
    w[np.arange(n), hi] += frac
    if fe.features != "mfcc":
        return w
    d, lift = fe.dct_matrix(), fe.lifter_weights()
    return (lift[:, None] * (d @ w @ d.T)) / lift[None, :]  # unlifter, warp, lifter again


def warp_maps(maps: np.ndarray, alpha: np.ndarray, frontend: dict) -> np.ndarray:
    """Apply :func:`warp_matrix` to feature maps [b, coefficients, frames], row by row."""
    out = np.empty_like(maps)
    for a in np.unique(alpha):
        rows = alpha == a
        m = warp_matrix(frontend, float(a)).astype(np.float32)
        out[rows] = np.einsum("ij,bjt->bit", m, maps[rows])
    return out
