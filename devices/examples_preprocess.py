"""Reference implementation of ship/preprocess.json: your raw data -> the rows the model takes.

Pure Python and numpy, no tinyship: it ships as ``examples/preprocess.py`` and every example
there runs through it. tinyship runs each example on the raw holdout before a file ships, so
this code is what the model's recorded accuracy was reproduced with.

Inputs: a CSV with a header row (the label column may be there; it is ignored), an ``.npy`` of
raw features (``[n, d]`` or ``[n, *shape]``), or a folder of PNG images (class subfolders or
not). The model's graph normalizes and one-hots by itself: nothing here scales a value.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import zlib
from pathlib import Path

import numpy as np


class InputError(ValueError):
    """Raw data that does not fit the contract; the message names the place and the fix."""


def load(path: str | Path) -> dict:
    """The contract (preprocess.json)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read(path: str | Path, contract: dict) -> np.ndarray:
    """float32 rows of the model's input shape ``[n, *shape]`` from a CSV, an .npy or a folder."""
    p = Path(path)
    if p.is_dir():
        x = read_images(p, contract)
    elif p.suffix.lower() == ".npy":
        x = from_array(np.load(p, allow_pickle=False), contract, str(p))
    else:
        x = read_table(p, contract)
    return x.reshape(len(x), *contract["input"]["shape"])


def labels(logits: np.ndarray, contract: dict) -> list[str]:
    """The class name of each row: the arg-max of the model's output."""
    names = contract.get("labels") or []
    top = np.asarray(logits).reshape(len(logits), -1).argmax(1)
    return [str(names[int(i)]) if names else str(int(i)) for i in top]


def _note(counts: dict[str, int], contract: dict) -> None:
    """Filled and unseen values are said on stderr (never silently changed)."""
    if counts["filled"] or counts["unseen"]:
        print(
            f"preprocess: {counts['filled']} missing values filled ({contract.get('missing')}), "
            f"{counts['unseen']} unseen categories ({contract.get('unseen')})",
            file=sys.stderr,
        )


# ---- tables ------------------------------------------------------------------------------


def read_table(path: Path, contract: dict) -> np.ndarray:
    """A CSV read with the training file's encoding, delimiter and decimal mark."""
    dialect = contract.get("csv") or {}
    enc = dialect.get("encoding", "utf-8")
    try:
        text = path.read_bytes().decode("utf-8-sig" if enc.lower() == "utf-8" else enc)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not {enc} text ({exc}); save it as {enc}.") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=dialect.get("delimiter", ","))
    rows = [r for r in reader if any(c.strip() for c in r)]
    if not rows:
        raise InputError(f"{path}: no header row.")
    header = [h.strip() for h in rows[0]]
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise InputError(f"{path} line {i}: {len(r)} fields; the header has {len(header)}.")
    return encode_rows(header, [[c.strip() for c in r] for r in rows[1:]], contract, str(path))


def encode_rows(header: list[str], rows: list[list[str]], contract: dict, where: str) -> np.ndarray:
    """Text rows -> numbers: codes for categories, fill values for missing entries."""
    cols = contract["columns"]
    absent = [c["name"] for c in cols if c["name"] not in header]
    if absent:
        raise InputError(f"{where}: columns {absent} are missing; the model takes {_names(cols)}.")
    out = np.zeros((len(rows), len(cols)), np.float32)
    counts = {"filled": 0, "unseen": 0}
    for k, c in enumerate(cols):
        j = header.index(c["name"])
        code = {v: i for i, v in enumerate(c.get("categories") or [])}
        for i, r in enumerate(rows):
            out[i, k] = _value(r[j], c, code, contract, counts, f"{where} line {i + 2}")
    _note(counts, contract)
    return out


def _value(v: str, c: dict, code: dict, contract: dict, counts: dict, where: str) -> float:
    if v.lower() in contract.get("missing_values", ()):
        return _fill(c, contract, counts, where)
    if c["kind"] == "numeric":
        try:
            dec = (contract.get("csv") or {}).get("decimal", ".")
            return float(v.replace(",", ".") if dec == "," else v)
        except ValueError:
            raise InputError(f"{where}, column '{c['name']}': {v!r} is not a number.") from None
    if v in code:
        return float(code[v])
    return _unseen(v, c, contract, counts, where)


def _fill(c: dict, contract: dict, counts: dict, where: str) -> float:
    if contract.get("missing") == "error" or c.get("fill") is None:
        raise InputError(
            f"{where}, column '{c['name']}': missing value, and the model was trained without "
            "missing values in it; fill it in."
        )
    counts["filled"] += 1
    return float(c["fill"])


def _unseen(v, c: dict, contract: dict, counts: dict, where: str) -> float:
    policy = contract.get("unseen", "error")
    if policy == "error" or (policy == "most_frequent" and c.get("fill") is None):
        raise InputError(
            f"{where}, column '{c['name']}': category {v!r} is not one the model knows "
            f"({(c.get('categories') or [])[:10]})."
        )
    counts["unseen"] += 1
    return float(contract["unknown_code"]) if policy == "unknown" else float(c["fill"])


