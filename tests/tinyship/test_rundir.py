import json

import numpy as np
import pytest

from tinyship import rundir
from tinyship.errors import UserError


def test_staged_dir_swaps_in_only_on_success(tmp_path):
    with rundir.staged_dir(tmp_path, "export") as d:
        rundir.atomic_write_json(d / "a.json", {"v": 1})
    assert json.loads((tmp_path / "export" / "a.json").read_text()) == {"v": 1}

    with pytest.raises(RuntimeError):
        with rundir.staged_dir(tmp_path, "export", force=True) as d:
            rundir.atomic_write_json(d / "a.json", {"v": 2})
            raise RuntimeError("conversion failed half way")
    # the old, complete result is kept and no temp folder is left behind
    assert json.loads((tmp_path / "export" / "a.json").read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_existing_stage_refused_without_force(tmp_path):
    (tmp_path / "student").mkdir()
    with pytest.raises(UserError, match="already exists. Pass --force"):
        with rundir.staged_dir(tmp_path, "student"):
            pass


def test_force_replaces(tmp_path):
    for v in (1, 2):
        with rundir.staged_dir(tmp_path, "profile", force=True) as d:
            rundir.atomic_write_json(d / "p.json", {"v": v})
    assert json.loads((tmp_path / "profile" / "p.json").read_text()) == {"v": 2}


def test_unknown_stage_is_a_bug_not_a_user_error(tmp_path):
    with pytest.raises(ValueError, match="unknown stage"):
        with rundir.staged_dir(tmp_path, "students"):
            pass


def test_json_rejects_nan(tmp_path):
    with pytest.raises(ValueError):
        rundir.atomic_write_json(tmp_path / "x.json", {"acc": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_npz_roundtrip_and_missing_keys(tmp_path):
    rundir.atomic_write_npz(tmp_path / "h.npz", x=np.ones((2, 3), np.float32))
    assert rundir.read_npz(tmp_path / "h.npz", "holdout", ("x",))["x"].shape == (2, 3)
    with pytest.raises(UserError, match=r"lacks arrays \['y'\]"):
        rundir.read_npz(tmp_path / "h.npz", "holdout", ("x", "y"))


def test_corrupt_files_give_clear_errors(tmp_path):
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(UserError, match="is not valid JSON"):
        rundir.read_json(tmp_path / "c.json", "student card")
    (tmp_path / "h.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="cannot be read"):
        rundir.read_npz(tmp_path / "h.npz", "holdout", ("x",))
    with pytest.raises(UserError, match="not found"):
        rundir.read_json(tmp_path / "missing.json", "student card")


def test_sha256_of_folder_depends_on_names_and_content(tmp_path):
    a = tmp_path / "a.mlpackage"
    (a / "w").mkdir(parents=True)
    (a / "w" / "weights.bin").write_bytes(b"123")
    h1 = rundir.sha256_file(a)
    (a / "w" / "weights.bin").write_bytes(b"124")
    assert rundir.sha256_file(a) != h1
    assert rundir.path_bytes(a) == 3
