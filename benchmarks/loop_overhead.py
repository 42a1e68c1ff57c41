"""What ``distill.train.fit`` costs over a hand-written PyTorch loop, on the three students we ship.

One process, one torch thread, side by side: (a) a minimal hand-written loop (randperm, index,
forward, loss, AdamW step) with the hard-label loss and with the Hinton loss written the usual
way (KL of log_softmax(s/T) to softmax(t/T), plus the hard term); (b) ``fit`` on hard labels;
(c) ``fit`` with the Hinton loss on cached teacher outputs, handed to it as the distill pipeline
does (one tensor of teacher log-probabilities, ``distill.train.log_probs``). Shapes:

- ``mlp``: the tabular MLP 16->128->26 on UCI Letter's 13,000 training rows x4 = 52,000 rows,
  batch 128, validated on Letter's 3,000 validation rows (distill_speed.py's shape);
- ``cnn``: recipes/demo.yaml's student (cnn [16, 128], 3x3, max pool) on sklearn digits' training
  split x10 (the demo's MUNGE x10 size), batch 128, validated on its 270 validation images;
- ``dscnn``: recipes/kws_fsdd.yaml's student (DS-CNN c40-b3, strides 2/2, channels_last) on
  1x13x49 maps, 2,295 training clips x20 = 45,900 rows, batch 64, 405 validation maps (random
  values: the timing does not depend on them).

The transfer rows are the training rows repeated with N(0, 0.1) noise (normalized units); the
teacher's probabilities are a fixed random linear map's softmax: the loop's cost depends on the
shapes, not on the values. Every variant of a shape runs ``--epochs`` epochs per repeat and keeps
its fastest epoch (each part: steps, extras, data, at its minimum over those epochs: the cost
with the least interference from other processes); the repeats interleave the variants (in a
rotated order) so load hits them alike, and each ratio is the median over repeats of that
repeat's ratio. Last, untimed, ``--profile-steps`` batches of ``fit`` per loss run under
torch.profiler: the aten ops a step runs with each loss, to say where the Hinton step's extra
time goes.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks import common

# The pass rules, fixed before the run (issue 39, "Done when"): each is checked per shape.
STEP_RATIO_MAX = 1.25  # fit's training steps / the hand-written loop's, same loss
EXTRAS_SHARE_MAX = 0.10  # fit's per-epoch extras (validation, checkpoint, logging) / its epoch
DISTILL_RATIO_MAX = 1.15  # a cached distillation epoch / a hard-label epoch, both through fit
RULES = (
    f"R1: fit's training steps take at most {STEP_RATIO_MAX}x the hand-written loop's "
    "(the same loss: hard labels, and Hinton)",
    f"R2: fit's per-epoch extras (validation, checkpoint, logging) are at most "
    f"{EXTRAS_SHARE_MAX:.0%} of its epoch",
    f"R3: a cached distillation epoch takes at most {DISTILL_RATIO_MAX}x a hard-label epoch "
    "(both through fit, whole epochs: steps, extras and data)",
)


@dataclass
class Shape:
    """One student on one data shape, with its recipe's batch, learning rate and layout."""

    name: str
    spec: dict
    input_shape: tuple[int, ...]
    num_classes: int
    batch_size: int
    lr: float
    channels_last: bool
    x: np.ndarray
    x_val: np.ndarray
    note: str


def _transfer(x_train: np.ndarray, times: int, rng: np.random.Generator) -> np.ndarray:
    x = np.concatenate([x_train] * times).astype(np.float32)
    return x + rng.normal(0.0, 0.1, size=x.shape).astype(np.float32)


