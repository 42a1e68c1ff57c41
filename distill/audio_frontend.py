"""The deterministic MFCC / log-mel front-end that turns a clip into the student's input map.

Every clip is framed, windowed (Hann), turned into a power spectrum (real FFT), a mel
filterbank, a log, and for MFCCs a DCT-II: the student sees ``[1, coefficients, frames]``.
The same numbers must be computed on the device, so the front-end's parameters and constants
go into the card (``input.frontend``) and from there into the ship manifest and the MCU C
files; :func:`frontend_ops` counts its arithmetic so the device stage can put its cost next
to the network's. Kept apart from WAV reading and the loader: the device stage and the
transfer set need the front-end alone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from ground.errors import UserError
from ground.recipe import Field, validate


def _check_pow2(v: int) -> str | None:
    return None if v > 0 and (v & (v - 1)) == 0 else "must be a power of two (e.g. 256)"


FRONTEND_FIELDS: dict[str, Field] = {
    "sample_rate": Field(int, 8000, min=1000, doc="Hz; files at another rate are refused"),
    "clip_seconds": Field(
        float, 1.0, min=0.05, max=30.0, doc="fixed input window: clips padded or cropped to this"
    ),
    "align": Field(
        str,
        "center",
        choices=("center", "start"),
        doc="where a short clip sits in the window (zero padding) / which part a long one keeps",
    ),
    "n_fft": Field(int, 256, check=_check_pow2, doc="FFT size = analysis window (samples)"),
    "hop": Field(int, 128, min=1, doc="samples between frames"),
    "n_mels": Field(int, 40, min=2, max=256, doc="mel bands"),
    "fmin": Field(float, 20.0, min=0.0, doc="lowest mel edge (Hz)"),
    "fmax": Field(float, None, min=1.0, doc="highest mel edge (Hz); default: sample_rate / 2"),
    "features": Field(str, "mfcc", choices=("mfcc", "logmel"), doc="DCT of the log-mel or not"),
    "n_mfcc": Field(int, 13, min=1, max=256, doc="mfcc: coefficients kept (incl. c0)"),
    "log_floor": Field(float, 1e-6, min=1e-12, doc="log(mel energy + floor)"),
    "lifter": Field(
        int,
        0,
        min=0,
        max=1000,
        doc="mfcc: HTK cepstral lifter L (c_n x (1 + L/2 sin(pi n / L)); 0 = off). Evens out the "
        "coefficients' ranges, which one int8 input scale must cover (22 is HTK's and Kaldi's)",
    ),
    "utterance_norm": Field(
        bool,
        False,
        doc="subtract each coefficient's mean over the window's frames (cepstral mean "
        "normalization, against channel and speaker offsets)",
    ),
}


@dataclass(frozen=True)
class FrontEnd:
    """A log-mel / MFCC front-end; ``__call__`` maps waveforms [n, samples] to [n, 1, coeffs, frames]."""

    sample_rate: int = 8000
    clip_seconds: float = 1.0
    align: str = "center"
    n_fft: int = 256
    hop: int = 128
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float | None = None
    features: str = "mfcc"
    n_mfcc: int = 13
    log_floor: float = 1e-6
    lifter: int = 0
    utterance_norm: bool = False

    @classmethod
    def from_section(cls, section: dict | None) -> FrontEnd:
        cfg = validate("data.frontend", section, FRONTEND_FIELDS)
        fe = cls(**cfg)
        fmax = fe.fmax_hz
        if fmax > fe.sample_rate / 2 or fe.fmin >= fmax:
            raise UserError(
                f"recipe keys 'data.frontend.fmin'/'fmax' must satisfy 0 <= fmin < fmax <= sample_rate/2 "
                f"({fe.sample_rate / 2:g} Hz); got fmin={fe.fmin:g}, fmax={fmax:g}."
            )
        if fe.n_fft > fe.clip_samples:
            raise UserError(
                f"recipe key 'data.frontend.n_fft' ({fe.n_fft}) is longer than the clip "
                f"({fe.clip_samples} samples); lower n_fft or raise clip_seconds."
            )
        if fe.features == "mfcc" and fe.n_mfcc > fe.n_mels:
            raise UserError(
                f"recipe key 'data.frontend.n_mfcc' ({fe.n_mfcc}) must be <= n_mels ({fe.n_mels})."
            )
        return fe

    @property
    def fmax_hz(self) -> float:
        return float(self.fmax if self.fmax is not None else self.sample_rate / 2)

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def frames(self) -> int:
        return 1 + (self.clip_samples - self.n_fft) // self.hop

    @property
    def coefficients(self) -> int:
        return self.n_mfcc if self.features == "mfcc" else self.n_mels

    @property
    def shape(self) -> tuple[int, int, int]:
        """[C, H, W] = [1, coefficients, frames]."""
        return (1, self.coefficients, self.frames)

    def window(self) -> np.ndarray:
        """Periodic Hann window of n_fft samples."""
        n = np.arange(self.n_fft)
        return 0.5 - 0.5 * np.cos(2 * np.pi * n / self.n_fft)

    @staticmethod
    def hz_to_mel(f: np.ndarray | float) -> np.ndarray | float:
        """The HTK mel scale, 2595 log10(1 + f/700)."""
        return 2595 * np.log10(1 + np.asarray(f) / 700)

    @classmethod
    def from_card(cls, card: dict) -> FrontEnd:
        """The front-end a card's ``input.frontend`` describes (its extra keys are derived)."""
        return cls(**{f.name: card[f.name] for f in fields(cls) if f.name in card})

    def mel_edges_hz(self) -> np.ndarray:
        """n_mels + 2 band edges, equally spaced on the HTK mel scale (2595 log10(1 + f/700))."""
        lo, hi = (self.hz_to_mel(f) for f in (self.fmin, self.fmax_hz))
        return 700 * (10 ** (np.linspace(lo, hi, self.n_mels + 2) / 2595) - 1)

    def mel_matrix(self) -> np.ndarray:
        """Triangular filters [n_mels, n_fft/2 + 1] on the FFT bins (peak 1, no area normalization)."""
        bins = np.arange(self.n_fft // 2 + 1) * self.sample_rate / self.n_fft
        e = self.mel_edges_hz()
        lo, mid, hi = e[:-2, None], e[1:-1, None], e[2:, None]
        up = (bins - lo) / (mid - lo)
        down = (hi - bins) / (hi - mid)
        return np.maximum(0.0, np.minimum(up, down))

    def dct_matrix(self) -> np.ndarray:
        """Orthonormal DCT-II rows [n_mfcc, n_mels]."""
        n = self.n_mels
        k = np.arange(self.n_mfcc)[:, None]
        m = np.arange(n)[None, :]
        d = np.cos(np.pi / n * (m + 0.5) * k) * math.sqrt(2.0 / n)
        d[0] /= math.sqrt(2.0)
        return d

    def lifter_weights(self) -> np.ndarray:
        """HTK's sinusoidal lifter per kept coefficient (all ones when off or for log-mel).

        Without it c0 (the log energy, sd ~30 on FSDD) and c12 (sd ~1) share one int8 input
        scale and the high coefficients keep two or three levels per sd; liftered, their
        spreads are within about 2x of each other."""
        n = np.arange(self.coefficients, dtype=np.float64)
        if self.features != "mfcc" or self.lifter == 0:
            return np.ones_like(n)
        return 1.0 + (self.lifter / 2.0) * np.sin(np.pi * n / self.lifter)

    def fix_length(self, wav: np.ndarray) -> np.ndarray:
        """Zero-pad or crop one clip to clip_samples (centered, or from the start)."""
        n, target = len(wav), self.clip_samples
        if n >= target:
            start = (n - target) // 2 if self.align == "center" else 0
            return wav[start : start + target]
        out = np.zeros(target, dtype=wav.dtype)
        start = (target - n) // 2 if self.align == "center" else 0
        out[start : start + n] = wav
        return out

    def __call__(self, waves: np.ndarray, batch: int = 256) -> np.ndarray:
        """Features of fixed-length waveforms [n, clip_samples] (float, -1..1) -> float32 [n, 1, H, W]."""
        waves = np.asarray(waves, dtype=np.float64)
        if waves.ndim != 2 or waves.shape[1] != self.clip_samples:
            raise UserError(
                f"front-end input must be [n, {self.clip_samples}] samples; got {list(waves.shape)}."
            )
        win, mel = self.window(), self.mel_matrix()
        dct = self.dct_matrix() if self.features == "mfcc" else None
        idx = np.arange(self.n_fft)[None, :] + self.hop * np.arange(self.frames)[:, None]
        out = np.empty((len(waves), 1, self.coefficients, self.frames), np.float32)
        for s in range(0, len(waves), batch):
            frames = waves[s : s + batch][:, idx] * win  # [b, frames, n_fft]
            power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2  # [b, frames, bins]
            feats = np.log(power @ mel.T + self.log_floor)  # [b, frames, n_mels]
            if dct is not None:
                feats = feats @ dct.T  # [b, frames, n_mfcc]
                if self.lifter:
                    feats = feats * self.lifter_weights()
            if self.utterance_norm:
                feats = feats - feats.mean(axis=1, keepdims=True)
            out[s : s + batch, 0] = np.swapaxes(feats, 1, 2)
        return out

    def card(self) -> dict:
        """Everything device code needs to reproduce the features (goes into card and manifest)."""
        return {
            **asdict(self),
            "fmax": self.fmax_hz,
            "clip_samples": self.clip_samples,
            "frames": self.frames,
            "coefficients": self.coefficients,
            "window": "periodic Hann, n_fft samples",
            "spectrum": "power |rfft(frame * window)|^2, n_fft/2+1 bins",
            "mel": "HTK mel scale, triangular filters with peak 1 between consecutive mel_edges_hz",
            "log": "natural log(mel energy + log_floor)",
            "dct": "orthonormal DCT-II, first n_mfcc rows" if self.features == "mfcc" else None,
            "lifter_weights": [round(float(w), 6) for w in self.lifter_weights()],
            "liftering": "c_n x lifter_weights[n] after the DCT (HTK: 1 + L/2 sin(pi n / L))"
            if self.features == "mfcc" and self.lifter
            else None,
            "input_scale": "samples as int16 / 32768",
            "layout": "[1, coefficients, frames]: coefficient-major, time along the last axis",
            "mel_edges_hz": [round(float(f), 4) for f in self.mel_edges_hz()],
            "ops_per_inference": frontend_ops(self),
        }


def frontend_ops(fe: FrontEnd) -> dict:
    """Arithmetic of one inference window, so the device stage can cost it next to the network.

    Real FFT of N points counted as 2.5 N log2 N floating-point operations (half the usual
    5 N log2 N of a complex radix-2 FFT); power spectrum 3 flops per bin; mel filterbank one
    MAC per non-zero filter weight; DCT n_mfcc x n_mels MACs; one log per band; utterance_norm
    one add (the mean) and one subtract per coefficient and frame.
    """
    bins = fe.n_fft // 2 + 1
    per_frame = {
        "window_mults": fe.n_fft,
        "fft_flops": int(2.5 * fe.n_fft * math.log2(fe.n_fft)),
        "power_flops": 3 * bins,
        "filterbank_macs": int(np.count_nonzero(fe.mel_matrix())),
        "logs": fe.n_mels,
        "dct_macs": fe.n_mfcc * fe.n_mels if fe.features == "mfcc" else 0,
        "lifter_mults": fe.n_mfcc if fe.features == "mfcc" and fe.lifter else 0,
        "cmn_flops": 2 * fe.coefficients if fe.utterance_norm else 0,
    }
    total = {k: v * fe.frames for k, v in per_frame.items()}
    flops = (
        total["window_mults"]
        + total["fft_flops"]
        + total["power_flops"]
        + 2 * total["filterbank_macs"]
        + 2 * total["dct_macs"]
        + total["lifter_mults"]
        + total["cmn_flops"]
    )
    return {
        "frames": fe.frames,
        "per_frame": per_frame,
        "total": total,
        "flops": int(flops),
        "logs": int(total["logs"]),
        "note": "fp32 work per inference window; FFT as 2.5 N log2 N flops, MACs as 2 flops",
    }
