"""The work of Hinton 2015's MNIST run: the data, the teacher (resumable, its logits cached) and
the units of student training, each cached by content so a killed or repeated run is cheap.

Units that need no teacher (the hard-label students) run beside the teacher on the second core;
the distilled, omitted-3 and soft-target units run once its logits exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from benchmarks import common
from benchmarks.hinton_rule import PAPER, STUDENT_OPT

NEEDS_TEACHER = {"distilled", "omit3", "scarce_soft"}


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


def errors(z: np.ndarray, y: np.ndarray) -> int:
    return int((np.asarray(z).argmax(1) != y).sum())


def logits_of(model, x: np.ndarray) -> torch.Tensor:
    from distill.train import predict_logits

    return predict_logits(model, common.shaped_tensor(x, (784,)))


def teacher_net(cfg: dict, seed: int):
    """784-1200-1200-10: dropout on the inputs and after each hidden layer, max-norm on the
    hidden units' incoming weights (the output layer is left free, as in the dropout paper)."""
    from torch import nn

    from distill.students import build_student

    torch.manual_seed(seed)
    mlp = build_student(
        {"kind": "mlp", "hidden": cfg["hidden"], "dropout": cfg["dropout"]}, (784,), 10
    )
    net = nn.Sequential(nn.Dropout(cfg["input_dropout"]), mlp)
    return common.max_norm(net, cfg["max_norm"], hidden_only=True)


def student_net(cfg: dict, seed: int):
    from distill.students import build_student

    torch.manual_seed(seed)
    return build_student({"kind": "mlp", "hidden": cfg["hidden"]}, (784,), 10)


@dataclass
class Data:
    """All 60,000 MNIST training rows (raw for the jitter, normalized for the nets), the 10,000
    test rows, and the first MONITOR rows of training scored each epoch for the history only."""

    x_raw: np.ndarray
    x_tr: np.ndarray
    y: np.ndarray
    x_te: np.ndarray
    y_te: np.ndarray
    norm: object
    monitor: int
    key: dict  # what the data are, for the cache keys

    @property
    def x_mon(self) -> np.ndarray:
        return self.x_tr[: self.monitor]

    @property
    def y_mon(self) -> np.ndarray:
        return self.y[: self.monitor]


def load(cfg: dict) -> Data:
    """MNIST (sha256-verified), its 60,000 training rows in one split (the loader's 1,000-row
    validation split joined back: nothing here chooses on held-out rows), scalar-normalized."""
    from distill.cache import inputs_sha256
    from distill.data import Normalizer, load_data

    torch.set_num_threads(cfg["threads"])
    ds = load_data(
        {
            "name": "mnist",
            "val_fraction": 1000 / 60000,
            "normalize": "scalar",
            "verify_sha256": True,
        }
    )
    x_raw = np.concatenate([ds.x_train, ds.x_val])[: cfg["n_max"]]
    y = np.concatenate([ds.y_train, ds.y_val])[: cfg["n_max"]]
    norm = Normalizer.fit(x_raw, "scalar")
    key = {"train": inputs_sha256(x_raw), "labels": inputs_sha256(y)}
    key["test"] = inputs_sha256(ds.x_holdout)
    return Data(
        x_raw, norm(x_raw), y, norm(ds.x_holdout), ds.y_holdout, norm, cfg["monitor_rows"], key
    )


def teacher_key(cfg: dict, data: Data) -> dict:
    return {
        "what": "hinton_mnist teacher logits",
        "version": 2,
        "data": data.key,
        "teacher": cfg["teacher"],
        "opt": cfg["teacher_opt"],
        "seed": cfg["teacher_seed"],
        "monitor": data.monitor,
        "torch": torch.__version__,
        "threads": cfg["threads"],
    }