def shapes(names: list[str], scale: float, seed: int) -> list[Shape]:
    """The three shapes (``scale`` < 1 shrinks the transfer sets for a quick check)."""
    from distill.data import Normalizer, load_data

    rng = np.random.default_rng(seed)
    out = []
    if "mlp" in names:
        ds = load_data({"name": "letter", "verify_sha256": True})
        norm = Normalizer.fit(ds.x_train, "column")
        x = _transfer(norm(ds.x_train), 4, rng)
        note = "UCI Letter: 13,000 training rows x4 + noise"
        out.append(
            Shape("mlp", {"kind": "mlp", "hidden": [128]}, (16,), 26, 128, 3e-3, False,
                  x, norm(ds.x_val).astype(np.float32), note)
        )  # fmt: skip
    if "cnn" in names:
        ds = load_data({"name": "digits", "val_fraction": 0.15, "holdout_fraction": 0.2})
        norm = Normalizer.fit(ds.x_train, "scalar")
        x = _transfer(norm(ds.x_train), 10, rng)
        spec = {"kind": "cnn", "channels": [16, 128], "kernel": 3, "pool": "max", "hidden": 0}
        note = "sklearn digits: the demo's training split x10 + noise"
        out.append(
            Shape("cnn", spec, (1, 8, 8), 10, 128, 3e-3, False,
                  x, norm(ds.x_val).astype(np.float32), note)
        )  # fmt: skip
    if "dscnn" in names:
        spec = {"kind": "dscnn", "channels": 40, "blocks": 3, "first_kernel": 3,
                "first_stride": 2, "block_stride": 2}  # fmt: skip
        x = rng.normal(size=(2295 * 20, 13 * 49)).astype(np.float32)
        note = "random 1x13x49 maps: FSDD's 2,295 training clips x20"
        out.append(
            Shape("dscnn", spec, (1, 13, 49), 10, 64, 5e-3, True,
                  x, rng.normal(size=(405, 13 * 49)).astype(np.float32), note)
        )  # fmt: skip
    for s in out:
        s.x = s.x[: max(s.batch_size * 4, int(len(s.x) * scale))]
    return out


@dataclass
class Problem:
    """A shape's tensors: inputs, teacher log-probabilities and labels, and the validation split."""

    x: object
    t: object
    y: object
    x_val: object
    p_val: object
    y_val: object


def problem(shape: Shape, seed: int) -> Problem:
    """Teacher outputs from a fixed random linear map, given to fit as the pipeline gives them."""
    import torch

    from distill.train import log_probs

    rng = np.random.default_rng(seed + 1)
    w = rng.normal(size=(shape.x.shape[1], shape.num_classes)) / np.sqrt(shape.x.shape[1])

    def probs(x: np.ndarray) -> np.ndarray:
        z = 3.0 * x.astype(np.float64) @ w
        e = np.exp(z - z.max(1, keepdims=True))
        return (e / e.sum(1, keepdims=True)).astype(np.float32)

    def shaped(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x)).reshape(len(x), *shape.input_shape)

    p, p_val = probs(shape.x), probs(shape.x_val)
    return Problem(
        shaped(shape.x), log_probs(p), torch.from_numpy(p.argmax(1).astype(np.int64)),
        shaped(shape.x_val), torch.from_numpy(p_val), torch.from_numpy(p_val.argmax(1)),
    )  # fmt: skip


def hand_loop(shape: Shape, pb: Problem, loss: str, epochs: int, seed: int) -> list[float]:
    """(a) the loop a user writes: seconds of each epoch's steps."""
    import torch
    import torch.nn.functional as F

    from distill.students import build_student

    torch.manual_seed(seed)
    model = build_student(shape.spec, shape.input_shape, shape.num_classes)
    fmt = torch.channels_last if shape.channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=shape.lr, weight_decay=1e-4)
    temp, alpha = 4.0, 0.9
    out = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        g = torch.Generator().manual_seed(seed + epoch)
        for idx in torch.randperm(len(pb.x), generator=g).split(shape.batch_size):
            logits = model(pb.x[idx].contiguous(memory_format=fmt))
            ce = F.cross_entropy(logits, pb.y[idx])
            if loss == "hinton":
                kl = F.kl_div(
                    F.log_softmax(logits / temp, 1),
                    F.softmax(pb.t[idx] / temp, 1),
                    reduction="batchmean",
                )
                ce = alpha * temp * temp * kl + (1 - alpha) * ce
            opt.zero_grad()
            ce.backward()
            opt.step()
        out.append(time.perf_counter() - t0)
    return out


