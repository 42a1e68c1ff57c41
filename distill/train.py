"""Train a student: the loop of Bucilua et al. 2006 §3 / Hinton et al. 2015 §2, top to bottom.

For each epoch: (1) take the epoch's inputs and the teacher's outputs on them (the cached
transfer set, or a freshly jittered copy relabelled by the teacher); (2) shuffle with a
generator seeded by (seed, epoch); (3) minimise the chosen loss over mini-batches;
(4) score the student on the VALIDATION split (fidelity to the teacher, or accuracy for the
hard-label baseline) and keep the best weights; (5) write a checkpoint; stop after
``patience`` epochs without improvement. The holdout split is never seen here.

Everything that decides the result is in the checkpoint (weights, optimizer, scheduler, RNG
state, best weights, early-stopping counters), stored as tensors and plain values so it loads
with ``torch.load(weights_only=True)``; a resumed run therefore ends with exactly the metrics
of an uninterrupted one. The loop's steps cost what a hand-written loop's do
(benchmarks/loop_overhead.py): what depends only on the teacher is computed once per epoch's
data (:func:`distill.losses.prepare_loss`; the Hinton loss's value and gradient are computed in
closed form, without autograd's per-op bookkeeping), the loss sum is read once per epoch, and
``FitResult.seconds`` says where each epoch's time went. Batches, metric reduction and model
wrapping come from a small :class:`TrainContext`, so DistributedDataParallel can be plugged in
without touching the loop.
"""

from __future__ import annotations

import functools
import io
import math
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ground import rundir
from ground.errors import UserError

from .losses import LossMemo, PreparedLoss
from .scoring import accuracy_score, fidelity_score, predict_logits
from .train_context import TrainContext
from .train_fields import SELECT_RULES, TRAIN_FIELDS, train_config

# ---- pieces of the loop ---------------------------------------------------------------------


@dataclass
class EpochData:
    """Inputs for one epoch, shaped for the student, and the targets the loss needs (the loss's
    per-row targets are built again only when the teacher outputs or labels change)."""

    x: torch.Tensor
    labels: torch.Tensor
    teacher_log_probs: torch.Tensor | None  # None for the hard-label baseline


@dataclass
class FitResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_score: list[float]
    epochs_run: int
    stopped_early: bool
    history: list[dict] = field(default_factory=list)
    resumed_from: int = 0
    # wall seconds per epoch run in this call (data, steps, validation, checkpoint); not in the
    # checkpoint, so a resumed run's history stays identical to an uninterrupted one's
    seconds: list[dict[str, float]] = field(default_factory=list)


def make_optimizer(model: nn.Module, cfg: dict) -> torch.optim.Optimizer:
    # fused: one kernel updates every parameter (torch turns it on by default only on GPUs). An
    # AdamW step of the letter MLP took 124 us as a per-parameter loop, 115 us foreach, 37 us
    # fused; of the DS-CNN c40 631 / 410 / 123 us (1 thread; RESULTS.notes.md, issue 39).
    # SGD's updates are the per-parameter loop's bit for bit, AdamW's differ by float rounding
    # (its fused kernel orders the arithmetic differently); both are deterministic
    # (tests/distill/test_train.py).
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=cfg["lr"],
            momentum=cfg["momentum"],
            weight_decay=cfg["weight_decay"],
            nesterov=cfg["momentum"] > 0,
            fused=True,
        )
    return torch.optim.AdamW(
        model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"], fused=True
    )


def make_schedule(opt: torch.optim.Optimizer, cfg: dict) -> torch.optim.lr_scheduler.LRScheduler:
    if cfg["schedule"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"])
    if cfg["schedule"] == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg["step_size"], gamma=cfg["gamma"])
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0)


def _rank(score: list[float], cfg: dict) -> list[float]:
    """The order ``train.select`` compares validation scores in (stored as [top-1, -loss])."""
    return score[1:] + score[:1] if cfg.get("select") == "loss" else score


