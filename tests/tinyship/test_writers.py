"""Writers that lose nothing (issue 41, and the log items of issue 38).

One lock from the first write: a second writer is refused at once and touches no file of the
running one; a refused command keeps the last good log; ``--run <run>/student`` creates
nothing; a logging handler kept past its stage never writes to a closed log; SIGTERM unwinds
like Ctrl-C (exit 143, children stopped, no ``.partial``); a full disk is exit 2 naming the
folder and the room needed. The disk-full tests mount a small tmpfs (root only; skipped where
mounting is not permitted) and unmount it in their teardown.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from rundir_fixture import TINY_RECIPE

from ground import cli, logs, rundir
from tinyship.command import main

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TINY = TINY_RECIPE


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` with its size, mtime and content hash."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        out[str(p.relative_to(folder))] = f"{st.st_size} {st.st_mtime_ns} {digest}"
    return out


def holder(run: Path) -> subprocess.Popen:
    """A process holding ``run``'s lock until killed (as a running command does)."""
    code = (
        "import sys, time; from ground import rundir\n"
        f"with rundir.locked({str(run)!r}):\n    print('locked', flush=True); time.sleep(120)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=ENV)
    assert p.stdout.readline().strip() == "locked"
    return p


@pytest.fixture
def run_copy(fixture_runs, tmp_path) -> Path:
    """A copy of the session's mlp run (conftest.py), a student/ and nothing else."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(fixture_runs["mlp"], run, ignore=shutil.ignore_patterns("export", "logs"))
    return run


def test_a_second_writer_is_refused_in_under_a_second_and_touches_nothing(run_copy, capsys):
    """Issue 41: concurrent distills shared .work/student.pt2; a refused export truncated the
    running export's log. Every writing subcommand is refused before it touches a file."""
    recipe = run_copy.parent / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(TINY))
    (run_copy / "logs").mkdir()
    (run_copy / "logs" / "export.log").write_text("the running export's log\n" * 1000)
    p = holder(run_copy)
    try:
        before = snapshot(run_copy)
        for argv in (
            ["distill", "--recipe", str(recipe), "--run", str(run_copy), "--force", "--seed", "1"],
            ["export", "--run", str(run_copy), "--force"],
            ["profile", "--run", str(run_copy), "--force"],
            ["report", "--run", str(run_copy)],
            ["run", "--recipe", str(recipe), "--run", str(run_copy), "--force"],
        ):
            t = time.perf_counter()
            assert cli.run_cli(main, argv) == 2, argv
            took = time.perf_counter() - t
            err = capsys.readouterr().err
            assert took < 1.0, (argv[0], took)
            assert f"in use by another tinyship process (PID {p.pid}," in err, err
            assert err.count("\n") == 1, err  # the refusal alone: no stage started
            assert snapshot(run_copy) == before, argv[0]
    finally:
        p.kill()
        p.wait()
    assert not (run_copy / ".work").exists()


def test_a_refused_export_keeps_the_last_good_log(run_copy, capfd):
    """Issue 38: `export` without --force was refused and export.log went from 35 KB to 0 B."""
    with rundir.staged_dir(run_copy, "export") as d:
        (d / "exports.json").write_text("{}")
    good = "the last good export's log\n" * 1400  # 35 KB
    (run_copy / "logs").mkdir()
    (run_copy / "logs" / "export.log").write_text(good)
    assert cli.run_cli(main, ["export", "--run", str(run_copy)]) == 2
    err = capfd.readouterr().err
    assert "already exists. Pass --force to replace it (only export/ is replaced" in err, err
    assert (run_copy / "logs" / "export.log").read_text() == good
    assert not (run_copy / "logs" / "export.running.log").exists()


def test_run_naming_a_stage_folder_is_refused_and_creates_nothing(run_copy, capsys):
    """Issue 38: `export --run build/demo/student` created student/logs/."""
    before = snapshot(run_copy)
    student = str(run_copy / "student")
    for argv in (["export", "--run", student], ["report", "--run", student]):
        assert cli.run_cli(main, argv) == 2
        err = capsys.readouterr().err
        assert f"is the student/ folder of the run directory '{run_copy}'" in err, err
        assert f"--run {run_copy}" in err
    assert snapshot(run_copy) == before
    assert not (run_copy / "student" / "logs").exists()


def test_a_missing_run_directory_is_not_created_by_export_profile_or_report(tmp_path, capsys):
    missing = tmp_path / "nothing"
    for cmd, hint in (
        ("export", "tinyship distill --recipe RECIPE --run"),
        ("profile", "tinyship export --run"),
        ("report", "tinyship profile --run"),
    ):
        assert cli.run_cli(main, [cmd, "--run", str(missing)]) == 2
        err = capsys.readouterr().err
        assert f"run directory '{missing}' not found" in err and hint in err, err
    assert not missing.exists()


