"""Tables tinyship ships beside its code and reads at run time (estimator bands, front-end cycles).

Each is written by a benchmark's ``--write`` and checked by its own ``check`` function; the
reader keeps one parsed copy while the file is unchanged and says which way a file failed, so
each caller words its own consequence (a labelled fallback, or an internal error).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

Check = Callable[[object], "str | None"]


class TableError(Exception):
    """``kind``: 'missing', 'unreadable' or 'invalid'; ``detail``: the reason, in words."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


@lru_cache(maxsize=8)
def _load(path: str, mtime: float, check: Check) -> dict:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TableError("unreadable", str(exc)) from exc
    problem = check(doc)
    if problem:
        raise TableError("invalid", problem)
    return doc


def read(path: Path, check: Check) -> dict:
    """The table at ``path`` once ``check`` passed (cached while its mtime is unchanged)."""
    try:
        mtime = Path(path).stat().st_mtime
    except OSError as exc:
        raise TableError("missing", str(exc)) from exc
    return _load(str(path), mtime, check)
