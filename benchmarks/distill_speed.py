"""Epoch time of our distillation (teacher outputs cached) vs a plain hard-label epoch vs torchdistill,
side by side in one run, on the same torch teacher module, student, transfer set and batch size.

Runs in the bench venv (``benchmarks/setup_bench_env.sh`` builds ``.venv-bench``: torch 2.14.1 +
torchvision 0.29.1 + torchdistill, our package installed there too) so torchdistill and our code
share one torch. Started from the project venv, it re-runs itself in ``.venv-bench``.

The teacher is an ensemble of ``--members`` torch MLPs (distill.library's ``torch_mlp``, one seed
each, arithmetic mean of their softmaxes): the SAME ``nn.Module`` objects on both sides, so the
comparison measures the training loop and the caching, not a scikit-learn model called per batch.

- ours: ``distill.cache.TeacherCache.outputs`` labels the transfer set once (timed: cold fill and
  warm hit), then ``distill.train.fit`` with the Hinton loss (T, alpha) runs the epochs;
- plain: the same ``fit`` with the hard-label loss on the same rows (the floor: no teacher at all);
- torchdistill: its ``torchdistill.losses.mid_level.KDLoss`` (alpha*CE + beta*T^2*KL, with
  alpha = 1 - ours, beta = ours so the objective is the same) fed by its
  ``torchdistill.core.forward_hook.ForwardHookManager`` I/O dicts, in the per-batch loop torchdistill's
  distillation box runs: teacher forward on every batch (the members as one ``nn.Module``),
  student forward, loss, step. Its config-driven ``DistillationBox`` (datasets/loaders from YAML,
  torchvision-style) is not used; the same optimizer (``distill.train.make_optimizer``), schedule,
  batches and per-epoch validation as ours are.
Epoch time = wall time of the training call / epochs (includes per-epoch validation; ours also its
per-epoch checkpoint). Whole run = ours' cache fill + epochs vs torchdistill's epochs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import common

BENCH_PY = common.ROOT / ".venv-bench" / "bin" / "python"


def _in_bench_venv() -> bool:
    return Path(sys.prefix).resolve() == (common.ROOT / ".venv-bench").resolve()


def torchdistill_epochs(
    student, teacher, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, cfg: dict, epochs: int
) -> dict:
    """The torchdistill side: KDLoss on ForwardHookManager I/O dicts, teacher run on every batch."""
    import torch
    from torch import nn
    from torchdistill.core.forward_hook import ForwardHookManager
    from torchdistill.losses.mid_level import KDLoss

    from distill.train import make_optimizer, make_schedule, predict_logits

    class EnsembleModule(nn.Module):
        """The same members as our teacher, as one module: log of the mean of their softmaxes."""

        def __init__(self) -> None:
            super().__init__()
            self.members = nn.ModuleList(m.module for m in teacher.members)
            self.logits = nn.Identity()

        def forward(self, xb: torch.Tensor) -> torch.Tensor:
            p = torch.stack([m(xb).softmax(1) for m in self.members]).mean(0)
            return self.logits(p.clamp_min(1e-7).log())

    last = [n for n, m in student.named_modules() if isinstance(m, nn.Linear)][-1]
    t_module = EnsembleModule().eval()
    hooks_s, hooks_t = ForwardHookManager("cpu"), ForwardHookManager("cpu")
    hooks_s.add_hook(student, last, requires_input=False, requires_output=True)
    hooks_t.add_hook(t_module, "logits", requires_input=False, requires_output=True)
    kd = KDLoss(
        last,
        "output",
        "logits",
        "output",
        temperature=cfg["temperature"],
        alpha=1 - cfg["alpha"],
        beta=cfg["alpha"],
    )
    opt = make_optimizer(student, cfg)
    sched = make_schedule(opt, cfg)
    xt, yt, xv = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(x_val)
    torch.manual_seed(cfg["seed"] + 1)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        student.train()
        g = torch.Generator().manual_seed(cfg["seed"] + epoch)
        for idx in torch.randperm(len(xt), generator=g).split(cfg["batch_size"]):
            with torch.no_grad():
                t_module(xt[idx])
            t_io = hooks_t.pop_io_dict()
            student(xt[idx])
            s_io = hooks_s.pop_io_dict()
            loss = kd(s_io, t_io, yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        predict_logits(student, xv)  # per-epoch validation, as in ours
    wall = time.perf_counter() - t0
    return {"epoch_s": wall / epochs, "epochs": epochs, "wall_s": wall}


def speed_problem(args):
    """The data set (column-normalized), the teacher (an ensemble of torch MLPs, plain mean) and its
    MUNGE transfer set: the same for every side timed."""
    from distill.data import Normalizer, load_data
    from distill.ensemble import Teacher
    from distill.library import torch_mlp
    from distill.transfer import make_transfer

    ds = load_data({"name": args.dataset, "max_train": args.max_train, "verify_sha256": True})
    norm = Normalizer.fit(ds.x_train, "column")
    x_tr, x_va = norm(ds.x_train), norm(ds.x_val)
    members = []
    for i in range(args.members):
        m = torch_mlp(x_tr, ds.y_train, args.seed + i, ds.num_classes, epochs=args.member_epochs)
        m.name = f"torch_mlp_{i}"
        members.append(m)
    teacher = Teacher(members, np.ones(len(members)), "mean", ds.num_classes, None)
    x = norm(
        make_transfer(
            {"method": "munge", "size_multiplier": args.multiplier},
            ds.x_train,
            ds.nominal,
            seed=args.seed,
        )
    )
    return ds, x_tr, x_va, teacher, x


def speed_settings(args, n_train: int, n_transfer: int, epochs: int, versions: dict) -> dict:
    return {
        "dataset": args.dataset,
        "train_rows": n_train,
        "transfer": f"munge x{args.multiplier} = {n_transfer} rows",
        "teacher": f"{args.members} torch MLPs 128-128 ({args.member_epochs} epochs each), mean",
        "student": f"mlp {args.hidden}",
        "epochs": epochs,
        "batch": args.batch_size,
        "T": args.temperature,
        "alpha": args.alpha,
        "seed": args.seed,
        **versions,
    }


def time_cache(teacher, x: np.ndarray, res: dict) -> np.ndarray:
    """The teacher labels the transfer set through TeacherCache: a cold fill, then a warm hit."""
    from distill.cache import TeacherCache

    with tempfile.TemporaryDirectory(prefix="tinyship-speed-") as tmp:
        cache = TeacherCache(Path(tmp) / "cache")
        t = time.perf_counter()
        p = np.asarray(cache.outputs(teacher, x), np.float32)
        res["cache_fill_s"] = time.perf_counter() - t
        t = time.perf_counter()
        p = np.asarray(cache.outputs(teacher, x), np.float32)
        res["cache_hit_s"] = time.perf_counter() - t
    return p


def time_ours_and_plain(
    args, new_student, x, labels, p, x_va, y_val, p_va, epochs: int, res: dict
) -> None:
    """An untimed warm-up, then our distillation epochs and plain hard-label epochs, timed."""
    d = x.shape[1]
    # warm-up (untimed): the first training call in a process pays one-off library initialisation
    common.train(
        new_student(),
        x[:512],
        labels[:512],
        p[:512],
        x_va,
        y_val,
        input_shape=(d,),
        epochs=1,
        loss="hinton",
        seed=args.seed,
        val_teacher_probs=p_va,
        batch_size=args.batch_size,
        lr=3e-3,
    )
    for name, loss in (("ours", "hinton"), ("plain", "hard")):
        t = time.perf_counter()
        common.train(
            new_student(),
            x,
            labels,
            p if loss != "hard" else None,
            x_va,
            y_val,
            input_shape=(d,),
            epochs=epochs,
            loss=loss,
            seed=args.seed,
            val_teacher_probs=p_va if loss != "hard" else None,
            batch_size=args.batch_size,
            temperature=args.temperature,
            alpha=args.alpha,
            lr=3e-3,
        )
        wall = time.perf_counter() - t
        res[name] = {"epoch_s": wall / epochs, "epochs": epochs, "wall_s": wall}


def time_torchdistill(new_student, teacher, x, labels, x_va, cfg, epochs, versions, res) -> str:
    """torchdistill's side when it imports here; returns the note that says what ran."""
    try:
        res["torchdistill"] = torchdistill_epochs(
            new_student(), teacher, x, labels.astype(np.int64), x_va, cfg, epochs
        )
        return (
            "torchdistill " + versions.get("torchdistill", "?") + ": KDLoss + ForwardHookManager, "
            "teacher forward on every batch"
        )
    except ImportError as exc:
        res["torchdistill"] = None
        return f"torchdistill could not be imported here ({exc}); run benchmarks/setup_bench_env.sh"