def test_a_handler_kept_past_its_stage_never_writes_to_the_closed_log(tmp_path, capfd):
    """Issue 38: export.log held "--- Logging error --- I/O operation on closed file": a
    library's handler made in one stage held that stage's sys.stderr past its end."""
    lib = logging.getLogger("a_converter")
    lib.propagate = False
    with logs.stage_log(tmp_path, "distill"):
        lib.addHandler(logging.StreamHandler(sys.stderr))  # what absl and torch do on import
        lib.warning("first stage's warning")
    try:
        with logs.stage_log(tmp_path, "export"):
            lib.warning("second stage's warning")
        lib.warning("after the stages")
    finally:
        lib.handlers.clear()
    out, err = capfd.readouterr()
    texts = {p.name: p.read_text() for p in (tmp_path / "logs").iterdir()}
    assert "first stage's warning" in texts["distill.log"]
    assert "second stage's warning" in texts["export.log"]
    assert "after the stages" in err
    assert not any("Logging error" in t for t in (*texts.values(), out, err))


def test_force_names_the_folders_it_replaced_and_those_it_left(tmp_path):
    """Issue 41: `--force` replaces only the stage it names, and says so."""
    from tinyship import command_lock

    for stage in ("student", "export", "profile", "ship"):
        with rundir.staged_dir(tmp_path, stage) as d:
            (d / "v").write_text("old")
    before = command_lock.folders(tmp_path)
    with rundir.staged_dir(tmp_path, "export", force=True) as d:
        (d / "v").write_text("new")
    assert command_lock.replaced_note("export", tmp_path, before) == (
        f"export: --force replaced {tmp_path}/export/; left as they were: student/, profile/, ship/"
    )
    before = command_lock.folders(tmp_path)
    with rundir.staged_dir(tmp_path, "student", force=True) as d:
        (d / "v").write_text("new")
    note = command_lock.replaced_note("distill", tmp_path, before)
    assert note.startswith(f"distill: --force replaced {tmp_path}/student/; left as they were: ")
    assert note.endswith("(made from the old student: tinyship check and summary mark them stale)")
    assert [(tmp_path / s / "v").read_text() for s in ("profile", "ship")] == ["old", "old"]
    assert command_lock.replaced_note("export", tmp_path, command_lock.folders(tmp_path)) is None


_SLEEPER = "31.4159"  # a child's argument no other process has


def _children_alive() -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0") if d.name.isdigit() else []
            if argv[:2] == [b"sleep", _SLEEPER.encode()]:
                pids.append(int(d.name))
        except OSError:
            pass
    return pids


def test_sigterm_unwinds_like_ctrl_c(tmp_path):
    """Issue 41: SIGTERM exited -15 and could leave a .partial folder; now exit 143, the stage's
    child processes stopped, the old folder kept and no .partial left."""
    with rundir.staged_dir(tmp_path, "export") as d:
        (d / "v").write_text("old")
    code = (
        "import subprocess, sys; from ground import rundir; from ground.cli import run_cli\n"
        "def main(argv):\n"
        f"    with rundir.staged_dir({str(tmp_path)!r}, 'export', force=True) as d:\n"
        "        (d / 'v').write_text('new'); print('started', flush=True)\n"
        f"        subprocess.run(['sleep', '{_SLEEPER}'])  # a converter's worker\n"
        "    return 0\n"
        "sys.exit(run_cli(main))\n"
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )  # fmt: skip
    assert p.stdout.readline().strip() == "started"
    deadline = time.monotonic() + 10
    while not _children_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _children_alive()
    time.sleep(0.5)  # past Popen's own start-up (a signal inside it is CPython's to handle)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 143, err
    assert err.strip().splitlines() == [
        "terminated (SIGTERM); nothing was committed: every stage folder is as it was before "
        "this command (the stage in progress was discarded)."
    ]
    assert (tmp_path / "export" / "v").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "export"]  # no .partial
    assert not _children_alive()


# ---------------------------------------------------------------- a full disk (tmpfs)


# small_disk: tests/conftest.py


