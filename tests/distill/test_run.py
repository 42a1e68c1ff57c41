"""The distill stage end to end on digits (small and fast): card, student.pt2, baseline, resume, errors."""

from __future__ import annotations

import copy
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from distill.pipeline import run as distill
from ground import rundir
from ground.errors import UserError

REPO = Path(__file__).resolve().parents[2]

SMALL = {
    "name": "small",
    "data": {"name": "digits", "normalize": "scalar"},
    "teacher": {"library": ["logreg", "knn"], "combine": "mean", "selection": "none"},
    "transfer": {"method": "munge", "size_multiplier": 3, "p": 0.5, "s": 10.0},
    "student": {"kind": "cnn", "channels": [4, 8]},
    "train": {
        "epochs": 6,
        "batch_size": 128,
        "lr": 0.005,
        "temperature": 4.0,
        "alpha": 0.9,
        "patience": 6,
    },
}


def _sha_tree(folder: Path) -> dict[str, str]:
    return {p.name: rundir.sha256_file(p) for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "small"
    distill(copy.deepcopy(SMALL), out, progress=False)
    return out


def test_card_has_every_contract_field(small_run):
    card = json.loads((small_run / "student" / "card.json").read_text())
    for key in (
        "schema",
        "run",
        "task",
        "input",
        "output",
        "labels",
        "student",
        "teacher",
        "metrics",
        "sizes",
        "lineage",
        "sha256",
    ):
        assert key in card, key
    assert card["schema"] == "tinyship.card/1" and card["input"]["shape"] == [1, 8, 8]
    assert card["input"]["layout"] == "NCHW" and set(card["input"]["normalization"]) >= {
        "mean",
        "std",
        "note",
    }
    h = card["metrics"]["holdout"]
    assert h["n"] == 359 and set(h["members"]) == {"logreg", "knn"}
    assert {"accuracy", "agreement_with_teacher", "nll"} <= set(h["student"])
    assert card["sizes"]["student_bytes"] == (small_run / "student" / "student.pt2").stat().st_size
    assert card["sizes"]["student_param_bytes"] == 4 * card["student"]["params"]
    assert card["sizes"]["teacher_bytes"] == sum(
        m["bytes"] for m in card["teacher"]["members"] if m["weight"] > 0
    )
    assert "student.pt2" in card["sizes"]["method"] and "fp32" in card["sizes"]["method"]
    # the CPU kernels the bytes depend on (another capability trains other bytes, rule T36m)
    import torch

    m = card["lineage"]["machine"]
    assert m["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability() and m["cpu"]
    for name, digest in card["sha256"].items():
        assert rundir.sha256_file(small_run / "student" / name) == digest
    cal = np.load(small_run / "student" / "calibration.npz", allow_pickle=False)
    assert (
        cal["x"].dtype == np.float32 and cal["x"].shape[1:] == (1, 8, 8) and len(cal["x"]) <= 1024
    )
    assert not (small_run / "student").joinpath(".work").exists() and (small_run / ".work").is_dir()


def test_distilled_student_at_least_matches_the_hard_label_baseline(small_run):
    h = json.loads((small_run / "student" / "card.json").read_text())["metrics"]["holdout"]
    assert h["student"]["accuracy"] >= h["baseline"]["accuracy"], h


def test_student_pt2_reproduces_the_card_exactly(small_run):
    card = json.loads((small_run / "student" / "card.json").read_text())
    ho = np.load(small_run / "student" / "holdout.npz", allow_pickle=False)
    program = torch.export.load(small_run / "student" / "student.pt2").module()
    with torch.no_grad():
        logits = program(torch.from_numpy(ho["x"]))
    probs = torch.softmax(logits.double(), 1).float().numpy()
    assert (
        float((probs.argmax(1) == ho["y"]).mean())
        == card["metrics"]["holdout"]["student"]["accuracy"]
    )
    np.testing.assert_allclose(probs, ho["student_probs"], atol=1e-6)
    assert (
        float((ho["teacher_probs"].argmax(1) == ho["y"]).mean())
        == card["metrics"]["holdout"]["teacher"]["accuracy"]
    )
    with torch.no_grad():
        assert program(torch.from_numpy(ho["x"][:1])).shape == (1, 10)  # dynamic batch
        assert program(torch.from_numpy(ho["x"][:7])).shape == (1 * 7, 10)


#: ``python -m distill`` that SIGKILLs itself right after writing the student's epoch-3 checkpoint
#: (fault injection lives here, not in the library).
KILLED_AFTER_EPOCH_3 = """
import os, signal, sys
import distill.train as T
_save = T._save_checkpoint
def save(path, state):
    _save(path, state)
    if path.name == "student.pt" and state["epoch"] == 3:
        os.kill(os.getpid(), signal.SIGKILL)
T._save_checkpoint = save
from distill.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def _cli(args: list[str], killed: bool = False) -> subprocess.CompletedProcess:
    entry = ["-c", KILLED_AFTER_EPOCH_3] if killed else ["-m", "distill"]
    return subprocess.run(
        [sys.executable, *entry, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_killed_run_resumes_to_identical_metrics(tmp_path):
    recipe = tmp_path / "small.yaml"
    recipe.write_text(yaml.safe_dump(SMALL))
    whole = _cli(["--recipe", str(recipe), "--out", str(tmp_path / "whole"), "--quiet"])
    assert whole.returncode == 0, whole.stderr

    killed = _cli(["--recipe", str(recipe), "--out", str(tmp_path / "cut"), "--quiet"], killed=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (tmp_path / "cut" / "student").exists()
    assert (tmp_path / "cut" / ".work" / "checkpoints" / "student.pt").is_file()

    resumed = _cli(["--recipe", str(recipe), "--out", str(tmp_path / "cut"), "--quiet", "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "whole" / "student" / "card.json").read_text())
    b = json.loads((tmp_path / "cut" / "student" / "card.json").read_text())
    assert b["training"]["student"]["resumed_from_epoch"] == 3
    assert a["metrics"] == b["metrics"]
    ha = np.load(tmp_path / "whole" / "student" / "holdout.npz")
    hb = np.load(tmp_path / "cut" / "student" / "holdout.npz")
    np.testing.assert_array_equal(ha["student_probs"], hb["student_probs"])
    assert [e["train_loss"] for e in a["training"]["student"]["history"]] == [
        e["train_loss"] for e in b["training"]["student"]["history"]
    ]


def test_cli_help_and_user_error_exit_code(tmp_path):
    h = _cli(["--help"])
    assert h.returncode == 0 and "--resume" in h.stdout and "--trust-pickles" in h.stdout
    bad = _cli(["--recipe", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "x")])
    assert bad.returncode == 2 and "error: recipe" in bad.stderr and "not found" in bad.stderr


def test_python_api_members(tmp_path):
    """A fitted sklearn estimator handed in through the Python API joins the teacher."""
    from sklearn.naive_bayes import GaussianNB

    from distill.data import load_data
    from distill.members import SklearnMember

    recipe = copy.deepcopy(SMALL)
    recipe["data"]["normalize"] = "none"  # the estimator was fitted on raw pixels
    recipe["teacher"] = {"library": ["logreg"], "selection": "none"}
    recipe["train"]["epochs"] = 2
    recipe["train"]["baseline"] = False
    ds = load_data(recipe["data"])
    gnb = SklearnMember("gnb", GaussianNB().fit(ds.x_train, ds.y_train))
    res = distill(recipe, tmp_path / "api", members=[gnb], progress=False)
    assert [m["name"] for m in res.card["teacher"]["members"]] == ["logreg", "gnb"]
    assert "gnb" in res.card["metrics"]["holdout"]["members"]
    assert "baseline" not in res.card["metrics"]["holdout"]


def _bad(path: str, value) -> dict:
    r = copy.deepcopy(SMALL)
    section, key = path.split(".")
    r[section][key] = value
    return r


BAD = {
    "unknown key": (_bad("train.learning_rate", 0.1), r"train.learning_rate' is not known"),
    "bad value": (
        _bad("train.alpha", 1.5),
        r"train.alpha' must be in the range \[0.0, 1.0\]; got 1.5",
    ),
    "unknown student": (
        _bad("student.kind", "transformer"),
        r"student.kind' must be one of 'mlp', 'cnn', 'dscnn'",
    ),
    "unknown member kind": (
        _bad("teacher.members", [{"name": "m", "kind": "tflite", "path": "m.tflite"}]),
        r"teacher.members\[0\].kind' must be one of",
    ),
    "unknown library model": (
        _bad("teacher.library", ["rf", "deepnet"]),
        r"unknown model\(s\) \['deepnet'\]",
    ),
    "shape mismatch": (
        {**copy.deepcopy(SMALL), "data": {"name": "npz", "path": "FLAT"}},
        r"student kind 'cnn' needs image-shaped data .* 5 features",
    ),
    "nan inputs": (
        {**copy.deepcopy(SMALL), "data": {"name": "npz", "path": "NAN"}},
        r"has 1 NaN/inf values \(first at row 4, column 1\)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_fails_clearly_and_leaves_no_half_written_run(case, tmp_path, small_run):
    recipe, pattern = copy.deepcopy(BAD[case][0]), BAD[case][1]
    rng = np.random.default_rng(0)
    x = rng.random((80, 5)).astype(np.float32)
    np.savez(tmp_path / "flat.npz", x=x, y=np.arange(80) % 2)
    x[4, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=x, y=np.arange(80) % 2)
    if recipe["data"].get("path") in ("FLAT", "NAN"):
        recipe["data"]["path"] = str(
            tmp_path / ("flat.npz" if recipe["data"]["path"] == "FLAT" else "nan.npz")
        )
    # a fresh run directory gets no student/
    with pytest.raises(UserError, match=pattern):
        distill(copy.deepcopy(recipe), tmp_path / "fresh", progress=False)
    assert not (tmp_path / "fresh" / "student").exists()
    # a good student/ survives a failed --force run untouched
    shutil.copytree(small_run / "student", tmp_path / "good" / "student")
    before = _sha_tree(tmp_path / "good" / "student")
    with pytest.raises(UserError, match=pattern):
        distill(copy.deepcopy(recipe), tmp_path / "good", force=True, progress=False)
    assert _sha_tree(tmp_path / "good" / "student") == before
    assert [p.name for p in (tmp_path / "good").iterdir() if p.name.startswith(".student")] == []


def test_existing_student_is_refused_before_any_work(small_run, tmp_path):
    shutil.copytree(small_run / "student", tmp_path / "run" / "student")
    r = copy.deepcopy(SMALL)
    r["data"] = {
        "name": "npz",
        "path": str(tmp_path / "does-not-exist.npz"),
    }  # would fail if any work started
    with pytest.raises(UserError, match=r"already exists. Pass --force"):
        distill(r, tmp_path / "run", progress=False)
