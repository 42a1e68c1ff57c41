"""The LiteRT conversion in a child process: a full disk is exit 2, never a silent exit 1 (issues 41, 38).

LLVM, inside the TFLite converter, exits the whole process with status 1 when the write of its
output file fails; that looked like "a budget missed" with nothing on the console and left a
``.partial`` folder. The conversion now runs in a forked child (``ground.isolate.write_in_child``),
so the parent sees the death and names the full disk. The disk-full tests mount a small tmpfs
(root only; skipped where mounting is refused) and fill it while the stage runs.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ground import isolate
from ground.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


# small_disk: tests/conftest.py


def _fill(disk: Path) -> None:
    """Leave no free byte on ``disk``."""
    free = shutil.disk_usage(disk).free
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        os.posix_fallocate(fd, 0, free)
    finally:
        os.close(fd)


def _fill_when_the_stage_starts(disk: Path, run: Path, stage: str) -> threading.Thread:
    """Fill ``disk`` as soon as ``run`` has its ``.<stage>.*.partial`` folder: another program
    taking the room after the up-front check (``ground.space.require``) passed."""

    def watch() -> None:
        deadline = time.monotonic() + 300
        while not any(run.glob(f".{stage}.*.partial")) and time.monotonic() < deadline:
            time.sleep(0.01)
        _fill(disk)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


# ---------------------------------------------------------------- write_in_child, alone


def _llvm_like(text: bytes, code: int) -> None:
    os.write(2, text)
    os._exit(code)


def test_the_result_comes_back_and_stderr_passes_through(tmp_path, capfd):
    def fn(x):
        os.write(2, b"converter says hello\n")
        return {"x": x}

    assert isolate.write_in_child(fn, 3, out=tmp_path / "m.tflite", what="w") == {"x": 3}
    assert "converter says hello" in capfd.readouterr().err


def test_a_child_that_exits_saying_no_space_is_a_user_error_naming_the_file(tmp_path):
    out = tmp_path / "m.tflite"
    line = b"LLVM ERROR: IO failure on output stream: No space left on device\n"
    full = rf"the disk of '{tmp_path}' is full: writing w to 'm.tflite'"
    with pytest.raises(UserError, match=full) as e:
        isolate.write_in_child(_llvm_like, line, 1, out=out, what="w")
    cause = e.value.__cause__
    assert isinstance(cause, OSError) and cause.errno == errno.ENOSPC and cause.filename == str(out)


def test_a_child_that_exits_on_a_disk_with_room_is_a_child_error_with_its_last_words(tmp_path):
    said = (
        r"w exited the process with status 1 without a result \(its last words: "
        r"LLVM ERROR: op not supported\)"
    )
    with pytest.raises(isolate.ChildError, match=said) as e:
        line = b"LLVM ERROR: op not supported\n"
        isolate.write_in_child(_llvm_like, line, 1, out=tmp_path / "m", what="w")
    assert e.value.status == 1 and not isinstance(e.value, UserError)


def test_a_crash_is_a_child_error_naming_the_signal(tmp_path):
    def segv():
        import ctypes

        ctypes.string_at(0)

    with pytest.raises(isolate.ChildError, match=r"was killed by SIGSEGV") as e:
        isolate.write_in_child(segv, out=tmp_path / "m", what="w")
    assert e.value.status == -signal.SIGSEGV


def test_a_python_error_in_the_child_keeps_its_type_and_message(tmp_path):
    def bad():
        raise ValueError("shape mismatch in layer 3")

    with pytest.raises(isolate.ChildError, match=r"^ValueError: shape mismatch in layer 3$"):
        isolate.write_in_child(bad, out=tmp_path / "m", what="w")


def test_a_stalled_child_is_stopped(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(isolate.ChildStalled, match=r"w used no CPU for 1 s and was stopped"):
        isolate.write_in_child(time.sleep, 60, out=tmp_path / "m", what="w", stall_s=1)
    assert time.monotonic() - t0 < 15


def test_a_silent_death_on_a_full_disk_is_a_user_error(small_disk):
    """No text at all (a library that exits without a word): the free space tells."""
    out = small_disk / "m.tflite"

    def write_or_die():
        try:
            out.write_bytes(b"\1" * 65536)
        except OSError:
            os._exit(1)

    _fill(small_disk)
    full = r"is full: writing w to 'm.tflite' failed after .* are free there"
    with pytest.raises(UserError, match=full):
        isolate.write_in_child(write_or_die, out=out, what="w")


# ---------------------------------------------------------------- the real converter


def test_a_fork_after_an_in_process_conversion_does_not_deadlock(fixture_runs, tmp_path, capfd):
    """A conversion in this process first leaves JAX's MLIR thread pool and torch's OpenMP pool
    with live threads; the child of the next conversion must not wait on their dead copies (it
    would be stopped after ``isolate.STALL_S`` and redone in-process, which this test refuses)."""
    import litert_torch
    import torch

    from export.formats import tflite_format
    from export.program import load_student

    m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU()).eval()
    litert_torch.convert(m, (torch.randn(1, 1, 8, 8),)).export(str(tmp_path / "first.tflite"))
    x = torch.randn(256, 256)
    (x @ x).sum()
    student = load_student(fixture_runs["mlp"])
    t0 = time.monotonic()
    rec = tflite_format.convert(
        student.program, student.card, student.calibration, "int8-full", tmp_path / "m.tflite"
    )
    assert rec.input.dtype == "int8" and (tmp_path / "m.tflite").stat().st_size > 0
    assert "converting in this process instead" not in capfd.readouterr().err
    assert time.monotonic() - t0 < isolate.STALL_S


def _export(run: Path, *extra: str, **kw) -> subprocess.Popen:
    argv = ["export", "--run", str(run), "--formats", "tflite", "--precisions", "fp32", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "tinyship", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        **kw,
    )


def _student_copy(fixture_runs, run: Path) -> Path:
    shutil.copytree(fixture_runs["mlp"] / "student", run / "student")
    return run


def test_disk_full_during_the_tflite_conversion_is_exit_2_and_leaves_no_partial(
    fixture_runs, small_disk
):
    """Reproduced on a 3 MB tmpfs with the demo run before the fix: exit 1, nothing on the
    console, a .export.*.partial folder left, and 'LLVM ERROR: IO failure on output stream: No
    space left on device' only in the log."""
    run = _student_copy(fixture_runs, small_disk / "run")
    filler = _fill_when_the_stage_starts(small_disk, run, "export")
    p = _export(run)
    _, err = p.communicate(timeout=300)
    filler.join(timeout=5)
    assert p.returncode == 2, err
    assert f"error: the disk of '{run}' is full: No space left on device (errno 28)" in err, err
    assert "while writing 'export/model.fp32.tflite'" in err and "needs more than" in err, err
    assert sorted(q.name for q in run.iterdir()) == [".lock", "logs", "student"]  # no .partial


@pytest.mark.slow
def test_a_killed_export_leaves_no_converter_running_and_the_next_one_removes_its_partial(
    fixture_runs, tmp_path
):
    """SIGKILL cannot be cleaned up after: the converter child dies with its parent, and the next
    command's start deletes the .partial folder before it writes anything."""
    run = _student_copy(fixture_runs, tmp_path / "run")
    p = _export(run, start_new_session=True)
    deadline = time.monotonic() + 120
    child = None
    while child is None and time.monotonic() < deadline:  # the converter child is running
        kids = Path(f"/proc/{p.pid}/task/{p.pid}/children")
        pids = kids.read_text().split() if kids.exists() else []
        child = next((int(c) for c in pids if "-m tinyship export" in _cmdline(int(c))), None)
        time.sleep(0.05)
    assert child is not None and any(run.glob(".export.*.partial"))
    os.kill(p.pid, signal.SIGKILL)
    p.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the converter child outlived its parent"
    assert any(run.glob(".export.*.partial"))
    q = _export(run)
    _, err = q.communicate(timeout=300)
    assert q.returncode == 0, err
    assert not any(run.glob(".*.partial")) and (run / "export" / "model.fp32.tflite").is_file()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