def _save_checkpoint(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    rundir.atomic_write_bytes(path, buf.getvalue())


def _load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, weights_only=True)
    except Exception as exc:
        raise UserError(
            f"checkpoint '{path}' cannot be read ({exc}). Delete it or run without --resume."
        ) from exc


def _layout(cfg: dict, x: torch.Tensor) -> torch.memory_format:
    """The memory format the loop trains in: NHWC when asked and the inputs are 4-d maps."""
    if cfg.get("channels_last") and x.dim() == 4:
        return torch.channels_last
    return torch.contiguous_format


def _clone(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}


# ---- the loop -------------------------------------------------------------------------------


def _deterministic(fn: Callable[..., FitResult]) -> Callable[..., FitResult]:
    """Run ``fn`` with torch's deterministic algorithms on (exact resume), then restore the
    caller's settings: a library call leaves no process-wide switch behind.

    Deterministic mode also fills every new tensor with NaN by default, a debugging aid that
    changes no result (every kernel writes its whole output) and cost ~10% of a small student's
    CPU step in fill_ calls; it is off while training."""
    import torch.utils.deterministic as det

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        was_on = torch.are_deterministic_algorithms_enabled()
        warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        was_filling = det.fill_uninitialized_memory
        torch.use_deterministic_algorithms(True)
        det.fill_uninitialized_memory = False
        try:
            return fn(*args, **kwargs)
        finally:
            torch.use_deterministic_algorithms(was_on, warn_only=warn_only)
            det.fill_uninitialized_memory = was_filling

    return wrapper


@dataclass
class _Progress:
    """Where the loop stands: what a checkpoint stores besides the optimizer and scheduler."""

    start: int = 0
    best_score: list[float] | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)
    done: bool = False
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)


def _setup(
    model: nn.Module, x_val: torch.Tensor, cfg: dict, ctx: TrainContext
) -> tuple[
    torch.memory_format,
    torch.Tensor,
    nn.Module,
    torch.optim.Optimizer,
    torch.optim.lr_scheduler.LRScheduler,
]:
    """The memory layout, the validation inputs in it, the (wrapped) net, optimizer, schedule."""
    layout = _layout(cfg, x_val)
    model.to(memory_format=layout)
    x_val = x_val.contiguous(memory_format=layout)
    net = ctx.wrap(model)
    opt = make_optimizer(net, cfg)
    sched = make_schedule(opt, cfg)
    return layout, x_val, net, opt, sched


def _start_or_resume(
    net: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    cfg: dict,
    ctx: TrainContext,
    checkpoint: Path,
    fingerprint: str,
    resume: bool,
) -> _Progress:
    """Start fresh, or continue from the last checkpoint of the same configuration."""
    state = _Progress(best_state=_clone(ctx.unwrap(net).state_dict()))
    torch.manual_seed(cfg["seed"] + 1)  # dropout
    if resume and checkpoint.is_file():
        ck = _load_checkpoint(checkpoint)
        if ck.get("fingerprint") == fingerprint:
            ctx.unwrap(net).load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            torch.set_rng_state(ck["torch_rng"])
            state.start, state.best_epoch, state.bad_epochs, state.done = (
                ck["epoch"],
                ck["best_epoch"],
                ck["bad_epochs"],
                ck["done"],
            )
            state.best_score, state.best_state, state.history = (
                ck["best_score"],
                ck["best_state"],
                ck["history"],
            )
    return state


def _train_epoch(
    net: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    data: EpochData,
    loss: PreparedLoss,
    cfg: dict,
    ctx: TrainContext,
    layout: torch.memory_format,
    epoch: int,
    desc: str,
) -> dict[str, float]:
    """(2)+(3) shuffled mini-batches, one optimizer step each; the loss summed over all ranks.

    The loss sum stays in tensors until the epoch ends (``PreparedLoss.epoch``): one read per
    epoch, not a ``.item()`` (a device sync off the CPU) per step."""
    net.train()
    batches = list(ctx.batches(len(data.x), cfg["batch_size"], cfg["seed"], epoch))
    epoch_loss, n = loss.epoch(batches), 0
    for idx in batches:
        # index_select copies whole rows: 2-3x faster than x[idx]'s per-element gather
        logits = net(data.x.index_select(0, idx).contiguous(memory_format=layout))
        opt.zero_grad(set_to_none=True)
        epoch_loss.backward(logits, loss.targets.index_select(0, idx))  # and adds its sum
        opt.step()
        n += len(idx)
    sched.step()
    sums = ctx.reduce_sums({"loss": epoch_loss.read(), "n": float(n)})
    check_finite_loss(sums["loss"], f"{desc} loss in epoch {epoch + 1}")
    return sums


