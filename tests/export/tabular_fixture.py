"""A tabular ``student/`` folder without the distill stage: wine's raw columns (0.1 to 1,680).

The student is distill's own shipped graph (``distill.students.RawInput``: per-column
normalization as its first ops, then an MLP), trained for real on sklearn's bundled wine data in
about a second, so an int8 file that cannot hold the raw columns fails its gate as it did on a
user's wine CSV (issue 34), and one that normalizes in float passes it.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
import torch
from rundir_fixture import write_student
from torch import nn

from distill.students import RawInput


def make_wine_run(run_dir: str | Path, seed: int = 0, epochs: int = 300) -> Path:
    """Write ``run_dir/student`` for an MLP on wine's raw columns (card mode: column)."""
    from sklearn.datasets import load_wine

    torch.manual_seed(seed)
    d = load_wine()
    x, y = d.data.astype(np.float32), d.target.astype(np.int64)
    idx = np.random.default_rng(seed).permutation(len(x))
    tr, ho = idx[:124], idx[124:]
    mean, std = x[tr].mean(0), x[tr].std(0)
    model = RawInput(
        nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3)), (13,), mean, std
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x[tr]), torch.from_numpy(y[tr])
    for _ in range(epochs):
        opt.zero_grad()
        nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    run = Path(run_dir).name
    return write_student(
        run_dir,
        model,
        x[tr],
        x[ho],
        y[ho],
        lambda acc, _bytes: _card(run, d, mean, std, acc, len(ho)),
    )


def _card(run: str, d, mean: np.ndarray, std: np.ndarray, acc: float, n: int) -> dict:
    return {
        "schema": "tinyship.card/1",
        "run": run,
        "task": "classification",
        "input": {
            "name": "input",
            "shape": [13],
            "dtype": "float32",
            "layout": "NC",
            "raw": True,
            "columns": list(d.feature_names),
            "nominal": {},
            "normalization": {
                "mean": [float(v) for v in mean],
                "std": [float(v) for v in std],
                "mode": "column",
                "note": "x_model = (x_raw - mean) / std, per feature column",
                "applied": "inside the model graph (its first op)",
            },
        },
        "output": {"name": "logits", "kind": "logits", "num_classes": 3},
        "labels": [str(v) for v in d.target_names],
        "student": {"arch": "mlp", "spec": {"hidden": [32]}, "params": 547, "macs": 512},
        "metrics": {"holdout": {"n": n, "student": {"accuracy": acc}}},
        "lineage": {
            "recipe": {"name": "wine-fixture"},
            "created": _dt.datetime.now(_dt.UTC).isoformat(),
            "command": "tests/export/tabular_fixture.py",
        },
    }
