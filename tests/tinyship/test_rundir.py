import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ground import rundir
from ground.errors import UserError


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
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "export"]


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
    with pytest.raises(UserError, match=r"is not an \.npz archive .*with --force"):
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


# ---- one writer, swaps that survive a kill at any instant (issue 14 item 5) ----

CHILD = Path(__file__).with_name("swap_child.py")
ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _child(run: Path, gen: str, kill_at: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CHILD), str(run), gen, str(kill_at)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )


def _state(run: Path) -> str:
    """'old', 'new' or 'absent' when profile/ and ship/ are whole and agree; else an AssertionError."""
    gens = set()
    for stage, meta in (("profile", "profile.json"), ("ship", "manifest.json")):
        if not (run / stage).exists():
            gens.add("absent")
            continue
        gen = json.loads((run / stage / meta).read_text())["gen"]
        big = "report.md" if stage == "profile" else "model.bin"
        reps = 50 if stage == "profile" else 999
        assert (run / stage / big).read_bytes() == gen.encode() * reps, f"{stage}/{big} torn"
        assert sorted(p.name for p in (run / stage).iterdir()) == sorted([meta, big])
        gens.add(gen)
    assert len(gens) == 1, f"profile/ and ship/ disagree: {gens}"
    leftovers = sorted(p.name for p in run.iterdir() if p.name not in ("profile", "ship", ".lock"))
    assert not leftovers, f"left behind: {leftovers}"
    return gens.pop()


def fault_table(tmp_path: Path, with_old: bool) -> list[tuple[int, str, str]]:
    """Kill the committing child before each of its file-system steps; recover; classify."""
    base = tmp_path / "base"
    if with_old:
        assert _child(base, "old", -1).returncode == 0
    if with_old:
        shutil.copytree(base, tmp_path / "dry")
    dry = _child(tmp_path / "dry", "new", -1)
    assert dry.returncode == 0, dry.stderr
    steps = json.loads(dry.stdout)
    rows = []
    for k, step in enumerate(steps):
        run = tmp_path / f"k{k}"
        if with_old:
            shutil.copytree(base, run)
        r = _child(run, "new", k)
        assert r.returncode == -signal.SIGKILL, (k, step, r.returncode, r.stderr)
        with rundir.locked(run):  # the next command's start repairs the folder
            pass
        rows.append((k, step, _state(run)))
    return rows


@pytest.mark.parametrize("with_old", [True, False], ids=["replace", "first-run"])
def test_sigkill_at_every_step_of_the_commit_leaves_a_whole_run(tmp_path, with_old):
    rows = fault_table(tmp_path, with_old)
    outcomes = [o for _, _, o in rows]
    before = "old" if with_old else "absent"
    # a prefix of kills keeps the old folders, the rest finish the commit: never a mix
    cut = outcomes.index("new")
    assert set(outcomes[:cut]) == {before} and set(outcomes[cut:]) == {"new"}, rows
    commit = rows[cut - 1][1]
    assert commit.startswith("replace(..commit.json."), rows  # the journal's rename decides
    assert len(rows) >= 15
    if os.environ.get("TINYSHIP_FAULT_TABLE"):
        with open(os.environ["TINYSHIP_FAULT_TABLE"], "a") as fh:
            for k, step, outcome in rows:
                fh.write(f"{'replace' if with_old else 'first-run'}\t{k}\t{step}\t{outcome}\n")