def fit_run(shape: Shape, pb: Problem, loss: str, epochs: int, seed: int, tmp: Path) -> dict:
    """(b)/(c) ``distill.train.fit`` as the pipeline calls it; its own per-epoch split."""
    import torch

    from distill.students import build_student
    from distill.train import EpochData, accuracy_score, fidelity_score, fit, train_config

    cfg = train_config(
        {"epochs": epochs, "batch_size": shape.batch_size, "lr": shape.lr, "loss": loss,
         "seed": seed, "patience": epochs, "channels_last": shape.channels_last}
    )  # fmt: skip
    data = EpochData(pb.x, pb.y, pb.t if loss != "hard" else None)
    if loss == "hard":
        score = lambda lg: accuracy_score(lg, pb.y_val)  # noqa: E731
    else:
        score = lambda lg: fidelity_score(lg, pb.p_val)  # noqa: E731
    torch.manual_seed(seed)
    model = build_student(shape.spec, shape.input_shape, shape.num_classes)
    t0 = time.perf_counter()
    res = fit(model, lambda e: data, score, pb.x_val, cfg, checkpoint=tmp / f"{loss}.pt",
              fingerprint=f"loop-{loss}", progress=True, desc=f"{shape.name} {loss}")  # fmt: skip
    wall = time.perf_counter() - t0
    sec = res.seconds
    steps = [s["steps_s"] for s in sec]
    extras = [s["validation_s"] + s["checkpoint_s"] for s in sec]
    # the data hand-over of epoch 1 builds the loss targets once per run: setup, not per epoch
    data = [s["data_s"] for s in sec[1:]] or [0.0]
    inside = sum(steps) + sum(extras) + sum(data)
    return {"steps": steps, "extras": extras, "data": data, "setup_s": wall - inside,
            "validation": [s["validation_s"] for s in sec],
            "checkpoint": [s["checkpoint_s"] for s in sec]}  # fmt: skip


def profile_ops(
    shape: Shape, pb: Problem, seed: int, tmp: Path, steps: int = 100, runs: int = 3
) -> dict:
    """Where a step's time goes: one epoch of ``steps`` batches through ``fit`` with each loss
    under torch.profiler (CPU), as aten ops and their self time per step (each op's least over
    ``runs`` runs, interleaved: the load of a shared box inflates single samples). The profiler
    slows every op, so the figures count and rank; the timed runs measure."""
    from torch.profiler import ProfilerActivity, profile

    part = _slice(pb, shape.batch_size * steps)
    seen: dict[str, dict[str, tuple[float, float]]] = {"hard": {}, "hinton": {}}
    for _ in range(runs):
        for loss in seen:
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                fit_run(shape, part, loss, 1, seed, tmp)
            for e in prof.key_averages():
                if e.key.startswith("aten::"):
                    least = seen[loss].get(e.key, (0.0, float("inf")))[1]
                    seen[loss][e.key] = (e.count / steps, min(least, e.self_cpu_time_total / steps))
    per_loss = {}
    for loss, ops in seen.items():
        per_loss[loss] = {
            "ops_per_step": sum(c for c, _ in ops.values()),
            "self_us_per_step": sum(u for _, u in ops.values()),
            "ops": {k: {"calls": round(c, 2), "self_us": round(u, 2)} for k, (c, u) in ops.items()},
        }
    return {"steps": steps, **per_loss}


def profile_rows(name: str, prof: dict, top: int = 8) -> list[list]:
    """The ops whose calls per step differ most between the two losses, and the totals."""
    hard, hint = prof["hard"]["ops"], prof["hinton"]["ops"]
    zero = {"calls": 0.0, "self_us": 0.0}
    diff = sorted(
        set(hard) | set(hint),
        key=lambda k: -abs(hint.get(k, zero)["self_us"] - hard.get(k, zero)["self_us"]),
    )
    rows = [[name, "all aten ops", prof["hard"]["ops_per_step"], prof["hinton"]["ops_per_step"],
             prof["hard"]["self_us_per_step"], prof["hinton"]["self_us_per_step"]]]  # fmt: skip
    for k in diff[:top]:
        a, b = hard.get(k, zero), hint.get(k, zero)
        rows.append([name, k, a["calls"], b["calls"], a["self_us"], b["self_us"]])
    return rows


VARIANTS = ("hand hard", "hand hinton", "fit hard", "fit hinton")


