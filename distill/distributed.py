"""Scale out with PyTorch's own engine: torchrun + DistributedDataParallel (DESIGN.md, "Scale").

``torchrun --nproc_per_node=N -m distill ...`` starts N processes with RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT set; :func:`setup` reads them and joins the
process group (gloo on CPU, nccl on GPU). Without those variables everything here is a
one-process no-op, so the same training code runs alone or under torchrun.

Equivalence with one process holds by construction: every rank draws the same epoch
permutation (seed + epoch, as :class:`torch.utils.data.DistributedSampler` does) and takes
the rank-th interleaved slice of each *global* batch, so the union of the ranks' batches
is the one-process batch, and DDP's gradient average over equal shards equals the
one-process mean-loss gradient.

Labelling a large transfer set is sharded the same way: rank r labels rows
``label_shard(n, r, world)``, the shards are gathered on rank 0, which writes them into the
teacher-output cache (``TeacherCache.store``); the other ranks then read the cache.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ground.errors import UserError

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank among ``world_size`` and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: not distributed
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        """Only the main rank writes the run directory and prints progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None and self.world_size > 1


def launched_by_torchrun(env: dict[str, str] | None = None) -> bool:
    """True when torchrun (or an equivalent launcher) set the rendezvous variables."""
    env = os.environ if env is None else env
    return "WORLD_SIZE" in env and "RANK" in env


def _env_int(env: dict[str, str], key: str) -> int:
    value = env.get(key, "")
    try:
        return int(value)
    except ValueError:
        raise UserError(
            f"environment variable {key}={value!r} must be an integer. Launch with "
            f"'torchrun --nproc_per_node=N -m distill ...', which sets {', '.join(ENV_VARS)}."
        ) from None


def setup(
    backend: str | None = None, env: dict[str, str] | None = None, timeout_s: float = 300.0
) -> DistContext:
    """Join the process group torchrun describes, or return a one-process context.

    ``backend`` None picks nccl when CUDA is available, else gloo (CPU).
    """
    env = dict(os.environ if env is None else env)
    if not launched_by_torchrun(env):
        return DistContext()
    rank, world = _env_int(env, "RANK"), _env_int(env, "WORLD_SIZE")
    local_rank = _env_int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else rank
    if world < 1 or not 0 <= rank < world:
        raise UserError(
            f"RANK={rank} and WORLD_SIZE={world} are inconsistent: need 0 <= RANK < WORLD_SIZE. "
            "Launch with torchrun rather than setting them by hand."
        )
    for key in ("MASTER_ADDR", "MASTER_PORT"):
        if key not in env:
            raise UserError(
                f"environment variable {key} is not set; torchrun sets it. "
                "Launch with 'torchrun --nproc_per_node=N -m distill ...'."
            )
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise UserError(
            f"distributed backend {backend!r} is not supported; use 'gloo' (CPU) or 'nccl' (GPU)."
        )
    if backend == "nccl" and not torch.cuda.is_available():
        raise UserError(
            "distributed backend 'nccl' needs CUDA GPUs and none is visible; use 'gloo' on CPU."
        )
    device = f"cuda:{local_rank}" if backend == "nccl" else "cpu"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend,
            init_method="env://",
            rank=rank,
            world_size=world,
            timeout=_dt.timedelta(seconds=timeout_s),
        )
    return DistContext(
        rank=rank, world_size=world, local_rank=local_rank, backend=backend, device=device
    )


