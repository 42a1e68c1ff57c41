"""The distill stage's named steps, each run alone (no student/ is written until the last one)."""

from __future__ import annotations

import numpy as np
import pytest

from distill import pipeline as P
from distill.train import TrainContext
from ground.errors import UserError

TINY = {
    "name": "tiny",
    "data": {"name": "digits", "normalize": "scalar"},
    "teacher": {"library": ["logreg"], "selection": "none"},
    "transfer": {"method": "munge", "size_multiplier": 2, "p": 0.5, "s": 10.0},
    "student": {"kind": "mlp", "hidden": [16]},
    "train": {"epochs": 2, "batch_size": 256, "patience": 2},
}


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    cfg = P.configure(TINY, tmp_path_factory.mktemp("steps") / "tiny")
    data = P.load_data(cfg)
    teacher = P.build_teacher(cfg, data)
    x_transfer = P.make_transfer_set(cfg, data)
    labels = P.label(cfg, data, teacher, x_transfer, dist_ctx=_one_process())
    return cfg, data, teacher, x_transfer, labels


def _one_process():
    from distill.distributed import DistContext

    return DistContext()


def test_configure_applies_overrides_and_refuses_an_existing_student(tmp_path):
    cfg = P.configure(TINY, tmp_path / "r", seed=7, epochs=1)
    assert cfg.seed == 7 and cfg.train["epochs"] == 1 and cfg.work == tmp_path / "r" / ".work"
    (tmp_path / "r" / "student").mkdir(parents=True)
    with pytest.raises(UserError, match="already exists. Pass --force"):
        P.configure(TINY, tmp_path / "r")
    with pytest.raises(UserError, match="--epochs must be at least 1; got 0"):
        P.configure(TINY, tmp_path / "s", epochs=0)


def test_data_transfer_and_labels_line_up(labelled):
    cfg, data, teacher, x_transfer, labels = labelled
    ds = data.dataset
    assert data.input_shape == (64,) and data.layout == "NC"
    assert len(x_transfer) == 2 * len(data.x_train) and x_transfer.shape[1] == 64
    assert labels.transfer.shape == (len(x_transfer), ds.num_classes)
    assert labels.holdout.shape == (len(data.x_holdout), ds.num_classes)
    np.testing.assert_allclose(labels.val.sum(1), 1.0, atol=1e-5)
    assert labels.transfer_hard.shape == (len(x_transfer),)
    assert not (cfg.out / "student").exists()


def test_train_export_evaluate_then_write(labelled):
    cfg, data, teacher, x_transfer, labels = labelled
    opts = {"ctx": TrainContext(), "progress": False}
    student = P.train_student(cfg, data, teacher, x_transfer, labels, **opts)
    baseline = P.train_baseline(cfg, data, teacher, **opts)
    assert (
        student.fit.epochs_run == 2 and baseline is not None and baseline.config["loss"] == "hard"
    )
    exported = P.export_student(cfg, data, student)
    assert exported.path.is_file() and exported.probs.shape == labels.holdout.shape
    metrics = P.evaluate(data, teacher, labels, exported, student, baseline)
    assert set(metrics) == {"n", "teacher", "members", "baseline", "student"}
    assert metrics["teacher"]["best_member"]["name"] == "logreg"
    lineage = P.Lineage("test", _one_process(), {}, 0.0)
    card = P.write_student_dir(
        cfg, data, teacher, len(x_transfer), labels, exported, student, baseline, metrics,
        force=False, lineage=lineage,
    )  # fmt: skip
    assert card["metrics"]["holdout"] == metrics and "thresholds" not in card
    assert sorted(p.name for p in (cfg.out / "student").iterdir()) == [
        "calibration.npz",
        "card.json",
        "holdout.npz",
        "student.pt2",
    ]


def test_fit_library_fits_what_build_teacher_fits_and_writes_nothing(
    labelled, tmp_path, monkeypatch
):
    """A driver that shares one teacher across runs (tinyship.search) gets the very models a run
    would fit: same data, split, normalization and seed, so the same predictions on raw rows."""
    cfg, data, teacher, _, _ = labelled
    monkeypatch.chdir(tmp_path)
    lib = P.fit_library({**TINY, "teacher": {"library": ["logreg", "knn"]}}, seed=cfg.seed)
    assert [m.name for m in lib.members] == ["logreg", "knn"] and not list(tmp_path.iterdir())
    x = data.x_holdout  # raw rows: each member wraps the normalization it was fitted on
    np.testing.assert_allclose(
        lib.members[0].predict_proba(x), teacher.members[0].predict_proba(x), atol=1e-6
    )
    assert lib.members[0].fingerprint() == teacher.members[0].fingerprint()
    assert len(lib.data.x_train) == len(data.x_train) and lib.seconds >= 0
