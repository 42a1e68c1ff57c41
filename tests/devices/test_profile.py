import json
import shutil

import pytest

import devices
from devices.__main__ import main
from ground import shipseal
from ground.errors import UserError


def _doc(run):
    return json.loads((run / "profile" / "profile.json").read_text())


def test_profile_writes_everything(profiled_run):
    doc = _doc(profiled_run)
    arts = {r["artifact"] for r in doc["records"]}
    devs = {r["device"] for r in doc["records"]}
    classes = {r["device_class"] for r in doc["records"]}
    assert len(devs) >= 6 and {"host", "sbc", "phone", "pda", "mcu"} <= classes
    for a in arts:  # every artifact x every device
        assert {r["device"] for r in doc["records"] if r["artifact"] == a} == devs
    host = [r for r in doc["records"] if r["device"] == "host" and r["method"] == "measured"]
    assert host and all(r["latency"]["p50_ms"] > 0 and r["latency"]["threads"] == 1 for r in host)
    for name in ("report.md", "report.html", "plots/accuracy_vs_latency.png"):
        assert (profiled_run / "profile" / name).is_file()


def test_estimator_loo_error_is_reported(profiled_run):
    loo = _doc(profiled_run)["estimator"]["loo"]
    assert loo["n"] >= 3 and loo["median_ape"] is not None
    assert all(r["predicted_ms"] > 0 and r["ape_pct"] >= 0 for r in loo["per_artifact"])
    assert (
        "Median absolute percentage error" in (profiled_run / "profile" / "report.md").read_text()
    )
    est = [r for r in _doc(profiled_run)["records"] if r["method"] == "estimated"]
    host_fit = [r for r in est if r["device_class"] != "mcu"]
    assert host_fit and all(
        r["latency"]["loo_median_ape_pct"] == loo["median_ape"] for r in host_fit
    )
    # the host fit is made on the fixed calibration set, never on this run's artifacts
    doc = _doc(profiled_run)
    assert "calibration set" in doc["estimator"]["calibrated_on"]
    arts = set(doc["artifacts"])
    assert not arts & {r["artifact"] for r in loo["per_artifact"]}
    assert {r["artifact"] for r in doc["estimator"]["check_on_run"]["per_artifact"]} <= arts
    mcu = [r for r in est if r["device_class"] == "mcu"]
    assert mcu and all(r["latency"]["stack"] == "tflm-cmsis-nn" for r in mcu)


def test_each_estimate_says_where_its_efficiency_came_from(profiled_run):
    """MCUs name their stack and its published runs (or the transfer); the others are host transfers."""
    est = [r for r in _doc(profiled_run)["records"] if r["method"] == "estimated"]
    by_dev = {r["device"]: r["latency"]["efficiency"] for r in est}
    assert (
        "calibrated on published tflm-cmsis-nn runs on this board" in by_dev["cortex-m4f-stm32l4r5"]
    )
    assert "transferred from cortex-m4f-stm32l4r5 (same armv7e-m" in by_dev["cortex-m7-stm32h7a3"]
    assert by_dev["rpi4"].startswith("host fit")
    report = (profiled_run / "profile" / "report.md").read_text()
    assert f"- cortex-m4f-stm32l4r5: {by_dev['cortex-m4f-stm32l4r5']}" in report


def test_report_html_embeds_images(profiled_run):
    html = (profiled_run / "profile" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3  # accuracy vs latency, bytes, MCU timeline(s)


def test_ship_manifest(profiled_run):
    m = json.loads((profiled_run / "ship" / "manifest.json").read_text())
    assert m["files"] and m["labels"] and m["input"]["normalization"]
    from ground.rundir import sha256_file

    for f in m["files"]:
        assert sha256_file(profiled_run / "ship" / f["file"]) == f["sha256"]
        assert any(v["verdict"] == "fits" for v in f["devices"].values())


def test_check_gate_exit_codes(profiled_run, capsys):
    assert main(["check", "--run", str(profiled_run), "--budget", "host:latency_ms=1000"]) == 0
    assert main(["check", "--run", str(profiled_run), "--budget", "host:latency_ms=0.000001"]) == 1
    assert (
        main(["check", "--run", str(profiled_run), "--budget", "cortex-m4f-stm32l4r5:ram_kb=0.5"])
        == 1
    )
    assert "FAIL" in capsys.readouterr().out


def test_check_unknown_device(profiled_run):
    with pytest.raises(UserError, match="not in this profile; profiled devices: .*host"):
        devices.check(profiled_run, {"rpi9": {"latency_ms": 1.0}})


def test_bad_budget_flag(profiled_run):
    with pytest.raises(UserError, match="must look like DEVICE:latency_ms"):
        main(["check", "--run", str(profiled_run), "--budget", "host"])


def test_profile_refuses_overwrite_and_unknown_device(profiled_run):
    with pytest.raises(UserError, match="already exists. Pass --force"):
        devices.profile(profiled_run)
    with pytest.raises(UserError, match="unknown device 'nokia3310'. Known devices: host"):
        devices.profile(profiled_run, devices=["nokia3310"], force=True)


def test_profile_needs_export(tmp_path):
    with pytest.raises(UserError, match="not found"):
        devices.profile(tmp_path)


def test_check_default_gate_passes_and_reports_unjudged(profiled_run, capsys):
    # no budgets anywhere: every device needs one fitting artifact; one with nothing judgeable is 'not judged'
    assert main(["check", "--run", str(profiled_run)]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "not judged" not in out
    assert any(
        line.split()[:3] == ["pda-pxa270", "model.int8-full.tflite", "fits"]
        for line in out.splitlines()
    )


def test_check_reports_a_device_with_nothing_judgeable(profiled_run, tmp_path, capsys):
    """ONNX files only: no MCU runs them, so the MCUs are 'not judged' and do not gate without a budget."""
    run = tmp_path / "onnx-only"
    shutil.copytree(profiled_run, run)
    prof = json.loads((run / "profile" / "profile.json").read_text())
    prof["records"] = [r for r in prof["records"] if r["format"] == "onnx"]
    (run / "profile" / "profile.json").write_text(json.dumps(prof))
    shipseal.write(run / "ship", run / "profile" / "profile.json")  # as if profile wrote it
    assert main(["check", "--run", str(run)]) == 0
    out = capsys.readouterr().out
    assert any(
        line.split()[:3] == ["cortex-m4f-stm32l4r5", "-", "not"] for line in out.splitlines()
    ), out
    assert (
        main(["check", "--run", str(run), "--budget", "cortex-m4f-stm32l4r5:latency_ms=100"]) == 1
    )


def test_budget_flag_with_ssh_device_name():
    from devices.budgets import parse_budget_flag

    assert parse_budget_flag("ssh:pi@board:latency_ms=5") == ("ssh:pi@board", {"latency_ms": 5.0})