def current() -> DistContext:
    """The context of the process group this process already joined (one process when none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistContext()
    backend = dist.get_backend()
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return DistContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local,
        backend=backend,
        device=f"cuda:{local}" if backend == "nccl" else "cpu",
    )


def teardown(ctx: DistContext) -> None:
    """Leave the process group (a no-op for one process)."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def session(backend: str | None = None) -> Iterator[DistContext]:
    """``with session() as ctx:`` — join the group torchrun describes and always leave it.

    On a normal exit the ranks meet at a barrier first: rank 0 still evaluates and writes after
    the others return, and torch documents destroy_process_group as a call every rank makes
    together (one rank leaving alone once aborted with "terminate called without an active
    exception" in the test suite). After an exception there is no barrier: torchrun stops the rest.
    """
    ctx = setup(backend)
    try:
        yield ctx
        barrier(ctx)
    finally:
        teardown(ctx)


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def wrap_model(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """Move the model to this rank's device and wrap it in DDP when distributed.

    Ranks start from rank 0's weights (DDP broadcasts parameters and buffers at construction).
    """
    model = model.to(ctx.device)
    if not ctx.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [ctx.local_rank] if ctx.backend == "nccl" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DDP (what gets exported)."""
    return getattr(model, "module", model)


def epoch_permutation(n: int, seed: int, epoch: int, shuffle: bool = True) -> torch.Tensor:
    """The epoch's global order, identical on every rank (DistributedSampler's recipe: seed + epoch)."""
    if not shuffle:
        return torch.arange(n)
    g = torch.Generator()
    g.manual_seed(seed + epoch)
    return torch.randperm(n, generator=g)


def check_global_batch(global_batch: int, ctx: DistContext) -> int:
    """Per-rank batch size; the global batch must split evenly so results match one process."""
    if global_batch < 1 or global_batch % ctx.world_size:
        raise UserError(
            f"train.batch_size={global_batch} must be a positive multiple of the number of processes "
            f"({ctx.world_size}) so each rank gets an equal share of every global batch; "
            f"use e.g. {max(ctx.world_size, (max(global_batch, 1) // ctx.world_size) * ctx.world_size)}."
        )
    return global_batch // ctx.world_size


def rank_batches(
    n: int, global_batch: int, ctx: DistContext, *, seed: int, epoch: int, shuffle: bool = True
) -> list[torch.Tensor]:
    """This rank's index batches for one epoch: the rank-th interleaved slice of each global batch.

    Same split as DistributedSampler (indices ``rank::world``) applied per global batch, so the
    union over ranks of batch k is exactly the one-process batch k. A last global batch smaller
    than ``world_size`` rows is dropped (one process would see it; with n a multiple of the global
    batch nothing is dropped anywhere).
    """
    check_global_batch(global_batch, ctx)
    perm = epoch_permutation(n, seed, epoch, shuffle)
    out = []
    for start in range(0, n, global_batch):
        chunk = perm[start : start + global_batch]
        usable = (len(chunk) // ctx.world_size) * ctx.world_size
        if usable == 0:
            continue
        out.append(chunk[:usable][ctx.rank :: ctx.world_size])
    return out


def all_reduce_sums(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """Sum each metric over the ranks (e.g. loss*count, correct, count); identity for one process."""
    if not ctx.distributed:
        return {k: float(v) for k, v in values.items()}
    keys = sorted(values)
    t = torch.tensor(
        [float(values[k]) for k in keys],
        dtype=torch.float64,
        device=ctx.device if ctx.backend == "nccl" else "cpu",
    )
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return {k: float(v) for k, v in zip(keys, t.cpu().tolist())}


def label_shard(n: int, rank: int, world_size: int) -> slice:
    """Rows of ``n`` that ``rank`` labels: the teacher cache's own contiguous shards (distill.cache.shard_bounds)."""
    from .cache import shard_bounds

    return slice(*shard_bounds(n, rank, world_size))


def gather_to_main(part: np.ndarray, ctx: DistContext) -> np.ndarray | None:
    """Concatenate every rank's array in rank order on rank 0 (None on other ranks)."""
    if not ctx.distributed:
        return part
    parts: list[Any] | None = [None] * ctx.world_size if ctx.is_main else None
    dist.gather_object(part, parts, dst=0)
    if not ctx.is_main:
        return None
    return np.concatenate(parts, axis=0)


def sharded_predict(
    predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, ctx: DistContext
) -> np.ndarray | None:
    """Label ``x`` with ``predict`` split across ranks; the full result on rank 0, None elsewhere."""
    part = np.asarray(predict(x[label_shard(len(x), ctx.rank, ctx.world_size)]), dtype=np.float32)
    return gather_to_main(part, ctx)


def cached_teacher_outputs(teacher: Any, x: np.ndarray, cache: Any, ctx: DistContext) -> np.ndarray:
    """Teacher outputs for ``x`` through the teacher-output cache, labelled across ranks.

    One process: ``cache.outputs(teacher, x)``. Distributed: unless the cache already holds
    them (rank 0 asks ``cache.contains`` and tells the others), each rank labels its shard
    (``distill.cache.label_shard``), rank 0 gathers the shards in rank order and writes them
    with ``cache.store`` (atomic), and after a barrier every rank reads the memory-mapped array.
    """
    if not ctx.distributed:
        return cache.outputs(teacher, x)
    from .cache import label_shard as label_rows

    flag = torch.tensor([1 if ctx.is_main and cache.contains(teacher, x) else 0], dtype=torch.int64)
    if ctx.backend == "nccl":
        flag = flag.to(ctx.device)
    dist.broadcast(flag, src=0)
    if not int(flag.item()):
        full = gather_to_main(label_rows(teacher, x, ctx.rank, ctx.world_size), ctx)
        if ctx.is_main:
            cache.store(teacher, x, full)
        barrier(ctx)
    return cache.outputs(teacher, x)


def train_context(ctx: DistContext):
    """The training loop's hooks (distill.train.TrainContext) for this process: rank batches, DDP, all-reduce."""
    from .train import TrainContext

    return TrainContext(
        rank=ctx.rank,
        world_size=ctx.world_size,
        batches=lambda n, batch_size, seed, epoch: rank_batches(
            n, batch_size, ctx, seed=seed, epoch=epoch
        ),
        wrap=lambda model: wrap_model(model, ctx),
        unwrap=unwrap_model,
        reduce_sums=lambda sums: all_reduce_sums(sums, ctx),
    )
