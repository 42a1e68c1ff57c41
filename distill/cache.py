"""Teacher-output cache: label a transfer set once, reuse it across epochs and runs.

Labelling a 400k-row transfer set with an ensemble is the expensive half of
Bucilua et al.'s recipe (§2: the teacher labels the synthetic data once); the
student then trains on the stored outputs. The cache key is the content: sha256 of
the inputs (bytes, shape, dtype) and the teacher's fingerprint, so a changed
transfer set or teacher misses and anything else hits. Files are ``.npy`` written
atomically (temp file, then rename) and read memory-mapped.

Labelling is done in batches over row ranges, so a distributed caller can give
each rank its own slice (:func:`shard_bounds`, :func:`label_shard`) and store the
gathered result with :meth:`TeacherCache.store`.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from ground.errors import UserError

from .ensemble import Teacher
from .members import check_inputs


def inputs_sha256(x: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes (C order)."""
    x = np.ascontiguousarray(x)
    h = hashlib.sha256(f"{x.dtype.str}|{x.shape}|".encode())
    h.update(memoryview(x).cast("B"))
    return h.hexdigest()


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """Row range [start, stop) of ``rank`` among ``world`` near-equal contiguous shards."""
    if world < 1 or not 0 <= rank < world:
        raise UserError(
            f"shard rank {rank} must be in [0, world) with world >= 1; got world {world}."
        )
    return rank * n // world, (rank + 1) * n // world


def label_batches(
    teacher: Teacher,
    x: np.ndarray,
    start: int = 0,
    stop: int | None = None,
    batch_size: int = 4096,
    desc: str = "teacher labels",
) -> np.ndarray:
    """The teacher's probabilities for rows [start, stop), batch by batch with a progress bar."""
    from tqdm import tqdm

    stop = len(x) if stop is None else stop
    out = (
        np.empty((stop - start, teacher.num_classes or 0), dtype=np.float32)
        if teacher.num_classes
        else None
    )
    parts = []
    with tqdm(total=stop - start, desc=desc, unit="row", file=sys.stderr, disable=None) as bar:
        for i in range(start, stop, batch_size):
            p = teacher.predict_proba(x[i : min(i + batch_size, stop)], batch_size=batch_size)
            if out is not None:
                out[i - start : i - start + len(p)] = p
            else:
                parts.append(p)
            bar.update(len(p))
    return out if out is not None else np.concatenate(parts)


def label_shard(
    teacher: Teacher, x: np.ndarray, rank: int, world: int, batch_size: int = 4096
) -> np.ndarray:
    """This rank's slice of the teacher's outputs (rows ``shard_bounds(len(x), rank, world)``)."""
    start, stop = shard_bounds(len(x), rank, world)
    return label_batches(
        teacher, x, start, stop, batch_size, desc=f"teacher labels [rank {rank}/{world}]"
    )


def _atomic_save_npy(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class TeacherCache:
    """Teacher outputs on disk under ``root``, one ``.npy`` per (teacher, inputs)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def path(self, teacher: Teacher, x: np.ndarray) -> Path:
        """Where the outputs of ``teacher`` on ``x`` are (or will be) stored."""
        x = np.ascontiguousarray(
            x, dtype=np.float32
        )  # the key does not depend on the caller's dtype
        return self.root / f"{teacher.fingerprint()[:20]}-{inputs_sha256(x)[:20]}.npy"

    def _load(self, path: Path, n: int) -> np.ndarray | None:
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return (
                None  # unreadable (e.g. truncated by a crash outside our atomic write): recompute
            )
        if arr.ndim != 2 or arr.shape[0] != n or arr.dtype != np.float32:
            return None
        return arr

    def lookup(self, teacher: Teacher, x: np.ndarray) -> np.ndarray | None:
        """The cached outputs, memory-mapped, or None."""
        return self._load(self.path(teacher, x), len(x))

    def contains(self, teacher: Teacher, x: np.ndarray) -> bool:
        """Whether the outputs for (teacher, x) are cached (so no rank needs to label)."""
        x = check_inputs(x, "the teacher cache")
        return self.lookup(teacher, x) is not None

    def store(self, teacher: Teacher, x: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Write outputs computed elsewhere (e.g. gathered from ranks) and return them memory-mapped."""
        probs = np.ascontiguousarray(probs, dtype=np.float32)
        if probs.ndim != 2 or len(probs) != len(x):
            raise UserError(
                f"teacher outputs of shape {probs.shape} do not match {len(x)} input rows."
            )
        path = self.path(teacher, x)
        _atomic_save_npy(path, probs)
        return np.load(path, mmap_mode="r", allow_pickle=False)

    def outputs(self, teacher: Teacher, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """float32 ``[n, C]`` teacher probabilities for ``x``, computed once and memory-mapped."""
        x = check_inputs(x, "the teacher cache")
        cached = self.lookup(teacher, x)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        return self.store(teacher, x, label_batches(teacher, x, batch_size=batch_size))
