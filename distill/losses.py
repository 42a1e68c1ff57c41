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
# took 0.237 s with the per-batch Hinton loss, 0.201 s prepared, 0.150 s on hard labels (task E).
# The Hinton loss now also skips autograd: its gradient is Hinton 2015's closed form, sent into
# the student's graph directly, and its value is summed per epoch (_HintonClosedForm, task B).


@dataclass(frozen=True)
class PreparedLoss:
    """Per-row targets for one epoch's data, and how a batch given its rows of them is trained."""

    targets: Tensor  # [n, ...], indexed like the epoch's inputs
    # (student logits, targets[idx]) -> scalar loss, through autograd; None where closed_form is
    batch: Callable[[Tensor, Tensor], Tensor] | None
    closed_form: _HintonClosedForm | None = None  # value and gradient without autograd

    def epoch(self, batches: list[Tensor]) -> _AutogradEpoch | _HintonEpoch:
        """One epoch over ``batches``: ``.backward(logits, targets[idx])`` per batch sends the
        batch's mean loss into the student and adds its sum to the epoch's, which ``.read()``
        returns once (no per-step sync)."""
        if self.closed_form is not None:
            return _HintonEpoch(self.closed_form, batches)
        assert self.batch is not None
        return _AutogradEpoch(self.batch)


class _AutogradEpoch:
    """An epoch of a loss trained through autograd; its sum in a float64 tensor."""

    def __init__(self, batch: Callable[[Tensor, Tensor], Tensor]) -> None:
        self.batch, self.total = batch, torch.zeros((), dtype=torch.float64)

    def backward(self, logits: Tensor, rows: Tensor) -> None:
        loss = self.batch(logits, rows)
        loss.backward()
        self.total.add_(loss.detach(), alpha=len(rows))

    def read(self) -> float:
        return self.total.item()


class _HintonClosedForm:
    """The Hinton loss's value and gradient without autograd, in as few ops as a CPU step allows.

    Per row (z_0 = s / T, z_1 = s, lz = log_softmax(z), g = alpha T p + (1 - alpha) onehot(y),
    the loss c - sum_hk w_hk lz_hk of :func:`_hinton_prepared`):
    - gradient (Hinton 2015 §2: T (q - p) for the soft term, softmax(s) - onehot(y) for the hard
      one): d/ds = alpha T softmax(s / T) + (1 - alpha) softmax(s) - g = exp(lz) @ mix - g;
    - value: sum_k w_hk lz_hk = (w_h . z_h) - |w_h| lse_h and lse_h = (sum_k z_hk - sum_k lz_hk) / C,
      so the loss is c + (gamma - g) . s - kw . lz with gamma = (alpha T + 1 - alpha) / C and kw_h =
      |w_h| / C: no per-row weights but gamma - g, the one row the gradient needs anyway.
    The rows are gamma - g (contiguous [n, C], what a batch gathers); mix is shifted by gamma / 2
    so the same rows give the gradient (softmax rows sum to 1, twice). Why: on a CPU each op of
    a small student's step costs microseconds, and autograd's ~7 nodes, 3 reductions and 2C + 1
    wide rows made a letter-MLP Hinton step ~1.4x a hard-label one; this form does the same
    arithmetic in 6 ops (RESULTS.notes.md, issue 39 task B). Value and gradient equal
    hinton_loss's to float rounding (tests/distill): the gradient to float32's, the value to
    ~1e-7 relative at T <= 4 and ~1e-5 at T = 20, where the normaliser identity cancels terms
    ~T^2 times the loss (a logged figure; the gradient does not use it)."""

    def __init__(self, const: Tensor, num_classes: int, temperature: float, alpha: float) -> None:
        k, t, dev = num_classes, temperature, const.device
        self.const, self.k = const, k  # c_i, per row
        self.scale = torch.tensor([[1.0 / t], [1.0]], device=dev)  # z = s * scale: [b, 2, C]
        gamma = (alpha * t + 1.0 - alpha) / k
        eye = torch.eye(k, device=dev)
        self.mix = torch.cat([alpha * t * eye, (1.0 - alpha) * eye]) - gamma / 2  # [2C, C]
        soft, hard = alpha * t * t / k, (1.0 - alpha) / k
        self.kw = torch.cat(
            [torch.full((k,), soft, device=dev), torch.full((k,), hard, device=dev)]
        )


