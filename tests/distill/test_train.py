"""The training loop alone (no teacher library): determinism, resume, early stopping on validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill.students import build_student
from distill.train import EpochData, accuracy_score, fidelity_score, fit, train_config
from ground.errors import UserError


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    w = rng.normal(size=(6, 3))
    logits = x @ w
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return (
        torch.from_numpy(x),
        torch.from_numpy(np.log(probs).astype(np.float32)),
        torch.from_numpy(probs.argmax(1)),
    )


def _run(tmp_path, name, resume=False, epochs=6, jittered=True, patience=10):
    x, t, y = _problem()
    cfg = train_config(
        {"epochs": epochs, "batch_size": 32, "patience": patience, "temperature": 2.0}
    )

    def epoch_data(epoch: int) -> EpochData:  # new inputs every epoch, as with jitter
        if not jittered:
            return EpochData(x[:200], y[:200], t[:200])
        g = torch.Generator().manual_seed(1000 + epoch)
        return EpochData(x[:200] + 0.05 * torch.randn(200, 6, generator=g), y[:200], t[:200])

    torch.manual_seed(0)
    model = build_student({"kind": "mlp", "hidden": [16], "dropout": 0.1}, (6,), 3)
    res = fit(
        model,
        epoch_data,
        lambda lg: fidelity_score(lg, t[200:].exp()),
        x[200:],
        cfg,
        checkpoint=tmp_path / f"{name}.pt",
        fingerprint="f",
        resume=resume,
        progress=False,
    )
    return model, res


def test_resume_from_a_middle_checkpoint_is_exact(tmp_path):
    full_model, full = _run(tmp_path, "full")
    ck = torch.load(tmp_path / "full.pt", weights_only=True)
    assert ck["epoch"] == 6 and ck["done"]
    # a run "killed" in epoch 4 leaves the checkpoint of epoch 3; resuming it with the full budget must match
    x, t, y = _problem()
    cfg = train_config({"epochs": 6, "batch_size": 32, "patience": 10, "temperature": 2.0})
    import distill.train as tr

    def stop_after_three(epoch: int):
        if epoch == 3:
            raise KeyboardInterrupt  # the "kill": the loop never reaches epoch 4
        g = torch.Generator().manual_seed(1000 + epoch)
        return EpochData(x[:200] + 0.05 * torch.randn(200, 6, generator=g), y[:200], t[:200])

    torch.manual_seed(0)
    model = build_student({"kind": "mlp", "hidden": [16], "dropout": 0.1}, (6,), 3)
    with pytest.raises(KeyboardInterrupt):
        tr.fit(
            model,
            stop_after_three,
            lambda lg: fidelity_score(lg, t[200:].exp()),
            x[200:],
            cfg,
            checkpoint=tmp_path / "mid.pt",
            fingerprint="f",
            progress=False,
        )
    assert torch.load(tmp_path / "mid.pt", weights_only=True)["epoch"] == 3
    resumed_model, resumed = _run(tmp_path, "mid", resume=True)
    assert resumed.resumed_from == 3
    assert resumed.best_score == full.best_score and resumed.best_epoch == full.best_epoch
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]
    for a, b in zip(full_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)


def test_checkpoint_of_another_configuration_is_not_resumed(tmp_path):
    _run(tmp_path, "a", epochs=2)
    x, t, y = _problem()
    cfg = train_config({"epochs": 2, "batch_size": 32})
    model = build_student({"kind": "mlp", "hidden": [16]}, (6,), 3)
    res = fit(
        model,
        lambda e: EpochData(x[:200], y[:200], t[:200]),
        lambda lg: accuracy_score(lg, y[200:]),
        x[200:],
        cfg,
        checkpoint=tmp_path / "a.pt",
        fingerprint="other",
        resume=True,
        progress=False,
    )
    assert res.resumed_from == 0 and res.epochs_run == 2


def test_early_stopping_uses_patience_on_validation(tmp_path):
    _, res = _run(tmp_path, "es", epochs=60, jittered=False, patience=2)
    assert res.stopped_early and res.epochs_run == res.best_epoch + 2


def test_train_section_errors():
    with pytest.raises(
        UserError, match=r"train.optimizer' must be one of 'adamw', 'sgd'; got 'lbfgs'"
    ):
        train_config({"optimizer": "lbfgs"})
    with pytest.raises(UserError, match=r"train.temperature' must be in the range"):
        train_config({"temperature": 0.0})


def test_one_process_distributed_context_gives_the_same_batches():
    from distill.distributed import DistContext, train_context
    from distill.train import TrainContext

    a, b = TrainContext(), train_context(DistContext())
    for epoch in (0, 3):
        assert all(
            torch.equal(u, v)
            for u, v in zip(a.batches(100, 32, 7, epoch), b.batches(100, 32, 7, epoch))
        )
    assert b.reduce_sums({"loss": 2.0, "n": 4.0}) == {"loss": 2.0, "n": 4.0}


def test_fit_leaves_no_process_wide_determinism_switch_on(tmp_path):
    """fit turns deterministic algorithms on for its loop and restores the caller's setting."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    cfg = train_config({"epochs": 1, "loss": "hard", "baseline": False})
    assert not torch.are_deterministic_algorithms_enabled()
    fit(
        model,
        lambda epoch: EpochData(x, y, None),
        lambda lg: accuracy_score(lg, y),
        x,
        cfg,
        checkpoint=tmp_path / "ck.pt",
        fingerprint="t",
        progress=False,
    )
    assert not torch.are_deterministic_algorithms_enabled()
    # nor the fill of new tensors it switches off while training (a deterministic-mode default)
    assert torch.utils.deterministic.fill_uninitialized_memory


