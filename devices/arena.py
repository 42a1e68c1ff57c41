"""Arena planning: where each activation tensor lives in one flat buffer.

Greedy by size, as TFLite Micro's GreedyMemoryPlanner does
(tensorflow/lite/micro/memory_planner/greedy_memory_planner.cc): sizes are aligned up
to 16 bytes; buffers are sorted largest-first by a stable sort of the list filled in
reverse order of addition (ReverseSortInPlace), so among equal aligned sizes the
buffer added last (the highest tensor index) goes first; each is placed at the lowest
offset where it overlaps, in memory, no already-placed buffer whose lifetime (first
producer step to last consumer step) overlaps its own. The arena size is the highest
end offset: TFLM's arena "head".
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
    order: int = (
        0  # the order the buffer is added to TFLM's planner (tensor index): breaks size ties
    )


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
    order = sorted(buffers, key=lambda b: (-_align(b.size, alignment), -b.order))
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