def _record_validation(
    state: _Progress,
    val: list[float],
    sums: dict[str, float],
    net: nn.Module,
    opt: torch.optim.Optimizer,
    cfg: dict,
    ctx: TrainContext,
    epoch: int,
) -> None:
    """(4) keep the best weights by validation score, add the epoch to the history, and say
    whether the loop is done (patience run out or the last epoch)."""
    improved = state.best_score is None or _rank(val, cfg) > _rank(state.best_score, cfg)
    if improved:
        state.best_score, state.best_epoch, state.bad_epochs = val, epoch + 1, 0
        state.best_state = _clone(ctx.unwrap(net).state_dict())
    else:
        state.bad_epochs += 1
    state.history.append(
        {
            "epoch": epoch + 1,
            "train_loss": sums["loss"] / max(sums["n"], 1.0),
            "val_score": val,
            "lr": opt.param_groups[0]["lr"],
        }
    )
    state.done = state.bad_epochs >= cfg["patience"] or epoch + 1 == cfg["epochs"]


def _write_checkpoint(
    checkpoint: Path,
    fingerprint: str,
    state: _Progress,
    net: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    ctx: TrainContext,
    epoch: int,
) -> None:
    """(5) everything that decides the result, written atomically (only the main rank writes)."""
    if ctx.is_main:
        _save_checkpoint(
            checkpoint,
            {
                "fingerprint": fingerprint,
                "epoch": epoch + 1,
                "done": state.done,
                "model": ctx.unwrap(net).state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "best_state": state.best_state,
                "best_score": state.best_score,
                "best_epoch": state.best_epoch,
                "bad_epochs": state.bad_epochs,
                "history": state.history,
            },
        )


def _finish(
    net: nn.Module, state: _Progress, cfg: dict, ctx: TrainContext, resumed_from: int
) -> FitResult:
    """Load the best weights back into the model (NCHW, eval mode) and report the run."""
    ctx.unwrap(net).load_state_dict(state.best_state)
    ctx.unwrap(net).to(memory_format=torch.contiguous_format)  # export and callers see NCHW
    ctx.unwrap(net).eval()
    history = state.history
    epochs_run = history[-1]["epoch"] if history else 0
    return FitResult(
        best_state=state.best_state,
        best_epoch=state.best_epoch,
        best_score=list(state.best_score or []),
        epochs_run=epochs_run,
        stopped_early=epochs_run < cfg["epochs"],
        history=history,
        resumed_from=resumed_from,
    )


def _epoch_seconds(epoch: int, *t: float) -> dict[str, float]:
    """Where an epoch's wall time went: its data and loss targets, the optimizer steps, the
    validation, and the bookkeeping after it (history, progress bar, checkpoint)."""
    return {
        "epoch": epoch + 1,
        "data_s": t[1] - t[0],
        "steps_s": t[2] - t[1],
        "validation_s": t[3] - t[2],
        "checkpoint_s": t[4] - t[3],
    }


