"""Which code a figure came from: the git commit, and whether tracked files differed from it.

A figure in a README must name its run (date, commit); a commit alone would hide a run made
from a tree with uncommitted edits, so those are marked ``+dirty``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(_ROOT), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_commit() -> str | None:
    """Short commit of the code running now, ``+dirty`` if tracked files are modified; None
    outside a git checkout (an installed copy) or without git."""
    sha = _git("rev-parse", "--short", "HEAD")
    if not sha:
        return None
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return sha + ("+dirty" if dirty else "")
