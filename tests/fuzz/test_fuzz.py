"""Fuzzing the stages with mutated run-directory files (issues 14, 38 and 41).

Every case must end with exit 0, 1 or 2 and one error line, never exit 3, a native
crash, a hang (60 s per case), a traceback, a shipped file whose sha256 differs from the
one it was checked with, or a changed model shipped: a mutated file whose new sha256 was
written into exports.json and whose holdout probabilities differ from the original file's
by more than 1e-4 (the devices stage's parity re-run must refuse it). 100 cases here;
1,000 in ``make test-slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


@pytest.fixture(scope="module")
def base_run(fixture_runs, tmp_path_factory):
    """The fixture MLP's student/ with an ONNX and a TFLite fp32 export (every case copies it)."""
    import shutil

    import export

    run = tmp_path_factory.mktemp("fuzz") / "base"
    shutil.copytree(fixture_runs["mlp"] / "student", run / "student")
    export.run(run, formats=["onnx", "tflite"], precisions=["fp32"], progress=False)
    (run / ".lock").unlink(missing_ok=True)
    return run


def fuzz(base: Path, work: Path, n: int, seed: int) -> list[dict]:
    out = work / "results.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}
    r = subprocess.run(
        [
            sys.executable,
            str(HERE / "fuzz_runner.py"),
            str(base),
            str(work / "cases"),
            str(n),
            str(seed),
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60 * n,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(out.read_text())


def summarize(results: list[dict]) -> dict:
    return {
        "cases": len(results),
        "exit codes": dict(Counter(str(r["rc"]) for r in results)),
        "clean errors": sum(r["rc"] == 2 and r["error_lines"] == 1 for r in results),
        "crashes": sum(r["rc"] is not None and r["rc"] < 0 for r in results),
        "hangs": sum(r["hang"] for r in results),
        "tracebacks": sum(r["traceback"] for r in results),
        "bad ship": sum(bool(r["bad_ship"]) for r in results),
        "changed model shipped": sum(bool(r.get("changed_shipped")) for r in results),
        "by target": dict(Counter(r["target"] for r in results)),
    }


def check(results: list[dict]) -> None:
    s = summarize(results)
    if os.environ.get("TINYSHIP_FUZZ_REPORT"):
        Path(os.environ["TINYSHIP_FUZZ_REPORT"]).write_text(
            json.dumps({"summary": s, "cases": results}, indent=1)
        )
    bad = [
        r
        for r in results
        if r["hang"]
        or r["rc"] not in (0, 1, 2)
        or r["traceback"]
        or r["bad_ship"]
        or r.get("changed_shipped")
        or (r["rc"] == 2 and (r["error_lines"] != 1 or not r["last_line"].startswith("error:")))
    ]
    assert not bad, json.dumps({"summary": s, "bad": bad[:10]}, indent=1)


def test_fuzz_100_cases(base_run, tmp_path):
    n = int(os.environ.get("TINYSHIP_FUZZ_CASES", "100"))  # fewer for a quick local smoke run
    check(fuzz(base_run, tmp_path, n, seed=14))


@pytest.mark.slow
def test_fuzz_1000_cases(base_run, tmp_path):
    check(fuzz(base_run, tmp_path, 1000, seed=1014))
