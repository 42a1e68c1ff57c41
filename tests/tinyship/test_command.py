"""The `tinyship` command: flags, JSON output, check lines, logs, and the recommendation rule."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from ground import logs, recommend
from ground.errors import UserError
from tinyship import __version__
from tinyship.command import _emit_json, main, parser

REPO = Path(__file__).resolve().parents[2]
SUBCOMMANDS = ("run", "distill", "export", "profile", "check", "summary", "catalog", "report")


def _sub(name: str):
    top = parser()
    action = next(a for a in top._actions if getattr(a, "choices", None))
    return action.choices[name]


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_the_common_flags_and_help_everywhere(name):
    """--force (and --out, the same as --run) only where the subcommand writes; --run wherever a
    run directory is read (not catalog); --quiet, --json, --version, --debug everywhere."""
    p = _sub(name)
    flags = {s for a in p._actions for s in a.option_strings}
    assert {"--quiet", "--json", "--version", "--debug"} <= flags
    writes = name in ("run", "distill", "export", "profile")
    assert ("--force" in flags) == writes and ("--out" in flags) == writes, (name, flags)
    assert ("--run" in flags) == (name != "catalog")
    for a in p._actions:
        assert a.help, f"tinyship {name}: {a.option_strings or a.dest} has no help text"


@pytest.mark.parametrize("stage", ["distill", "export", "devices"])
def test_python_m_stage_options_all_have_help(stage):
    import argparse
    import importlib

    mod = importlib.import_module(f"{stage}.__main__")
    build = {"distill": "build_parser", "export": "parser", "devices": "_parser"}[stage]

    def walk(p):
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sp in a.choices.values():
                    yield from walk(sp)
            else:
                yield a

    assert [a.option_strings for a in walk(getattr(mod, build)()) if not a.help] == []


def test_version_and_python_m_tinyship():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-m", "tinyship", "--version"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0 and out.stdout.strip() == f"tinyship {__version__}"
    bad = subprocess.run(
        [sys.executable, "-m", "tinyship", "summary", "--run", "/nonexistent/run"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "error:" in bad.stderr


def test_summary_json_keys(profiled_run, capsys):
    assert main(["summary", "--run", str(profiled_run), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for k in ("teacher", "student", "baseline"):
        assert isinstance(doc["holdout"][k]["accuracy"], float)
    assert doc["devices"]
    for d in doc["devices"].values():
        assert {"recommended", "latency_ms", "ram_bytes", "flash_bytes", "fits"} <= set(d)
        assert d["fits"] == (d["recommended"] is not None)


def test_summary_marks_stages_whose_upstream_changed(profiled_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(profiled_run, run)
    assert main(["summary", "--run", str(run)]) == 0
    assert "STALE" not in capsys.readouterr().out
    exports = run / "export" / "exports.json"
    doc = json.loads(exports.read_text())
    doc["note"] = "edited after profiling"
    exports.write_text(json.dumps(doc))
    assert main(["summary", "--run", str(run)]) == 0
    stale = [line for line in capsys.readouterr().out.splitlines() if line.startswith("STALE")]
    assert [line.split()[1] for line in stale] == ["profile/:", "ship/:"], stale
    assert all("export/exports.json changed after it ran" in line for line in stale)
    assert all(f"tinyship profile --run {run} --force" in line for line in stale)
    assert main(["summary", "--run", str(run), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["stale"]) == {"profile", "ship"}


def test_check_names_device_file_and_reason_one_line_each(profiled_run, capsys):
    budget = "cortex-m4f-stm32l4r5:latency_ms=0.0001"
    assert main(["check", "--run", str(profiled_run), "--budget", budget]) == 1
    out = capsys.readouterr().out.splitlines()
    fails = [line for line in out if line.startswith("FAIL")]
    assert fails and all(
        line.startswith("FAIL  cortex-m4f-stm32l4r5: model.") and "> budget 0.0001 ms" in line
        for line in fails
    ), out
    assert main(["check", "--run", str(profiled_run), "--budget", budget, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["failures"]
    assert {f["device"] for f in doc["failures"]} == {"cortex-m4f-stm32l4r5"}
    assert all(f["file"].startswith("model.") and f["reasons"] for f in doc["failures"])


def test_check_passes_with_the_recommended_file(profiled_run, capsys):
    assert main(["check", "--run", str(profiled_run)]) == 0
    out = capsys.readouterr().out
    summary = json.loads(
        (main(["summary", "--run", str(profiled_run), "--json"]), capsys.readouterr().out)[1]
    )
    host = summary["devices"]["host"]["recommended"]
    assert f"ok    host: {host} fits" in out and out.rstrip().endswith("check: PASS")


def test_report_rebuilds_report_and_model_card(profiled_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(profiled_run, run)
    (run / "profile" / "report.html").unlink()
    assert main(["report", "--run", str(run), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)["written"]
    assert str(run / "profile" / "report.html") in written
    card = (run / "ship" / "MODEL_CARD.md").read_text()
    for section in (
        "## Data",
        "## Teacher",
        "## Student",
        "## Metrics",
        "## Which file on which device",
        "## Input contract",
        "## How to run each format",
    ):
        assert section in card
    # the snippets (the shipped examples' text, issue 34) run as written on raw rows and print labels
    snippets = [b.split("```", 1)[0] for b in card.split("```python\n")[1:]]
    joined = "\n".join(snippets)
    assert "import onnxruntime" in joined and "from ai_edge_litert" in joined
    np.save(tmp_path / "raw.npy", np.load(run / "student" / "holdout.npz")["x"][:5])
    for i, code in enumerate(snippets):
        (run / "ship" / "examples" / f"snippet{i}.py").write_text(code)
        out = subprocess.run(
            [sys.executable, f"examples/snippet{i}.py", str(tmp_path / "raw.npy")],
            cwd=run / "ship", capture_output=True, text=True,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert (
            out.stdout.strip().splitlines()[-1]
            in json.loads((run / "student" / "card.json").read_text())["labels"]
        )


def test_stage_log_takes_native_and_warning_output(tmp_path, capfd):
    with logs.stage_log(tmp_path, "export") as log:
        os.write(2, b"native: XNNPACK delegate created\n")  # what a C++ library does
        subprocess.run([sys.executable, "-c", "print('child process output')"], check=True)
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # pytest's own filters ignore FutureWarning
            warnings.warn("a FutureWarning from a converter", FutureWarning, stacklevel=1)
        with logs.capture():
            print("converted in training mode")  # a converter's own print
        lib = types.ModuleType("somelib")  # a library that sets up its own handler mid-stage
        exec(
            "import logging, sys\n"
            "def run():\n"
            "    h = logging.StreamHandler(sys.stderr)\n"
            "    log = logging.getLogger('somelib'); log.addHandler(h); log.propagate = False\n"
            "    log.warning('W1202 torchvision is not installed')\n"
            "    print('litert print', file=sys.stdout)\n",
            lib.__dict__,
        )
        lib.run()
        _emit_json(
            {"ours": "3 files exported"}
        )  # tinyship's own output (this test is not tinyship)
    out, err = capfd.readouterr()
    text = log.final.read_text()
    third_party = ("native: XNNPACK", "child process output", "FutureWarning", "training mode")
    for line in (*third_party, "torchvision is not installed", "litert print"):
        assert line in text and line not in out + err
    assert '"ours": "3 files exported"' in out and "ours" not in text


def _rec(artifact, device, verdict, lat, ram, budget=None, reasons=()):
    return {
        "artifact": artifact,
        "device": device,
        "device_class": "mcu",
        "verdict": verdict,
        "latency_ms": lat,
        "ram_bytes": ram,
        "flash_bytes": 1000,
        "method": "estimated",
        "budget": budget or {"latency_ms": 10, "ram_kb": 64},
        "reasons": list(reasons),
    }


def test_rule_most_accurate_that_fits_then_latency_then_ram():
    acc = {"a": 0.99, "b": 0.99, "c": 0.98, "d": 0.995}
    recs = [
        _rec("a", "m", "fits", 2.0, 5000),
        _rec("b", "m", "fits", 1.0, 9000),  # as accurate as a, faster: wins
        _rec("c", "m", "fits", 0.5, 100),  # fastest and smallest, less accurate
        _rec("d", "m", "too slow", 30.0, 100, reasons=["latency 30 ms > budget 10 ms"]),
    ]
    p = recommend.pick("m", recs, acc)
    assert p.fits and p.recommended == "b" and p.margins["latency_ms"] == pytest.approx(9.0)
    none = recommend.pick(
        "m",
        [r for r in recs if r["artifact"] == "d"]
        + [
            _rec(
                "e",
                "m",
                "too big (RAM)",
                1.0,
                64 * 1024 * 2,
                reasons=["RAM 128 KiB > budget 64 KiB"],
            )
        ],
        acc,
    )
    assert not none.fits and none.recommended is None
    # nearest miss: e is 2x over its RAM budget, d 3x over its latency budget
    assert none.file == "e" and none.reasons == ["RAM 128 KiB > budget 64 KiB"]


def test_profile_files_with_a_named_stack_and_out(shared_data, tmp_path):
    """The held-back check's command: tinyship profile FILE --out DIR --devices M4F,M7 --stack S; each
    MCU record names the stack asked for, and its estimate differs between stacks for a conv model."""
    kws = shared_data / "mlperf_tiny" / "kws_ref_model.tflite"
    mcus = "cortex-m4f-stm32l4r5,cortex-m7-stm32h7a3"
    ms = {}
    for stack in ("tflm-cmsis-nn", "x-cube-ai"):
        out = tmp_path / stack
        argv = ["profile", str(kws), "--out", str(out), "--devices", mcus, "--stack", stack]
        assert main([*argv, "--quiet"]) == 0
        recs = json.loads((out / "profile" / "profile.json").read_text())["records"]
        recs = [r for r in recs if r["device_class"] == "mcu"]
        assert {r["device"] for r in recs} == set(mcus.split(","))
        assert all(r["latency"]["stack"] == stack for r in recs)
        ms[stack] = {r["device"]: r["latency_ms"] for r in recs}
    assert ms["x-cube-ai"]["cortex-m7-stm32h7a3"] < ms["tflm-cmsis-nn"]["cortex-m7-stm32h7a3"]
    with pytest.raises(UserError, match=r"unknown stack 'tflm'.*--stack"):
        main(["profile", str(kws), "--out", str(tmp_path / "bad"), "--stack", "tflm", "--quiet"])
