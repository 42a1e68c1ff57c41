"""Hinton, Vinyals, Dean 2015 on MNIST: §3 (distillation at T=20, the omitted-3 experiment) and §6
(soft targets as a regularizer when data are scarce), CPU-scaled.

Teacher 784-1200-1200-10 with dropout, trained on inputs jittered by up to ±2 pixels; student
784-800-800-10 trained on hard labels, and the same student distilled at T=20 from the teacher's
soft targets on the (unjittered) training set. Test errors are counts of misclassified images
out of the 10,000 MNIST test images, printed beside the paper's figures (67 / 146 / 74), which
came from far longer training; with the CPU default epochs we do not expect to match them.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmarks import common

PAPER = {
    "teacher": 67,
    "student_hard": 146,
    "student_distilled": 74,
    "omit3_errors": 206,
    "omit3_threes_errors": 133,
    "omit3_bias_errors": 109,
    "omit3_bias": 3.5,
}


def shift_images(
    x: np.ndarray, rng: np.random.Generator, max_shift: int = 2, side: int = 28
) -> np.ndarray:
    """Each image moved by its own random (dx, dy) in [-max_shift, max_shift], zero-filled (the paper's jitter)."""
    n = len(x)
    img = x.reshape(n, side, side)
    pad = np.pad(img, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    dx = rng.integers(-max_shift, max_shift + 1, n)
    dy = rng.integers(-max_shift, max_shift + 1, n)
    out = np.empty_like(img)
    for sx in range(-max_shift, max_shift + 1):
        for sy in range(-max_shift, max_shift + 1):
            sel = np.flatnonzero((dx == sx) & (dy == sy))
            if len(sel):
                out[sel] = pad[
                    sel,
                    max_shift + sy : max_shift + sy + side,
                    max_shift + sx : max_shift + sx + side,
                ]
    return out.reshape(n, -1)


def errors(p: np.ndarray, y: np.ndarray) -> int:
    return int((p.argmax(1) != y).sum())


def logits_of(model, x: np.ndarray) -> torch.Tensor:
    from distill.train import predict_logits

    return predict_logits(model, common.shaped_tensor(x, (784,)))


def main(argv: list[str] | None = None) -> int:
    ap = common.parser("hinton_mnist", __doc__)
    ap.add_argument("--teacher-epochs", type=int, default=20)
    ap.add_argument("--student-epochs", type=int, default=10)
    ap.add_argument(
        "--scarce-epochs", type=int, default=20, help="epochs for the §6 runs on 3%% of the data"
    )
    ap.add_argument("--temperature", type=float, default=20.0)
    ap.add_argument(
        "--alpha",
        type=float,
        default=0.9,
        help="weight of the soft term (1 - alpha on hard labels)",
    )
    ap.add_argument(
        "--max-train",
        type=int,
        default=30000,
        help="training rows for §3 (default 30,000 of 59,000 to fit a 2-core CPU; 0 = all)",
    )
    args = common.parse(ap, argv)
    from distill.data import Normalizer, load_data
    from distill.students import build_student

    if args.quick:
        args.max_train = 4000
        args.teacher_epochs = args.student_epochs = 1
        args.scarce_epochs = 3
    te = common.scaled(args.teacher_epochs, args.epochs_scale)
    se = common.scaled(args.student_epochs, args.epochs_scale)
    ce = common.scaled(args.scarce_epochs, args.epochs_scale)
    T, alpha, seed = args.temperature, args.alpha, args.seed
    ds = load_data(
        {
            "name": "mnist",
            "val_fraction": 1000 / 60000,
            "normalize": "scalar",
            "verify_sha256": True,
        }
    )
    n_main = args.max_train or len(ds.x_train)
    norm = Normalizer.fit(ds.x_train[:n_main], "scalar")
    x_raw, y = ds.x_train[:n_main], ds.y_train[:n_main]  # the loader's split is already shuffled
    x_tr, x_val, x_te = norm(x_raw), norm(ds.x_val), norm(ds.x_holdout)
    y_val, y_te = ds.y_val, ds.y_holdout
    settings = {
        "n_train": len(x_tr),
        "n_train_available": len(ds.x_train),
        "n_val": len(x_val),
        "n_test": len(x_te),
        "teacher_epochs": te,
        "student_epochs": se,
        "scarce_epochs": ce,
        "T": T,
        "alpha": alpha,
        "optimizer": "adamw lr 1e-3 cosine",
        "batch": 128,
        "seed": seed,
        "sha256_verified": True,
    }
    rep = common.Report(
        "hinton_mnist",
        "Hinton et al. 2015 on MNIST (§3, §6), CPU-scaled",
        common.command_line("hinton_mnist"),
        settings,
    )
    opt = {"lr": 1e-3, "batch_size": 128, "weight_decay": 0.0}

    # --- teacher: 784-1200-1200-10, dropout 0.5 on the hidden layers, inputs jittered by up to ±2 px
    from distill.train import EpochData

    y_t = torch.from_numpy(y)

    def jittered(epoch: int) -> EpochData:
        rng = np.random.default_rng([seed, epoch])
        return EpochData(common.shaped_tensor(norm(shift_images(x_raw, rng)), (784,)), y_t, None)

    torch.manual_seed(seed)
    teacher = build_student({"kind": "mlp", "hidden": [1200, 1200], "dropout": 0.5}, (784,), 10)
    common.train(
        teacher,
        x_tr,
        y,
        None,
        x_val,
        y_val,
        input_shape=(784,),
        epochs=te,
        loss="hard",
        seed=seed,
        epoch_data=jittered,
        **opt,
    )
    t_logits_tr = logits_of(teacher, x_tr)
    t_logp_tr = torch.log_softmax(
        t_logits_tr, 1
    )  # exact log-probabilities: no floor, so T=20 sees the real logits
    p_t_val = torch.softmax(logits_of(teacher, x_val), 1).numpy()
    p_t_te = torch.softmax(logits_of(teacher, x_te), 1).numpy()

    def student():
        torch.manual_seed(seed)
        return build_student({"kind": "mlp", "hidden": [800, 800]}, (784,), 10)

    def distill_on(rows: np.ndarray, epochs: int):
        s = student()
        data = EpochData(
            common.shaped_tensor(x_tr[rows], (784,)), torch.from_numpy(y[rows]), t_logp_tr[rows]
        )
        common.train(
            s,
            x_tr[rows],
            y[rows],
            None,
            x_val,
            y_val,
            input_shape=(784,),
            epochs=epochs,
            loss="hinton",
            seed=seed,
            val_teacher_probs=p_t_val,
            epoch_data=lambda e: data,
            temperature=T,
            alpha=alpha,
            **opt,
        )
        return s

    # --- student on hard labels, and distilled at T
    hard = student()
    common.train(
        hard,
        x_tr,
        y,
        None,
        x_val,
        y_val,
        input_shape=(784,),
        epochs=se,
        loss="hard",
        seed=seed,
        **opt,
    )
    dist = distill_on(np.arange(len(y)), se)
    res = {
        "teacher": errors(p_t_te, y_te),
        "student_hard": errors(common.predict_proba(hard, x_te, (784,)), y_te),
        "student_distilled": errors(common.predict_proba(dist, x_te, (784,)), y_te),
    }
    rep.add(
        "## §3 distillation: test errors (of 10,000)\n\n"
        + common.table(
            ["model", "ours (errors)", "paper", "our settings"],
            [
                [
                    "teacher 784-1200-1200-10, dropout 0.5, ±2 px jitter",
                    res["teacher"],
                    PAPER["teacher"],
                    f"{te} epochs, {len(x_tr)} rows",
                ],
                [
                    "student 784-800-800-10, hard labels",
                    res["student_hard"],
                    PAPER["student_hard"],
                    f"{se} epochs",
                ],
                [
                    f"student 784-800-800-10, distilled T={T:g}",
                    res["student_distilled"],
                    PAPER["student_distilled"],
                    f"{se} epochs, alpha={alpha}",
                ],
            ],
        )
        + "\nThe paper trained these nets on all 60,000 images for far longer (and with more regularisation); "
        "our CPU-default epochs and rows are a fraction of that, so our errors are higher and are not expected "
        "to match the paper's. "
        + (
            "Here the distilled student makes fewer errors than the same student on hard labels, as in the paper.\n"
            if res["student_distilled"] < res["student_hard"]
            else "Here the distilled student does NOT beat the same student on hard labels "
            "(the paper's ordering is not reproduced at this scale).\n"
        )
    )

    # --- §3 omitted-3: transfer set without any 3, then the bias of class 3 raised
    rows = np.flatnonzero(y != 3)
    om = distill_on(rows, se)
    lg = logits_of(om, x_te)
    threes = y_te == 3
    base_err = errors(lg.numpy(), y_te)
    three_err = int((lg.argmax(1).numpy()[threes] != 3).sum())

    def with_bias(b: float, x: np.ndarray) -> np.ndarray:
        z = logits_of(om, x).clone()
        z[:, 3] += b
        return z.numpy()

    paper_b = PAPER["omit3_bias"]
    err_paper_b = errors(with_bias(paper_b, x_te), y_te)
    three_paper_b = int((with_bias(paper_b, x_te).argmax(1)[threes] != 3).sum())
    grid = np.arange(0.0, 15.01, 0.5)
    val_err = [errors(with_bias(b, x_val), y_val) for b in grid]
    b_val = float(
        grid[int(np.argmin(val_err))]
    )  # chosen on the validation split, never on the test set
    err_val_b = errors(with_bias(b_val, x_te), y_te)
    three_val_b = int((with_bias(b_val, x_te).argmax(1)[threes] != 3).sum())
    n3 = int(threes.sum())
    res.update(
        {
            "omit3_errors": base_err,
            "omit3_threes_errors": three_err,
            "omit3_bias_paper": err_paper_b,
            "omit3_threes_bias_paper": three_paper_b,
            "omit3_bias_val": b_val,
            "omit3_bias_val_errors": err_val_b,
            "omit3_threes_bias_val": three_val_b,
            "threes_in_test": n3,
            "transfer_rows_without_3": len(rows),
        }
    )
    rep.add(
        f"## §3 omitted-3 (transfer set of {len(rows)} rows without any 3; {n3} threes in the test set)\n\n"
        + common.table(
            [
                "student distilled without 3s",
                "ours: errors (of 10,000)",
                "ours: errors on 3s",
                "paper: errors",
                "paper: errors on 3s",
            ],
            [
                [
                    "as trained",
                    base_err,
                    f"{three_err} of {n3}",
                    PAPER["omit3_errors"],
                    f"{PAPER['omit3_threes_errors']} of 1010",
                ],
                [
                    f"bias of class 3 +{paper_b} (the paper's value)",
                    err_paper_b,
                    f"{three_paper_b} of {n3}",
                    PAPER["omit3_bias_errors"],
                    "-",
                ],
                [
                    f"bias of class 3 +{b_val:g} (chosen on validation)",
                    err_val_b,
                    f"{three_val_b} of {n3}",
                    "-",
                    "-",
                ],
            ],
        )
    )

    # --- §6 soft targets as a regularizer: 3% of the full training split, soft targets from our teacher
    rng = np.random.default_rng(seed)
    few = np.sort(
        rng.choice(len(ds.x_train), size=max(30, int(0.03 * len(ds.x_train))), replace=False)
    )
    x_few, y_few = norm(ds.x_train[few]), ds.y_train[few]
    hard_few = student()
    common.train(
        hard_few,
        x_few,
        y_few,
        None,
        x_val,
        y_val,
        input_shape=(784,),
        epochs=ce,
        loss="hard",
        seed=seed,
        **opt,
    )
    soft_few = student()
    few_data = EpochData(
        common.shaped_tensor(x_few, (784,)),
        torch.from_numpy(y_few),
        torch.log_softmax(logits_of(teacher, x_few), 1),
    )
    common.train(
        soft_few,
        x_few,
        y_few,
        None,
        x_val,
        y_val,
        input_shape=(784,),
        epochs=ce,
        loss="hinton",
        seed=seed,
        val_teacher_probs=p_t_val,
        epoch_data=lambda e: few_data,
        temperature=T,
        alpha=alpha,
        **opt,
    )
    e_hard_few = errors(common.predict_proba(hard_few, x_te, (784,)), y_te)
    e_soft_few = errors(common.predict_proba(soft_few, x_te, (784,)), y_te)
    res.update(
        {
            "scarce_rows": len(few),
            "scarce_hard_errors": e_hard_few,
            "scarce_soft_errors": e_soft_few,
        }
    )
    rep.add(
        f"## §6 soft targets as a regularizer: student 784-800-800-10 on {len(few)} rows "
        f"(3% of the {len(ds.x_train)}-row training split)\n\n"
        + common.table(
            ["targets", "ours: test errors (of 10,000)", "settings"],
            [
                ["hard labels", e_hard_few, f"{ce} epochs, best epoch by validation accuracy"],
                [
                    f"soft targets of the §3 teacher, T={T:g}",
                    e_soft_few,
                    f"{ce} epochs, alpha={alpha}, best epoch by validation fidelity",
                ],
            ],
        )
        + f"\nSoft targets come from the §3 teacher (trained on {len(x_tr)} rows). "
        "The paper's §6 figures are for speech (frame accuracy 44.5% hard vs 57.0% soft on 3% of the "
        "data), not MNIST, so only our own MNIST figures are shown.\n"
    )
    rep.data = res
    rep.write(args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
