"""One API shape per stage, re-exported from tinyship without making ``import tinyship`` heavy."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest


def test_importing_tinyship_imports_no_stage_and_no_torch():
    code = (
        "import sys, tinyship; "
        "print(sorted(m for m in ('torch', 'distill', 'export', 'devices', 'onnx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_three_entry_points_and_their_signatures():
    import devices
    import distill
    import export
    import tinyship

    assert tinyship.distill is distill.run
    assert tinyship.export is export.run
    assert tinyship.profile is devices.profile
    assert list(inspect.signature(distill.run).parameters)[:2] == ["recipe", "run_dir"]
    assert list(inspect.signature(export.run).parameters)[:1] == ["run_dir"]
    assert list(inspect.signature(devices.profile).parameters)[:2] == ["run_dir", "devices"]
    for fn in (distill.run, export.run, devices.profile):
        kinds = {p.kind for p in inspect.signature(fn).parameters.values()}
        assert (
            inspect.Parameter.VAR_KEYWORD not in kinds
            and inspect.Parameter.VAR_POSITIONAL not in kinds
        )


def test_distill_run_has_the_pipeline_signature():
    """distill.run is a lazy wrapper (the pipeline imports torch): it must not drift from it."""
    import distill
    from distill import pipeline

    assert inspect.signature(distill.run) == inspect.signature(pipeline.run)


def test_unknown_attribute():
    import tinyship

    with pytest.raises(AttributeError, match="has no attribute 'distil'"):
        tinyship.distil  # noqa: B018
