"""§5.3 of Hinton, Vinyals, Dean 2015: generalist and specialists combined at inference.

The distribution q that agrees best with the generalist and the active specialists (those
whose subset meets the generalist's top-n classes), found by gradient steps on its logits;
:class:`distill.specialists.SpecialistEnsemble` predicts with it.
"""

from __future__ import annotations

import numpy as np
import torch


def to_specialist_space(q: np.ndarray | torch.Tensor, subset: list[int]):
    """A full distribution seen by a specialist: its classes, then everything else summed (the dustbin)."""
    inside = q[:, subset]
    rest = (
        1.0 - inside.sum(1, keepdims=True)
        if isinstance(q, np.ndarray)
        else 1.0 - inside.sum(1, keepdim=True)
    )
    if isinstance(q, np.ndarray):
        return np.concatenate([inside, np.clip(rest, 0.0, None)], axis=1)
    return torch.cat([inside, rest.clamp_min(0.0)], dim=1)


def active_specialists(
    generalist_probs: np.ndarray, subsets: list[list[int]], top_n: int
) -> np.ndarray:
    """bool [n, M]: specialist m is active for row i when its subset meets the generalist's top-n classes."""
    top = np.argsort(-generalist_probs, axis=1, kind="stable")[:, :top_n]
    member = np.zeros((len(subsets), generalist_probs.shape[1]), bool)
    for m, s in enumerate(subsets):
        member[m, s] = True
    return (
        member[:, top].any(axis=2).T if len(subsets) else np.zeros((len(generalist_probs), 0), bool)
    )


def combine(
    generalist_probs: np.ndarray,
    specialist_probs: list[np.ndarray],
    subsets: list[list[int]],
    active: np.ndarray,
    *,
    steps: int = 200,
    lr: float = 0.05,
) -> np.ndarray:
    """argmin_q KL(p^g||q) + sum over active m of KL(p^m||q^m), q = softmax(z), by Adam on z from log p^g."""
    eps = 1e-12
    pg = torch.from_numpy(generalist_probs.astype(np.float64))
    pms = [torch.from_numpy(p.astype(np.float64)) for p in specialist_probs]
    act = torch.from_numpy(active.astype(np.float64))
    z = torch.log(pg.clamp_min(eps)).clone().requires_grad_(True)
    if steps == 0 or not active.any():
        return torch.softmax(z.detach(), 1).numpy()
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        objective(z, pg, pms, subsets, act).backward()
        opt.step()
    return torch.softmax(z.detach(), 1).numpy()


def objective(
    z: torch.Tensor,
    pg: torch.Tensor,
    pms: list[torch.Tensor],
    subsets: list[list[int]],
    act: torch.Tensor,
) -> torch.Tensor:
    """The §5.3 objective summed over rows (cross-entropy form: KL up to the constant entropy of p)."""
    eps = 1e-12
    logq = torch.log_softmax(z, 1)
    total = -(pg * logq).sum(1)
    q = logq.exp()
    for m, s in enumerate(subsets):
        qm = to_specialist_space(q, s)
        total = total - act[:, m] * (pms[m] * torch.log(qm.clamp_min(eps))).sum(1)
    return total.sum()


def kl_objective(
    q: np.ndarray,
    pg: np.ndarray,
    pms: list[np.ndarray],
    subsets: list[list[int]],
    active: np.ndarray,
) -> np.ndarray:
    """The §5.3 objective per row as true KL divergences (for checks and reports)."""
    eps = 1e-12

    def kl(p: np.ndarray, r: np.ndarray) -> np.ndarray:
        return (p * (np.log(np.clip(p, eps, None)) - np.log(np.clip(r, eps, None)))).sum(1)

    out = kl(pg, q)
    for m, s in enumerate(subsets):
        out = out + active[:, m] * kl(pms[m], to_specialist_space(q, s))
    return out