def speed_rows(res: dict, n_transfer: int, epochs: int) -> list[list]:
    """The table: cache fill and hit, then seconds per epoch of each side and their ratios."""
    rows = [
        [
            "teacher labelling, once (TeacherCache cold fill)",
            res["cache_fill_s"],
            "-",
            f"{n_transfer} rows",
        ],
        ["cache hit (memory-mapped read)", res["cache_hit_s"], "-", ""],
        [
            "ours: distillation epoch from the cache",
            res["ours"]["epoch_s"],
            1.0,
            f"mean of {epochs} epochs",
        ],
        [
            "plain hard-label epoch (no teacher)",
            res["plain"]["epoch_s"],
            res["plain"]["epoch_s"] / res["ours"]["epoch_s"],
            f"mean of {epochs} epochs",
        ],
    ]
    if res["torchdistill"]:
        rows.append(
            [
                "torchdistill epoch (KDLoss, teacher per batch)",
                res["torchdistill"]["epoch_s"],
                res["torchdistill"]["epoch_s"] / res["ours"]["epoch_s"],
                f"mean of {epochs} epochs",
            ]
        )
        total_ours = res["cache_fill_s"] + res["ours"]["wall_s"]
        res["whole_run_ratio"] = res["torchdistill"]["wall_s"] / total_ours
        rows.append(
            [
                f"whole run of {epochs} epochs: torchdistill / ours incl. cache fill",
                "-",
                res["whole_run_ratio"],
                "",
            ]
        )
    return rows


