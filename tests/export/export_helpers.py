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

from ground import rundir


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
    ep = torch.export.export(
        model, (torch.from_numpy(holdout["x"][:4]),), dynamic_shapes=({0: batch},)
    )
    torch.export.save(ep, student / "student.pt2")
    with torch.no_grad():
        holdout["student_probs"] = torch.softmax(
            ep.module()(torch.from_numpy(holdout["x"])), -1
        ).numpy()
    rundir.atomic_write_npz(student / "holdout.npz", **holdout)
    refresh_hashes(run_dir, card)
    return run_dir


def refresh_hashes(run_dir: Path, card: dict | None = None) -> None:
    student = run_dir / "student"
    card = card if card is not None else json.loads((student / "card.json").read_text())
    card["sha256"] = {
        n: rundir.sha256_file(student / n)
        for n in ("student.pt2", "calibration.npz", "holdout.npz")
    }
    rundir.atomic_write_json(student / "card.json", card)


def outlier_mlp(run_dir: Path, factor: float = 2000.0) -> Path:
    """The fixture MLP with an extra hidden layer whose one unit has a huge range.

    The extra 32x32 layer starts as the identity (ReLU after ReLU changes nothing);
    its unit 0 is then scaled by ``factor`` and made always active, and the
    classifier reads it back divided by ``factor``. The activation range of that
    layer is dominated by one outlier unit, so per-tensor int8 activations crush
    every other unit there, while the first layer quantizes well: the case for
    keeping the late layers float and the early ones int8.
    """
    ep = torch.export.load(str(run_dir / "student" / "student.pt2"))
    state = {k.replace("_", "."): v for k, v in ep.state_dict.items()}
    first, last = nn.Linear(64, 32), nn.Linear(32, 10)
    first.load_state_dict({"weight": state["0.weight"], "bias": state["0.bias"]})
    last.load_state_dict({"weight": state["2.weight"], "bias": state["2.bias"]})
    middle = nn.Linear(32, 32)
    with torch.no_grad():
        middle.weight.copy_(torch.eye(32))
        middle.bias.zero_()
        middle.weight[0] *= factor
        middle.bias[0] = factor
        last.weight[:, 0] /= factor
    return rewrite_student(run_dir, nn.Sequential(first, nn.ReLU(), middle, nn.ReLU(), last))


def wide_cnn(run_dir: Path, seed: int = 0) -> Path:
    """A wider CNN (~30k weights) on the fixture's 1x8x8 digits; weights trained for a few steps."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 48, 3, padding=1, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(48 * 16, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )
    # a few steps on the holdout labels so the logits are not random (sizes are what this student is for)
    with np.load(run_dir / "student" / "holdout.npz", allow_pickle=False) as z:
        hx, hy = torch.from_numpy(z["x"]), torch.from_numpy(z["y"])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(hx), hy).backward()
        opt.step()
    return rewrite_student(run_dir, model)
