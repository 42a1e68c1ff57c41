"""The edge where errors become exit codes: shared by every tinyship command.

0 ok, 1 a budget missed (returned by the command itself), 2 the user's error, 3 ours,
130 interrupted. Whatever is raised, one line goes to stderr; the traceback only with
``--debug`` (or ``TINYSHIP_DEBUG=1``).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable

from .errors import DISK_ERRNOS, InternalError, UserError

OK, BUDGET_MISSED, USER_ERROR, INTERNAL_ERROR, INTERRUPTED = 0, 1, 2, 3, 130
_DISK = "disk or permissions"


def one_line(text: str, limit: int = 2000) -> str:
    """A message on one line (multi-line lists joined with ' | '), cut at ``limit`` characters."""
    parts = [p.strip() for p in str(text).splitlines() if p.strip()]
    line = " | ".join(parts) or "(no message)"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def exit_code(exc: BaseException) -> int:
    """The exit code for an exception that reached the command's edge."""
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, UserError):
        return USER_ERROR
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        return USER_ERROR  # full disk, read-only folder, name too long: the user's to fix
    return INTERNAL_ERROR


def message(exc: BaseException) -> str:
    code = exit_code(exc)
    if code == INTERRUPTED:
        return "interrupted; the run directory was left as it was before this command."
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


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a command's ``main`` and turn whatever it raises into one line and an exit code."""
    args, debug = _split_debug(argv)
    try:
        return main(args)
    except SystemExit:
        raise  # argparse's usage errors (exit 2) and --help (exit 0)
    except BaseException as exc:
        if debug:
            traceback.print_exc(file=sys.stderr)
        try:
            print(message(exc), file=sys.stderr)
        except BaseException:  # stderr closed or another Ctrl-C: the code still stands
            pass
        return exit_code(exc)
