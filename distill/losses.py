"""Distillation losses: how the student is pulled towards the teacher.

The teacher is given as log-probabilities (the log of the ensemble's probabilities).
For a softmax teacher these equal its logits up to a constant per row, so dividing them
by a temperature gives exactly the soft targets of Hinton et al. 2015 §2; for a tree
ensemble they are the only "logits" there are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def soft_targets(teacher_log_probs: Tensor, temperature: float) -> Tensor:
    """softmax(log p / T): the teacher's distribution softened at temperature T (Hinton 2015 §2)."""
    return torch.softmax(teacher_log_probs / temperature, dim=-1)


def hinton_loss(
    student_logits: Tensor,
    teacher_log_probs: Tensor,
    labels: Tensor,
    temperature: float,
    alpha: float,
) -> Tensor:
    """alpha * T^2 * KL(soft teacher || soft student) + (1 - alpha) * CE(student, labels).

    Hinton 2015 §2: the gradients of the soft term scale as 1/T^2, so it is multiplied
    by T^2 to keep its weight relative to the hard term unchanged when T changes; the
    hard term gets the lower weight (alpha close to 1).
    """
    soft_teacher = soft_targets(teacher_log_probs, temperature)
    log_soft_student = F.log_softmax(student_logits / temperature, dim=-1)
    kl = F.kl_div(log_soft_student, soft_teacher, reduction="batchmean")
    soft = kl * temperature**2
    if alpha >= 1.0:
        return soft
    return alpha * soft + (1.0 - alpha) * F.cross_entropy(student_logits, labels)


