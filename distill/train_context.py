"""Where the training loop's data, gradients and metrics go: one process, or DDP ranks.

The loop (distill/train.py) asks a :class:`TrainContext` for each epoch's batches, for the
wrapped model and for metric sums; ``distill.distributed.train_context`` supplies DDP's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


def _epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    g = torch.Generator()
    g.manual_seed(seed + epoch)
    return list(torch.randperm(n, generator=g).split(batch_size))


@dataclass
class TrainContext:
    """One process by default; a DDP launcher supplies rank-aware versions of these four hooks."""

    rank: int = 0
    world_size: int = 1
    batches: Callable[[int, int, int, int], list[torch.Tensor]] = (
        _epoch_batches  # (n, batch, seed, epoch)
    )
    wrap: Callable[[nn.Module], nn.Module] = lambda m: m
    unwrap: Callable[[nn.Module], nn.Module] = lambda m: getattr(m, "module", m)
    reduce_sums: Callable[[dict[str, float]], dict[str, float]] = lambda d: d

    @property
    def is_main(self) -> bool:
        return self.rank == 0