def _holder(run: Path) -> subprocess.Popen:
    code = (
        "import sys, time; from ground import rundir\n"
        f"with rundir.locked({str(run)!r}):\n    print('locked', flush=True); time.sleep(60)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=ENV)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_second_writer_is_refused_naming_the_holder_and_a_dead_holder_is_taken_over(tmp_path):
    run = tmp_path / "run"
    p = _holder(run)
    try:
        with pytest.raises(UserError, match=rf"in use by another tinyship process \(PID {p.pid},"):
            with rundir.staged_dir(run, "export"):
                pass
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    with rundir.staged_dir(run, "export") as d:  # the dead holder's lock is free again
        (d / "x").write_text("1")
    assert (run / "export" / "x").read_text() == "1"
    assert (run / ".lock").read_text().split()[0] == str(os.getpid())


def test_stale_lock_file_of_a_dead_pid_is_taken_over(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    (tmp_path / ".lock").write_text(f"{int(dead.stdout)} 2026-01-01T00:00:00+00:00\n")
    with rundir.locked(tmp_path):
        assert (tmp_path / ".lock").read_text().split()[0] == str(os.getpid())


def test_two_concurrent_runs_one_wins_the_other_exits_2(tmp_path):
    """Without --force: exactly one of two simultaneous writers commits, the other is refused."""
    code = (
        "import sys, time; from ground import rundir; from ground.cli import run_cli\n"
        "def main(argv):\n"
        f"    with rundir.staged_dir({str(tmp_path / 'run')!r}, 'export') as d:\n"
        "        time.sleep(1.5); (d / 'who').write_text(sys.argv[1])\n"
        "    return 0\n"
        "sys.exit(run_cli(main))\n"
    )
    ps = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(i)], stderr=subprocess.PIPE, text=True, env=ENV
        )
        for i in range(2)
    ]
    rcs = sorted((p.wait(), p.stderr.read()) for p in ps)
    assert [rc for rc, _ in rcs] == [0, 2], rcs
    assert "in use by another tinyship process" in rcs[1][1] or "already exists" in rcs[1][1]


def test_start_restores_a_missing_stage_from_old_and_deletes_partials(tmp_path):
    run = tmp_path
    (run / ".export.old").mkdir()
    (run / ".export.old" / "exports.json").write_text("{}")
    (run / ".profile.abc.partial").mkdir()
    (run / ".x.json.123.tmp").write_text("")
    with rundir.locked(run):
        pass
    assert (run / "export" / "exports.json").read_text() == "{}"
    assert sorted(p.name for p in run.iterdir()) == [".lock", "export"]


def test_old_tmp_folders_are_cleaned(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    old, fresh = tmp_path / "tmp" / "tinyship-onnx-old", tmp_path / "tmp" / "tinyship-onnx-new"
    old.mkdir()
    fresh.mkdir()
    os.utime(old, (0, 0))
    with rundir.locked(tmp_path / "run"):
        pass
    assert not old.exists() and fresh.exists()


def test_sigint_swallowed_by_a_library_still_keeps_the_old_folder(tmp_path):
    """A Ctrl-C that some converter catches as an ordinary error must not commit the stage."""
    code = (
        "import os, signal, sys; from ground import rundir; from ground.cli import run_cli\n"
        "def main(argv):\n"
        f"    with rundir.staged_dir({str(tmp_path)!r}, 'export', force=True) as d:\n"
        "        (d / 'v').write_text('new')\n"
        "        try:\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "        except BaseException:\n"
        "            pass  # a library that swallows KeyboardInterrupt\n"
        "    return 0\n"
        "sys.exit(run_cli(main))\n"
    )
    with rundir.staged_dir(tmp_path, "export") as d:
        (d / "v").write_text("old")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert r.returncode == 130, r.stderr
    assert (tmp_path / "export" / "v").read_text() == "old"
    assert len(r.stderr.strip().splitlines()) == 1


def test_out_naming_a_file_and_a_long_name_are_user_errors(tmp_path):
    f = tmp_path / "afile"
    f.write_text("")
    with pytest.raises(UserError, match=r"is a file, not a run directory"):
        with rundir.staged_dir(f, "export"):
            pass
    with pytest.raises(UserError, match=r"cannot create the run directory .*File name too long"):
        with rundir.staged_dir(tmp_path / ("x" * 300), "export"):
            pass


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_run_dir_is_a_user_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(UserError, match=r"cannot write the lock file .*Permission denied"):
            with rundir.staged_dir(ro, "export"):
                pass
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS])
def test_full_or_read_only_disk_while_writing_a_stage_is_a_user_error(tmp_path, err):
    expected = (
        r"the disk of .* is full: .* while writing 'export/model.onnx'.*Free some space"
        if err == errno.ENOSPC
        else r"cannot write the stage folder in .*Free some space"
    )
    with pytest.raises(UserError, match=expected):
        with rundir.staged_dir(tmp_path, "export") as d:
            raise OSError(err, os.strerror(err), str(d / "model.onnx"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]