def _optimizer_steps(optimizer: str, mode: str) -> dict[str, torch.Tensor]:
    """Four Hinton-loss steps of a small DS-CNN with make_optimizer's optimizer, its update run
    ``mode``: "fused" as made, or "loop" (torch's per-parameter reference implementation)."""
    from distill.losses import LOSSES
    from distill.train import make_optimizer

    cfg = train_config({"optimizer": optimizer, "lr": 0.01})
    spec = {"kind": "dscnn", "channels": 8, "blocks": 2, "first_stride": 2, "block_stride": 2}
    g = torch.Generator().manual_seed(3)
    x, t = torch.randn(64, 1, 13, 49, generator=g), torch.randn(64, 10, generator=g)
    torch.manual_seed(0)
    model = build_student(spec, (1, 13, 49), 10)
    opt = make_optimizer(model, cfg)
    assert all(group["fused"] for group in opt.param_groups)
    for group in opt.param_groups:
        group["fused"], group["foreach"] = mode == "fused", False
    for i in range(0, 64, 16):
        loss = LOSSES["hinton"](
            model(x[i : i + 16]), t[i : i + 16].log_softmax(1), t[i : i + 16].argmax(1),
            temperature=4.0, alpha=0.9,
        )  # fmt: skip
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.state_dict()


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_fused_optimizer_step_matches_the_per_parameter_loop(optimizer):
    """make_optimizer's fused update is a speed-up only: SGD's weights equal the per-parameter
    loop's to the bit, AdamW's to float rounding; and the same seed gives the same bits."""
    fused, loop = _optimizer_steps(optimizer, "fused"), _optimizer_steps(optimizer, "loop")
    again = _optimizer_steps(optimizer, "fused")
    assert all(torch.equal(fused[k], again[k]) for k in fused)
    for k in fused:
        if optimizer == "sgd":
            assert torch.equal(fused[k], loop[k]), k
        else:
            torch.testing.assert_close(fused[k], loop[k], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("select", "kept"), [("top1", 2), ("loss", 3)])
def test_select_decides_which_epoch_is_kept(tmp_path, select, kept):
    # top-1 that stops moving (a small, easy validation split) while the loss keeps falling:
    # "top1" keeps epoch 2 (its tie with epoch 1 goes to the lower loss), "loss" keeps epoch 3
    scripted = iter([[0.99, -0.5], [0.99, -0.3], [0.98, -0.1], [0.98, -0.2]])
    x, t, y = _problem()
    cfg = train_config({"epochs": 4, "batch_size": 32, "patience": 10, "select": select})
    model = build_student({"kind": "mlp", "hidden": [8]}, (6,), 3)
    res = fit(
        model,
        lambda epoch: EpochData(x[:200], y[:200], t[:200]),
        lambda lg: next(scripted),
        x[200:],
        cfg,
        checkpoint=tmp_path / f"{select}.pt",
        fingerprint=select,
        progress=False,
    )
    assert res.best_epoch == kept and res.epochs_run == 4


