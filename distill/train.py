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
of an uninterrupted one. Batches, metric reduction and model wrapping come from a small
:class:`TrainContext`, so DistributedDataParallel can be plugged in without touching the loop.
"""

from __future__ import annotations

import functools
import io
import math
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ground import rundir
from ground.errors import UserError
from ground.recipe import Field, validate

from .losses import LOSSES

# both validation scores are [top-1, -loss]; "loss" compares them loss first
SELECT_RULES = ("top1", "loss")

TRAIN_FIELDS: dict[str, Field] = {
    "epochs": Field(
        int, 30, min=1, max=10000, doc="maximum epochs (early stopping may end sooner)"
    ),
    "batch_size": Field(int, 64, min=1, doc="global batch (split across ranks under torchrun)"),
    "optimizer": Field(str, "adamw", choices=("adamw", "sgd"), doc="torch.optim optimizer"),
    "lr": Field(float, 3e-3, min=1e-7, max=10.0, doc="peak learning rate"),
    "weight_decay": Field(
        float, 1e-4, min=0.0, max=1.0, doc="decoupled (AdamW) or L2 (SGD) weight decay"
    ),
    "momentum": Field(float, 0.9, min=0.0, max=0.999, doc="SGD only"),
    "schedule": Field(
        str, "cosine", choices=("cosine", "step", "none"), doc="learning-rate schedule per epoch"
    ),
    "step_size": Field(int, 10, min=1, doc="step schedule: epochs between decays"),
    "gamma": Field(float, 0.5, min=0.0, max=1.0, doc="step schedule: decay factor"),
    "patience": Field(
        int, 10, min=1, doc="epochs without a better validation score before stopping"
    ),
    "select": Field(
        str,
        "top1",
        choices=SELECT_RULES,
        doc="which validation epoch is kept (and early stopping's 'better'): top1 = agreement "
        "with the teacher (accuracy for the baseline), ties to the lower loss; loss = the lower "
        "loss alone (KL to the teacher, NLL for the baseline), for a validation split so small "
        "or easy that top-1 stops moving",
    ),
    "loss": Field(
        str,
        "hinton",
        choices=tuple(LOSSES),
        doc="hinton: soft targets at T; logits: MSE on logits; probs: Bucilua squared error; hard: labels",
    ),
    "temperature": Field(
        float, 4.0, min=0.05, max=100.0, doc="Hinton 2015 §2 soft-target temperature T"
    ),
    "alpha": Field(
        float, 0.9, min=0.0, max=1.0, doc="weight of the soft term; 1 - alpha on the hard labels"
    ),
    "seed": Field(int, 0, min=0, doc="seeds teacher library, transfer set, init and batch order"),
    "baseline": Field(bool, True, doc="also train the same student on hard labels only"),
    "channels_last": Field(
        bool,
        False,
        doc="train conv students on NHWC tensors (torch.channels_last): a small DS-CNN's CPU "
        "step is ~1.5x faster under oneDNN; float sums differ, so figures move as with another "
        "thread count. The trained student is exported as usual (NCHW in, same graph)",
    ),
}


def train_config(section: dict | None) -> dict:
    return validate("train", section, TRAIN_FIELDS)


# ---- the context: where data, gradients and metrics go (one process or DDP) ------------------


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


# ---- pieces of the loop ---------------------------------------------------------------------


@dataclass
class EpochData:
    """Inputs for one epoch, shaped for the student, and the targets the loss needs."""

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


def make_optimizer(model: nn.Module, cfg: dict) -> torch.optim.Optimizer:
    # foreach: one batched update per step instead of a loop over parameters (torch turns it on
    # by default only on GPUs); the same updates bit for bit, about 0.5 ms less per CPU step for
    # a small student (tests/distill/test_train.py checks the weights match)
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=cfg["lr"],
            momentum=cfg["momentum"],
            weight_decay=cfg["weight_decay"],
            nesterov=cfg["momentum"] > 0,
            foreach=True,
        )
    return torch.optim.AdamW(
        model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"], foreach=True
    )


def make_schedule(opt: torch.optim.Optimizer, cfg: dict) -> torch.optim.lr_scheduler.LRScheduler:
    if cfg["schedule"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"])
    if cfg["schedule"] == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg["step_size"], gamma=cfg["gamma"])
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def fidelity_score(logits: torch.Tensor, teacher_probs: torch.Tensor) -> list[float]:
    """Validation fidelity to the teacher: top-1 agreement, tie broken by lower KL(teacher || student)."""
    agree = (logits.argmax(1) == teacher_probs.argmax(1)).double().mean().item()
    kl = F.kl_div(F.log_softmax(logits, 1), teacher_probs, reduction="batchmean").item()
    return [agree, -kl]


def accuracy_score(logits: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Validation accuracy, tie broken by lower negative log-likelihood (the baseline's rule)."""
    acc = (logits.argmax(1) == labels).double().mean().item()
    return [acc, -F.cross_entropy(logits, labels).item()]


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
    loss_fn = LOSSES[cfg["loss"]]
    layout = _layout(cfg, x_val)
    model.to(memory_format=layout)
    x_val = x_val.contiguous(memory_format=layout)
    net = ctx.wrap(model)
    opt = make_optimizer(net, cfg)
    sched = make_schedule(opt, cfg)

    # Start fresh, or continue from the last checkpoint of the same configuration.
    start, best_score, best_epoch, bad_epochs, history, done = 0, None, 0, 0, [], False
    best_state = _clone(ctx.unwrap(net).state_dict())
    torch.manual_seed(cfg["seed"] + 1)  # dropout
    if resume and checkpoint.is_file():
        ck = _load_checkpoint(checkpoint)
        if ck.get("fingerprint") == fingerprint:
            ctx.unwrap(net).load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            torch.set_rng_state(ck["torch_rng"])
            start, best_epoch, bad_epochs, done = (
                ck["epoch"],
                ck["best_epoch"],
                ck["bad_epochs"],
                ck["done"],
            )
            best_score, best_state, history = ck["best_score"], ck["best_state"], ck["history"]
    resumed_from = start

    bar = tqdm(
        range(start, cfg["epochs"]),
        desc=desc,
        file=sys.stderr,
        leave=False,
        disable=not (progress and ctx.is_main),
        initial=start,
        total=cfg["epochs"],
    )
    for epoch in [] if done else bar:
        # (1) this epoch's inputs and the teacher's outputs on them
        data = epoch_data(epoch)
        # (2)+(3) shuffled mini-batches, one optimizer step each
        net.train()
        sums = {"loss": 0.0, "n": 0.0}
        for idx in ctx.batches(len(data.x), cfg["batch_size"], cfg["seed"], epoch):
            logits = net(data.x[idx].contiguous(memory_format=layout))
            t = data.teacher_log_probs[idx] if data.teacher_log_probs is not None else None
            loss = loss_fn(
                logits, t, data.labels[idx], temperature=cfg["temperature"], alpha=cfg["alpha"]
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums["loss"] += loss.item() * len(idx)
            sums["n"] += len(idx)
        sched.step()
        sums = ctx.reduce_sums(sums)
        check_finite_loss(sums["loss"], f"{desc} loss in epoch {epoch + 1}")
        # (4) validation score; keep the best weights (the holdout is never looked at)
        val = score(predict_logits(ctx.unwrap(net), x_val))
        improved = best_score is None or _rank(val, cfg) > _rank(best_score, cfg)
        if improved:
            best_score, best_epoch, bad_epochs = val, epoch + 1, 0
            best_state = _clone(ctx.unwrap(net).state_dict())
        else:
            bad_epochs += 1
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": sums["loss"] / max(sums["n"], 1.0),
                "val_score": val,
                "lr": opt.param_groups[0]["lr"],
            }
        )
        done = bad_epochs >= cfg["patience"] or epoch + 1 == cfg["epochs"]
        bar.set_postfix(loss=f"{history[-1]['train_loss']:.4f}", val=f"{val[0]:.4f}")
        # (5) checkpoint, atomically (only the main rank writes)
        if ctx.is_main:
            _save_checkpoint(
                checkpoint,
                {
                    "fingerprint": fingerprint,
                    "epoch": epoch + 1,
                    "done": done,
                    "model": ctx.unwrap(net).state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "best_state": best_state,
                    "best_score": best_score,
                    "best_epoch": best_epoch,
                    "bad_epochs": bad_epochs,
                    "history": history,
                },
            )
        if done:
            break
    bar.close()

    ctx.unwrap(net).load_state_dict(best_state)
    ctx.unwrap(net).to(memory_format=torch.contiguous_format)  # export and callers see NCHW
    ctx.unwrap(net).eval()
    epochs_run = history[-1]["epoch"] if history else 0
    return FitResult(
        best_state=best_state,
        best_epoch=best_epoch,
        best_score=list(best_score or []),
        epochs_run=epochs_run,
        stopped_early=epochs_run < cfg["epochs"],
        history=history,
        resumed_from=resumed_from,
    )


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
