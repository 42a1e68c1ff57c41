"""The devices stage's named steps, each run alone on a real exported run."""

from __future__ import annotations

import dataclasses
import importlib
import json
import shutil

import pytest

from ground.errors import UserError

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


# an MFCC front-end as the distill stage's audio loader writes it into card.input.frontend
FRONTEND = {
    "sample_rate": 8000,
    "clip_samples": 8000,
    "n_fft": 256,
    "hop": 160,
    "frames": 49,
    "n_mels": 40,
    "n_mfcc": 13,
    "coefficients": 13,
    "features": "mfcc",
    "utterance_norm": False,
    "ops_per_inference": {"flops": 357553, "logs": 1960},
}


def _records(p, analyses, frontend):
    p.card = {**p.card, "input": {**p.card["input"], "frontend": frontend}}
    est = P.Estimator(None, None, {})  # MCU latency comes from the stack; no host fit needed
    return {(r.artifact, r.device): r for r in P.verdicts(p, analyses, [], est)}


def test_frontend_buffers_count_in_mcu_ram_and_decide_the_verdict(exported_run):
    """An audio front-end's working memory sits beside the arena on an MCU: counted in the RAM that
    is judged, shown apart in the record and the report, and enough to turn a fit into a miss."""
    from ground.recommend import size

    p = _plan(exported_run)
    analyses = P.analyse(p)
    plain = _records(p, analyses, None)
    with_fe = _records(p, analyses, FRONTEND)
    longer = _records(p, analyses, {**FRONTEND, "clip_samples": 16000, "frames": 99})
    mcu = [k for k, r in with_fe.items() if r.device_class == "mcu" and r.ram_bytes is not None]
    assert mcu
    for k, r in with_fe.items():
        base, fe = plain[k], r.ram_frontend
        assert base.ram_frontend is None and fe is not None
        if r.device_class in ("mcu", "pda") and base.ram_bytes is not None:
            assert (
                fe["in_ram_bytes"] and r.ram_bytes == base.ram_bytes + fe["bytes"] > base.ram_bytes
            )
            assert fe["buffers"]["window_int16"] == 2 * FRONTEND["clip_samples"]
            assert fe["bytes"] == sum(fe["buffers"].values())
            assert "front-end buffers" in r.ram_method
            # twice the window: exactly its extra int16 samples more
            assert longer[k].ram_bytes - r.ram_bytes == 2 * FRONTEND["clip_samples"]
        else:
            assert r.ram_bytes == base.ram_bytes and not fe["in_ram_bytes"]
            assert base.ram_bytes is None or "not included" in r.ram_method
    # a RAM budget between the model's RAM and model + front-end: fits without, misses with
    key = next(k for k in mcu if plain[k].verdict == "fits")
    art, dev = key
    extra = with_fe[key].ram_frontend["bytes"]
    p.budgets = {dev: {"ram_kb": (plain[key].ram_bytes + extra / 2) / 1024}}
    assert _records(p, analyses, None)[key].verdict == "fits"
    miss = _records(p, analyses, FRONTEND)[key]
    assert miss.verdict == "too big (RAM)"
    assert f"front-end {extra / 1024:.1f})" in miss.reasons[0]
    # the report's table shows the front-end's share of the RAM apart
    from devices.report import verdict_rows

    row = next(
        cells
        for _, cells in verdict_rows({"records": [dataclasses.asdict(miss)]}, {})
        if cells[0] == dev
    )
    assert row[5] == (
        f"{size(miss.ram_bytes)} (model {size(plain[key].ram_bytes)} + front-end {size(extra)})"
    )


def test_frontend_memory_follows_its_parameters():
    from devices.frontend import frontend_memory

    base = frontend_memory(FRONTEND)
    assert frontend_memory(None) is None
    logmel = frontend_memory({**FRONTEND, "features": "logmel"})
    assert "mfcc_fp32" not in logmel["buffers"] and logmel["bytes"] < base["bytes"]
    normed = frontend_memory({**FRONTEND, "utterance_norm": True})
    # per-utterance mean normalization needs the whole fp32 feature map before quantizing
    assert normed["bytes"] - base["bytes"] == 4 * FRONTEND["coefficients"] * FRONTEND["frames"]
    wide = frontend_memory({**FRONTEND, "n_fft": 512})
    assert wide["bytes"] > base["bytes"]
    broken = frontend_memory({"sample_rate": 8000})
    assert broken["bytes"] is None and "clip_samples" in broken["why"]


