"""The edge where errors become exit codes: shared by every tinyship command.

0 ok, 1 a budget missed (returned by the command itself), 2 the user's error, 3 ours,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM, handled like Ctrl-C: ground.signals),
141 the reader closed the pipe (``tinyship summary | head -1``: quiet, as
POSIX tools that die of SIGPIPE; not 0, since the command did not finish saying what it
had to say). Whatever else is raised, one line goes to stderr; the traceback only with
``--debug`` (or ``TINYSHIP_DEBUG=1``).
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from . import commit, signals
from .errors import DISK_ERRNOS, InternalError, UserError

OK, BUDGET_MISSED, USER_ERROR, INTERNAL_ERROR, INTERRUPTED = 0, 1, 2, 3, 130
TERMINATED = signals.TERMINATED  # 128 + SIGTERM
PIPE_CLOSED = 141  # 128 + SIGPIPE, what a shell reports for `yes | head -1`'s yes
_DISK = "disk or permissions"


def one_line(text: str, limit: int = 2000) -> str:
    """A message on one line (multi-line lists joined with ' | '), cut at ``limit`` characters."""
    parts = [p.strip() for p in str(text).splitlines() if p.strip()]
    line = " | ".join(parts) or "(no message)"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def exit_code(exc: BaseException) -> int:
    """The exit code for an exception that reached the command's edge."""
    if isinstance(exc, signals.Terminated):
        return TERMINATED
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, UserError):
        return USER_ERROR
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        return USER_ERROR  # full disk, read-only folder, name too long: the user's to fix
    return INTERNAL_ERROR


def _interrupted(exc: BaseException, committed: list[tuple[Path, tuple[str, ...]]]) -> str:
    """What an interrupted command changed: the stages it had committed, never a blanket
    "left as it was" when one was already replaced (``tinyship run`` commits stage by stage)."""
    what = "terminated (SIGTERM)" if isinstance(exc, signals.Terminated) else "interrupted"
    if not committed:
        return (
            f"{what}; nothing was committed: every stage folder is as it was before this "
            "command (the stage in progress was discarded)."
        )
    done = ", ".join(f"{run}/{s}/" for run, stages in committed for s in stages)
    return (
        f"{what}; this command had already replaced {done} before it stopped; the stage in "
        "progress was discarded, and every other stage folder is as it was."
    )


def message(exc: BaseException, committed: list[tuple[Path, tuple[str, ...]]] = ()) -> str:
    """The one line a command's failure prints; ``committed``: the stage folders it had
    replaced (``ground.commit.COMMITS`` since it started)."""
    code = exit_code(exc)
    if code in (INTERRUPTED, TERMINATED):
        return _interrupted(exc, list(committed))
    if code == USER_ERROR and isinstance(exc, UserError):
        return f"error: {one_line(str(exc))}"
    if code == USER_ERROR:
        where = f" '{exc.filename}'" if getattr(exc, "filename", None) else ""
        return (
            f"error: {_DISK}: {exc.strerror or exc}{where} (errno {exc.errno}). "
            "Free space or choose a writable folder."
        )
    kind = "" if isinstance(exc, InternalError) else f"{type(exc).__name__}: "
    return (
        f"internal error (a tinyship bug, please report it with the command; rerun with --debug "
        f"for the traceback): {kind}{one_line(str(exc), 500)}"
    )


def _split_debug(argv: list[str] | None) -> tuple[list[str], bool]:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("TINYSHIP_DEBUG", "") not in ("", "0")
    return [a for a in args if a != "--debug"], debug


def _pipe_closed(exc: BaseException) -> bool:
    return isinstance(exc, BrokenPipeError) or (
        isinstance(exc, OSError) and exc.errno == errno.EPIPE
    )


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):  # no real descriptor (a test's capture)
        pass


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a command's ``main`` and turn whatever it raises into one line and an exit code."""
    args, debug = _split_debug(argv)
    first_commit = len(commit.COMMITS)
    try:
        with signals.sigterm_raises():  # unwinds like Ctrl-C: temp folders gone, children stopped
            code = main(args)
        sys.stdout.flush()  # a pipe closed by the reader shows here, not at interpreter exit
        return code
    except SystemExit:
        raise  # argparse's usage errors (exit 2) and --help (exit 0)
    except BaseException as exc:
        if _pipe_closed(exc):
            _silence_stdout()
            return PIPE_CLOSED
        if debug:
            traceback.print_exc(file=sys.stderr)
        try:
            print(message(exc, commit.COMMITS[first_commit:]), file=sys.stderr)
        except BaseException:  # stderr closed or another Ctrl-C: the code still stands
            pass
        return exit_code(exc)
