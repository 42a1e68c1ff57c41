"""The run directory: the only contract between the stages (DESIGN.md).

Writes are atomic: a file goes to a temp name then is renamed; a stage builds its whole
output folder under a temp name and swaps it in only when everything succeeded, so a
failure or a kill never leaves a half-written stage, and an existing stage is only
replaced with ``force=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError

STAGES = ("student", "export", "profile", "ship")

CARD = "student/card.json"
STUDENT = "student/student.pt2"
CALIBRATION = "student/calibration.npz"
HOLDOUT = "student/holdout.npz"
EXPORTS = "export/exports.json"
PROFILE = "profile/profile.json"
MANIFEST = "ship/manifest.json"


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file, or of every file in a folder (an .mlpackage) in sorted order."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def path_bytes(path: str | os.PathLike) -> int:
    """Bytes on disk of a file, or the sum over a folder (an .mlpackage)."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _tmp_sibling(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be read by others
    return Path(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=False, default=_jsonable, allow_nan=False)
    return atomic_write_bytes(path, (text + "\n").encode())


def atomic_write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_json(path: str | os.PathLike, what: str) -> dict:
    """Read a JSON file of the run directory with an error that names it and the fix."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{what} not found at '{path}'. Run the stage that writes it first (see README: make demo)."
        )
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(
            f"{what} at '{path}' is not valid JSON ({exc}). Re-run the stage that writes it with --force."
        ) from exc


def read_npz(path: str | os.PathLike, what: str, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Load an .npz of the run directory (never with pickles) and check its keys."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found at '{path}'. Run the distill stage first.")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:  # corrupt zip, truncated file, pickled object arrays
        raise UserError(
            f"{what} at '{path}' cannot be read ({exc}). Re-run the distill stage with --force."
        ) from exc
    missing = [k for k in keys if k not in data]
    if missing:
        raise UserError(
            f"{what} at '{path}' lacks arrays {missing}; it has {sorted(data)}. Re-run the distill stage with --force."
        )
    return data


@contextlib.contextmanager
def staged_dir(run_dir: str | os.PathLike, stage: str, force: bool = False) -> Iterator[Path]:
    """Yield a temp folder to fill; on success it becomes ``run_dir/stage``.

    An existing ``stage`` folder is refused unless ``force``; with ``force`` it is
    replaced only after the new one is complete, so a failure keeps the old results.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
    run_dir = Path(run_dir)
    final = run_dir / stage
    if final.exists() and not force:
        raise UserError(
            f"'{final}' already exists. Pass --force to replace it (the old one is kept until the new one is complete)."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{stage}.", suffix=".partial", dir=run_dir))
    os.chmod(tmp, 0o755)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = run_dir / f".{stage}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def package_versions(
    names: tuple[str, ...] = (
        "torch",
        "numpy",
        "scikit-learn",
        "onnx",
        "onnxruntime",
        "litert-torch",
        "ai-edge-litert",
        "tflite-micro",
        "coremltools",
    ),
) -> dict[str, str]:
    """Installed versions for the lineage record; a missing package is recorded as absent."""
    from importlib import metadata

    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "absent"
    return out
