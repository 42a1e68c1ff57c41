"""Run directories for export tests: copies of the session fixtures and purpose-built students.

Every student written here goes through the same contract as distill's
(docs/run-directory.md): student.pt2, recomputed student_probs and card sha256s.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tinyship import rundir


def copy_run(src: Path, dst: Path) -> Path:
    """A private copy of a fixture run (tests must not change the shared session fixture)."""
    shutil.copytree(src / "student", dst / "student")
    return dst


def rewrite_student(run_dir: Path, model: nn.Module) -> Path:
    """Replace ``student.pt2`` by ``model`` and refresh student_probs and the card's hashes."""
    student = run_dir / "student"
    card = json.loads((student / "card.json").read_text())
    with np.load(student / "holdout.npz", allow_pickle=False) as z:
        holdout = {k: z[k] for k in z.files}
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=65536)
    ep = torch.export.export(model, (torch.from_numpy(holdout["x"][:4]),), dynamic_shapes=({0: batch},))
    torch.export.save(ep, student / "student.pt2")
    with torch.no_grad():
        holdout["student_probs"] = torch.softmax(ep.module()(torch.from_numpy(holdout["x"])), -1).numpy()
    rundir.atomic_write_npz(student / "holdout.npz", **holdout)
    refresh_hashes(run_dir, card)
    return run_dir


def refresh_hashes(run_dir: Path, card: dict | None = None) -> None:
    student = run_dir / "student"
    card = card if card is not None else json.loads((student / "card.json").read_text())
    card["sha256"] = {n: rundir.sha256_file(student / n) for n in ("student.pt2", "calibration.npz", "holdout.npz")}
    rundir.atomic_write_json(student / "card.json", card)


def outlier_mlp(run_dir: Path, factor: float = 2000.0) -> Path:
    """The fixture MLP with one hidden unit scaled by ``factor`` and the next layer scaled back.

    The function is unchanged (ReLU is positively homogeneous), but the hidden
    activation's range is now dominated by one outlier unit, so per-tensor int8
    activations crush every other unit: the classic case for keeping a layer float.
    """
    ep = torch.export.load(str(run_dir / "student" / "student.pt2"))
    state = {k.replace("_", "."): v for k, v in ep.state_dict.items()}
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    model.load_state_dict(state)
    with torch.no_grad():
        model[0].weight[0] *= factor
        model[0].bias[0] = model[0].bias[0].abs() * factor + factor
        model[2].weight[:, 0] /= factor
    return rewrite_student(run_dir, model)


def wide_cnn(run_dir: Path, seed: int = 0) -> Path:
    """A demo-sized CNN (~30k weights) on the fixture's 1x8x8 digits; weights trained for a few steps."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 48, 3, padding=1, stride=2),
                          nn.ReLU(), nn.Flatten(), nn.Linear(48 * 16, 32), nn.ReLU(), nn.Linear(32, 10))
    with np.load(run_dir / "student" / "calibration.npz", allow_pickle=False) as z:
        x = torch.from_numpy(z["x"])
    with np.load(run_dir / "student" / "holdout.npz", allow_pickle=False) as z:
        teacher = torch.from_numpy(z["student_probs"])
    # a few steps toward the fixture student's labels on the holdout inputs so logits are not random
    with np.load(run_dir / "student" / "holdout.npz", allow_pickle=False) as z:
        hx, hy = torch.from_numpy(z["x"]), torch.from_numpy(z["y"])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(hx), hy).backward()
        opt.step()
    del x, teacher
    return rewrite_student(run_dir, model)
