"""Waveform augmentation for a keyword spotter that listens to a stream (``data.augment``).

A microphone stream has no zero padding and no centred word: every window the model sees is
background with, sometimes, a word somewhere in it. So each training window is built on the
waveform, before the front-end (:mod:`distill.audio_frontend`), for teacher and student
alike: the word's speed changed by up to ``speed`` (tempo and pitch together, as a tape
played faster), placed at a random offset in a 1 s window, noise added at an SNR drawn from
``snr_db`` (white, pink, or babble summed from ``babble_talkers`` training clips of other
speakers, never a holdout speaker's), then the whole window's level changed by a gain drawn
from ``gain_db``. A share ``clean_share`` of the windows gets no noise (digital silence
around the word, as FSDD's own test clips have). Every window is drawn from its own
``np.random.Generator`` seeded by ``(seed, split, row)``, so a window does not depend on the
others and the same seed gives the same bytes.

SNR here is ``10 log10(P_word / P_noise)`` with both powers measured over the samples the
word occupies (after the speed change), so a quiet word in loud noise is what the figure says.
"""

from __future__ import annotations

import numpy as np

from ground.errors import UserError
from ground.recipe import Field, validate

NOISES = ("white", "pink", "babble")


def _range(lo: float, hi: float):
    def check(v: list) -> str | None:
        ok = (
            isinstance(v, list)
            and len(v) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
            and lo <= v[0] <= v[1] <= hi
        )
        return None if ok else f"must be [low, high] with {lo:g} <= low <= high <= {hi:g}"

    return check


def _noises(v: list) -> str | None:
    ok = isinstance(v, list) and v and all(n in NOISES for n in v)
    return None if ok else f"must be a non-empty list of {', '.join(NOISES)}"


AUGMENT_FIELDS: dict[str, Field] = {
    "windows_per_clip": Field(
        int, 1, min=1, max=100, doc="augmented 1 s windows drawn per training clip"
    ),
    "snr_db": Field(
        list, [0.0, 20.0], check=_range(-20.0, 60.0), doc="SNR range (dB) of the added noise"
    ),
    "noise": Field(
        list,
        list(NOISES),
        check=_noises,
        doc="noise kinds drawn from, each alike (one listed twice is drawn twice as often)",
    ),
    "clean_share": Field(
        float, 0.2, min=0.0, max=1.0, doc="share of windows with no noise (digital silence)"
    ),
    "gain_db": Field(
        list, [-40.0, 0.0], check=_range(-80.0, 20.0), doc="level change of the whole window (dB)"
    ),
    "speed": Field(float, 0.1, min=0.0, max=0.5, doc="largest speed change (0.1: factor 0.9..1.1)"),
    "babble_talkers": Field(int, 5, min=1, max=32, doc="training clips summed into babble"),
    "babble_words": Field(
        str,
        "all",
        choices=("all", "non_keywords"),
        doc="which training clips babble is made of: all labels', or only the non-keyword labels' "
        "(no keyword in the background, as the stream benchmark's babble)",
    ),
    "silence_share": Field(
        float,
        1.0,
        min=0.0,
        max=10.0,
        doc="_silence_ windows, as a multiple of one keyword's training windows",
    ),
    "unknown_synthetic_share": Field(
        float,
        0.5,
        min=0.0,
        max=10.0,
        doc="_unknown_ windows of time-reversed or spliced keyword clips, as a multiple of one "
        "keyword's training windows (on top of the non-keyword clips)",
    ),
    "silence_dbfs": Field(
        list,
        [-70.0, -20.0],
        check=_range(-120.0, 0.0),
        doc="rms level (dBFS) of a _silence_ window's background",
    ),
    "silence_change_share": Field(
        float,
        0.0,
        min=0.0,
        max=1.0,
        doc="share of _silence_ windows whose background changes kind and level at a random "
        "point (a stream's noise changes; a window across the change must stay silence)",
    ),
    "seed": Field(int, 0, min=0, doc="seed of every draw (with the split and the row)"),
}


def augment_config(section: dict | None) -> dict:
    """``data.augment`` validated, defaults filled in."""
    return validate("data.augment", section, AUGMENT_FIELDS)


def row_rng(seed: int, split: int, row: int) -> np.random.Generator:
    """The generator of one window: independent of every other row's."""
    return np.random.default_rng([seed, split, row])


def power(x: np.ndarray) -> float:
    """Mean power of a signal (0 for an empty one)."""
    return float(np.mean(np.square(x))) if len(x) else 0.0


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """10 log10(P_signal / P_noise) over the same samples."""
    return 10.0 * np.log10(power(signal) / power(noise))


def scale_to_snr(signal: np.ndarray, noise: np.ndarray, snr: float) -> float:
    """The factor that brings ``noise`` (over the signal's samples) to ``snr`` dB below it."""
    pn = power(noise)
    if pn <= 0.0:
        raise UserError("noise of zero power cannot be set to an SNR; draw it again.")
    return float(np.sqrt(power(signal) / (pn * 10.0 ** (snr / 10.0))))