def teacher_logits(cfg: dict, data: Data) -> tuple[dict[str, np.ndarray], bool]:
    """Train the teacher (resuming from its checkpoint if a run was killed) or fetch its cached
    logits on the training and test rows, with its per-epoch history."""
    from distill.train import EpochData

    tcfg, t_seed, key = cfg["teacher"], cfg["teacher_seed"], teacher_key(cfg, data)
    y_t = torch.from_numpy(data.y)
    opt = {k: v for k, v in cfg["teacher_opt"].items() if k != "lr_end_fraction"}
    opt["gamma"] = cfg["teacher_opt"]["lr_end_fraction"] ** (1.0 / tcfg["epochs"])

    def jittered(epoch: int) -> EpochData:
        rng = np.random.default_rng([t_seed, epoch])
        shifted = data.norm(shift_images(data.x_raw, rng, tcfg["jitter_px"]))
        return EpochData(common.shaped_tensor(shifted, (784,)), y_t, None)

    def train_teacher() -> dict[str, np.ndarray]:
        teacher = teacher_net(tcfg, t_seed)
        ck = common.cache_root() / f"hinton_teacher-{common.content_key(key)[:20]}.ckpt.pt"
        fit = common.train(
            teacher, data.x_tr, data.y, None, data.x_mon, data.y_mon, input_shape=(784,),
            epochs=tcfg["epochs"], loss="hard", seed=t_seed, epoch_data=jittered, keep="last",
            checkpoint=ck, **opt,
        )  # fmt: skip
        out = {
            "train": logits_of(teacher, data.x_tr).numpy(),
            "test": logits_of(teacher, data.x_te).numpy(),
            "train_loss_per_epoch": np.array([h["train_loss"] for h in fit.history]),
            "lr_per_epoch": np.array([h["lr"] for h in fit.history]),
        }
        ck.unlink(missing_ok=True)  # the logits are what later runs need
        return out

    return common.cached_arrays("hinton_teacher", key, train_teacher)


def train_student(
    data: Data, cfg: dict, seed: int, rows: np.ndarray, epochs: int, t_logp=None, val=None
):
    """The 784-800-800-10 student on ``rows``: hard labels, or distilled at T from the teacher's
    log-probabilities ``t_logp``; the last epoch kept, or with ``val`` (rows of the training
    set it does not train on) the best validation epoch. Returns the net and its fit."""
    from distill.train import EpochData

    s = student_net(cfg["student"], seed)
    x = common.shaped_tensor(data.x_tr[rows], (784,))
    batch = EpochData(x, torch.from_numpy(data.y[rows]), None if t_logp is None else t_logp[rows])
    extra = {} if t_logp is None else {"temperature": cfg["T"], "alpha": cfg["alpha"]}
    x_val, y_val = (data.x_mon, data.y_mon) if val is None else (data.x_tr[val], data.y[val])
    fit = common.train(
        s, data.x_tr[rows], data.y[rows], None, x_val, y_val, input_shape=(784,), epochs=epochs,
        loss="hard" if t_logp is None else "hinton", seed=seed, epoch_data=lambda e: batch,
        val_metric="accuracy", keep="last" if val is None else "best", **extra, **STUDENT_OPT,
    )  # fmt: skip
    return s, fit


def unit_hard(data: Data, cfg: dict, seed: int, t_logp=None) -> dict:
    """§3: the hard-label student of one seed on all training rows, last epoch."""
    net, _ = train_student(data, cfg, seed, np.arange(len(data.y)), cfg["student"]["epochs"])
    return {"seed": seed, "hard_test": errors(logits_of(net, data.x_te), data.y_te)}


def unit_distilled(data: Data, cfg: dict, seed: int, t_logp=None) -> dict:
    """§3: the distilled student of one seed (the hard one's initial weights and batch order)."""
    rows = np.arange(len(data.y))
    net, _ = train_student(data, cfg, seed, rows, cfg["student"]["epochs"], t_logp)
    return {"seed": seed, "distilled_test": errors(logits_of(net, data.x_te), data.y_te)}


