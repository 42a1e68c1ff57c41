"""Bad input gives one clear UserError and leaves a previous export/ untouched."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from export_helpers import copy_run, outlier_mlp, refresh_hashes

import export
from ground import rundir
from ground.errors import UserError


@pytest.fixture()
def mlp_run(fixture_runs, tmp_path):
    run = copy_run(fixture_runs["mlp"], tmp_path / "run")
    (run / "export").mkdir()
    (run / "export" / "exports.json").write_text('{"previous": true}\n')
    return run


def _untouched(run):
    return json.loads((run / "export" / "exports.json").read_text()) == {"previous": True}


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_truncated_student_without_card_update_is_a_hash_mismatch(mlp_run):
    _truncate(mlp_run / "student" / "student.pt2")
    with pytest.raises(
        UserError, match=r"student.pt2' has sha256 .* but card.json records .*corrupt or stale run"
    ):
        export.run(mlp_run, formats=["onnx"], precisions=["fp32"], force=True, progress=False)
    assert _untouched(mlp_run)


def test_truncated_student_that_matches_its_card_cannot_be_loaded(mlp_run):
    _truncate(mlp_run / "student" / "student.pt2")
    refresh_hashes(mlp_run)
    with pytest.raises(
        UserError, match=r"cannot be loaded with torch.export.load .*Re-run the distill stage"
    ):
        export.run(mlp_run, formats=["onnx"], precisions=["fp32"], force=True, progress=False)
    assert _untouched(mlp_run)


def test_bad_card_json(mlp_run):
    (mlp_run / "student" / "card.json").write_text("{not json")
    with pytest.raises(UserError, match=r"student card at .*card.json' is not valid JSON"):
        export.run(mlp_run, force=True, progress=False)
    assert _untouched(mlp_run)


def test_card_missing_a_key(mlp_run):
    card = json.loads((mlp_run / "student" / "card.json").read_text())
    del card["labels"]
    rundir.atomic_write_json(mlp_run / "student" / "card.json", card)
    with pytest.raises(UserError, match=r"lacks the key 'labels'"):
        export.run(mlp_run, force=True, progress=False)


@pytest.mark.parametrize("name", ["../export/exports.json", "/etc/hostname", "..", "link.pt2"])
def test_card_sha256_names_stay_inside_the_student_folder(mlp_run, name):
    """The card's sha256 map names files the export stage hashes: a path leaving student/ (or a
    symlink inside it) is refused before anything is read from there."""
    card = json.loads((mlp_run / "student" / "card.json").read_text())
    if name == "link.pt2":
        (mlp_run / "student" / name).symlink_to(mlp_run / "student" / "student.pt2")
    card["sha256"][name] = "0" * 64
    rundir.atomic_write_json(mlp_run / "student" / "card.json", card)
    with pytest.raises(UserError, match=r"a file name in card.json's sha256 is |is a symlink"):
        export.run(mlp_run, formats=["onnx"], precisions=["fp32"], force=True, progress=False)
    assert _untouched(mlp_run)


def test_holdout_missing_student_probs(mlp_run):
    path = mlp_run / "student" / "holdout.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "student_probs"}
    rundir.atomic_write_npz(path, **arrays)
    refresh_hashes(mlp_run)
    with pytest.raises(UserError, match=r"holdout set at .* lacks arrays \['student_probs'\]"):
        export.run(mlp_run, force=True, progress=False)
    assert _untouched(mlp_run)


def test_stale_student_probs(mlp_run):
    path = mlp_run / "student" / "holdout.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["student_probs"] = np.roll(arrays["student_probs"], 1, axis=1)
    rundir.atomic_write_npz(path, **arrays)
    refresh_hashes(mlp_run)
    with pytest.raises(
        UserError, match=r"differ from holdout.npz student_probs by .*stale or corrupt"
    ):
        export.run(mlp_run, force=True, progress=False)


def test_missing_student_folder(tmp_path):
    with pytest.raises(UserError, match=r"student' not found. Pass --run"):
        export.run(tmp_path / "nothing", progress=False)


def test_existing_export_needs_force(mlp_run):
    with pytest.raises(UserError, match=r"already exists. Pass --force"):
        export.run(mlp_run, formats=["onnx"], precisions=["fp32"], progress=False)
    assert _untouched(mlp_run)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (
            {"formats": ["tflight"]},
            r"export format 'tflight' is not known. Allowed formats: onnx, tflite, coreml",
        ),
        (
            {"precisions": ["int4"]},
            r"precision 'int4' is not known. Allowed precisions: onnx: fp32",
        ),
        (
            {"formats": ["coreml"], "precisions": ["int8-full"]},
            r"no format among \['coreml'\] supports precisions",
        ),
        ({"thresholds": {"int8": 1.5}}, r"export.thresholds': 'int8' must be a number in \[0, 1\]"),
        ({"thresholds": {"int9": 0.9}}, r"key 'int9' is not known \(allowed: agreement, fp32"),
    ],
)
def test_bad_arguments_name_the_value(mlp_run, kwargs, match):
    with pytest.raises(UserError, match=match):
        export.run(mlp_run, force=True, progress=False, **kwargs)
    assert _untouched(mlp_run)


def test_bad_recipe_export_key(mlp_run, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("export:\n  thresholds: {int8: 0.9}\n  keep_goin: true\n")
    with pytest.raises(
        UserError, match=r"recipe key 'export.keep_goin' is not known. Did you mean 'keep_going'\?"
    ):
        export.run(mlp_run, force=True, progress=False, recipe=recipe)


@pytest.mark.parametrize(
    "module,extra,fmt", [("coremltools", "coreml", "coreml"), ("litert_torch", "tflite", "tflite")]
)
def test_missing_optional_dependency_names_the_extra_and_others_still_export(
    mlp_run, monkeypatch, module, extra, fmt
):
    monkeypatch.setitem(sys.modules, module, None)  # import of it now raises ImportError
    report = export.run(
        mlp_run, formats=["onnx", fmt], precisions=["fp32"], force=True, progress=False
    )
    skipped = report.artifact(f"{fmt}:fp32")
    assert (
        skipped.skipped
        and f"pip install 'tinyship[{extra}]'" in skipped.error
        and f"'{module}'" in skipped.error
    )
    assert skipped.bytes is None and not (mlp_run / "export" / skipped.file).exists()
    onnx_rec = report.artifact("onnx:fp32")
    assert (
        onnx_rec.error is None
        and onnx_rec.parity.passed
        and (mlp_run / "export" / "model.fp32.onnx").exists()
    )
    written = json.loads((mlp_run / "export" / "exports.json").read_text())
    assert [a["error"] is not None for a in written["artifacts"]] == [False, True]


def test_gate_failure_lists_every_failing_artifact_and_writes_nothing(mlp_run, tmp_path):
    outlier_mlp(mlp_run)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("export:\n  fallback: false\n")
    with pytest.raises(
        UserError,
        match=r"(?s)2 artifact\(s\) failed the export gate:\n  model.int8.onnx: agreement 0\.\d+ "
        r"< threshold 0.99.*\n  model.int8-full.tflite: agreement .*--keep-going",
    ):
        export.run(
            mlp_run,
            formats=["onnx", "tflite"],
            precisions=["int8", "int8-full", "fp32"],
            force=True,
            progress=False,
            recipe=recipe,
        )
    assert _untouched(mlp_run)


def test_cli_keep_going_records_passed_false(mlp_run, tmp_path):
    outlier_mlp(mlp_run)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("export:\n  fallback: false\n")
    base = [
        sys.executable,
        "-m",
        "export",
        "--run",
        str(mlp_run),
        "--formats",
        "onnx",
        "--precisions",
        "int8",
        "--recipe",
        str(recipe),
        "--force",
    ]
    proc = subprocess.run(base, capture_output=True, text=True)
    assert (
        proc.returncode == 2 and "model.int8.onnx: agreement" in proc.stderr and _untouched(mlp_run)
    )
    proc = subprocess.run(base + ["--keep-going"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "model.int8.onnx" in proc.stdout and "FAIL" in proc.stdout
    written = json.loads((mlp_run / "export" / "exports.json").read_text())
    assert written["passed"] is False and written["artifacts"][0]["parity"]["passed"] is False


def test_recipe_thresholds_agreement_sets_every_family_and_family_keys_override(mlp_run, tmp_path):
    from export.settings import export_settings

    recipe = tmp_path / "r.yaml"
    recipe.write_text("export:\n  thresholds: {agreement: 0.9, fp32: 0.995}\n")
    got = export_settings({}, recipe)["thresholds"]
    assert got == {"fp32": 0.995, "fp16": 0.9, "int8": 0.9, "palette": 0.9}
