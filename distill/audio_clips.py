"""Reading the clips of an audio folder: 16-bit PCM WAV files, their labels, speakers and takes.

Files are read with the standard library's ``wave``. The label comes from the subfolder
(``labels_from: folder``) or from a file-name pattern such as FSDD's
``{label}_{speaker}_{index}.wav``. Front-end features of the clips are cached as .npy, keyed
on the files and the front-end settings.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ground.errors import UserError

from .audio_frontend import FrontEnd


def read_wav(path: Path, sample_rate: int) -> np.ndarray:
    """Mono float64 samples in [-1, 1) from a 16-bit PCM WAV at ``sample_rate`` (channels averaged)."""
    try:
        with wave.open(str(path), "rb") as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError, OSError) as exc:
        raise UserError(
            f"'{path}' is not a readable WAV file ({exc}). Convert it to 16-bit PCM WAV."
        ) from exc
    if width != 2:
        raise UserError(
            f"'{path}' has {8 * width}-bit samples; audio_folder reads 16-bit PCM. "
            f"Convert it (e.g. sox in.wav -b 16 out.wav)."
        )
    if rate != sample_rate:
        raise UserError(
            f"'{path}' is sampled at {rate} Hz but data.frontend.sample_rate is {sample_rate}. "
            f"Set data.frontend.sample_rate: {rate}, or resample the files."
        )
    x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1)
    return x


def compile_pattern(pattern: str) -> re.Pattern:
    """``{label}_{speaker}_{index}.wav`` -> a regex with named groups (``index`` digits only)."""
    out, pos = "", 0
    for m in re.finditer(r"\{(\w+)\}", pattern):
        out += re.escape(pattern[pos : m.start()])
        name = m.group(1)
        out += rf"(?P<{name}>\d+)" if name == "index" else rf"(?P<{name}>[^/]+?)"
        pos = m.end()
    try:
        return re.compile(out + re.escape(pattern[pos:]) + r"\Z")
    except re.error as exc:
        raise UserError(
            f"recipe key 'data.pattern' {pattern!r} is not a usable pattern ({exc}); "
            "use fields like {label}_{speaker}_{index}.wav, each field once."
        ) from exc


@dataclass
class Clip:
    path: Path
    label: str
    speaker: str | None
    index: int | None


def list_clips(root: Path, cfg: dict) -> list[Clip]:
    """The WAV files under ``root`` with their label (folder or pattern), speaker and take index."""
    rx = compile_pattern(cfg["pattern"]) if cfg["pattern"] else None
    if cfg["labels_from"] == "pattern" and (rx is None or "label" not in rx.groupindex):
        raise UserError(
            "data.labels_from: pattern needs data.pattern with a {label} field, "
            "e.g. '{label}_{speaker}_{index}.wav' (FSDD)."
        )
    if cfg["labels_from"] == "folder":
        files = sorted(p for p in root.glob("*/*") if p.suffix.lower() == ".wav")
    else:
        files = sorted(p for p in root.iterdir() if p.suffix.lower() == ".wav")
    files = [p for p in files if fnmatch.fnmatch(p.name, cfg["glob"])]
    clips = []
    for p in files:
        fields = {}
        if rx is not None:
            m = rx.match(p.name)
            if m is None:
                raise UserError(
                    f"file '{p.name}' does not match data.pattern {cfg['pattern']!r}. Rename it, "
                    "fix the pattern, or narrow data.glob."
                )
            fields = m.groupdict()
        label = p.parent.name if cfg["labels_from"] == "folder" else fields["label"]
        index = int(fields["index"]) if fields.get("index") is not None else None
        clips.append(Clip(p, label, fields.get("speaker"), index))
    if not clips:
        how = "one subfolder per class holding .wav files" if cfg["labels_from"] == "folder" else ""
        raise UserError(
            f"no .wav files matching data.glob {cfg['glob']!r} under '{root}'"
            + (f" ({how})" if how else "")
            + ". Check data.path and data.labels_from."
        )
    return clips


def _sorted_labels(names: set[str]) -> list[str]:
    """Class names in natural order: numerically when all are integers (FSDD's digits)."""
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def _cache_key(clips: list[Clip], fe: FrontEnd) -> str:
    h = hashlib.sha256(json.dumps(asdict(fe), sort_keys=True).encode())
    for c in clips:
        st = c.path.stat()
        h.update(f"{c.path}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def clip_features(clips: list[Clip], fe: FrontEnd, cache_dir: Path | None) -> np.ndarray:
    """Front-end features of every clip, cached as .npy (keyed on files and front-end settings)."""
    path = cache_dir / f"audio-{_cache_key(clips, fe)}.npy" if cache_dir else None
    if path is not None and path.is_file():
        feats = np.load(path, allow_pickle=False)
        if feats.shape == (len(clips), *fe.shape):
            return feats
    waves = np.stack([fe.fix_length(read_wav(c.path, fe.sample_rate)) for c in clips])
    feats = fe(waves)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{id(feats)}.npy")
        np.save(tmp, feats)
        tmp.replace(path)
    return feats