def change_speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Played ``factor`` times faster (tempo and pitch together): linear interpolation."""
    if factor == 1.0 or len(x) < 2:
        return x
    n = max(2, int(round(len(x) / factor)))
    return np.interp(np.linspace(0.0, len(x) - 1, n), np.arange(len(x)), x)


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n)


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f power noise: white noise shaped by 1/sqrt(f) in the frequency domain, unit rms."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = np.inf  # no DC
    out = np.fft.irfft(spec / np.sqrt(f), n)
    return out / np.sqrt(power(out))


def babble(n: int, rng: np.random.Generator, pool: list[np.ndarray], talkers: int) -> np.ndarray:
    """``talkers`` voices at once, each clips of ``pool`` end to end from a random start."""
    if not pool:
        raise UserError(
            "babble noise needs training clips of other speakers and there are none; drop "
            "'babble' from data.augment.noise."
        )
    out = np.zeros(n)
    for _ in range(talkers):
        voice, filled = np.zeros(n), -int(rng.integers(0, n // 2 + 1))
        while filled < n:
            clip = pool[int(rng.integers(len(pool)))]
            lo, hi = max(filled, 0), min(filled + len(clip), n)
            if hi > lo:
                voice[lo:hi] = clip[lo - filled : hi - filled]
            filled += len(clip)
        out += voice / np.sqrt(max(power(voice), 1e-12))
    return out


def noise(
    kind: str, n: int, rng: np.random.Generator, pool: list[np.ndarray], talkers: int
) -> np.ndarray:
    """``n`` samples of one noise kind (any level: it is scaled to an SNR or a dBFS later)."""
    if kind == "white":
        return white(n, rng)
    if kind == "pink":
        return pink(n, rng)
    return babble(n, rng, pool, talkers)


def place(word: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """The word at a random offset in ``n`` samples of silence (its middle if longer)."""
    if len(word) >= n:
        start = (len(word) - n) // 2
        return word[start : start + n].copy(), 0
    off = int(rng.integers(0, n - len(word) + 1))
    out = np.zeros(n)
    out[off : off + len(word)] = word
    return out, off


def word_window(
    word: np.ndarray, n: int, cfg: dict, rng: np.random.Generator, pool: list[np.ndarray]
) -> np.ndarray:
    """One training window: speed, placement, noise at an SNR (or none), gain, clipped to +-1."""
    s = cfg["speed"]
    word = change_speed(word, float(rng.uniform(1.0 - s, 1.0 + s)))
    win, off = place(word, n, rng)
    span = slice(off, off + min(len(word), n))
    if rng.random() >= cfg["clean_share"]:
        kind = cfg["noise"][int(rng.integers(len(cfg["noise"])))]
        bg = noise(kind, n, rng, pool, cfg["babble_talkers"])
        snr = float(rng.uniform(*cfg["snr_db"]))
        win = win + scale_to_snr(win[span], bg[span], snr) * bg
    gain = float(rng.uniform(*cfg["gain_db"]))
    return np.clip(win * 10.0 ** (gain / 20.0), -1.0, 1.0)


def non_speech(clip: np.ndarray, frame: int = 80, below_db: float = 30.0) -> np.ndarray:
    """The clip's frames (``frame`` samples) at least ``below_db`` under its loudest frame,
    end to end: the room tone around the word."""
    k = len(clip) // frame
    if k == 0:
        return np.zeros(0)
    frames = clip[: k * frame].reshape(k, frame)
    e = np.mean(frames**2, axis=1)
    quiet = e <= e.max() * 10.0 ** (-below_db / 10.0)
    return frames[quiet].reshape(-1)


def silence_window(
    n: int, cfg: dict, rng: np.random.Generator, pool: list[np.ndarray], room: np.ndarray
) -> np.ndarray:
    """One ``_silence_`` window: digital silence, generated noise, or room tone of the clips;
    a share ``silence_change_share`` of them two such backgrounds, cut at a random point
    between a tenth and nine tenths of the window (no draw when the share is 0, so older
    recipes keep their bytes)."""
    if cfg["silence_change_share"] > 0 and rng.random() < cfg["silence_change_share"]:
        cut = int(rng.integers(n // 10, n - n // 10 + 1))
        a, b = _background(n, cfg, rng, pool, room), _background(n, cfg, rng, pool, room)
        return np.concatenate([a[:cut], b[cut:]])
    return _background(n, cfg, rng, pool, room)


def _background(
    n: int, cfg: dict, rng: np.random.Generator, pool: list[np.ndarray], room: np.ndarray
) -> np.ndarray:
    """One background of one kind at one level."""
    kinds = [*cfg["noise"], "digital", *(["room"] if len(room) >= n // 4 else [])]
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "digital":
        return np.zeros(n)
    if kind == "room":
        start = int(rng.integers(0, len(room)))
        bg = np.resize(np.roll(room, -start), n)
    else:
        bg = noise(kind, n, rng, pool, cfg["babble_talkers"])
    level = 10.0 ** (float(rng.uniform(*cfg["silence_dbfs"])) / 20.0)
    return np.clip(bg * level / np.sqrt(max(power(bg), 1e-20)), -1.0, 1.0)


def reversed_or_spliced(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Speech that is no keyword: ``a`` time-reversed, or ``a``'s first half then ``b``'s second
    (two different words), drawn half and half."""
    if rng.random() < 0.5:
        return a[::-1].copy()
    return np.concatenate([a[: len(a) // 2], b[len(b) // 2 :]])