def test_select_rejects_an_unknown_rule():
    with pytest.raises(UserError, match="select"):
        train_config({"select": "val"})


def _conv_run(tmp_path, name: str, channels_last: bool, resume: bool = False, kill_at: int = -1):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(160, 1, 13, 49, generator=g)
    t = torch.randn(160, 10, generator=g).log_softmax(1)
    cfg = train_config({"epochs": 3, "batch_size": 32, "channels_last": channels_last})

    def epoch_data(epoch: int) -> EpochData:
        if epoch == kill_at:
            raise KeyboardInterrupt  # the "kill": that epoch never starts
        return EpochData(x[:128], t[:128].argmax(1), t[:128])

    torch.manual_seed(0)
    spec = {"kind": "dscnn", "channels": 8, "blocks": 2, "first_stride": 2, "block_stride": 2}
    model = build_student(spec, (1, 13, 49), 10)
    res = fit(
        model,
        epoch_data,
        lambda lg: fidelity_score(lg, t[128:].exp()),
        x[128:],
        cfg,
        checkpoint=tmp_path / f"{name}.pt",
        fingerprint="c",
        resume=resume,
        progress=False,
    )
    return model, res


def test_channels_last_trains_the_same_network_and_hands_back_nchw(tmp_path):
    """train.channels_last changes the layout the loop computes in, not what it learns: the
    losses follow the NCHW run's to float rounding, and the student comes back NCHW."""
    nchw_model, nchw = _conv_run(tmp_path, "nchw", False)
    nhwc_model, nhwc = _conv_run(tmp_path, "nhwc", True)
    for a, b in zip(nchw.history, nhwc.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-3)
    for p in nhwc_model.parameters():
        assert p.is_contiguous()
    x = torch.randn(4, 1, 13, 49)
    nchw_model.eval()
    torch.testing.assert_close(nhwc_model(x), nchw_model(x), rtol=1e-3, atol=1e-3)
    # a run killed in epoch 3 resumes from its NHWC checkpoint to the uninterrupted weights
    with pytest.raises(KeyboardInterrupt):
        _conv_run(tmp_path, "mid", True, kill_at=2)
    resumed_model, resumed = _conv_run(tmp_path, "mid", True, resume=True)
    assert resumed.resumed_from == 2
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in nhwc.history]
    for a, b in zip(resumed_model.state_dict().values(), nhwc_model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["hinton", "logits", "probs", "hard"])
@pytest.mark.parametrize("alpha", [0.9, 1.0, 0.0])
def test_prepared_loss_equals_the_per_batch_loss(name, alpha):
    """The loop's losses (targets built once per epoch's data) give the registry's per-batch
    value and gradient to float rounding, on every registered loss."""
    from distill.losses import LOSSES, prepare_loss

    assert name in LOSSES
    g = torch.Generator().manual_seed(7)
    t = torch.log_softmax(3.0 * torch.randn(300, 11, generator=g), 1)
    t[0] = torch.log(torch.tensor([1.0] + [1e-7] * 10))  # a tree's near-one-hot vote
    y = torch.randint(0, 11, (300,), generator=g)
    idx = torch.randperm(300, generator=g)[:64]
    s = torch.randn(64, 11, generator=g, requires_grad=True)
    want = LOSSES[name](s, t[idx], y[idx], temperature=3.0, alpha=alpha)
    (want_grad,) = torch.autograd.grad(want, s)
    prepared = prepare_loss(name, t, y, temperature=3.0, alpha=alpha)
    assert (prepared.batch is None) == (prepared.closed_form is not None)
    if prepared.batch is not None:  # the autograd form
        got = prepared.batch(s, prepared.targets[idx])
        (got_grad,) = torch.autograd.grad(got, s)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got_grad, want_grad, rtol=1e-5, atol=1e-7)
    # the loop's form (the Hinton loss's gradient in closed form): each batch's gradient, and
    # the epoch's summed loss over batches of changing size, more than the 64 steps after which
    # the closed form folds its float32 sums into a float64 one
    batches = [idx[:30], idx[30:60], idx[60:]] + [idx[j : j + 1] for j in range(64)]
    epoch, want_sum = prepared.epoch(batches), 0.0
    for rows in batches:
        want_b = LOSSES[name](s[: len(rows)], t[rows], y[rows], temperature=3.0, alpha=alpha)
        (want_grad_b,) = torch.autograd.grad(want_b, s)
        s.grad = None
        epoch.backward(s[: len(rows)], prepared.targets[rows])
        torch.testing.assert_close(s.grad, want_grad_b, rtol=1e-5, atol=1e-7)
        want_sum += len(rows) * want_b.item()
    assert epoch.read() == pytest.approx(want_sum, rel=1e-5, abs=1e-5)


