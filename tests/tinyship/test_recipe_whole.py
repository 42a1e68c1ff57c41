"""The whole recipe validated up front (issue 41): every section before any stage runs, no
NaN/inf/out-of-range value left for a later stage, duplicate keys refused, no file echoed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ground.errors import UserError
from ground.recipe import load_recipe, read_yaml
from tinyship.recipe_check import validate_recipe

ROOT = Path(__file__).resolve().parents[2]
BASE = "name: t\ndata: {name: digits}\nstudent: {kind: mlp, hidden: [8]}\ntrain: {epochs: 1}\n"


def _recipe(tmp_path: Path, extra: str) -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(BASE + extra)
    return p


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            "devices: {budgets: {cortex-m4f-stm32l4r5: {latency_ms: .nan}}}",
            r"'devices.budgets.cortex-m4f-stm32l4r5.latency_ms' must be a finite number; got nan",
        ),
        (
            "devices: {budgets: {cortex-m4f-stm32l4r5: {ram_kb: .inf}}}",
            r"'devices.budgets.cortex-m4f-stm32l4r5.ram_kb' must be a finite number; got inf",
        ),
        (
            "devices: {budgets: {cortex-m4f-stm32l4r5: {ram_kb: 1.0e+308}}}",
            r"budget 'cortex-m4f-stm32l4r5.ram_kb' must be a finite positive number up to 4.29497e\+09",
        ),
        ("devices: {budgets: {no-such-board: {ram_kb: 64}}}", r"names device 'no-such-board'"),
        (
            "devices: {targets: [no-such-board]}",
            r"'devices.targets': unknown device 'no-such-board'",
        ),
        ("devices: {stack: nope}", r"'devices.stack': unknown stack 'nope'"),
        ("devices: {runs: 0}", r"'devices.runs' must be in the range \[1, 100000\]"),
        ("export: {formats: [onxx]}", r"export format 'onxx' is not known"),
        ("export: {precisions: [int4]}", r"precision 'int4' is not known"),
        ("export: {thresholds: {agreement: 2}}", r"'export.thresholds'"),
        ("specialists: {n_specialists: -1}", r"'specialists.n_specialists'"),
        ("recommend: {tolerance: .nan}", r"'recommend.tolerance' must be a finite number"),
        ("transfer: {size_multiplier: 99999999999999999999}", r"past the largest integer"),
    ],
)
def test_every_section_is_validated_before_any_stage(tmp_path, extra, message):
    with pytest.raises(UserError, match=message):
        validate_recipe(_recipe(tmp_path, extra))


def test_a_valid_recipe_and_the_demo_pass(tmp_path):
    validate_recipe(_recipe(tmp_path, "devices: {budgets: {rpi4: {latency_ms: 5}}}\n"))
    validate_recipe(ROOT / "recipes" / "demo.yaml")


@pytest.mark.parametrize(
    "hidden, message",
    [
        ("[1000000000000]", r"'student.hidden': must be a non-empty list of at most 64 integers"),
        ("[65536, 65536, 65536]", None),  # each width allowed; the size is refused at build time
    ],
)
def test_student_widths_are_bounded_before_allocation(tmp_path, hidden, message):
    """Issue 41: student.hidden [1000000000000] failed in the allocator (exit 3)."""
    p = tmp_path / "r.yaml"
    p.write_text(BASE.replace("hidden: [8]", f"hidden: {hidden}"))
    if message:
        with pytest.raises(UserError, match=message):
            validate_recipe(p)
    else:
        validate_recipe(p)
        from distill.students import build_student

        with pytest.raises(UserError, match=r"gives 8,594,\d+,\d+ parameters .*\(at most"):
            build_student({"kind": "mlp", "hidden": [65536, 65536, 65536]}, (64,), 10)


def test_duplicate_keys_are_an_error_naming_both_lines(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("train:\n  epochs: 3\n  lr: 0.1\n  epochs: 30\n")
    with pytest.raises(UserError, match=r"sets the key 'epochs' twice \(lines 2 and 4\)"):
        load_recipe(p)
    p.write_text("data: {name: digits}\ndata: {name: mnist}\n")
    with pytest.raises(UserError, match=r"sets the key 'data' twice \(lines 1 and 2\)"):
        load_recipe(p)


def test_a_yaml_error_does_not_quote_the_file(tmp_path):
    """Issue 41: an error message echoed a line of the file it read (tried with a system
    password file); PyYAML's message quotes the offending line."""
    p = tmp_path / "secret.yaml"
    p.write_text("a: [1, 2\nb: s3cr3t-t0ken: x\n")
    with pytest.raises(UserError) as exc:
        read_yaml(p)
    assert "s3cr3t" not in str(exc.value) and "line 2, column" in str(exc.value)


def test_a_csv_that_is_not_a_csv_is_not_echoed(tmp_path):
    """Issue 41: data.path pointing at /etc/passwd printed its first line in the error."""
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:s3cr3t:/root:/bin/bash\n" + "daemon,x,1,1\n" * 3)
    from distill.data import load_data, validate_section

    for cfg in ({"label": "y"}, {"label": "y", "delimiter": ":"}):
        with pytest.raises(UserError) as exc:
            load_data(validate_section({"name": "csv", "path": str(secret), **cfg}))
        assert "s3cr3t" not in str(exc.value), str(exc.value)


def test_tinyship_run_refuses_a_bad_devices_section_in_seconds(tmp_path):
    """Issue 41: a bad devices/export section failed only after distill (13 min on the demo)."""
    p = _recipe(tmp_path, "devices: {budgets: {cortex-m4f-stm32l4r5: {latency_ms: .inf}}}\n")
    t0 = time.monotonic()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "tinyship",
            "run",
            "--recipe",
            str(p),
            "--run",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert "devices.budgets.cortex-m4f-stm32l4r5.latency_ms" in r.stderr
    assert not (tmp_path / "run" / "student").exists()
    assert time.monotonic() - t0 < 60  # imports only: no data loaded, no teacher fitted


def test_budget_flag_out_of_range_is_a_user_error():
    """Issue 41: --budget cortex-m4f-stm32l4r5:ram_kb=1e308 raised OverflowError (exit 3)."""
    from devices.budgets import parse_budget_flag

    with pytest.raises(UserError, match=r"ram_kb must be a finite positive number up to"):
        parse_budget_flag("cortex-m4f-stm32l4r5:ram_kb=1e308")