def _names(cols: list[dict]) -> list[str]:
    return [c["name"] for c in cols]


# ---- arrays ------------------------------------------------------------------------------


def from_array(a: np.ndarray, contract: dict, where: str) -> np.ndarray:
    """Raw features as numbers: NaN is a missing value (filled or refused, never fed)."""
    shape = list(contract["input"]["shape"])
    width = int(np.prod(shape))
    if a.ndim < 2 or int(np.prod(a.shape[1:])) != width or a.dtype.kind not in "fiub":
        raise InputError(
            f"{where}: an array of shape {list(a.shape)} ({a.dtype}); the model takes numbers "
            f"[n, {width}] or [n, {', '.join(map(str, shape))}]."
        )
    x = a.reshape(len(a), width).astype(np.float32)
    cols = contract.get("columns") or []
    counts = {"filled": 0, "unseen": 0}
    bad = np.argwhere(~np.isfinite(x))
    for i, k in bad:
        c = cols[k] if k < len(cols) else {"name": str(k), "fill": None}
        x[i, k] = _fill(c, contract, counts, f"{where} row {i}")
    for k, c in enumerate(cols):
        known = len(c.get("categories") or [])
        if c["kind"] == "categorical" and known:
            for i in np.flatnonzero(
                (x[:, k] != np.round(x[:, k])) | (x[:, k] < 0) | (x[:, k] >= known)
            ):
                x[i, k] = _unseen(float(x[i, k]), c, contract, counts, f"{where} row {i}")
    _note(counts, contract)
    return x


# ---- images ------------------------------------------------------------------------------


def read_images(folder: Path, contract: dict) -> np.ndarray:
    """PNG files under ``folder`` (sorted by class subfolder, then name), as the training did."""
    image = contract.get("image") or {}
    files = sorted(f for f in folder.rglob("*") if f.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise InputError(f"{folder}: no .png images.")
    hw = list(image.get("size") or contract["input"]["shape"][-2:])  # the trained [H, W]
    rows = []
    for f in files:
        if f.suffix.lower() != ".png":
            raise InputError(f"{f}: only PNG is read here (no image library); convert it to PNG.")
        a = _to_mode(read_png(f), bool(image.get("grayscale")), f)
        if list(a.shape[:2]) != hw:
            raise InputError(
                f"{f}: {a.shape[0]}x{a.shape[1]} pixels; the model takes {hw[0]}x{hw[1]}. "
                "Resize it first (training resized with Pillow's bilinear filter)."
            )
        rows.append(a.transpose(2, 0, 1).astype(np.float32))
    return np.stack(rows).reshape(len(rows), -1)


def _to_mode(a: np.ndarray, gray: bool, f: Path) -> np.ndarray:
    """[H, W, C] uint8 as Pillow's convert('L') or convert('RGB') gives it (alpha dropped)."""
    c = a.shape[2]
    rgb = a[..., :3] if c >= 3 else np.repeat(a[..., :1], 3, axis=2)
    if not gray:
        return rgb
    if c < 3:
        return a[..., :1]
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)[..., None]


def read_png(path: Path) -> np.ndarray:
    """An 8-bit, non-interlaced PNG as uint8 ``[H, W, C]`` (gray, gray+alpha, RGB, RGBA, palette)."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise InputError(f"{path}: not a PNG file.")
    pos, idat, plte = 8, [], None
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
            depth, ctype, interlace = body[8], body[9], body[12]
        elif kind == b"PLTE":
            plte = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    if depth != 8 or interlace:
        raise InputError(f"{path}: {depth}-bit or interlaced PNG; save it as a plain 8-bit PNG.")
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(h, 1 + w * channels)
    img = _unfilter(raw, channels).reshape(h, w, channels)
    if ctype == 3:
        img = plte[img[..., 0]]
    return img


def _unfilter(raw: np.ndarray, bpp: int) -> np.ndarray:
    """Undo PNG's per-line filters (none, sub, up, average, Paeth)."""
    h, stride = raw.shape[0], raw.shape[1] - 1
    out = np.zeros((h, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        ftype, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if ftype in (0, 2):
            cur = (line + (prev if ftype == 2 else 0)) & 0xFF
        else:
            cur = np.zeros(stride, np.int32)
            for x in range(stride):
                a = cur[x - bpp] if x >= bpp else 0
                c = prev[x - bpp] if x >= bpp else 0
                if ftype == 1:
                    pred = a
                elif ftype == 3:
                    pred = (a + prev[x]) >> 1
                else:
                    p = a + prev[x] - c
                    pa, pb, pc = abs(p - a), abs(p - prev[x]), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else prev[x] if pb <= pc else c
                cur[x] = (line[x] + pred) & 0xFF
        out[y], prev = cur, cur
    return out.astype(np.uint8)
