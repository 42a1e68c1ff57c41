"""The run directory: the only contract between the stages (DESIGN.md).

Writes are atomic: a file goes to a temp name then is renamed (``ground.atomic``); a stage
builds its whole output folder under a temp name and swaps it in only when everything
succeeded, so a failure or a kill never leaves a half-written stage, and an existing stage
is only replaced with ``force=True``. One writer at a time: the lock, the commit and the
repair after a kill are in ``ground.commit``; both are re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import schemas, zipbounds
from .atomic import atomic_write_bytes as atomic_write_bytes
from .atomic import atomic_write_json as atomic_write_json
from .atomic import atomic_write_npz as atomic_write_npz
from .commit import COMMITS as COMMITS
from .commit import JOURNAL as JOURNAL
from .commit import LOCK as LOCK
from .commit import STAGES as STAGES
from .commit import TMP_MAX_AGE_S as TMP_MAX_AGE_S
from .commit import TMP_PREFIX as TMP_PREFIX
from .commit import holds as holds
from .commit import locked as locked
from .commit import recover as recover
from .commit import staged_dir as staged_dir
from .commit import staged_dirs as staged_dirs
from .commit import writes as writes
from .errors import UserError
from .treehash import tree_sha256

CARD = "student/card.json"
STUDENT = "student/student.pt2"
CALIBRATION = "student/calibration.npz"
HOLDOUT = "student/holdout.npz"
EXPORTS = "export/exports.json"
PROFILE = "profile/profile.json"
MANIFEST = "ship/manifest.json"


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file, or the Merkle hash of a folder (an .mlpackage; ground.treehash)."""
    path = Path(path)
    if path.is_dir():
        return tree_sha256(path)
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def path_bytes(path: str | os.PathLike) -> int:
    """Bytes on disk of a file, or the sum over a folder (an .mlpackage)."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _no_nan(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number (tinyship writes JSON with allow_nan=False)")


_WRITERS = {  # a run directory's folder -> the command that writes it
    "student": "tinyship distill --recipe RECIPE.yaml --run {run}",
    "export": "tinyship export --run {run}",
    "profile": "tinyship profile --run {run}",
    "ship": "tinyship profile --run {run}",
}


def writer_hint(path: Path) -> str:
    """'Run the stage that writes it first: tinyship export --run build/demo' for a run's file."""
    cmd = _WRITERS.get(path.parent.name, "tinyship run --recipe RECIPE.yaml --run {run}")
    run = path.parent.parent if path.parent.name in _WRITERS else path.parent
    return f"Run the stage that writes it first: {cmd.format(run=run)}"


def read_json(path: str | os.PathLike, what: str) -> dict:
    """Read a JSON file of the run directory with an error that names it and the fix."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found at '{path}'. {writer_hint(path)}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_nan)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UserError(
            f"{what} at '{path}' is not valid JSON ({exc}). Re-run the stage that writes it with --force."
        ) from exc
    return schemas.check(doc, path, what)  # a record's fields, typed and bounded before any use


def read_npz(path: str | os.PathLike, what: str, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Load an .npz of the run directory (never with pickles) and check its keys."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found at '{path}'. Run the distill stage first.")
    zipbounds.check_npz(path, what)  # entry count and inflated size, before numpy inflates
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


def inside(run_dir: str | os.PathLike, stage: str, name: Any, what: str) -> Path:
    """``run_dir/stage/name`` after refusing names that leave the stage folder.

    A record's file name is plain: no absolute path, no ``..`` or separator, and neither
    the folder nor the file may be a symlink (it could point anywhere).
    """
    run_dir = Path(run_dir)
    folder = run_dir / stage
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or os.path.isabs(name)
    ):
        raise UserError(
            f"{what} is {str(name)[:120]!r}: a file name inside '{folder}' is expected (no path, "
            "no '..'). The record was edited or corrupted; re-run the stage that wrote it with --force."
        )
    path = folder / name
    for p in (folder, path):
        if p.is_symlink():
            raise UserError(
                f"'{p}' is a symlink (to '{os.readlink(p)}'); tinyship reads only regular files "
                "inside the run directory. Re-run the stage that wrote it with --force."
            )
    return path


def stale(run_dir: str | os.PathLike) -> dict[str, str]:
    """Stages whose upstream changed after they ran: {stage: why}; for check and summary.

    export records the card's sha256; profile and ship record the card's and exports.json's.
    """
    run_dir = Path(run_dir)
    out: dict[str, str] = {}

    def sha(rel: str) -> str | None:
        p = run_dir / rel
        return sha256_file(p) if p.is_file() else None

    def recorded(rel: str) -> dict:
        try:
            d = read_json(run_dir / rel, rel)
        except UserError:
            return {}
        return d if isinstance(d, dict) else {}

    card, exports = sha(CARD), sha(EXPORTS)
    ex = recorded(EXPORTS) if exports else {}
    if ex and ex.get("card_sha256") != card:
        out["export"] = "student/card.json changed after export ran"
    for stage, rel in (("profile", PROFILE), ("ship", MANIFEST)):
        if not (run_dir / rel).is_file():
            continue
        d = recorded(rel)
        up = d.get("upstream", d) if stage == "ship" else d
        if up.get("card_sha256") != card:
            out[stage] = "student/card.json changed after it ran"
        elif up.get("exports_sha256") != exports:
            out[stage] = "export/exports.json changed after it ran"
    return out


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


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def training_machine() -> dict[str, Any]:
    """What a trained model's bytes depend on beyond recipe, seed and versions: torch picks its
    CPU kernels by the vector instructions it finds (``ATEN_CPU_CAPABILITY`` overrides), and
    kernels of another width round differently, so the same recipe trains other bytes on a CPU
    of another capability (rule T36m's re-distillation; forcing ``default`` on an AVX2 CPU
    changed the demo's student, while two AVX2 runs were byte-identical)."""
    import torch

    return {
        "cpu": cpu_name(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
    }
