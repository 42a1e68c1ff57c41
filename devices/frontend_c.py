"""The keyword spotter's audio front-end in C, as shipped: two fixed sources and a generated header.

``devices/frontend_c/tinyship_frontend.{h,c}`` are the streaming front-end (C99, float32: the
Cortex-M4F's FPU does the work); ``tinyship_frontend_tables.h`` is written here for one model from
its card's ``input.frontend``: the sizes, and the tables the C reads (Hann window with int16 scaling
folded in, FFT twiddles and bit reversal, the non-zero mel weights per band, the DCT-II rows times
the lifter). The tables are computed with the formulas of the Python front-end (distill's
``FrontEnd``: ``window``, ``mel_matrix``, ``dct_matrix``, ``lifter_weights``), which this stage may
not import; ``tests/devices/test_frontend_c.py`` checks them against it value for value, and the
compiled C against its features.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np

from ground import rundir
from ground.errors import UserError

SOURCE_DIR = Path(__file__).resolve().parent / "frontend_c"
SOURCES = ("tinyship_frontend.h", "tinyship_frontend.c")
HEADER = "tinyship_frontend_tables.h"
_PARAMS = ("sample_rate", "clip_samples", "align", "n_fft", "hop", "n_mels", "fmin", "fmax",
           "features", "n_mfcc", "lifter", "log_floor", "utterance_norm")  # fmt: skip
_NEED = ("sample_rate", "clip_samples", "align", "n_fft", "hop", "n_mels", "fmin", "fmax",
         "features", "n_mfcc", "log_floor", "utterance_norm", "frames", "coefficients")  # fmt: skip


def _check(fe: dict) -> None:
    """Refuse a card front-end the C does not compute, naming the key and the fix."""
    missing = [
        k
        for k in _NEED
        if fe.get(k) is None and not (k == "n_mfcc" and fe.get("features") == "logmel")
    ]
    if missing:
        raise UserError(
            f"the card's input.frontend lacks {', '.join(missing)}: the C front-end cannot be "
            "generated. Re-run distill to write a complete card."
        )
    n_fft = int(fe["n_fft"])
    if n_fft < 4 or n_fft & (n_fft - 1):
        raise UserError(
            f"input.frontend.n_fft is {n_fft}; the C front-end's real FFT needs a power of two >= 4."
        )
    if fe["features"] not in ("mfcc", "logmel") or fe["align"] not in ("center", "start"):
        raise UserError(
            f"input.frontend features={fe['features']!r}, align={fe['align']!r}: the C front-end "
            "computes features mfcc or logmel, aligned center or start."
        )
    frames = 1 + (int(fe["clip_samples"]) - n_fft) // int(fe["hop"])
    if frames != int(fe["frames"]):
        raise UserError(
            f"input.frontend.frames is {fe['frames']} but clip_samples, n_fft and hop give {frames}; "
            "the card is inconsistent. Re-run distill."
        )


def _mel_matrix(fe: dict) -> np.ndarray:
    """Triangular HTK-mel filters [n_mels, n_fft/2 + 1], peak 1 (the Python front-end's formula)."""
    n_fft, n_mels, sr = int(fe["n_fft"]), int(fe["n_mels"]), int(fe["sample_rate"])

    def hz_to_mel(f):
        return 2595 * np.log10(1 + np.asarray(f) / 700)

    lo, hi = (hz_to_mel(float(f)) for f in (fe["fmin"], fe["fmax"]))
    e = 700 * (10 ** (np.linspace(lo, hi, n_mels + 2) / 2595) - 1)
    bins = np.arange(n_fft // 2 + 1) * sr / n_fft
    lo, mid, hi = e[:-2, None], e[1:-1, None], e[2:, None]
    return np.maximum(0.0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))


def _dct_lifter(fe: dict) -> np.ndarray:
    """Orthonormal DCT-II rows [n_mfcc, n_mels], each times HTK's lifter weight."""
    n, k_n, lift = int(fe["n_mels"]), int(fe["n_mfcc"]), int(fe.get("lifter") or 0)
    k = np.arange(k_n)[:, None]
    m = np.arange(n)[None, :]
    d = np.cos(np.pi / n * (m + 0.5) * k) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    kk = np.arange(k_n, dtype=np.float64)
    lifter = 1.0 + (lift / 2.0) * np.sin(np.pi * kk / lift) if lift else np.ones_like(kk)
    return d * lifter[:, None]


def tables(fe: dict) -> dict[str, np.ndarray]:
    """Every table the C front-end reads, in float64 / int (written as float32 / uint16)."""
    _check(fe)
    n_fft = int(fe["n_fft"])
    n = np.arange(n_fft)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)  # periodic Hann
    half = n_fft // 2
    bits = half.bit_length() - 1
    bitrev = np.array([int(f"{k:0{bits}b}"[::-1], 2) if bits else 0 for k in range(half)])
    mel = _mel_matrix(fe)
    first, count, weights = [], [], []
    for row in mel:
        nz = np.flatnonzero(row)
        a, b = (int(nz[0]), int(nz[-1]) + 1) if nz.size else (0, 0)
        first.append(a)
        count.append(b - a)
        weights.extend(row[a:b])
    out = {
        "hann": hann / 32768.0,  # a power of two: exact, folds int16 -> [-1, 1) into the window
        "cos": np.cos(2 * np.pi * np.arange(half) / n_fft),
        "sin": np.sin(2 * np.pi * np.arange(half) / n_fft),
        "bitrev": bitrev,
        "mel_first": np.array(first),
        "mel_count": np.array(count),
        "mel_weight": np.array(weights),
        "mel_matrix": mel,
    }
    if fe["features"] == "mfcc":
        out["dct"] = _dct_lifter(fe)
    return out


