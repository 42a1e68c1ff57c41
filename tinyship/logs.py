"""Keep the console for tinyship's own words: third-party output goes to build/<run>/logs/<stage>.log.

Converters and runtimes write to the console at three levels: Python prints and progress
bars (coremltools, litert-torch), Python warnings and logging (FutureWarning, absl), and
native C++ writes to file descriptors 1 and 2 (oneDNN, XNNPACK, TFLite). :func:`stage_log`
points descriptors 1 and 2 at the log file for a whole stage, so native output and child
processes land there, while ``sys.stdout``/``sys.stderr`` keep writing to the console for
our own progress bars and results. Warnings and logging records go to the log.
:func:`capture` additionally sends Python-level ``sys.stdout``/``sys.stderr`` writes to the
log around a third-party call (a converter); outside a stage log it does nothing, so
library users and tests see everything as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

_active: list[TextIO] = []  # the open stage log, innermost last


def log_path(run_dir: str | os.PathLike, stage: str) -> Path:
    """Where a stage's third-party output goes: ``<run>/logs/<stage>.log``."""
    return Path(run_dir) / "logs" / f"{stage}.log"


@contextlib.contextmanager
def stage_log(run_dir: str | os.PathLike, stage: str) -> Iterator[Path]:
    """Route descriptors 1/2, warnings and logging to the stage's log; keep sys.stdout/err on the console."""
    path = log_path(run_dir, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    for s in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            s.flush()
    log = open(path, "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    saved_fd = os.dup(1), os.dup(2)
    con_out = open(os.dup(saved_fd[0]), "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    con_err = open(os.dup(saved_fd[1]), "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    old_sys = sys.stdout, sys.stderr
    old_show = warnings.showwarning
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout, sys.stderr = con_out, con_err

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        log.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = show
    root.addHandler(handler)
    _active.append(log)
    try:
        yield path
    finally:
        _active.pop()
        root.removeHandler(handler)
        warnings.showwarning = old_show
        for s in (con_out, con_err, log):
            with contextlib.suppress(Exception):
                s.flush()
        sys.stdout, sys.stderr = old_sys
        os.dup2(saved_fd[0], 1)
        os.dup2(saved_fd[1], 2)
        for fd in saved_fd:
            os.close(fd)
        for s in (con_out, con_err, log):
            s.close()


@contextlib.contextmanager
def capture() -> Iterator[None]:
    """Inside a stage log: Python-level prints and progress bars of a third-party call go to the log too."""
    if not _active:
        yield
        return
    log = _active[-1]
    old = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = log
    try:
        yield
    finally:
        sys.stdout, sys.stderr = old
