"""Safe .pt2 loading: every entry kind torch.export.load would unpickle, eval or compile is refused."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from pt2_crafted import KINDS, LIVE, craft, plain_pt2  # noqa: E402

from ground import pt2  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    return plain_pt2(tmp_path_factory.mktemp("pt2") / "plain.pt2")


def test_plain_program_loads_and_runs(plain):
    ep = pt2.load(plain)
    ref = torch.export.load(str(plain)).module()
    x = torch.randn(5, 4)
    assert torch.equal(ep.module()(x), ref(x))


@pytest.mark.parametrize("kind", LIVE)
def test_craft_runs_code_under_plain_torch_export_load(kind, plain, tmp_path, caplog):
    """The crafted payloads are live: torch's own loader runs them (so the refusal test can fail)."""
    marker = tmp_path / "marker"
    bad = craft(kind, plain, tmp_path / "bad.pt2", marker)
    caplog.set_level(logging.CRITICAL)
    try:
        torch.export.load(str(bad)).module()(torch.randn(2, 4))
    except Exception:
        pass  # the payload ran before the program turned out broken
    assert marker.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_crafted_entry_is_refused_and_no_code_runs(kind, plain, tmp_path):
    marker = tmp_path / "marker"
    bad = craft(kind, plain, tmp_path / "bad.pt2", marker)
    with pytest.raises(
        pt2.UnsafeArchiveError, match=r"entry '.+' .*refuses it\. Pass --trust-pickles"
    ):
        pt2.load(bad)
    assert not marker.exists()


def test_trust_pickles_hands_the_file_to_torch(plain, tmp_path):
    marker = tmp_path / "marker"
    bad = craft("sample_inputs", plain, tmp_path / "bad.pt2", marker)
    try:
        pt2.load(bad, trust_pickles=True)
    except Exception:
        pass
    assert marker.exists()


def test_not_a_zip_is_a_user_error(tmp_path):
    f = tmp_path / "junk.pt2"
    f.write_bytes(b"not a zip at all")
    with pytest.raises(pt2.UserError, match=r"is not a \.pt2 archive"):
        pt2.load(f)


@pytest.mark.parametrize("kind", ["sample_inputs", "sympy_expr", "weight_use_pickle"])
def test_export_cli_refuses_crafted_student(kind, fixture_runs, tmp_path):
    """A crafted student.pt2 with a consistent card: python -m export exits 2, one line, no code ran."""
    sys.path.insert(0, str(ROOT / "tests" / "export"))
    from export_helpers import copy_run, refresh_hashes

    run = copy_run(fixture_runs["mlp"], tmp_path / "run")
    marker = tmp_path / "marker"
    student = run / "student" / "student.pt2"
    crafted = craft(kind, student, tmp_path / "crafted.pt2", marker)
    os.replace(crafted, student)
    refresh_hashes(run)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-m", "export", "--run", str(run), "--formats", "onnx"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "refuses it" in lines[0], r.stderr
    assert not marker.exists()
    assert not (run / "export").exists()
