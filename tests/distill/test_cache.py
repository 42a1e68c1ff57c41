"""Teacher-output cache: computed once per (teacher, inputs), memory-mapped, written atomically."""

from __future__ import annotations

import numpy as np
import pytest

from distill.cache import TeacherCache, inputs_sha256, label_shard, shard_bounds
from distill.ensemble import Teacher
from ground.errors import UserError


class Counting:
    """A softmax-linear member that counts the rows it was asked to label."""

    kind = "sklearn"

    def __init__(self, name: str = "lin", seed: int = 0, d: int = 5, c: int = 3) -> None:
        self.name = name
        self.w = np.random.default_rng(seed).normal(size=(d, c))
        self.calls = 0
        self.rows = 0

    def predict_proba(self, x):
        self.calls += 1
        self.rows += len(x)
        z = x @ self.w
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def serialized_bytes(self):
        return self.w.nbytes, "weights nbytes"

    def fingerprint(self):
        return inputs_sha256(self.w)


def teacher(seed: int = 0, weights=(1.0,)) -> tuple[Teacher, Counting]:
    m = Counting(seed=seed)
    return Teacher([m], np.array(weights), num_classes=3), m


@pytest.fixture
def x():
    return np.random.default_rng(1).normal(size=(1000, 5)).astype(np.float32)


def test_hit_avoids_recomputation_and_is_memory_mapped(tmp_path, x):
    t, m = teacher()
    cache = TeacherCache(tmp_path / "cache")
    first = cache.outputs(t, x, batch_size=128)
    assert m.rows == len(x) and m.calls == 8  # batched: ceil(1000 / 128)
    np.testing.assert_allclose(first, t.predict_proba(x), atol=1e-6)
    m.rows = 0
    second = TeacherCache(tmp_path / "cache").outputs(t, x)  # a new process would see the same file
    assert m.rows == 0
    assert (
        isinstance(second, np.memmap) and second.dtype == np.float32 and second.shape == (1000, 3)
    )
    np.testing.assert_array_equal(second, first)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [
        cache.path(t, x).name
    ]  # no temp files left


def test_changed_inputs_or_teacher_miss(tmp_path, x):
    t, m = teacher()
    cache = TeacherCache(tmp_path)
    cache.outputs(t, x)
    x2 = x.copy()
    x2[500, 2] += 1e-3
    m.rows = 0
    cache.outputs(t, x2)
    assert m.rows == len(x)
    cache.outputs(t, x[:999])  # same bytes prefix, other shape
    assert cache.misses == 3 and cache.hits == 0
    other, m2 = teacher(seed=1)
    cache.outputs(other, x)
    assert m2.rows == len(x) and cache.misses == 4
    t3 = Teacher(t.members, np.array([1.0]), combine="geometric", num_classes=3)
    assert cache.path(t3, x) != cache.path(t, x)
    cache.outputs(t, x)
    assert cache.hits == 1


def test_a_corrupt_cache_file_is_recomputed(tmp_path, x):
    t, m = teacher()
    cache = TeacherCache(tmp_path)
    path = cache.path(t, x)
    path.write_bytes(b"\x93NUMPY truncated")
    out = cache.outputs(t, x)
    assert m.rows == len(x) and out.shape == (1000, 3)


def test_shards_cover_the_rows_and_concatenate_to_the_whole(tmp_path, x):
    t, _ = teacher()
    bounds = [shard_bounds(1000, r, 3) for r in range(3)]
    assert bounds[0][0] == 0 and bounds[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    parts = [label_shard(t, x, r, 3, batch_size=100) for r in range(3)]
    whole = np.concatenate(parts)
    np.testing.assert_allclose(whole, t.predict_proba(x), atol=1e-6)
    cache = TeacherCache(tmp_path)
    assert not cache.contains(t, x)
    stored = cache.store(t, x, whole)
    assert cache.contains(t, x)
    assert cache.lookup(t, x) is not None and isinstance(stored, np.memmap)
    with pytest.raises(UserError, match=r"shard rank 3 must be in \[0, world\)"):
        shard_bounds(10, 3, 3)
    with pytest.raises(
        UserError, match=r"outputs of shape \(999, 3\) do not match 1000 input rows"
    ):
        cache.store(t, x, whole[:999])


def test_nan_inputs_are_refused_before_labelling(tmp_path, x):
    t, m = teacher()
    x[3, 1] = np.nan
    with pytest.raises(UserError, match=r"NaN or infinite input at row 3, column 1"):
        TeacherCache(tmp_path).outputs(t, x)
    assert m.calls == 0