def unit_omit3(data: Data, cfg: dict, seed: int, t_logp=None) -> dict:
    """§3 omitted-3: distilled without any 3 and without the bias rows; class 3's bias chosen on them."""
    y, y_te = data.y, data.y_te
    bias_idx = np.arange(min(cfg["bias_rows"], len(y) // 5))
    rest = np.arange(len(bias_idx), len(y))
    rows3 = rest[y[rest] != 3]
    om, _ = train_student(data, cfg, seed, rows3, cfg["student"]["epochs"], t_logp)
    threes = y_te == 3
    z_te, z_bias = logits_of(om, data.x_te).numpy(), logits_of(om, data.x_tr[bias_idx]).numpy()

    def shifted(z: np.ndarray, b: float) -> np.ndarray:
        z = z.copy()
        z[:, 3] += b
        return z

    def three_err(z: np.ndarray) -> int:
        return int((z.argmax(1)[threes] != 3).sum())

    grid = np.arange(0.0, 15.01, 0.25)
    bias_err = [errors(shifted(z_bias, b), y[bias_idx]) for b in grid]
    b_val = float(grid[int(np.argmin(bias_err))])  # chosen on the held-out bias rows, never on test
    paper_b = PAPER["omit3_bias"]
    return {
        "seed": seed,
        "transfer_rows_without_3": len(rows3),
        "bias_rows": len(bias_idx),
        "errors": errors(z_te, y_te),
        "threes_errors": three_err(z_te),
        "bias_chosen": b_val,
        "bias_chosen_errors": errors(shifted(z_te, b_val), y_te),
        "bias_chosen_threes_errors": three_err(shifted(z_te, b_val)),
        "bias_paper": paper_b,
        "bias_paper_errors": errors(shifted(z_te, paper_b), y_te),
        "bias_paper_threes_errors": three_err(shifted(z_te, paper_b)),
        "threes_in_test": int(threes.sum()),
    }


def scarce_rows(data: Data, cfg: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """§6: a fresh 3% draw of the training rows per seed, and validation rows drawn from the rest
    (the hard-label baseline's early stopping never looks at the rows it trains on, nor at test)."""
    n = len(data.y)
    n_few = max(30, int(cfg["scarce"]["fraction"] * n))
    few = np.sort(np.random.default_rng([seed, 6]).choice(n, size=n_few, replace=False))
    rest = np.setdiff1d(np.arange(n), few)
    n_val = min(cfg["scarce"]["val_rows"], len(rest))
    val = np.sort(np.random.default_rng([seed, 7]).choice(rest, size=n_val, replace=False))
    return few, val


def unit_scarce_hard(data: Data, cfg: dict, seed: int, t_logp=None) -> dict:
    """§6 hard labels on 3% of the rows, its best validation epoch (the paper's early-stopped baseline)."""
    few, val = scarce_rows(data, cfg, seed)
    net, fit = train_student(data, cfg, seed, few, cfg["scarce"]["epochs"], val=val)
    return {
        "seed": seed,
        "rows": len(few),
        "val_rows": len(val),
        "hard_test": errors(logits_of(net, data.x_te), data.y_te),
        "hard_best_epoch": fit.best_epoch,
    }


def unit_scarce_soft(data: Data, cfg: dict, seed: int, t_logp=None) -> dict:
    """§6 soft targets on the same 3% of the rows, last epoch (alpha as in §3)."""
    few, _ = scarce_rows(data, cfg, seed)
    net, _ = train_student(data, cfg, seed, few, cfg["scarce"]["epochs"], t_logp)
    return {"seed": seed, "soft_test": errors(logits_of(net, data.x_te), data.y_te)}


UNITS = {
    "hard": unit_hard,
    "distilled": unit_distilled,
    "omit3": unit_omit3,
    "scarce_hard": unit_scarce_hard,
    "scarce_soft": unit_scarce_soft,
}


def run_teacher(cfg: dict) -> tuple[dict, bool]:
    """The teacher's figures (test errors, per-epoch history) and whether its logits were cached."""
    data = load(cfg)
    t, hit = teacher_logits(cfg, data)
    return {
        "test_errors": errors(t["test"], data.y_te),
        "train_errors": errors(t["train"], data.y),
        "train_loss_per_epoch": [round(float(v), 6) for v in t["train_loss_per_epoch"]],
        "lr_per_epoch": [float(v) for v in t["lr_per_epoch"]],
        "cache": common.content_key(teacher_key(cfg, data))[:20],
    }, hit


def run_unit(cfg: dict, unit: tuple[str, int]) -> tuple[dict, bool]:
    """One unit of work, its result cached by content (data, configuration, unit, and the
    teacher's key for the units that learn from it); runs in a worker process or here."""
    kind, seed = unit
    data = load(cfg)
    key = {"what": "hinton_mnist unit", "version": 2, "unit": [kind, seed], "data": data.key}
    key["cfg"] = {k: v for k, v in cfg.items() if k not in ("teacher", "teacher_opt")}
    key["student_opt"] = STUDENT_OPT
    if kind in NEEDS_TEACHER:
        key["teacher"] = common.content_key(teacher_key(cfg, data))

    def compute() -> dict[str, np.ndarray]:
        t_logp = None
        if kind in NEEDS_TEACHER:
            t, _ = teacher_logits(cfg, data)  # a cache hit: the teacher ran first
            t_logp = torch.log_softmax(torch.from_numpy(t["train"]), 1)  # exact, no floor
        rec = UNITS[kind](data, cfg, seed, t_logp)
        return {k: np.asarray(v) for k, v in rec.items()}

    arrays, hit = common.cached_arrays("hinton_unit", key, compute)
    return {k: v.item() for k, v in arrays.items()}, hit
