"""README.md's demo figures come from one named run (issue 38): `python -m benchmarks.readme_demo`
writes the block, and a check fails when a run's figures and the README's differ by more than
the run-to-run noise named per figure.

The fast tests use the session's fixture run (a small CNN, exported and profiled: seconds once
the session has it), because a full demo run takes a minute on an idle 2-core box and many under
load; they prove the block round-trips and that the check catches a figure out of its noise.
The slow test runs the demo itself and compares it with README.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import readme_demo as rd

REPO = Path(__file__).resolve().parents[1]


def test_block_round_trips_and_the_check_can_fail(profiled_run):
    block = rd.render(profiled_run, commit="abc1234")
    assert f"--run {profiled_run}`" in block and "commit abc1234" in block
    assert rd.differences(block, profiled_run) == []
    figs = {k: v for k, v, _ in rd.figures(profiled_run)}
    acc = figs["student accuracy"]
    lat = next(k for k in figs if k.startswith("cortex-m4f") and "latency" in k)
    rec = next(k for k in figs if k.startswith("recommended on"))
    n = int(figs["holdout rows"])
    moved = float(acc.split("%")[0]) - 300 / n  # three holdout rows fewer
    edited = block.replace(f"| student accuracy | {acc} |", f"| student accuracy | {moved:.2f}% |")
    edited = edited.replace(
        f"| {lat} | {figs[lat]} |", f"| {lat} | {float(figs[lat].split()[0]) * 1.05:.4g} ms |"
    )
    edited = edited.replace(f"| {rec} | {figs[rec]} |", f"| {rec} | model.fp32.tflite |")
    diff = rd.differences(edited, profiled_run)
    assert [d.split(":")[0] for d in diff] == ["student accuracy", lat, rec], diff
    one_row = block.replace(
        f"| student accuracy | {acc} |",
        f"| student accuracy | {float(acc.split('%')[0]) - 100 / n:.2f}% |",
    )
    assert rd.differences(one_row, profiled_run) == []  # one row is within the noise


def test_readme_holds_a_block_naming_its_run_date_and_commit():
    text = (REPO / "README.md").read_text()
    have = rd.parse_block(text)
    header = text[text.index(rd.BEGIN) : text.index(rd.END)].splitlines()[1]
    assert "`tinyship run --recipe recipes/demo.yaml" in header and "commit " in header
    assert "run 20" in header
    assert {
        "student accuracy",
        "student.pt2 bytes",
        "host estimator leave-one-out error (median)",
    } <= set(have)
    assert any(k.startswith("recommended on cortex-m7") for k in have)


@pytest.mark.slow
def test_readme_matches_a_fresh_demo_run(tmp_path):
    """`tinyship run --recipe recipes/demo.yaml` as `make demo` runs it; every README figure within
    its noise (benchmarks/readme_demo.py NOISE)."""
    run = tmp_path / "demo"
    p = subprocess.run(
        [sys.executable, "-m", "tinyship", "run", "--recipe", "recipes/demo.yaml", "--run", str(run),
         "--quiet"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    assert rd.differences((REPO / "README.md").read_text(), run) == []
