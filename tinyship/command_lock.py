"""The run directory a ``tinyship`` subcommand writes: locked before it touches anything there.

``tinyship run|distill|export|profile|report`` take the run directory's lock
(``ground.commit.locked``) right after parsing their flags, before the stage log, ``.work/``
or any stage folder is opened, so a second writer is refused within a second, before any
training, and touches no file of the running one (issue 41). A stage then says which
folders it replaced, and what stayed as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ground import rundir
from ground.errors import UserError

#: the subcommands that write into --run, and whether they may create it
WRITERS = {"run": True, "distill": True, "export": False, "profile": False, "report": False}
#: what writes the folder a subcommand that does not create it reads
EARLIER = {
    "export": "tinyship distill --recipe RECIPE --run {run}",
    "profile": "tinyship export --run {run} (or profile model files: tinyship profile FILE --run {run})",
    "report": "tinyship profile --run {run}",
}
PROFILE_FILES_RUN = Path("build/profile")  # where `tinyship profile FILE` builds its run


def run_dir(args: argparse.Namespace) -> Path | None:
    """The run directory this subcommand writes (None: it writes none)."""
    if args.cmd not in WRITERS:
        return None
    if args.cmd == "profile" and getattr(args, "files", None):
        return args.run or PROFILE_FILES_RUN
    return args.run


@contextlib.contextmanager
def held(args: argparse.Namespace) -> Iterator[None]:
    """Hold the lock of the run directory the subcommand writes, for the whole subcommand."""
    run = run_dir(args)
    if run is None:
        yield
        return
    create = WRITERS[args.cmd] or bool(getattr(args, "files", None))
    if not create and not run.is_dir():
        raise UserError(
            f"run directory '{run}' not found. Pass --run with a run directory the earlier "
            f"stages wrote, e.g. after: {EARLIER[args.cmd].format(run=run)}"
        )
    with rundir.locked(run, create=create):
        yield


def folders(run: Path) -> dict[str, int]:
    """The stage folders there now, by inode: a folder a commit replaced has a new one."""
    out = {}
    for stage in rundir.STAGES:
        with contextlib.suppress(OSError):
            out[stage] = os.stat(run / stage).st_ino
    return out


def replaced_note(stage: str, run: Path, before: dict[str, int]) -> str | None:
    """One line naming the stage folders this stage replaced (--force) and those it left."""
    after = folders(run)
    gone = [s for s in before if after.get(s) != before[s]]
    if not gone:
        return None
    kept = [s for s in after if s in before and s not in gone]
    line = f"{stage}: --force replaced {', '.join(f'{run}/{s}/' for s in gone)}"
    line += f"; left as they were: {', '.join(f'{s}/' for s in kept)}" if kept else ""
    if "student" in gone and kept:
        line += " (made from the old student: tinyship check and summary mark them stale)"
    return line