@_deterministic
def fit(
    model: nn.Module,
    epoch_data: Callable[[int], EpochData],
    score: Callable[[torch.Tensor], list[float]],
    x_val: torch.Tensor,
    cfg: dict,
    *,
    checkpoint: Path,
    fingerprint: str,
    resume: bool = False,
    ctx: TrainContext | None = None,
    desc: str = "train",
    progress: bool = True,
) -> FitResult:
    """Train ``model`` in place and return its best weights by validation ``score`` (higher is better).

    ``epoch_data(epoch)`` returns that epoch's inputs and targets; ``fingerprint`` names the
    configuration so a checkpoint from a different recipe is never resumed.
    """
    from tqdm import tqdm

    ctx = ctx or TrainContext()
    layout, x_val, net, opt, sched = _setup(model, x_val, cfg, ctx)
    state = _start_or_resume(net, opt, sched, cfg, ctx, checkpoint, fingerprint, resume)
    resumed_from = state.start
    prepared = LossMemo(cfg)
    seconds: list[dict[str, float]] = []

    bar = tqdm(
        range(state.start, cfg["epochs"]),
        desc=desc,
        file=sys.stderr,
        leave=False,
        disable=not (progress and ctx.is_main),
        initial=state.start,
        total=cfg["epochs"],
    )
    for epoch in [] if state.done else bar:
        t0 = time.perf_counter()
        # (1) this epoch's inputs and the teacher's outputs on them (targets built once per data)
        data = epoch_data(epoch)
        loss = prepared(data)
        t1 = time.perf_counter()
        sums = _train_epoch(net, opt, sched, data, loss, cfg, ctx, layout, epoch, desc)
        t2 = time.perf_counter()
        # (4) validation score (the holdout is never looked at)
        val = score(predict_logits(ctx.unwrap(net), x_val))
        t3 = time.perf_counter()
        _record_validation(state, val, sums, net, opt, cfg, ctx, epoch)
        bar.set_postfix(loss=f"{state.history[-1]['train_loss']:.4f}", val=f"{val[0]:.4f}")
        _write_checkpoint(checkpoint, fingerprint, state, net, opt, sched, ctx, epoch)
        t4 = time.perf_counter()
        seconds.append(_epoch_seconds(epoch, t0, t1, t2, t3, t4))
        if state.done:
            break
    bar.close()
    result = _finish(net, state, cfg, ctx, resumed_from)
    result.seconds = seconds
    return result


def fit_epochs(
    model: nn.Module,
    epoch_data: Callable[[int], EpochData],
    cfg: dict,
    *,
    desc: str = "train",
    progress: bool = False,
) -> FitResult:
    """Train ``model`` for exactly ``cfg["epochs"]`` epochs and keep the last weights.

    For models trained inside the teacher (a library net, a specialist) that have no validation
    split of their own: the same loop as :func:`fit`, whose "best" epoch is made the last one by a
    score every later epoch beats, so there is no early stopping and no choice on held-out rows.
    """
    calls = [0]

    def later_is_better(_logits: torch.Tensor) -> list[float]:
        calls[0] += 1
        return [float(calls[0])]

    first = epoch_data(0)  # asked once: epoch_data may draw from a generator
    with tempfile.TemporaryDirectory(prefix="tinyship-fit-") as tmp:
        return fit(
            model,
            lambda epoch: first if epoch == 0 else epoch_data(epoch),
            later_is_better,
            first.x[:1],
            {**cfg, "patience": cfg["epochs"]},
            checkpoint=Path(tmp) / "ck.pt",
            fingerprint=desc,
            desc=desc,
            progress=progress,
        )


def log_probs(probs: np.ndarray, floor: float = 1e-7) -> torch.Tensor:
    """The teacher's probabilities as log-probabilities, floored so a zero (e.g. a tree's vote) stays finite."""
    p = np.clip(np.asarray(probs, dtype=np.float64), floor, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return torch.from_numpy(np.log(p).astype(np.float32))


def check_finite_loss(value: float, what: str) -> None:
    if not math.isfinite(value):
        raise UserError(
            f"{what} became {value}; lower train.lr or check the inputs' scale (data.normalize)."
        )


__all__ = [
    "SELECT_RULES",
    "TRAIN_FIELDS",
    "TrainContext",
    "EpochData",
    "FitResult",
    "fit",
    "train_config",
    "fidelity_score",
    "accuracy_score",
    "predict_logits",
    "log_probs",
]