def logit_regression(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """Mean squared error between logits, each row centred (Hinton 2015 §2.1: the high-T limit).

    Logits are defined only up to a constant per row, so both are centred first.
    """
    s = student_logits - student_logits.mean(dim=-1, keepdim=True)
    t = teacher_logits - teacher_logits.mean(dim=-1, keepdim=True)
    return F.mse_loss(s, t)


def prob_regression(student_logits: Tensor, teacher_probs: Tensor) -> Tensor:
    """Squared error between the student's and the teacher's probabilities (Bucilua 2006 §3).

    Summed over classes, averaged over the batch.
    """
    p = torch.softmax(student_logits, dim=-1)
    return ((p - teacher_probs) ** 2).sum(dim=-1).mean()


def hard_ce(student_logits: Tensor, labels: Tensor) -> Tensor:
    """Ordinary cross-entropy on the hard labels: the baseline without a teacher."""
    return F.cross_entropy(student_logits, labels)


# The registry has one calling convention so the training loop needs no if-chain:
# loss(student_logits, teacher_log_probs, labels, temperature=..., alpha=...).
LossFn = Callable[..., Tensor]

LOSSES: dict[str, LossFn] = {
    "hinton": lambda s, t, y, *, temperature, alpha: hinton_loss(s, t, y, temperature, alpha),
    "logits": lambda s, t, y, *, temperature, alpha: logit_regression(s, t),
    "probs": lambda s, t, y, *, temperature, alpha: prob_regression(s, t.exp()),
    "hard": lambda s, t, y, *, temperature, alpha: hard_ce(s, y),
}


# ---- the same losses, prepared once per epoch's data ----------------------------------------
#
# A small student's CPU step costs a few hundred microseconds, and each tensor op of a loss
# several of them. What depends only on the teacher (soft targets, their entropy, centred
# logits, probabilities) is computed once per epoch's data; a batch then indexes one tensor and
# runs a few ops. Letter MLP, 406 steps, one thread on the loaded 2-core box (issue 39): an epoch
# took 0.237 s with the per-batch Hinton loss, 0.201 s prepared, 0.150 s on hard labels.


@dataclass(frozen=True)
class PreparedLoss:
    """Per-row targets for one epoch's data, and the loss of a batch given its rows of them."""

    targets: Tensor  # [n, ...], indexed like the epoch's inputs
    batch: Callable[[Tensor, Tensor], Tensor]  # (student logits, targets[idx]) -> scalar loss


def _hinton_prepared(
    teacher_log_probs: Tensor, labels: Tensor, temperature: float, alpha: float
) -> PreparedLoss:
    """:func:`hinton_loss` as one weighted log-softmax of the logits at T and at 1.

    Per row i: alpha T^2 KL(p_i || q_i) + (1 - alpha) CE = c_i - sum_{h,k} w_ihk log_softmax(z_ih)_k
    with z_i0 = s_i / T, z_i1 = s_i, w_i0 = alpha T^2 p_i, w_i1 = (1 - alpha) onehot(y_i) and
    c_i = alpha T^2 sum_k p_ik log p_ik (the teacher's part of the KL), so the batch mean equals
    hinton_loss's value and gradient to float rounding (tests/distill/test_train.py)."""
    n, num_classes = teacher_log_probs.shape
    p = soft_targets(teacher_log_probs.float(), temperature)
    targets = torch.zeros(n, 2 * num_classes + 1)  # [n, 2C + 1]: w_i0, w_i1, c_i
    torch.mul(p, alpha * temperature**2, out=targets[:, :num_classes])
    hard_w = targets[:, num_classes : 2 * num_classes]
    hard_w.scatter_(1, labels.long().view(-1, 1), 1.0 - alpha)
    targets[:, -1] = torch.xlogy(p, p).sum(1) * (alpha * temperature**2)
    scale = torch.tensor([[1.0 / temperature], [1.0]])  # z = s * scale: [B, 2, C]

    def batch(logits: Tensor, rows: Tensor) -> Tensor:
        b = len(logits)
        w = rows[:, : 2 * num_classes].view(b, 2, num_classes)
        lz = (logits.unsqueeze(1) * scale).log_softmax(-1)
        return (rows[:, -1].sum() - (w * lz).sum()) / b

    return PreparedLoss(targets, batch)


def _needs_teacher(name: str, teacher_log_probs: Tensor | None) -> Tensor:
    if teacher_log_probs is None:
        raise ValueError(f"loss '{name}' needs the teacher's log-probabilities; got none")
    return teacher_log_probs


def prepare_loss(
    name: str,
    teacher_log_probs: Tensor | None,
    labels: Tensor,
    *,
    temperature: float,
    alpha: float,
) -> PreparedLoss:
    """The loss ``name`` of :data:`LOSSES` split into per-row targets (built here, once) and a
    per-batch call: ``prepared.batch(logits, prepared.targets[idx])`` equals
    ``LOSSES[name](logits, t[idx], labels[idx], temperature=..., alpha=...)``."""
    if name == "hard":
        return PreparedLoss(labels, hard_ce)
    t = _needs_teacher(name, teacher_log_probs)
    if name == "hinton":
        return _hinton_prepared(t, labels, temperature, alpha)
    if name == "logits":
        centred = t - t.mean(dim=-1, keepdim=True)
        return PreparedLoss(
            centred, lambda s, rows: F.mse_loss(s - s.mean(dim=-1, keepdim=True), rows)
        )
    if name == "probs":
        return PreparedLoss(t.exp(), prob_regression)
    raise ValueError(f"loss '{name}' has no prepared form; choose one of {', '.join(LOSSES)}")


def _tensor_key(t: torch.Tensor | None) -> tuple | None:
    # memory, layout and in-place write counter: equal keys of live tensors mean equal contents
    return None if t is None else (t.data_ptr(), t.shape, t.stride(), t.dtype, t._version)


class LossMemo:
    """The loss's per-row targets, built once per epoch data: a cached transfer set hands the
    same tensors (or views of them) every epoch and they are built once; new or changed tensors
    (jitter) are built again. The tensors are held, so no new one can take their memory."""

    def __init__(self, cfg: dict) -> None:  # the train section: loss, temperature, alpha
        self.cfg = cfg
        self.key: tuple | None = None
        self.held: tuple = ()
        self.loss: PreparedLoss | None = None

    def __call__(self, data: Any) -> PreparedLoss:  # a distill.train.EpochData
        key = (_tensor_key(data.teacher_log_probs), _tensor_key(data.labels))
        if self.loss is None or key != self.key:
            self.loss = prepare_loss(
                self.cfg["loss"],
                data.teacher_log_probs,
                data.labels,
                temperature=self.cfg["temperature"],
                alpha=self.cfg["alpha"],
            )
            self.key, self.held = key, (data.teacher_log_probs, data.labels)
        return self.loss