def run(args) -> int:
    import importlib.metadata as md

    import torch

    from distill.students import build_student
    from distill.train import train_config

    ds, x_tr, x_va, teacher, x = speed_problem(args)
    d, nc = x_tr.shape[1], ds.num_classes
    epochs = common.scaled(args.epochs, args.epochs_scale)
    cfg = train_config(
        {
            "epochs": epochs,
            "batch_size": args.batch_size,
            "temperature": args.temperature,
            "alpha": args.alpha,
            "seed": args.seed,
            "lr": 3e-3,
        }
    )
    versions = {k: md.version(k) for k in ("torch", "torchvision", "torchdistill") if _has(k)}
    rep = common.Report(
        "distill_speed",
        "Distillation epoch time: ours (cached teacher) vs hard-label vs torchdistill",
        common.command_line("distill_speed"),
        speed_settings(args, len(x_tr), len(x), epochs, versions),
    )

    def new_student():
        torch.manual_seed(args.seed)
        return build_student({"kind": "mlp", "hidden": args.hidden}, (d,), nc)

    res = {}
    p = time_cache(teacher, x, res)
    p_va = teacher.predict_proba(x_va)
    labels = p.argmax(1)
    time_ours_and_plain(args, new_student, x, labels, p, x_va, ds.y_val, p_va, epochs, res)
    td_note = time_torchdistill(new_student, teacher, x, labels, x_va, cfg, epochs, versions, res)
    rows = speed_rows(res, len(x), epochs)
    rep.add(
        "## Seconds per epoch, measured side by side in one process\n\n"
        + common.table(["what", "seconds", "ratio to ours", "note"], rows)
        + f"\ntorchdistill side: {td_note}. Same teacher modules, student architecture and initial weights, "
        "transfer rows, batch size, optimizer (AdamW, cosine), temperature and soft/hard weights; "
        "torchdistill's YAML-driven DistillationBox was not used.\n"
    )
    rep.data = res
    rep.write(args.out_dir)
    return 0


def _has(dist: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(dist)
        return True
    except md.PackageNotFoundError:
        return False


def main(argv: list[str] | None = None) -> int:
    ap = common.parser("distill_speed", __doc__)
    ap.add_argument("--dataset", default="letter", choices=["letter", "digits", "adult"])
    ap.add_argument("--members", type=int, default=3, help="torch MLPs in the teacher ensemble")
    ap.add_argument("--member-epochs", type=int, default=40, help="training epochs of each member")
    ap.add_argument(
        "--multiplier", type=int, default=4, help="MUNGE transfer set = multiplier x training rows"
    )
    ap.add_argument("--max-train", type=int, default=None)
    ap.add_argument("--hidden", type=int, nargs="+", default=[128])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--alpha", type=float, default=0.9)
    ap.add_argument(
        "--no-bench-venv",
        action="store_true",
        help="run in this interpreter even without torchdistill",
    )
    args = common.parse(ap, argv)
    if args.quick:
        args.max_train, args.multiplier, args.epochs = 2000, 2, 1
        args.members, args.member_epochs = 2, 2
    if not _in_bench_venv() and not args.no_bench_venv:
        if BENCH_PY.exists():
            argv = sys.argv[1:] if argv is None else argv
            env = {**os.environ, "PYTHONPATH": str(common.ROOT)}
            return subprocess.call(
                [str(BENCH_PY), "-m", "benchmarks.distill_speed", *argv], cwd=common.ROOT, env=env
            )
        print(
            f"note: {BENCH_PY} not found; torchdistill is measured only in the bench venv "
            "(bash benchmarks/setup_bench_env.sh). Running our two figures here.",
            file=sys.stderr,
        )
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
