"""The edge where errors become exit codes: shared by the three stage CLIs."""

from __future__ import annotations

import sys
from collections.abc import Callable

from .errors import InternalError, UserError


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a stage's main; a UserError prints one clear line and exits 2, a bug exits 3."""
    try:
        return main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted; the run directory was left as it was before this command.",
            file=sys.stderr,
        )
        return 130
    except InternalError as exc:
        print(f"internal error (a tinyship bug, please report it): {exc}", file=sys.stderr)
        return 3
