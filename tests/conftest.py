"""Shared fixtures: contract-conforming run directories, built once per test session."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from rundir_fixture import KINDS, make_run  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def fixture_runs(tmp_path_factory) -> dict[str, Path]:
    """One run directory with a trained ``student/`` per student kind (mlp, cnn, dscnn)."""
    base = tmp_path_factory.mktemp("runs")
    return {k: make_run(base / k, k) for k in KINDS}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def exported_run(tmp_path_factory) -> Path:
    """A cnn student exported to ONNX and TFLite by the export stage's public API."""
    import export

    run = make_run(tmp_path_factory.mktemp("devruns") / "cnn", "cnn", epochs=10)
    export.run(run, formats=["onnx", "tflite"], force=True, keep_going=True, progress=False)
    return run


@pytest.fixture(scope="session")
def profiled_run(exported_run, tmp_path_factory) -> Path:
    import devices

    run = tmp_path_factory.mktemp("profiled") / "cnn"
    shutil.copytree(exported_run, run)
    devices.profile(run, force=True, settings=devices.Settings(runs=10, warmup=2))
    return run


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs at tmp_path/disk, unmounted afterwards; skipped where mounting is refused."""
    import os
    import subprocess

    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (run the tests as root to check a full disk)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True)  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"mount not permitted here: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
