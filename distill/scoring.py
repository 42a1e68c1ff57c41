"""Validation scores a training run keeps its best epoch by, and batched logits to score.

Both scores are ``[top-1, -loss]``: fidelity to the teacher for a student, accuracy for the
hard-label baseline; :mod:`distill.train` compares them as ``train.select`` says.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
