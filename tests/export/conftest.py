"""Export-test fixtures: one full export of the fixture CNN, shared by the record checks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from export_helpers import copy_run  # noqa: E402


@pytest.fixture(scope="session")
def cnn_export(fixture_runs, tmp_path_factory):
    """Every registered format x precision for the fixture CNN (about 35 s on 2 cores)."""
    import export

    run = copy_run(fixture_runs["cnn"], tmp_path_factory.mktemp("cnn-export"))
    report = export.run(run, progress=False)
    return run, report
