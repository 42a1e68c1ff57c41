"""The devices stage's named steps, each run alone on a real exported run."""

from __future__ import annotations

import importlib
import json
import shutil

import pytest

from tinyship.errors import UserError

# the module, not the function devices.profile that the package re-exports under the same name
P = importlib.import_module("devices.profile")


def _plan(run, **kw):
    return P.plan(run, None, [], P.Settings(runs=2, warmup=0), None, None, force=True, **kw)


def test_plan_then_verdicts_without_any_measurement(exported_run):
    """No measurement: nothing is measured, yet devices are still estimated (the host fit comes from
    the fixed calibration set, MCUs from their stack, never from this run's measurements), and every
    record gets a verdict."""
    p = _plan(exported_run)
    assert p.targets[0].runner == "host" and p.devices[0].name == "host"
    analyses = P.analyse(p)
    assert set(analyses) == {a["file"] for a, _ in p.artifacts}
    est = P.estimate(p, analyses, [])
    assert est.fitted is not None and est.record["check_on_run"]["per_artifact"] == []
    records = P.verdicts(p, analyses, [], est)
    assert len(records) == len(p.artifacts) * len(p.devices)
    assert not any(r.method == "measured" for r in records)
    assert any(r.method == "estimated" for r in records if r.device_class == "mcu")


def test_verdicts_take_what_runs_where_from_exports_json(exported_run, tmp_path):
    """The devices stage reads the format facts; it never decides by a format's name."""
    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    path = run / "export" / "exports.json"
    doc = json.loads(path.read_text())
    onnx = next(a for a in doc["artifacts"] if a["format"] == "onnx")
    onnx["runs_on"] = ["mcu"]
    onnx["not_on"] = {"host": "pretend: this runtime has no host build"}
    path.write_text(json.dumps(doc))
    p = _plan(run)
    analyses = P.analyse(p)
    records = P.verdicts(p, analyses, [], P.estimate(p, analyses, []))
    host = next(r for r in records if r.artifact == onnx["file"] and r.device == "host")
    assert host.verdict == "not runnable"
    assert host.reasons == ["pretend: this runtime has no host build"]


def test_exports_without_format_facts_are_refused(exported_run, tmp_path):
    run = tmp_path / "old"
    shutil.copytree(exported_run, run)
    path = run / "export" / "exports.json"
    doc = json.loads(path.read_text())
    for a in doc["artifacts"]:
        a.pop("runtime_family")
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError, match="has no format facts .* Re-run the export stage"):
        _plan(run)


def test_unknown_runner_fails_before_any_work(exported_run):
    with pytest.raises(
        UserError, match="unknown runner 'bluetooth'; known runners: adb, host, ssh"
    ):
        P.plan(
            exported_run, None, [P.Target("bluetooth", "x")], P.Settings(), None, None, force=True
        )


def test_adb_needs_benchmark_model():
    with pytest.raises(UserError, match="--adb needs --benchmark-model PATH"):
        P.adb_targets(["emulator-5554"], None)