def _fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` until ``leave`` bytes are free."""
    import shutil

    free = shutil.disk_usage(disk).free
    with open(disk / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


def test_a_disk_that_fills_during_a_stage_is_exit_2_naming_folder_and_space(small_disk, capsys):
    run = small_disk / "run"

    def main_(argv):
        with rundir.staged_dir(run, "export") as d:
            with open(d / "model.onnx", "wb") as fh:
                for _ in range(8):
                    fh.write(b"\1" * (1 << 20))  # 8 MiB on a 4 MiB disk
        return 0

    assert cli.run_cli(main_, []) == 2
    err = capsys.readouterr().err.strip()
    assert f"error: the disk of '{run}' is full: No space left on device (errno 28)" in err, err
    assert "while writing 'export/'. The stage had written" in err and "needs more than" in err
    assert sorted(p.name for p in run.iterdir()) == [".lock"]  # no .partial, nothing half-written


def test_a_stage_is_refused_up_front_on_a_nearly_full_disk(run_copy, small_disk):
    """Issue 41: disk full during TFLite conversion exited 1 ("a budget missed") with nothing on
    the console and left a .partial folder: the converter (LLVM) exits the process when its
    write fails. The stage is now refused before it starts: exit 2, folder and room named."""
    import shutil

    run = small_disk / "run"
    shutil.copytree(run_copy / "student", run / "student")
    (run / "logs").mkdir()
    (run / "logs" / "export.log").write_text("last good log\n")
    _fill(small_disk, 64 * 1024)
    argv = ["export", "--run", str(run), "--formats", "tflite"]
    r = subprocess.run([sys.executable, "-m", "tinyship", *argv], capture_output=True, text=True, env=ENV)  # fmt: skip
    err = r.stderr
    assert r.returncode == 2, err
    assert f"not enough disk space to write export/ in '{run}'" in err, err
    # the fixture's student.pt2 is ~30 kB, so 4 x its size is under the 1 MB floor (ground.space)
    basis = r"\((4 x student.pt2|the least any stage starts with)\)"
    assert re.search(r"needs about [\d.]+ [kM]B " + basis + r"\. Free at least", err), err
    assert sorted(p.name for p in run.iterdir()) == [".lock", "logs", "student"]
    assert (run / "logs" / "export.log").read_text() == "last good log\n"


def test_a_log_on_a_full_disk_never_fails_a_write_of_the_stage(small_disk, capfd):
    """The stage log's writes that a full disk refuses are dropped, not raised into the writer:
    a native library (LLVM) exits the whole process when its write to stderr fails."""
    _fill(small_disk, 0)
    with logs.stage_log(small_disk, "export"):
        os.write(2, b"native line\n" * 20000)  # 240 KB into a full disk
        r = subprocess.run([sys.executable, "-c", "print('x' * 100000)"])
        logging.getLogger("somelib").warning("a warning")
    assert r.returncode == 0
    assert "Logging error" not in capfd.readouterr().err


# ---------------------------------------------------------------- the real commands (slow)


def _wait_for(pred, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _partial(run: Path, stage: str) -> bool:
    return any(run.glob(f".{stage}.*.partial"))


@pytest.mark.slow
def test_sigterm_during_a_real_export_keeps_the_old_export_and_its_log(run_copy):
    """Issue 41: SIGTERM left a .partial folder (1 of 2) and exited -15."""
    import export

    export.run(run_copy, formats=["onnx"], precisions=["fp32"], progress=False)
    (run_copy / "logs").mkdir()
    (run_copy / "logs" / "export.log").write_text("last good log\n")
    before = rundir.sha256_file(run_copy / rundir.EXPORTS)
    argv = ["export", "--run", str(run_copy), "--formats", "onnx,tflite", "--force"]
    p = subprocess.Popen(
        [sys.executable, "-m", "tinyship", *argv], stderr=subprocess.PIPE, text=True, env=ENV
    )
    _wait_for(lambda: _partial(run_copy, "export"))
    time.sleep(1.0)  # inside the conversions
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("terminated (SIGTERM); nothing was committed")
    assert rundir.sha256_file(run_copy / rundir.EXPORTS) == before
    assert not _partial(run_copy, "export")
    assert (run_copy / "logs" / "export.log").read_text() == "last good log\n"
    assert not (run_copy / "logs" / "export.running.log").exists()


@pytest.mark.slow
def test_ctrl_c_in_run_after_distill_names_the_student_it_replaced(tmp_path):
    """Issue 41: after Ctrl-C, `run` said "the run directory was left as it was" although
    student/ was already replaced (4/4)."""
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump({**TINY, "export": {"formats": ["onnx", "tflite"]}}))
    run = tmp_path / "run"
    argv = ["run", "--recipe", str(recipe), "--run", str(run)]
    p = subprocess.Popen(
        [sys.executable, "-m", "tinyship", *argv], stderr=subprocess.PIPE, text=True, env=ENV
    )
    _wait_for(lambda: (run / "student").is_dir() and _partial(run, "export"), 300)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"interrupted; this command had already replaced {run}/student/"), err
    assert "left as it was" not in err
    card = json.loads((run / rundir.CARD).read_text())
    assert all(rundir.sha256_file(run / "student" / n) == h for n, h in card["sha256"].items())
    assert not (run / "export").exists() and not _partial(run, "export")