class _HintonEpoch:
    """An epoch of the Hinton loss in closed form. Per batch: [s / T, s], one log-softmax, one
    exp, one addmm for the gradient, two in-place adds for the value (into float32 sums folded
    into a float64 one every ``FOLD`` steps, so their rounding is that of a few dozen additions;
    a fold costs ~30 steps' adds, so not more often); the teacher's constant c is summed over the
    epoch's rows once, here."""

    FOLD = 64

    def __init__(self, form: _HintonClosedForm, batches: list[Tensor]) -> None:
        self.k, self.scale, self.mix, self.kw = form.k, form.scale, form.mix, form.kw
        dev = form.const.device
        self.rows = max((len(i) for i in batches), default=0)
        idx = torch.cat(batches) if batches else torch.zeros(0, dtype=torch.long, device=dev)
        self.done = form.const.index_select(0, idx).sum(dtype=torch.float64).item()
        self.gs = torch.zeros(self.rows, self.k, device=dev)  # (gamma - g_i) * s_i, summed
        self.lz = torch.zeros(self.rows, 2 * self.k, device=dev)  # log_softmax(z_i), summed
        self.steps = 0

    def backward(self, logits: Tensor, rows: Tensor) -> None:
        b, s = len(logits), logits.detach()
        # [b, 2, C]: the logits at T and at 1 (a broadcast product: faster here than a concat)
        lz = torch.mul(s.unsqueeze(1), self.scale).log_softmax(-1).view(b, 2 * self.k)
        grad = torch.addmm(rows, lz.exp(), self.mix, beta=1.0 / b, alpha=1.0 / b)
        if b == self.rows:
            self.gs.addcmul_(rows, s)
            self.lz.add_(lz)
        else:
            self.gs[:b].addcmul_(rows, s)
            self.lz[:b].add_(lz)
        self.steps += 1
        if self.steps % self.FOLD == 0:
            self._fold()
        logits.backward(grad)

    def _fold(self) -> None:
        self.done += self.gs.sum().item() - torch.mv(self.lz, self.kw).sum().item()
        self.gs.zero_()
        self.lz.zero_()

    def read(self) -> float:
        self._fold()
        return self.done


def _hinton_prepared(
    teacher_log_probs: Tensor, labels: Tensor, temperature: float, alpha: float
) -> PreparedLoss:
    """:func:`hinton_loss` with its value and gradient in closed form (:class:`_HintonClosedForm`).

    Per row i: alpha T^2 KL(p_i || q_i) + (1 - alpha) CE = c_i - sum_{h,k} w_ihk log_softmax(z_ih)_k
    with z_i0 = s_i / T, z_i1 = s_i, w_i0 = alpha T^2 p_i, w_i1 = (1 - alpha) onehot(y_i) and
    c_i = alpha T^2 sum_k p_ik log p_ik (the teacher's part of the KL)."""
    n, k = teacher_log_probs.shape
    p = soft_targets(teacher_log_probs.float(), temperature)
    g = p * (alpha * temperature)  # g_i = alpha T p_i + (1 - alpha) onehot(y_i)
    g.scatter_add_(1, labels.long().view(-1, 1), torch.full((n, 1), 1.0 - alpha, device=p.device))
    rows = ((alpha * temperature + 1.0 - alpha) / k) - g
    const = torch.xlogy(p, p).sum(1) * (alpha * temperature**2)
    return PreparedLoss(rows, None, _HintonClosedForm(const, k, temperature, alpha))


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
    per-batch call: ``prepared.epoch(batches).backward(logits, prepared.targets[idx])`` sends
    ``LOSSES[name](logits, t[idx], labels[idx], temperature=..., alpha=...)``'s gradient into the
    student and sums its value over the epoch. The Hinton loss does that in closed form (its
    ``batch`` is None); the others through autograd on ``prepared.batch(logits, targets[idx])``."""
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