def _floats(values) -> str:
    vals = []
    for v in np.asarray(values, dtype=np.float32).ravel():
        t = f"{float(v):.9g}"
        vals.append(t + ("f" if ("." in t or "e" in t) else ".0f"))
    return ",\n  ".join(", ".join(vals[i : i + 6]) for i in range(0, len(vals), 6))


def _ints(values) -> str:
    vals = [str(int(v)) for v in np.asarray(values).ravel()]
    return ",\n  ".join(", ".join(vals[i : i + 16]) for i in range(0, len(vals), 16))


def _defines(fe: dict, t: dict) -> list[str]:
    mfcc = fe["features"] == "mfcc"
    vals = {
        "SAMPLE_RATE": fe["sample_rate"], "CLIP_SAMPLES": fe["clip_samples"],
        "ALIGN_CENTER": int(fe["align"] == "center"), "N_FFT": fe["n_fft"], "HOP": fe["hop"],
        "FRAMES": fe["frames"], "N_MELS": fe["n_mels"], "N_MFCC": fe["n_mfcc"] if mfcc else 0,
        "COEFFS": fe["n_mfcc"] if mfcc else fe["n_mels"],
        "UTTERANCE_NORM": int(bool(fe["utterance_norm"])), "MEL_WEIGHTS": len(t["mel_weight"]),
    }  # fmt: skip
    floor = _floats([fe["log_floor"]])
    return [f"#define TINYSHIP_FE_{k} {int(v)}" for k, v in vals.items()] + [
        f"#define TINYSHIP_FE_LOG_FLOOR {floor}"
    ]


def header(fe: dict) -> str:
    """``tinyship_frontend_tables.h`` for the card front-end ``fe`` (its ``input.frontend``)."""
    t = tables(fe)
    n_fft, n_mels = int(fe["n_fft"]), int(fe["n_mels"])
    params = ", ".join(f"{k}={fe.get(k)}" for k in _PARAMS)
    lines = [
        "/* Generated by tinyship (devices/frontend_c.py) from the card's input.frontend: "
        f"{params}. Do not edit. */",
        "#ifndef TINYSHIP_FRONTEND_TABLES_H_",
        "#define TINYSHIP_FRONTEND_TABLES_H_",
        "",
        "#include <stdint.h>",
        "",
        *_defines(fe, t),
        "",
        "#ifdef TINYSHIP_FE_TABLES /* defined by tinyship_frontend.c only: one copy in flash */",
        "/* periodic Hann window / 32768 (int16 samples to [-1, 1) folded in) */",
        f"static const float tinyship_fe_hann[{n_fft}] = {{\n  {_floats(t['hann'])}\n}};",
        "/* cos and sin of 2 pi k / N_FFT: FFT twiddles and the real-FFT split */",
        f"static const float tinyship_fe_cos[{n_fft // 2}] = {{\n  {_floats(t['cos'])}\n}};",
        f"static const float tinyship_fe_sin[{n_fft // 2}] = {{\n  {_floats(t['sin'])}\n}};",
        f"static const uint16_t tinyship_fe_bitrev[{n_fft // 2}] = {{\n  {_ints(t['bitrev'])}\n}};",
        "/* mel band m: weights of power bins mel_first[m] .. + mel_count[m], in mel_weight, in order */",
        f"static const uint16_t tinyship_fe_mel_first[{n_mels}] = {{\n  {_ints(t['mel_first'])}\n}};",
        f"static const uint16_t tinyship_fe_mel_count[{n_mels}] = {{\n  {_ints(t['mel_count'])}\n}};",
        f"static const float tinyship_fe_mel_weight[{max(len(t['mel_weight']), 1)}] = "
        f"{{\n  {_floats(t['mel_weight']) or '0.0f'}\n}};",
    ]
    if "dct" in t:
        rows = ",\n  ".join("{" + _floats(r).replace("\n  ", " ") + "}" for r in t["dct"])
        lines += [
            "/* orthonormal DCT-II rows, each times the lifter weight */",
            f"static const float tinyship_fe_dct[{len(t['dct'])}][{n_mels}] = {{\n  {rows}\n}};",
        ]
    lines += ["#endif /* TINYSHIP_FE_TABLES */", "", "#endif /* TINYSHIP_FRONTEND_TABLES_H_ */", ""]
    return "\n".join(lines)


def write(out_dir: Path, fe: dict) -> list[Path]:
    """The front-end's sources and generated header in ``out_dir``; their paths."""
    text = header(fe)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in SOURCES:
        shutil.copyfile(SOURCE_DIR / name, out_dir / name)
        paths.append(out_dir / name)
    rundir.atomic_write_bytes(out_dir / HEADER, text.encode())
    return [*paths, out_dir / HEADER]


def digest(fe: dict) -> str:
    """12 hex digits of what the front-end's C is made of (sources and generated header)."""
    import hashlib

    h = hashlib.sha256(header(fe).encode())
    for name in SOURCES:
        h.update((SOURCE_DIR / name).read_bytes())
    return h.hexdigest()[:12]