def test_a_teacher_loss_without_teacher_outputs_is_refused():
    from distill.losses import prepare_loss

    with pytest.raises(ValueError, match="loss 'hinton' needs the teacher's log-probabilities"):
        prepare_loss("hinton", None, torch.zeros(3, dtype=torch.long), temperature=4.0, alpha=0.9)


def test_fit_reports_where_each_epoch_went_outside_the_checkpoint(tmp_path):
    _, res = _run(tmp_path, "sec", epochs=3)
    assert [s["epoch"] for s in res.seconds] == [1, 2, 3]
    parts = ("data_s", "steps_s", "validation_s", "checkpoint_s")
    assert all(s[k] >= 0 for s in res.seconds for k in parts)
    assert all(s["steps_s"] > 0 for s in res.seconds)
    ck = torch.load(tmp_path / "sec.pt", weights_only=True)
    assert "seconds" not in ck and not any("steps_s" in h for h in ck["history"])


@pytest.mark.parametrize(("how", "built"), [("cached", 1), ("jittered", 4), ("in_place", 2)])
def test_loss_targets_are_built_once_per_epoch_data(tmp_path, monkeypatch, how, built):
    """A cached set (the same tensors, or new views of them, every epoch) has its loss targets
    built once; new tensors (jitter) every epoch, and teacher outputs changed in place again."""
    import distill.losses as losses

    calls, prepare = [], losses.prepare_loss

    def counting(*args, **kwargs):
        calls.append(1)
        return prepare(*args, **kwargs)

    monkeypatch.setattr(losses, "prepare_loss", counting)
    x, t, y = _problem()
    t = t.clone()

    def epoch_data(epoch: int) -> EpochData:
        if how == "jittered":
            return EpochData(x[:200] + 0.01 * epoch, y[:200].clone(), t[:200].clone())
        if how == "in_place" and epoch == 2:
            t.mul_(0.5)
        return EpochData(x[:200], y[:200], t[:200])  # new views of the same tensors

    fit(
        build_student({"kind": "mlp", "hidden": [8]}, (6,), 3),
        epoch_data,
        lambda lg: fidelity_score(lg, t[200:].exp()),
        x[200:],
        train_config({"epochs": 4, "batch_size": 32, "patience": 10}),
        checkpoint=tmp_path / "ck.pt",
        fingerprint="memo",
        progress=False,
    )
    assert len(calls) == built


def test_closed_form_hinton_loss_trains_like_autograd(tmp_path, monkeypatch):
    """fit with the Hinton loss in closed form (the loop's form) trains the network autograd
    through ``hinton_loss`` trains: the same epoch losses and weights, to float rounding."""
    import distill.losses as losses

    def by_autograd(name, t, labels, *, temperature, alpha):
        rows = torch.cat([t, labels.view(-1, 1).float()], 1)
        return losses.PreparedLoss(
            rows, lambda s, r: losses.hinton_loss(s, r[:, :-1], r[:, -1].long(), temperature, alpha)
        )

    _, closed = _run(tmp_path, "closed", epochs=3)
    monkeypatch.setattr(losses, "prepare_loss", by_autograd)
    _, auto = _run(tmp_path, "auto", epochs=3)
    for a, b in zip(closed.history, auto.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    for k, v in closed.best_state.items():
        torch.testing.assert_close(v, auto.best_state[k], rtol=1e-4, atol=1e-5)
