"""Arena planning: where each activation tensor lives in one flat buffer.

Greedy by size, as TFLite Micro's GreedyMemoryPlanner does: tensors sorted
largest-first are each placed at the lowest offset where they do not overlap,
in memory, any already-placed tensor whose lifetime (first producer step to last
consumer step) overlaps theirs. The arena size is the highest end offset.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Buffer:
    """An activation tensor: ``size`` bytes alive from step ``first`` to step ``last`` inclusive."""

    name: str
    size: int
    first: int
    last: int


@dataclass
class ArenaPlan:
    offsets: dict[str, int]
    arena_bytes: int
    peak_live_bytes: int  # lower bound: the largest sum of sizes alive at one step
    alignment: int


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def plan_arena(buffers: list[Buffer], alignment: int = 16) -> ArenaPlan:
    """Place ``buffers`` greedily largest-first at the lowest non-conflicting offset."""
    order = sorted(buffers, key=lambda b: (-b.size, b.first, b.name))
    placed: list[tuple[Buffer, int]] = []
    offsets: dict[str, int] = {}
    for buf in order:
        size = _align(buf.size, alignment)
        live = sorted(
            (
                (off, off + _align(b.size, alignment))
                for b, off in placed
                if not (b.last < buf.first or buf.last < b.first)
            )
        )
        offset = 0
        for start, end in live:
            if offset + size <= start:
                break
            offset = max(offset, end)
        placed.append((buf, offset))
        offsets[buf.name] = offset
    arena = max((off + _align(b.size, alignment) for b, off in placed), default=0)
    steps = {s for b in buffers for s in (b.first, b.last)}
    peak = max((sum(b.size for b in buffers if b.first <= s <= b.last) for s in steps), default=0)
    return ArenaPlan(offsets, arena, peak, alignment)
