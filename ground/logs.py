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

A stage writes a new file, ``<stage>.running.log``; it replaces ``<stage>.log`` when the
stage succeeds and is kept as ``<stage>.failed.log`` when it fails (or is killed), so
``<stage>.log`` is always the last good run's whole log: a refused command never empties it.
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
OURS = frozenset({"ground", "tinyship", "distill", "export", "devices", "benchmarks"})
_PLUMBING = frozenset(
    {"tqdm", "logging", "warnings", "io", "_io", "codecs", "contextlib", "threading"}
)
RUNNING, FAILED = "running", "failed"  # logs/<stage>.running.log, logs/<stage>.failed.log


def _ours(frame) -> bool:  # noqa: ANN001 - a frame object
    """Whether the first non-plumbing caller up the stack is tinyship's own code."""
    while frame is not None:
        if frame.f_globals.get("__name__") == __name__:
            frame = frame.f_back  # this module's own frames
            continue
        top = frame.f_globals.get("__name__", "").split(".")[0]
        if top not in _PLUMBING:
            return top in OURS
        frame = frame.f_back
    return False


class _Router(io.TextIOBase):
    """sys.stdout/sys.stderr during a stage: our writes to the console, everyone else's to the log.

    A library may keep the router past the stage (a logging handler made mid-stage holds
    ``sys.stderr``); once the stage ends, its writes go wherever ``sys.<name>`` points now (the
    next stage's router, or the console), never to the closed log file.
    """

    def __init__(self, name: str, console: TextIO, log: TextIO, after: TextIO) -> None:
        self.name, self.console, self.log, self.after = name, console, log, after
        self.ended = False

    def _now(self) -> TextIO:
        now = getattr(sys, self.name)
        return self.after if now is self else now

    def write(self, s: str) -> int:
        if self.ended:
            return self._now().write(s)
        target = self.console if _ours(sys._getframe(1)) else self.log
        return target.write(s)

    def flush(self) -> None:
        if self.ended:
            self._now().flush()
            return
        self.console.flush()
        self.log.flush()

    def isatty(self) -> bool:
        return self._now().isatty() if self.ended else self.console.isatty()

    def fileno(self) -> int:
        # native writes through sys.stderr's descriptor are third-party
        return self._now().fileno() if self.ended else self.log.fileno()

    @property
    def encoding(self) -> str:  # noqa: D102
        return "utf-8"


def log_path(run_dir: str | os.PathLike, stage: str, state: str = "") -> Path:
    """Where a stage's third-party output goes: ``<run>/logs/<stage>.log`` (the last finished
    run), ``<stage>.running.log`` while it runs, ``<stage>.failed.log`` (the last that failed)."""
    return Path(run_dir) / "logs" / (f"{stage}.{state}.log" if state else f"{stage}.log")


def _settle(run_dir: str | os.PathLike, stage: str, ok: bool) -> Path | None:
    """The finished stage's log: it replaces ``<stage>.log`` on success; after a failure it is
    kept as ``<stage>.failed.log`` when anything was written, and the last good log is left as
    it was. Returns where it went (None: a failed stage that wrote nothing there)."""
    running = log_path(run_dir, stage, RUNNING)
    if not running.is_file():
        return None
    if not ok and running.stat().st_size == 0:
        running.unlink()
        return None
    final = log_path(run_dir, stage, "" if ok else FAILED)
    os.replace(running, final)
    return final


def settle_unfinished(run_dir: str | os.PathLike) -> list[str]:
    """A ``<stage>.running.log`` that a killed command left (call with the run's lock held):
    kept as ``<stage>.failed.log``, the last good ``<stage>.log`` untouched."""
    done = []
    for p in sorted((Path(run_dir) / "logs").glob(f"*.{RUNNING}.log")):
        stage = p.name[: -len(f".{RUNNING}.log")]
        if _settle(run_dir, stage, ok=False):
            done.append(f"kept the killed {stage} stage's log as {stage}.{FAILED}.log")
    return done


_PUMP = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # it ends when every writer has closed the pipe
signal.signal(signal.SIGTERM, signal.SIG_IGN)
out, lost, why = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND), 0, ""
while True:
    chunk = os.read(0, 1 << 16)
    if not chunk:
        break
    try:
        while chunk:
            chunk = chunk[os.write(out, chunk):]
    except OSError as exc:
        lost, why = lost + len(chunk), exc.strerror
if lost:
    try:
        os.write(out, f"[tinyship: {lost} bytes of output lost: {why}]\\n".encode())
    except OSError:
        pass
"""


class _Pump:
    """The stage log's only writer: a small child process copying a pipe into the file.

    Descriptors 1 and 2 and every Python-level write of the stage go into the pipe, never to
    the file itself, so a full disk cannot fail a write made by a converter: LLVM (inside the
    TFLite converter) exits the whole process with status 1 when its write to stderr fails,
    which made a full disk look like "a budget missed" with nothing said (issue 41). The child
    drops what it cannot write and notes how much; it ignores Ctrl-C and SIGTERM and ends at
    end-of-file, when every writer has closed the pipe.
    """

    def __init__(self, path: Path) -> None:
        import subprocess

        path.write_bytes(b"")  # a new, empty log (the last good one is elsewhere)
        r, w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _PUMP, str(path)],
                stdin=r,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except BaseException:
            os.close(w)
            raise
        finally:
            os.close(r)
        self.stream = open(w, "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115

    def close(self) -> None:
        """Close this process's end and wait for the copy to finish (a child of the stage that
        still holds the pipe, e.g. a daemon it started, is not waited for past 2 s)."""
        import subprocess

        with contextlib.suppress(OSError, ValueError):
            self.stream.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2)


class StageLog:
    """What :func:`stage_log` yields: where the output goes now and where it ended up."""

    def __init__(self, running: Path, final: Path) -> None:
        self.running, self.final = running, final
        self.settled: Path | None = None  # set when the stage ends


@contextlib.contextmanager
def stage_log(run_dir: str | os.PathLike, stage: str) -> Iterator[StageLog]:
    """Route descriptors 1/2, warnings and logging to the stage's log; keep sys.stdout/err on the console.

    The log is a new file, ``logs/<stage>.running.log``, settled when the stage ends (see
    :func:`_settle`): a refused or failed command never truncates the last good
    ``<stage>.log``. Call it with the run directory's lock held (``ground.commit.locked``),
    so a second command cannot touch the running one's log.
    """
    running = log_path(run_dir, stage, RUNNING)
    running.parent.mkdir(parents=True, exist_ok=True)
    for s in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            s.flush()
    pump = _Pump(running)
    log = pump.stream
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
    routers = (
        _Router("stdout", con_out, log, old_sys[0]),
        _Router("stderr", con_err, log, old_sys[1]),
    )
    sys.stdout, sys.stderr = routers

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        log.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = show
    root.addHandler(handler)
    _active.append(log)
    result = StageLog(running, log_path(run_dir, stage))
    ok = False
    try:
        yield result
        ok = True
    finally:
        _active.pop()
        root.removeHandler(handler)
        warnings.showwarning = old_show
        for s in (con_out, con_err, log):
            with contextlib.suppress(Exception):
                s.flush()
        sys.stdout, sys.stderr = old_sys
        for r in routers:
            r.ended = True
        os.dup2(saved_fd[0], 1)
        os.dup2(saved_fd[1], 2)
        for fd in saved_fd:
            os.close(fd)
        for s in (con_out, con_err):
            s.close()
        pump.close()
        result.settled = _settle(run_dir, stage, ok)


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
