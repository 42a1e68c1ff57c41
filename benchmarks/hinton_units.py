"""The work of Hinton 2015's MNIST run: the data, the teacher (its logits cached) and the three
units of student training (§3 pair, §3 omitted-3, §6 scarce data), each cached by content."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from benchmarks import common
from benchmarks.hinton_rule import OPT, PAPER


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
    """784-1200-1200-10: dropout on the inputs and after each hidden layer, max-norm on every Linear."""
    from torch import nn

    from distill.students import build_student

    torch.manual_seed(seed)
    mlp = build_student(
        {"kind": "mlp", "hidden": cfg["hidden"], "dropout": cfg["dropout"]}, (784,), 10
    )
    return common.max_norm(nn.Sequential(nn.Dropout(cfg["input_dropout"]), mlp), cfg["max_norm"])


def student_net(cfg: dict, seed: int):
    from distill.students import build_student

    torch.manual_seed(seed)
    return build_student({"kind": "mlp", "hidden": cfg["hidden"]}, (784,), 10)


@dataclass
class Setup:
    """Data, teacher outputs and settings that every unit of work needs (rebuilt in each worker)."""

    cfg: dict
    x_tr: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_te: np.ndarray
    y_te: np.ndarray
    t_logits: dict
    teacher_key: dict
    teacher_hit: bool

    @property
    def t_logp_tr(self) -> torch.Tensor:
        """Exact log-probabilities, no floor: T=20 sees the real logits."""
        return torch.log_softmax(torch.from_numpy(self.t_logits["train"]), 1)

    @property
    def p_t_val(self) -> np.ndarray:
        return torch.softmax(torch.from_numpy(self.t_logits["val"]), 1).numpy()


def prepare(cfg: dict) -> Setup:
    """Load MNIST (sha256-verified), normalize, and train or fetch the teacher's cached logits."""
    from distill.cache import inputs_sha256
    from distill.data import Normalizer, load_data
    from distill.train import EpochData

    torch.set_num_threads(cfg["threads"])
    ds = load_data(
        {
            "name": "mnist",
            "val_fraction": 1000 / 60000,
            "normalize": "scalar",
            "verify_sha256": True,
        }
    )
    n_max = cfg["n_max"]
    x_raw, y = ds.x_train[:n_max], ds.y_train[:n_max]  # the loader's split is already shuffled
    norm = Normalizer.fit(x_raw, "scalar")
    x_tr, x_val, x_te = norm(x_raw), norm(ds.x_val), norm(ds.x_holdout)
    tcfg, t_seed = cfg["teacher"], cfg["teacher_seed"]
    y_t = torch.from_numpy(y)

    def jittered(epoch: int) -> EpochData:
        rng = np.random.default_rng([t_seed, epoch])
        shifted = norm(shift_images(x_raw, rng, tcfg["jitter_px"]))
        return EpochData(common.shaped_tensor(shifted, (784,)), y_t, None)

    def train_teacher() -> dict[str, np.ndarray]:
        teacher = teacher_net(tcfg, t_seed)
        fit = common.train(
            teacher, x_tr, y, None, x_val, ds.y_val, input_shape=(784,), epochs=tcfg["epochs"],
            loss="hard", seed=t_seed, epoch_data=jittered, keep="last", **OPT,
        )  # fmt: skip
        return {
            "train": logits_of(teacher, x_tr).numpy(),
            "val": logits_of(teacher, x_val).numpy(),
            "test": logits_of(teacher, x_te).numpy(),
            "val_accuracy_per_epoch": np.array([h["val_score"][1] for h in fit.history]),
        }

    key = {
        "what": "hinton_mnist teacher logits",
        "version": 1,
        "train": inputs_sha256(x_raw),
        "labels": inputs_sha256(y),
        "val": inputs_sha256(ds.x_val),
        "test": inputs_sha256(ds.x_holdout),
        "teacher": tcfg,
        "seed": t_seed,
        "opt": OPT,
        "torch": torch.__version__,
        "threads": cfg["threads"],
    }
    t_logits, hit = common.cached_arrays("hinton_teacher", key, train_teacher)
    return Setup(cfg, x_tr, y, x_val, ds.y_val, x_te, ds.y_holdout, t_logits, key, hit)


