"""Build a contract-conforming ``student/`` folder without the distill stage.

Export and devices tests use this so each stage is tested alone against the
run-directory contract (docs/run-directory.md), not against distill's internals.
The students are trained for real (a few seconds on digits) so parity and int8
figures mean something.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ground import rundir

KINDS = ("mlp", "cnn", "dscnn")

# the smallest recipe the whole pipeline accepts: digits, one kNN teacher, one epoch of a 16-unit MLP
TINY_RECIPE = {
    "name": "tiny",
    "data": {"name": "digits", "normalize": "scalar"},
    "teacher": {"library": ["knn"], "combine": "mean", "selection": "none"},
    "transfer": {"method": "munge", "size_multiplier": 1, "p": 0.5, "s": 10.0},
    "student": {"kind": "mlp", "hidden": [16]},
    "train": {"epochs": 1, "batch_size": 128, "patience": 1, "baseline": False},
}


def _model(kind: str) -> tuple[nn.Module, list[int], str]:
    if kind == "mlp":
        return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)), [64], "NC"
    if kind == "cnn":
        return (
            nn.Sequential(
                nn.Conv2d(1, 8, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(8, 16, 3, padding=1, stride=2),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(16 * 16, 10),
            ),
            [1, 8, 8],
            "NCHW",
        )
    if kind == "dscnn":
        return (
            nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1),
                nn.BatchNorm2d(16),
                nn.ReLU(),
                nn.Conv2d(16, 16, 3, padding=1, groups=16),
                nn.BatchNorm2d(16),
                nn.ReLU(),
                nn.Conv2d(16, 24, 1),
                nn.BatchNorm2d(24),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(24, 10),
            ),
            [1, 8, 8],
            "NCHW",
        )
    raise ValueError(f"unknown fixture kind {kind!r}; expected one of {KINDS}")


def make_run(run_dir: str | Path, kind: str = "mlp", epochs: int = 30, seed: int = 0) -> Path:
    """Train a tiny student on sklearn digits and write ``run_dir/student`` per the contract."""
    from sklearn.datasets import load_digits

    torch.manual_seed(seed)
    d = load_digits()
    x = d.data.astype(np.float32) / 16.0
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(x))
    tr, ho = idx[:1400], idx[1400:]
    model, shape, layout = _model(kind)
    xs = x.reshape(-1, *shape)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(xs[tr]), torch.from_numpy(y[tr])
    for _ in range(epochs):
        model.train()
        for b in torch.randperm(len(tr)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[b]), yt[b]).backward()
            opt.step()
    params = sum(p.numel() for p in model.parameters())
    return write_student(
        run_dir,
        model,
        xs[tr][:256],
        xs[ho],
        y[ho],
        lambda acc, nbytes: _card(
            Path(run_dir).name, kind, shape, layout, params, acc, len(ho), seed, nbytes
        ),
    )


def write_student(
    run_dir: str | Path,
    model: nn.Module,
    calib: np.ndarray,
    xh: np.ndarray,
    yh: np.ndarray,
    card_of,
) -> Path:
    """Export ``model``, write student.pt2, calibration.npz, holdout.npz and a card sealed with
    their sha256 (``card_of(holdout accuracy, student.pt2 bytes) -> card``): the contract the export stage reads."""
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=65536)
    ep = torch.export.export(model, (torch.from_numpy(xh[:4]),), dynamic_shapes=({0: batch},))
    run_dir = Path(run_dir)
    with rundir.staged_dir(run_dir, "student", force=True) as out:
        torch.export.save(ep, out / "student.pt2")
        with torch.no_grad():
            probs = torch.softmax(ep.module()(torch.from_numpy(xh)), -1).numpy()
        rundir.atomic_write_npz(out / "calibration.npz", x=calib)
        rundir.atomic_write_npz(
            out / "holdout.npz", x=xh, y=yh, teacher_probs=probs.copy(), student_probs=probs
        )
        card = card_of(
            float((probs.argmax(1) == yh).mean()), rundir.path_bytes(out / "student.pt2")
        )
        card["sha256"] = {
            n: rundir.sha256_file(out / n)
            for n in ("student.pt2", "calibration.npz", "holdout.npz")
        }
        rundir.atomic_write_json(out / "card.json", card)
    return run_dir


def _card(
    run: str,
    kind: str,
    shape: list[int],
    layout: str,
    params: int,
    acc: float,
    n: int,
    seed: int,
    pt2_bytes: int,
) -> dict:
    return {
        "schema": "tinyship.card/1",
        "run": run,
        "task": "classification",
        "input": {
            "name": "input",
            "shape": shape,
            "dtype": "float32",
            "layout": layout,
            "raw": True,  # the student takes holdout.npz's x as it is (pixels / 16)
            "normalization": {
                "mean": 0.0,
                "std": 1.0,
                "mode": "none",
                "note": "x_model = (x_raw - mean) / std",
                "applied": "inside the model graph (its first op); do not normalize before feeding",
            },
        },
        "output": {"name": "logits", "kind": "logits", "num_classes": 10},
        "labels": [str(i) for i in range(10)],
        "student": {
            "arch": kind,
            "spec": {"fixture": kind},
            "params": params,
            "macs": None,
            "bytes": pt2_bytes,
        },
        "teacher": {
            "combine": "mean",
            "members": [],
            "bytes": None,
            "bytes_method": "fixture: no teacher",
        },
        "metrics": {
            "holdout": {
                "n": n,
                "teacher": {"accuracy": acc},
                "members": {},
                "student": {"accuracy": acc, "agreement_with_teacher": 1.0},
                "baseline": {"accuracy": acc},
            }
        },
        "sizes": {},
        "lineage": {
            "recipe_path": None,
            "recipe": {"name": "fixture"},
            "seed": seed,
            "versions": rundir.package_versions(),
            "created": _dt.datetime.now(_dt.UTC).isoformat(),
            "command": "tests/rundir_fixture.py",
        },
    }


if __name__ == "__main__":  # python tests/rundir_fixture.py build/fixture-cnn cnn
    import sys

    print(make_run(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "mlp"))
