"""profile.json's "not checked" lines say, per run, how each device's latency was found (issue 35).

They used to say "latency on catalog devices other than the host is estimated, not measured" on
every run, also under ``--emulate`` where the MCU and PDA figures come from firmware run in QEMU.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from devices.outputs import not_checked
from devices.records import Plan, Record, Target


def _rec(art: str, dev: str, method: str, cls: str = "mcu", **kw) -> Record:
    lat = None if method == "none" else 2.5
    verdict = "not runnable" if method == "none" else "fits"
    return Record(art, "tflite", "x", dev, cls, method, lat, kw.get("latency") or {}, 1, "", 1, "",
                  {}, verdict)  # fmt: skip


def _plan(*targets: Target) -> Plan:
    return Plan(Path("."), {}, {}, [], None, [], list(targets) or [Target("host")], {}, {})


def test_emulated_and_estimated_devices_are_named_each_for_what_it_was():
    recs = [
        _rec("m.int8-full.tflite", "cortex-m4f", "emulated"),
        _rec("m.fp32.tflite", "cortex-m4f", "estimated"),
        _rec("m.int8-full.tflite", "cortex-m7", "emulated"),
        _rec("m.int8-full.tflite", "pda-pxa270", "estimated", cls="pda"),
        _rec("m.int8-full.tflite", "host", "measured", cls="host"),
        _rec("m.onnx", "cortex-m7", "none"),
    ]
    lines = not_checked(_plan(), recs)
    assert lines[0] == "latency estimated, not measured, on cortex-m4f (m.fp32.tflite), pda-pxa270"
    assert lines[1].startswith(
        "latency on cortex-m4f (m.int8-full.tflite), cortex-m7 from instructions counted in QEMU"
    )
    assert len(lines) == 2  # the host measured; no adb target; no phone line


def test_without_emulation_no_line_claims_it_and_the_host_alone_says_nothing():
    recs = [
        _rec("m.tflite", "cortex-m7", "estimated"),
        _rec("m.tflite", "host", "measured", "host"),
    ]
    assert not_checked(_plan(), recs) == ["latency estimated, not measured, on cortex-m7"]
    assert not_checked(_plan(), [_rec("m.tflite", "host", "measured", "host")]) == []


def test_qemu_user_timings_and_an_adb_target_are_said():
    pi = _rec("m.tflite", "pi-sim", "measured", "sbc",
              latency={"timing": "emulated, not a device timing"})  # fmt: skip
    lines = not_checked(_plan(Target("host"), Target("adb", "R5C")), [pi])
    assert lines == [
        "latency on pi-sim timed under qemu-user on this machine's CPU (not a device timing, "
        "not judged)",
        "the adb runner is untested on a phone (parser tested on recorded outputs only)",
    ]


def test_a_profile_without_emulate_writes_the_estimated_devices_it_judged(profiled_run):
    doc = json.loads((profiled_run / "profile" / "profile.json").read_text())
    estimated = sorted({r["device"] for r in doc["records"] if r["method"] == "estimated"})
    assert estimated, "the fixture profile estimates catalog devices"
    line = next(n for n in doc["not_checked"] if n.startswith("latency estimated"))
    assert all(d in line for d in estimated)
    assert not any("QEMU" in n for n in doc["not_checked"])
    assert not any("adb" in n for n in doc["not_checked"])


def _tools() -> bool:
    from devices.firmware import tree
    from ground.errors import UserError

    try:
        tree.tflm_dir()
    except UserError:
        return False
    return tree.tools_available()


@pytest.mark.slow
@pytest.mark.skipif(not _tools(), reason="TFLite Micro tree or arm-none-eabi-gcc / qemu missing")
def test_an_emulated_profile_says_which_files_were_emulated(exported_run, tmp_path):
    import devices

    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    dev = "cortex-m4f-stm32l4r5"
    rep = devices.profile(run, [dev], force=True, emulate=True,
                          settings=devices.Settings(runs=3, warmup=1))  # fmt: skip
    emulated = [r.artifact for r in rep.records if r.device == dev and r.method == "emulated"]
    assert emulated == ["model.int8-full.tflite"]
    line = next(n for n in rep.not_checked if "QEMU" in n)
    assert line.startswith(f"latency on {dev} (model.int8-full.tflite) from instructions counted")
    est = next(n for n in rep.not_checked if n.startswith("latency estimated"))
    assert dev in est and "model.int8-full.tflite" not in est
