"""Disk space for a stage: checked before it starts, named when it runs out (issue 41).

A full disk must be the user's error (exit 2) naming the folder and the space needed, never
"a budget missed" (exit 1) or a crash: the TFLite converter (LLVM) writes its output file
itself and exits the whole process with status 1 when that write fails, so the room a stage
needs is checked before it starts (:func:`require`), and a stage that fails on a full disk
anyway is reported by :func:`full_disk_error`.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from .errors import UserError

MIN_FREE = 1 << 20  # no stage starts on a disk with less than 1 MiB free
EXPORT_PER_STUDENT = 4  # an export writes a few files about the student's size (fp32, int8, ...)
_FULL = (errno.ENOSPC, errno.EDQUOT)


def size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (0 when it is missing)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for p in path.rglob("*") if path.is_dir() else ():
        try:
            total += p.lstat().st_size if p.is_file() and not p.is_symlink() else 0
        except OSError:
            pass
    return total


def need(run_dir: Path, stages: tuple[str, ...]) -> tuple[int, str]:
    """About how many bytes writing ``stages`` takes, and from what: a stage written before
    takes about what it took then; a first export about a few student.pt2's; a first ship about
    the export folder it copies from."""
    total, basis = 0, []
    for stage in stages:
        old = size(run_dir / stage)
        if old:
            total, basis = total + old, [*basis, f"the current {stage}/"]
        elif stage == "export":
            total += EXPORT_PER_STUDENT * size(run_dir / "student" / "student.pt2")
            basis.append(f"{EXPORT_PER_STUDENT} x student.pt2")
        elif stage == "ship":
            total += size(run_dir / "export")
            basis.append("export/")
    if total < MIN_FREE:
        return MIN_FREE, "the least any stage starts with"
    return total, " + ".join(basis)


def free(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def human(n: int) -> str:
    if n >= 10**9:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def require(run_dir: Path, stages: tuple[str, ...]) -> None:
    """Refuse to start writing ``stages`` where the disk lacks the room they need."""
    want, basis = need(run_dir, stages)
    have = free(run_dir)
    if have is not None and have < want:
        names = ", ".join(f"{s}/" for s in stages)
        raise UserError(
            f"not enough disk space to write {names} in '{run_dir}': {human(have)} free, and it "
            f"needs about {human(want)} ({basis}). Free at least {human(want - have)} there, or "
            "pass --run a folder on a disk with room. Nothing was changed."
        )


def _full(exc: BaseException | None) -> OSError | None:
    """The full-disk OSError behind ``exc`` (its cause or context, or a converter's error text
    a stage recorded and re-raised as its own error), else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _FULL:
            return exc
        if "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        exc = exc.__cause__ or exc.__context__
    return None


def _where(filename: str | None, tmps: dict[str, Path]) -> str:
    """The file being written, named as it would be in its stage folder (``export/model.onnx``,
    not the temp folder it was built in), or the stage folders."""
    for stage, tmp in tmps.items():
        if filename and Path(filename).is_relative_to(tmp):
            return f"{stage}/{Path(filename).relative_to(tmp)}"
    return filename or ", ".join(f"{s}/" for s in tmps)


def full_disk_error(
    run_dir: Path, tmps: dict[str, Path], exc: BaseException, written: int
) -> UserError | None:
    """A UserError naming the folder and the room needed when ``exc`` came from a full disk;
    ``tmps``: the temp folder each stage was being built in."""
    full = _full(exc)
    if full is None:
        return None
    have = free(run_dir) or 0
    where = _where(full.filename, tmps)
    return UserError(
        f"the disk of '{run_dir}' is full: {full.strerror or full} (errno {full.errno})"
        f" while writing '{where}'. The stage had written {human(written)}, and {human(have)} are free there now: it "
        f"needs more than {human(written)}. Free some space (the old stage folder was kept; "
        "nothing was half-written), or pass --run a folder on a disk with room."
    )
