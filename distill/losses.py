"""Distillation losses: how the student is pulled towards the teacher.

The teacher is given as log-probabilities (the log of the ensemble's probabilities).
For a softmax teacher these equal its logits up to a constant per row, so dividing them
by a temperature gives exactly the soft targets of Hinton et al. 2015 §2; for a tree
ensemble they are the only "logits" there are.
"""

from __future__ import annotations

from collections.abc import Callable

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
