"""Losses against hand-computed numbers, and the T^2 gradient scaling of Hinton 2015 §2."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from distill.losses import (
    LOSSES,
    hard_ce,
    hinton_loss,
    logit_regression,
    prob_regression,
    soft_targets,
)


def test_soft_targets_two_class_by_hand():
    # p = [0.8, 0.2] at T=2: softmax(log p / 2) = sqrt(p) / sum(sqrt(p)) = [2/3, 1/3] (sqrt(0.8/0.2) = 2).
    q = soft_targets(torch.log(torch.tensor([[0.8, 0.2]])), 2.0)
    assert q[0].tolist() == pytest.approx([2 / 3, 1 / 3], abs=1e-6)
    # T = 1 gives the teacher's probabilities back
    assert soft_targets(torch.log(torch.tensor([[0.8, 0.2]])), 1.0)[0].tolist() == pytest.approx(
        [0.8, 0.2], abs=1e-6
    )


def test_hinton_kl_two_class_by_hand():
    # teacher p = [0.8, 0.2], student logits [1, 0], T = 2, alpha = 1 (soft term only)
    qt = [2 / 3, 1 / 3]
    e = math.exp(0.5)
    qs = [e / (e + 1), 1 / (e + 1)]  # softmax([0.5, 0])
    kl = sum(a * math.log(a / b) for a, b in zip(qt, qs))
    assert kl == pytest.approx(0.0042295, rel=1e-4)  # by hand: 2/3 ln(1.071023) + 1/3 ln(0.882911)
    got = hinton_loss(
        torch.tensor([[1.0, 0.0]]),
        torch.log(torch.tensor([[0.8, 0.2]])),
        torch.tensor([0]),
        2.0,
        1.0,
    )
    assert got.item() == pytest.approx(4 * kl, rel=1e-5)  # T^2 * KL


def test_hinton_mixes_hard_term_with_weight_one_minus_alpha():
    s, t, y = torch.tensor([[1.0, 0.0]]), torch.log(torch.tensor([[0.8, 0.2]])), torch.tensor([1])
    soft = hinton_loss(s, t, y, 2.0, 1.0)
    ce = F.cross_entropy(s, y)  # = log(1 + e) = 1.3133
    assert ce.item() == pytest.approx(math.log(1 + math.e), rel=1e-6)
    assert hinton_loss(s, t, y, 2.0, 0.7).item() == pytest.approx(
        0.7 * soft.item() + 0.3 * ce.item(), rel=1e-6
    )
    assert hinton_loss(s, t, y, 2.0, 0.0).item() == pytest.approx(ce.item(), rel=1e-6)


def _soft_grad(temperature: float, scaled: bool) -> torch.Tensor:
    torch.manual_seed(0)
    s = (0.5 * torch.randn(16, 10)).requires_grad_()
    t = torch.log_softmax(0.5 * torch.randn(16, 10), 1)
    loss = hinton_loss(s, t, torch.zeros(16, dtype=torch.long), temperature, 1.0)
    if not scaled:
        loss = loss / temperature**2
    loss.backward()
    return s.grad.norm()


def test_soft_gradient_scales_as_one_over_t_squared_without_the_factor():
    # Hinton 2015 §2: for large T the soft gradient is ~ (z_s - z_t) / (N T^2); doubling T quarters it.
    ratio = (_soft_grad(4.0, scaled=False) / _soft_grad(8.0, scaled=False)).item()
    assert ratio == pytest.approx(4.0, rel=0.05)


def test_soft_gradient_stays_comparable_with_the_t_squared_factor():
    ratio = (_soft_grad(4.0, scaled=True) / _soft_grad(8.0, scaled=True)).item()
    assert ratio == pytest.approx(1.0, rel=0.05)
    # and across a wide range of T the scaled gradient moves by far less than the unscaled one
    g = [_soft_grad(t, scaled=True).item() for t in (2.0, 5.0, 20.0)]
    assert max(g) / min(g) < 1.5


def test_prob_regression_by_hand():
    # student logits [0, 0] -> p = [.5, .5]; teacher [1, 0]: squared error .25 + .25
    assert prob_regression(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]])).item() == pytest.approx(
        0.5
    )


def test_logit_regression_ignores_a_constant_per_row():
    s = torch.tensor([[1.0, 2.0, 3.0]])
    assert logit_regression(s, s + 7.0).item() == pytest.approx(0.0, abs=1e-7)
    # centred: s -> [-1, 0, 1], t = [0, 0, 0] -> mean of squares 2/3
    assert logit_regression(s, torch.zeros(1, 3)).item() == pytest.approx(2 / 3)


def test_hard_ce_is_cross_entropy():
    s, y = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0])
    expected = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-1)))
    assert hard_ce(s, y).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_registered_loss_is_finite_and_differentiable(name):
    torch.manual_seed(1)
    s = torch.randn(5, 4, requires_grad=True)
    t = torch.log_softmax(torch.randn(5, 4), 1)
    t[0] = torch.log(
        torch.tensor([1.0, 1e-7, 1e-7, 1e-7])
    )  # a tree's near-one-hot vote stays finite
    loss = LOSSES[name](s, t, torch.tensor([0, 1, 2, 3, 0]), temperature=3.0, alpha=0.9)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() >= 0
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


@pytest.mark.parametrize("temperature", [1.0, 4.0, 20.0])
@pytest.mark.parametrize("logit_scale", [1.0, 30.0])
def test_closed_form_hinton_loss_matches_float64_autograd(temperature, logit_scale):
    """The training loop's Hinton loss (value and gradient in closed form, distill.losses) against
    hinton_loss in float64: the gradient to float32 rounding, the value to 2e-5 relative (its
    log-normaliser identity cancels terms ~T^2 times the loss at high T)."""
    from distill.losses import prepare_loss

    g = torch.Generator().manual_seed(0)
    t = torch.log_softmax(3.0 * torch.randn(256, 26, generator=g), 1)
    y = torch.randint(0, 26, (256,), generator=g)
    s = (logit_scale * torch.randn(256, 26, generator=g)).double().requires_grad_()
    want = hinton_loss(s, t.double(), y, temperature, 0.9)
    (want_grad,) = torch.autograd.grad(want, s)
    prepared = prepare_loss("hinton", t, y, temperature=temperature, alpha=0.9)
    epoch = prepared.epoch([torch.arange(128), torch.arange(128, 256)])
    got = s.detach().float().requires_grad_()
    for rows in (torch.arange(128), torch.arange(128, 256)):
        epoch.backward(got[rows], prepared.targets[rows])
    assert epoch.read() / 256 == pytest.approx(want.item(), rel=2e-5)
    # each batch's mean: the gradient of the epoch's mean loss, times the 2 batches
    torch.testing.assert_close(got.grad.double() / 2, want_grad, rtol=1e-4, atol=1e-8)
