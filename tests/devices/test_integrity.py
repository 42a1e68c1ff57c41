"""The devices link of the integrity chain, and shipping only what passed and what is true (issue 14)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil

import pytest

from ground import rundir, shipseal
from ground.errors import UserError

P = importlib.import_module("devices.profile")


def _copy(exported_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(exported_run, run, ignore=shutil.ignore_patterns(".lock"))
    return run


def _plan(run):
    return P.plan(
        run,
        ["host", "cortex-m4f-stm32l4r5"],
        [],
        P.Settings(runs=2, warmup=0),
        None,
        None,
        force=True,
    )


def _edit_exports(run, fn):
    path = run / "export" / "exports.json"
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))
    return doc


def _art(doc, fmt, precision):
    return next(a for a in doc["artifacts"] if a["format"] == fmt and a["precision"] == precision)


def test_fp32_file_replaced_by_the_int8_bytes_is_refused(exported_run, tmp_path):
    run = _copy(exported_run, tmp_path)
    shutil.copy(run / "export" / "model.int8-full.tflite", run / "export" / "model.fp32.tflite")
    with pytest.raises(
        UserError,
        match=r"model.fp32.tflite' has sha256 .* but exports.json records .* changed after",
    ):
        _plan(run)


@pytest.mark.parametrize("name", ["../student/card.json", "/etc/hostname", "sub/x.onnx", ".."])
def test_a_file_outside_export_is_refused(exported_run, tmp_path, name):
    run = _copy(exported_run, tmp_path)
    _edit_exports(run, lambda d: d["artifacts"][0].update(file=name))
    with pytest.raises(
        UserError, match=r"artifacts\[0\]\.file is .*a file name inside .*no '\.\.'"
    ):
        _plan(run)


def test_a_symlinked_artifact_is_refused(exported_run, tmp_path):
    run = _copy(exported_run, tmp_path)
    f = run / "export" / "model.fp32.onnx"
    outside = tmp_path / "elsewhere.onnx"
    shutil.move(f, outside)
    os.symlink(outside, f)
    with pytest.raises(UserError, match=r"model.fp32.onnx' is a symlink .*only regular files"):
        _plan(run)


def test_export_made_from_another_card_is_stale(exported_run, tmp_path):
    run = _copy(exported_run, tmp_path)
    card = json.loads((run / rundir.CARD).read_text())
    card["run"] = "edited"
    (run / rundir.CARD).write_text(json.dumps(card))
    with pytest.raises(UserError, match=r"student/card.json is now .* the export is stale"):
        _plan(run)
    assert rundir.stale(run) == {"export": "student/card.json changed after export ran"}


@pytest.mark.parametrize(
    ("key", "value"),
    [("sha256", 5), ("format", None), ("tflm_arena_bytes", -3), ("tflm_arena_bytes", "big")],
)
def test_malformed_exports_fields_are_user_errors(exported_run, tmp_path, key, value):
    run = _copy(exported_run, tmp_path)
    _edit_exports(run, lambda d: d["artifacts"][0].update({key: value}))
    with pytest.raises(UserError, match=rf"artifacts\[0\]\.{key} is .*expected"):
        _plan(run)


def _all_fit(p):
    analyses = P.analyse(p)
    records = P.verdicts(p, analyses, [], P.estimate(p, analyses, []))
    return analyses, records


def test_a_gate_failed_file_never_ships(exported_run, tmp_path):
    run = _copy(exported_run, tmp_path)
    _edit_exports(run, lambda d: _art(d, "onnx", "fp32").update(passed=False))
    p = _plan(run)
    _, records = _all_fit(p)
    fits = [dataclasses.replace(r, verdict="fits") for r in records]  # pretend every file fits
    out = tmp_path / "ship"
    out.mkdir()
    shipped = P.ship(p, fits, out)
    assert "model.fp32.onnx" not in shipped and "model.fp32.tflite" in shipped
    man = json.loads((out / "manifest.json").read_text())
    for f in man["files"]:
        assert f["sha256"] == f["checked_sha256"] == rundir.sha256_file(out / f["file"])
    assert man["upstream"]["exports_sha256"] == rundir.sha256_file(run / rundir.EXPORTS)


def test_hybrid_file_labelled_int8_full_does_not_run_on_an_mcu(exported_run, tmp_path):
    """MCU runnability comes from the file's ops and tensor types, not from its label."""
    run = _copy(exported_run, tmp_path)
    full = json.loads((run / rundir.EXPORTS).read_text())
    facts = {k: _art(full, "tflite", "int8-full")[k] for k in ("runs_on", "not_on")}
    _edit_exports(
        run, lambda d: _art(d, "tflite", "int8-dynamic").update(precision="int8-full", **facts)
    )
    p = _plan(run)
    _, records = _all_fit(p)
    rec = next(
        r
        for r in records
        if r.artifact == "model.int8-dynamic.tflite" and r.device == "cortex-m4f-stm32l4r5"
    )
    assert rec.verdict == "not runnable"
    assert "hybrid" in rec.reasons[0] and "TFLite Micro" in rec.reasons[0], rec.reasons
    real = next(
        r
        for r in records
        if r.artifact == "model.int8-full.tflite" and r.device == "cortex-m4f-stm32l4r5"
    )
    assert real.verdict != "not runnable"


def test_float_file_labelled_int8_is_not_runnable_anywhere(exported_run, tmp_path):
    run = _copy(exported_run, tmp_path)
    _edit_exports(run, lambda d: _art(d, "tflite", "fp32").update(precision="int8-full"))
    p = _plan(run)
    _, records = _all_fit(p)
    recs = [r for r in records if r.artifact == "model.fp32.tflite"]
    assert recs and all(r.verdict == "not runnable" for r in recs)
    assert "every one of its" in recs[0].reasons[0] and "not int8" in recs[0].reasons[0]


def test_check_refuses_a_stale_or_malformed_profile(profiled_run, tmp_path):
    run = _copy(profiled_run, tmp_path)
    assert rundir.stale(run) == {}
    path = run / rundir.PROFILE
    original = path.read_text()
    doc = json.loads(original)
    doc["records"][0]["latency_ms"] = "fast"
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"profile/profile.json changed after it was shipped"):
        P.check(run)  # ship/SHA256SUMS records profile.json (issue 41)
    shipseal.write(run / "ship", path)  # as if profile had written it: the schema refuses it
    with pytest.raises(
        UserError, match=r"records\[0\]\.latency_ms is str 'fast'; expected a finite number"
    ):
        P.check(run)
    path.write_text(original)
    shipseal.write(run / "ship", path)
    _edit_exports(run, lambda d: d.update(note="edited"))
    assert set(rundir.stale(run)) == {"profile", "ship"}
    with pytest.raises(
        UserError, match=r"profile/ is stale: export/exports.json changed after it ran"
    ):
        P.check(run)