def distill_on(st: Setup, rows: np.ndarray, seed: int, epochs: int):
    """The student distilled at T from the teacher's soft targets on ``rows``, last epoch kept."""
    from distill.train import EpochData

    s = student_net(st.cfg["student"], seed)
    logp = st.t_logp_tr
    data = EpochData(
        common.shaped_tensor(st.x_tr[rows], (784,)), torch.from_numpy(st.y[rows]), logp[rows]
    )
    common.train(
        s, st.x_tr[rows], st.y[rows], None, st.x_val, st.y_val, input_shape=(784,), epochs=epochs,
        loss="hinton", seed=seed, val_teacher_probs=st.p_t_val, epoch_data=lambda e: data,
        temperature=st.cfg["T"], alpha=st.cfg["alpha"], keep="last", **OPT,
    )  # fmt: skip
    return s


def unit_pair(st: Setup, seed: int) -> dict:
    """§3: the hard-label and the distilled student of one seed (same init and batch order)."""
    hard = student_net(st.cfg["student"], seed)
    common.train(
        hard, st.x_tr, st.y, None, st.x_val, st.y_val, input_shape=(784,),
        epochs=st.cfg["student"]["epochs"], loss="hard", seed=seed, keep="last", **OPT,
    )  # fmt: skip
    dist = distill_on(st, np.arange(len(st.y)), seed, st.cfg["student"]["epochs"])
    return {
        "seed": seed,
        "hard_val": errors(logits_of(hard, st.x_val), st.y_val),
        "hard_test": errors(logits_of(hard, st.x_te), st.y_te),
        "distilled_val": errors(logits_of(dist, st.x_val), st.y_val),
        "distilled_test": errors(logits_of(dist, st.x_te), st.y_te),
    }


def unit_omit3(st: Setup, seed: int) -> dict:
    """§3 omitted-3: distilled without any 3 and without the bias rows; class 3's bias chosen on them."""
    y, y_te = st.y, st.y_te
    bias_idx = np.arange(min(st.cfg["bias_rows"], len(y) // 5))
    rest = np.arange(len(bias_idx), len(y))
    rows3 = rest[y[rest] != 3]
    om = distill_on(st, rows3, seed, st.cfg["student"]["epochs"])
    threes = y_te == 3
    z_te, z_bias = logits_of(om, st.x_te).numpy(), logits_of(om, st.x_tr[bias_idx]).numpy()

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


def unit_scarce(st: Setup, seed: int) -> dict:
    """§6: hard labels (best validation epoch, as the paper's early-stopped baseline) vs soft targets
    (last epoch) on a fresh 3% draw of the training rows."""
    y, ce = st.y, st.cfg["scarce"]["epochs"]
    n_few = max(30, int(st.cfg["scarce"]["fraction"] * len(y)))
    few = np.sort(np.random.default_rng([seed, 6]).choice(len(y), size=n_few, replace=False))
    hard_few = student_net(st.cfg["student"], seed)
    fit_h = common.train(
        hard_few, st.x_tr[few], y[few], None, st.x_val, st.y_val, input_shape=(784,), epochs=ce,
        loss="hard", seed=seed, keep="best", **OPT,
    )  # fmt: skip
    soft_few = distill_on(st, few, seed, ce)
    return {
        "seed": seed,
        "rows": n_few,
        "hard_test": errors(logits_of(hard_few, st.x_te), st.y_te),
        "hard_best_epoch": fit_h.best_epoch,
        "soft_test": errors(logits_of(soft_few, st.x_te), st.y_te),
    }


UNITS = {"pair": unit_pair, "omit3": unit_omit3, "scarce": unit_scarce}


def run_unit(cfg: dict, unit: tuple[str, int], st: Setup | None = None) -> tuple[dict, bool]:
    """One unit of work, its result cached by content (teacher key + configuration + unit), so a
    killed run resumes where it stopped; runs in a worker process (which rebuilds ``st``) or here."""
    st = st or prepare(cfg)
    key = {"what": "hinton_mnist unit", "version": 1, "unit": list(unit), "cfg": cfg}
    key["teacher"] = common.content_key(st.teacher_key)

    def compute() -> dict[str, np.ndarray]:
        rec = UNITS[unit[0]](st, unit[1])
        return {k: np.asarray(v) for k, v in rec.items()}

    arrays, hit = common.cached_arrays("hinton_unit", key, compute)
    return {k: v.item() for k, v in arrays.items()}, hit
