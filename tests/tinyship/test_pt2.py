"""Safe .pt2 loading: every entry kind torch.export.load would unpickle, eval or compile is refused."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from pt2_crafted import KINDS, LIVE, bomb, craft, huge_guard, plain_pt2  # noqa: E402

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


def test_a_guard_that_never_finishes_is_refused_without_evaluating_it(plain, tmp_path):
    """Issue 41: guards_code ["9**9**9 > 1"] passed the token check and export ran past 300 s."""
    bad = huge_guard(plain, tmp_path / "bad.pt2")
    t0 = time.monotonic()
    with pytest.raises(
        pt2.UnsafeArchiveError, match=r"guard .*9\*\*9\*\*9 > 1.* has the Pow construct"
    ):
        pt2.load(bad)
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize(
    "text, why",
    [
        ("9**9**9", "Pow construct"),
        ("1 << 99999999", "LShift construct"),
        ("PowByNatural(9, 999999999)", "name 'PowByNatural'"),
        ("LShift(1, 999999999)", "name 'LShift'"),
        ("Integer(" + "9" * 30 + ")", "over 2\\*\\*63"),
        ("L['x'].__class__", "attribute '__class__'"),
        ("[s1 for s1 in L]", "ListComp construct"),
        ("s1 # comment", "character '#'"),
        ("Symbol('s1\\n')", "character"),
        ("(" * 40 + "s1" + ")" * 40, None),  # harmless however deep the parentheses
        ("-" * 40 + "s1", "nests deeper"),
        ("Float('1e999999')", "not a symbol name"),
    ],
)
def test_shape_expressions_are_parsed_and_judged_never_evaluated(text, why):
    from ground.pt2_expr import expression_problem

    got = expression_problem(text)
    if why is None:
        assert got is None
    else:
        assert got is not None and re.search(why, got), got


@pytest.mark.parametrize(
    "text",
    [
        "Symbol('s77', positive=True, integer=True)",
        "L['x'].size()[0] <= 65536",
        "Max(1, s0*4 + FloorDiv(s1, 2)) == Mod(s2, 3)",
    ],
)
def test_plain_expressions_and_guards_pass(text):
    from ground.pt2_expr import expression_problem

    assert expression_problem(text) is None


def test_a_decompression_bomb_is_refused_before_inflating(plain, tmp_path):
    """Issue 41: a 627 KB .pt2 whose models/model.json inflates to 512 MiB was accepted."""
    import resource

    bad = bomb(plain, tmp_path / "bomb.pt2")
    assert bad.stat().st_size < 1 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    with pytest.raises(pt2.UnsafeArchiveError, match=r"models/model\.json' inflates to 536870912"):
        pt2.load(bad)
    assert time.monotonic() - t0 < 5
    grew_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grew_kib < 64 << 10  # nothing near 512 MiB was read


def test_total_inflation_is_bounded_too(plain, tmp_path):
    """Many entries each under its own limit still cannot inflate past 20x the archive."""
    bad = bomb(plain, tmp_path / "bomb.pt2", entry="data/weights/weight_0", inflated=48 << 20)
    with pytest.raises(pt2.UnsafeArchiveError, match=r"decompression bomb"):
        pt2.load(bad)


def test_deep_json_nesting_is_refused_before_parsing(plain, tmp_path):
    from pt2_crafted import _rewrite

    def edit(rel, d):
        if rel == "models/model.json":
            g = json.loads(d)
            g["extra"] = json.loads("[" * 500 + "]" * 500)
            return json.dumps(g).encode()
        return d

    bad = _rewrite(plain, tmp_path / "deep.pt2", edit)
    with pytest.raises(pt2.UnsafeArchiveError, match=r"nests 501 deep \(at most 64\)"):
        pt2.load(bad)


def test_duplicate_entries_are_refused(plain, tmp_path):
    import zipfile

    bad = tmp_path / "dup.pt2"
    with zipfile.ZipFile(plain) as zin, zipfile.ZipFile(bad, "w") as zout:
        for i in zin.infolist():
            zout.writestr(i.filename, zin.read(i))
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            name = next(n for n in zin.namelist() if n.endswith("models/model.json"))
            zout.writestr(name, zin.read(name))
    with pytest.raises(pt2.UnsafeArchiveError, match=r"appears twice"):
        pt2.load(bad)


def _corrupt_past_the_archive_check(src: Path, out: Path) -> bool:
    """Zero 26 bytes (one of the fuzz's mutations) at the first offset from the end where the
    archive check still passes and torch then fails to read the file; False if there is none."""
    from ground.errors import UserError

    data = src.read_bytes()
    for at in range(len(data) - 26, 0, -13):
        out.write_bytes(data[:at] + bytes(26) + data[at + 26 :])
        try:
            pt2.load(out)
        except UserError:
            continue  # refused by tinyship's own archive check
        except RuntimeError:
            return True
    return False


def test_a_corrupt_archive_is_one_clear_line_and_no_torch_traceback(tmp_path, fixture_runs):
    """The 1,000-case fuzz: torch.export.load logs a traceback to stderr before raising on a
    corrupt zip; tinyship keeps it off the console and names the cause in its one error line."""
    import subprocess
    import sys

    bad = tmp_path / "student.pt2"
    assert _corrupt_past_the_archive_check(fixture_runs["mlp"] / "student" / "student.pt2", bad)
    code = (
        "from ground import pt2\n"
        f"try:\n    pt2.load({str(bad)!r})\nexcept Exception as e:\n    print('ERR', e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stdout.startswith("ERR "), r.stdout + r.stderr
