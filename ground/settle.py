"""Readers repair or refuse: a commit a kill left half done is never shown as a result.

A stage commit writes a journal, then renames folders (ground.commit). A kill between
two renames leaves, for example, a new profile/ beside an old or missing ship/; the next
writer finishes it when it takes the lock. ``check``, ``summary`` and ``report`` read
without writing, so before reading they call :func:`settle`: when the journal (or a
stage folder's ``.old`` copy without the folder) is there, they take the lock as a
writer would, which finishes the commit (``ground.rundir.recover``), and release it. A
live writer in the middle of its renames holds the lock for milliseconds: the reader
waits for it; a run directory they may not write is refused with the command that
repairs it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from . import rundir
from .errors import UserError

WAIT_S = 5.0


def half_committed(run_dir: Path) -> bool:
    """Whether a stage commit was left between its journal and its last rename."""
    if (run_dir / rundir.JOURNAL).exists():
        return True
    return any(
        (run_dir / f".{s}.old").is_dir() and not (run_dir / s).exists() for s in rundir.STAGES
    )


def settle(run_dir: str | os.PathLike) -> bool:
    """Finish a half-done commit in ``run_dir`` before it is read; whether one was finished.

    UserError when it cannot be finished here: a writer keeps the lock past :data:`WAIT_S`,
    or the folder is not writable by this user.
    """
    run = Path(run_dir)
    deadline = time.monotonic() + WAIT_S
    while half_committed(run):
        if _busy(run):
            if time.monotonic() > deadline:
                raise UserError(
                    f"'{run}' is being committed by another tinyship process that has held its "
                    f"lock for over {WAIT_S:g} s; its results are not complete yet. Run this "
                    "again when that command has finished."
                )
            time.sleep(0.05)
            continue
        try:
            with rundir.locked(run, create=False):  # taking the lock runs recover()
                pass
        except UserError as exc:
            if _busy(run):
                continue  # a writer took it first: it finishes the commit
            raise UserError(
                f"'{run}' holds a commit a stopped tinyship command left half done, and it cannot "
                f"be finished here ({exc}). Finish it as a user who can write the folder: "
                f"tinyship check --run {run}"
            ) from None
        return True
    return False


def _busy(run: Path) -> bool:
    """Whether another process holds the run directory's lock (flock, as ground.commit takes it)."""
    import fcntl

    try:
        fh = open(run / rundir.LOCK)  # noqa: SIM115 - closed below
    except OSError:
        return False
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        fh.close()  # closing drops a lock this call took
    return False