def measure(shape: Shape, epochs: int, repeats: int, seed: int, profile_steps: int = 0) -> dict:
    """Every variant ``repeats`` times, interleaved in a rotated order; per repeat, each part's
    fastest epoch. Then, untimed, the per-step profile of fit with each loss (if asked)."""
    pb = problem(shape, seed)
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="tinyship-loop-", dir=common.ROOT / "build") as tmp:
        for variant in VARIANTS:  # warm-up, untimed: one-off library initialisation
            _one(variant, shape, _slice(pb, shape.batch_size * 8), 1, seed, Path(tmp))
        for r in range(repeats):
            order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
            for variant in order:
                runs[variant].append(_one(variant, shape, pb, epochs, seed, Path(tmp)))
        out = summarize(runs)
        if profile_steps > 0:
            steps = min(profile_steps, len(pb.x) // shape.batch_size)
            out["profile"] = profile_ops(shape, pb, seed, Path(tmp), steps)
    return out


def _slice(pb: Problem, n: int) -> Problem:
    return Problem(pb.x[:n], pb.t[:n], pb.y[:n], pb.x_val, pb.p_val, pb.y_val)


def _one(variant: str, shape: Shape, pb: Problem, epochs: int, seed: int, tmp: Path) -> dict:
    kind, loss = variant.split()
    if kind == "hand":
        steps = hand_loop(shape, pb, loss, epochs, seed)
        zero = dict.fromkeys(("extras", "data", "setup_s", "validation", "checkpoint"), 0.0)
        return {"steps": min(steps), **zero}
    run = fit_run(shape, pb, loss, epochs, seed, tmp)
    return {
        "steps": min(run["steps"]),
        "extras": min(run["extras"]),
        "data": min(run["data"]),
        "setup_s": run["setup_s"],
        "validation": min(run["validation"]),
        "checkpoint": min(run["checkpoint"]),
    }


def summarize(runs: dict[str, list[dict]]) -> dict:
    """Medians over repeats of seconds per epoch, and each ratio as the median of the repeats'
    own ratios (a repeat's variants ran back to back, so they met the same load)."""

    def med(fn: Callable[[int], float]) -> float:
        return statistics.median(fn(i) for i in range(len(runs["fit hard"])))

    def epoch(v: str, i: int) -> float:
        return runs[v][i]["steps"] + runs[v][i]["extras"] + runs[v][i]["data"]

    out = {
        v: {
            "steps_s": med(lambda i, v=v: runs[v][i]["steps"]),
            "extras_s": med(lambda i, v=v: runs[v][i]["extras"]),
            "data_s": med(lambda i, v=v: runs[v][i]["data"]),
            "validation_s": med(lambda i, v=v: runs[v][i]["validation"]),
            "checkpoint_s": med(lambda i, v=v: runs[v][i]["checkpoint"]),
            "epoch_s": med(lambda i, v=v: epoch(v, i)),
            "setup_s": med(lambda i, v=v: runs[v][i]["setup_s"]),
            "steps_each_repeat": [round(r["steps"], 4) for r in runs[v]],
        }
        for v in VARIANTS
    }
    out["ratios"] = {
        "steps_hard": med(lambda i: runs["fit hard"][i]["steps"] / runs["hand hard"][i]["steps"]),
        "steps_hinton": med(
            lambda i: runs["fit hinton"][i]["steps"] / runs["hand hinton"][i]["steps"]
        ),
        "extras_share_hard": med(lambda i: runs["fit hard"][i]["extras"] / epoch("fit hard", i)),
        "extras_share_hinton": med(
            lambda i: runs["fit hinton"][i]["extras"] / epoch("fit hinton", i)
        ),
        "distill_over_hard": med(lambda i: epoch("fit hinton", i) / epoch("fit hard", i)),
    }
    return out


def verdicts(ratios: dict) -> list[tuple[str, str]]:
    """Each rule's outcome on one shape, in the rule's words."""
    r = ratios
    step = max(r["steps_hard"], r["steps_hinton"])
    share = max(r["extras_share_hard"], r["extras_share_hinton"])
    return [
        ("R1", f"{'met' if step <= STEP_RATIO_MAX else 'MISSED'}: fit's training steps take "
               f"{r['steps_hard']:.2f}x (hard) and {r['steps_hinton']:.2f}x (Hinton) the "
               f"hand-written loop's (at most {STEP_RATIO_MAX}x)"),
        ("R2", f"{'met' if share <= EXTRAS_SHARE_MAX else 'MISSED'}: per-epoch extras are "
               f"{r['extras_share_hard']:.1%} (hard) and {r['extras_share_hinton']:.1%} (Hinton) "
               f"of fit's epoch (at most {EXTRAS_SHARE_MAX:.0%})"),
        ("R3", f"{'met' if r['distill_over_hard'] <= DISTILL_RATIO_MAX else 'MISSED'}: a cached "
               f"distillation epoch takes {r['distill_over_hard']:.2f}x a hard-label epoch "
               f"(at most {DISTILL_RATIO_MAX}x)"),
    ]  # fmt: skip


def report_rows(name: str, res: dict) -> list[list]:
    rows = []
    for v in VARIANTS:
        m, fit = res[v], v.startswith("fit")
        rows.append([name, v, m["steps_s"], m["extras_s"] if fit else "-",
                     m["data_s"] if fit else "-", m["epoch_s"],
                     m["setup_s"] if fit else "-"])  # fmt: skip
    return rows


def run(args) -> int:
    load_before = os.getloadavg()
    rep = common.Report(
        "loop_overhead",
        "Training-loop overhead: distill.train.fit vs a hand-written PyTorch loop",
        common.command_line("loop_overhead"),
        {"shapes": ",".join(args.shapes), "epochs_per_repeat": args.epochs,
         "repeats": args.repeats, "rows_scale": args.rows_scale, "T": 4.0, "alpha": 0.9,
         "seed": args.seed, "profile_steps": args.profile_steps},
    )  # fmt: skip
    print("Pass rules, fixed before the run:\n" + "\n".join(f"- {r}" for r in RULES), flush=True)
    (common.ROOT / "build").mkdir(exist_ok=True)
    results, rows, lines, prof_rows = {}, [], [], []
    for shape in shapes(args.shapes, args.rows_scale, args.seed):
        res = measure(shape, args.epochs, args.repeats, args.seed, args.profile_steps)
        if "profile" in res:
            prof_rows += profile_rows(shape.name, res["profile"])
        res["rows"], res["val_rows"], res["data"] = len(shape.x), len(shape.x_val), shape.note
        res["verdicts"] = dict(verdicts(res["ratios"]))
        results[shape.name] = res
        rows += report_rows(shape.name, res)
        lines.append(
            f"**{shape.name}** ({shape.spec['kind']}, {len(shape.x):,} rows, batch "
            f"{shape.batch_size}; {shape.note}):\n"
            + "".join(f"- {k} {v}\n" for k, v in res["verdicts"].items())
        )
        print(lines[-1], flush=True)
    load_after = os.getloadavg()
    results["load_avg_1min"] = {"before": load_before[0], "after": load_after[0]}
    rep.add(
        "## Pass rules (fixed in the script before the run)\n\n"
        + "".join(f"- {r}\n" for r in RULES)
        + "\n## Outcome, per shape\n\n"
        + "\n".join(lines)
    )
    rep.add(
        "## Seconds per epoch (fastest epoch of a run, median over repeats)\n\n"
        + common.table(
            ["shape", "variant", "steps s", "extras s", "data s", "epoch s", "setup s per call"],
            rows,
        )
        + "\nsteps = the optimizer steps of one epoch (randperm, index, forward, loss, backward, "
        "AdamW); extras = fit's validation, history, progress bar and checkpoint of one epoch; "
        "data = fit's data hand-over in epochs 2 and later (the cached set: the same tensors); "
        "setup = fit's work outside its epochs plus epoch 1's hand-over, where the loss's per-row "
        "targets are built, once per call. epoch = steps + extras + data. Ratios are medians of "
        "each repeat's own ratio.\n\n"
        f"The box was shared: other sessions ran on its {os.cpu_count()} cores during this run "
        f"(1-minute load average {load_before[0]:.2f} before, {load_after[0]:.2f} after); the "
        "interleaved repeats let that load hit every variant alike.\n"
    )
    if prof_rows:
        rep.add(
            f"## Where a step goes (torch.profiler, one epoch of up to {args.profile_steps} "
            "batches through fit per loss; per step)\n\n"
            + common.table(
                [
                    "shape",
                    "aten op",
                    "calls hard",
                    "calls Hinton",
                    "self us hard",
                    "self us Hinton",
                ],
                prof_rows,
            )  # fmt: skip
            + "\nThe first row of a shape sums every aten op; the rest are the ops whose self time "
            "differs most between the losses. The profiler slows every op, so these figures count "
            "and rank ops; the seconds above are the measurement. The epoch's validation and "
            "checkpoint are spread over its steps here.\n"
        )
    rep.data = results
    rep.write(args.out_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = common.parser("loop_overhead", __doc__)
    ap.add_argument("--shapes", nargs="+", default=["mlp", "cnn", "dscnn"],
                    choices=["mlp", "cnn", "dscnn"])  # fmt: skip
    ap.add_argument("--epochs", type=int, default=3, help="epochs per variant per repeat")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--profile-steps", type=int, default=100,
                    help="batches of the untimed per-step profile of fit per loss (0: none)")  # fmt: skip
    ap.add_argument("--rows-scale", type=float, default=1.0,
                    help="fraction of each transfer set to train on (1.0 = the sizes above)")  # fmt: skip
    args = common.parse(ap, argv)
    args.epochs = common.scaled(args.epochs, args.epochs_scale)
    if args.quick:
        args.epochs, args.repeats, args.rows_scale = 1, 2, 0.05
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
