"""Keep the console for tinyship's own words: third-party output goes to build/<run>/logs/<stage>.log.

Converters and runtimes write to the console at three levels: Python prints and progress
bars (coremltools, litert-torch), Python warnings and logging (FutureWarning, absl, torch),
and native C++ writes to file descriptors 1 and 2 (oneDNN, XNNPACK, TFLite). For a whole
stage, :func:`stage_log` points descriptors 1 and 2 at the log file (native output and
child processes land there), sends warnings and logging records there, and replaces
``sys.stdout``/``sys.stderr`` with a router: a write made by tinyship's own code (our
prints, our progress bars) goes to the console, any other module's write goes to the log.
The router looks at who called ``write`` (skipping tqdm, logging and io frames), so a
logging handler or progress bar a library creates mid-stage is routed by its owner too.
:func:`capture` sends every Python-level write to the log around a third-party call.
Outside a stage log nothing is redirected, so library users and tests see everything.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

_active: list[TextIO] = []  # the open stage log, innermost last
OURS = frozenset({"tinyship", "distill", "export", "devices", "benchmarks"})
_PLUMBING = frozenset(
    {"tqdm", "logging", "warnings", "io", "_io", "codecs", "contextlib", "threading"}
)


def _ours(frame) -> bool:  # noqa: ANN001 - a frame object
    """Whether the first non-plumbing caller up the stack is tinyship's own code."""
    while frame is not None:
        top = frame.f_globals.get("__name__", "").split(".")[0]
        if top == "tinyship" and frame.f_globals.get("__name__") == __name__:
            frame = frame.f_back  # this module's own frames
            continue
        if top not in _PLUMBING:
            return top in OURS
        frame = frame.f_back
    return False


class _Router(io.TextIOBase):
    """sys.stdout/sys.stderr during a stage: our writes to the console, everyone else's to the log."""

    def __init__(self, console: TextIO, log: TextIO) -> None:
        self.console, self.log = console, log

    def write(self, s: str) -> int:
        target = self.console if _ours(sys._getframe(1)) else self.log
        return target.write(s)

    def flush(self) -> None:
        self.console.flush()
        self.log.flush()

    def isatty(self) -> bool:
        return self.console.isatty()  # our progress bars draw only on a terminal

    def fileno(self) -> int:
        return self.log.fileno()  # native writes through sys.stderr's descriptor are third-party

    @property
    def encoding(self) -> str:  # noqa: D102
        return "utf-8"


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
    sys.stdout, sys.stderr = _Router(con_out, log), _Router(con_err, log)

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
