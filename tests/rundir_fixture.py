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
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=65536)
    ep = torch.export.export(model, (xt[:4],), dynamic_shapes=({0: batch},))
    run_dir = Path(run_dir)
    with rundir.staged_dir(run_dir, "student", force=True) as out:
        torch.export.save(ep, out / "student.pt2")
        xh = torch.from_numpy(xs[ho])
        with torch.no_grad():
            probs = torch.softmax(ep.module()(xh), -1).numpy()
        teacher = probs.copy()
        rundir.atomic_write_npz(out / "calibration.npz", x=xs[tr][:256])
        rundir.atomic_write_npz(
            out / "holdout.npz", x=xs[ho], y=y[ho], teacher_probs=teacher, student_probs=probs
        )
        acc = float((probs.argmax(1) == y[ho]).mean())
        params = sum(p.numel() for p in model.parameters())
        card = {
            "schema": "tinyship.card/1",
            "run": run_dir.name,
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
                    "applied": "inside the model graph (its first op); do not normalize before "
                    "feeding",
                },
            },
            "output": {"name": "logits", "kind": "logits", "num_classes": 10},
            "labels": [str(i) for i in range(10)],
            "student": {
                "arch": kind,
                "spec": {"fixture": kind},
                "params": params,
                "macs": None,
                "bytes": rundir.path_bytes(out / "student.pt2"),
            },
            "teacher": {
                "combine": "mean",
                "members": [],
                "bytes": None,
                "bytes_method": "fixture: no teacher",
            },
            "metrics": {
                "holdout": {
                    "n": len(ho),
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
            "sha256": {
                n: rundir.sha256_file(out / n)
                for n in ("student.pt2", "calibration.npz", "holdout.npz")
            },
        }
        rundir.atomic_write_json(out / "card.json", card)
    return run_dir


if __name__ == "__main__":  # python tests/rundir_fixture.py build/fixture-cnn cnn
    import sys

    print(make_run(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "mlp"))