def _recipe_devices(run, section: dict) -> None:
    """As if distill and export had run with a recipe whose ``devices`` section is ``section``."""
    from ground import rundir

    card_path = run / "student" / "card.json"
    card = json.loads(card_path.read_text())
    card["lineage"]["recipe"]["devices"] = section
    card_path.write_text(json.dumps(card))
    ex = json.loads((run / "export" / "exports.json").read_text())
    ex["card_sha256"] = rundir.sha256_file(card_path)
    (run / "export" / "exports.json").write_text(json.dumps(ex))


def test_a_streaming_front_end_holds_a_frame_not_the_window():
    """Streaming: one frame per hop as audio arrives, so RAM holds n_fft samples instead of the
    window's, and an inference waits for the newest frame only (plus CMN's re-centring)."""
    from devices.catalog import load_catalog
    from devices.frontend import frontend_estimate, frontend_memory

    window, stream = frontend_memory(FRONTEND), frontend_memory(FRONTEND, "streaming")
    assert stream["mode"] == "streaming" and "window_int16" not in stream["buffers"]
    assert window["bytes"] - stream["bytes"] == 2 * (FRONTEND["clip_samples"] - FRONTEND["n_fft"])
    cmn = {**FRONTEND, "utterance_norm": True}
    ring = frontend_memory(cmn, "streaming")["bytes"] - stream["bytes"]
    assert ring == 4 * FRONTEND["coefficients"] * (FRONTEND["frames"] + 1)  # map + running sums
    dev = load_catalog().get("cortex-m4f-stm32l4r5")
    w, st = frontend_estimate(FRONTEND, dev), frontend_estimate(FRONTEND, dev, "streaming")
    # streaming: the newest frame plus the window's normalization and quantization (the shipped C's
    # cost, devices/frontend_cycles.json), which every inference pays: more than 1/frames of window
    assert w["ms"] / FRONTEND["frames"] < st["ms"] < w["ms"] and "newest frame" in st["model"]
    cmn_ops = {"flops": 357553 + 1274, "logs": 1960, "frames": 49, "total": {"cmn_flops": 1274}}
    with_cmn = frontend_estimate({**cmn, "ops_per_inference": cmn_ops}, dev, "streaming")
    assert with_cmn["flops"] == int(357553 / 49 + 1274)  # the whole map re-centred each time


def test_the_recipe_chooses_the_front_end_model(exported_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    _recipe_devices(run, {"frontend": "streaming"})
    p = _plan(run)
    assert p.frontend_mode == "streaming" and _plan(exported_run).frontend_mode == "window"
    analyses = P.analyse(p)
    stream = _records(p, analyses, FRONTEND)
    p.frontend_mode = "window"
    window = _records(p, analyses, FRONTEND)
    k = next(
        k
        for k, r in window.items()
        if r.device_class == "mcu" and r.ram_bytes is not None and r.latency_ms is not None
    )
    saved = 2 * (FRONTEND["clip_samples"] - FRONTEND["n_fft"])
    assert window[k].ram_bytes - stream[k].ram_bytes == saved
    assert stream[k].ram_frontend["mode"] == "streaming"
    assert stream[k].latency["frontend"]["mode"] == "streaming"
    assert stream[k].latency_ms < window[k].latency_ms
    _recipe_devices(run, {"frontend": "ring"})
    with pytest.raises(UserError, match="devices.frontend"):
        _plan(run)


def test_the_recipe_names_the_mcu_stack_and_the_flag_overrides_it(exported_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    # issue 37: X-CUBE-AI exists on STM32 boards only, so the recipe names those as its targets
    _recipe_devices(
        run, {"stack": "x-cube-ai", "targets": ["cortex-m4f-stm32l4r5", "cortex-m7-stm32h7a3"]}
    )
    p = _plan(run)
    assert p.stack == "x-cube-ai" and _plan(run, stack="tflm-cmsis-nn").stack == "tflm-cmsis-nn"
    analyses = P.analyse(p)
    mcu = [
        r
        for r in P.verdicts(p, analyses, [], P.Estimator(None, None, {}))
        if r.method == "estimated"
    ]
    assert mcu and {r.latency["stack"] for r in mcu} == {"x-cube-ai"}
    _recipe_devices(run, {"stack": "tflm-cmsis"})
    with pytest.raises(
        UserError, match=r"recipe key 'devices.stack' is 'tflm-cmsis'; known stacks"
    ):
        _plan(run)
