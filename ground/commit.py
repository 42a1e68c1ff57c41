"""One writer per run directory, and stage folders swapped in whole (DESIGN.md; issue 41).

A writing command takes the run directory's lock (:func:`locked`) before it creates or
touches anything there (``.work/``, ``logs/``, a stage folder), so a second writer is
refused at once, before any training, and never shares a work file with the first. A stage
is built in a temp folder and committed by :func:`staged_dirs`: one journal write decides,
renames follow, and :func:`recover` (run by the next lock holder) finishes or undoes what a
kill left. ``ground.rundir`` re-exports all of this.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from . import signals, space
from .atomic import atomic_write_json
from .errors import DISK_ERRNOS, UserError

STAGES = ("student", "export", "profile", "ship")
LOCK = ".lock"
JOURNAL = ".commit.json"
TMP_PREFIX = "tinyship-"
TMP_MAX_AGE_S = 24 * 3600
_held: dict[Path, list] = {}  # run dir -> [open lock file, depth] held by this process
#: (run dir, stages) of every commit this process made, in order: what an interrupted command
#: already changed (ground.cli says so instead of "left as it was")
COMMITS: list[tuple[Path, tuple[str, ...]]] = []
F = TypeVar("F", bound=Callable[..., Any])


def _os_error(path: Path, exc: OSError, doing: str) -> UserError:
    where = exc.filename or path
    return UserError(
        f"cannot {doing} '{where}': {exc.strerror or exc} (errno {exc.errno}). Free some space, "
        f"or choose a writable folder whose path components are under 255 bytes, e.g. --out build/<run>."
    )


def _refuse_stage_folder(run_dir: Path) -> None:
    """``--run build/demo/student`` names a folder inside a run, not a run: refused before it
    gets a lock, logs or stages of its own."""
    parent = run_dir.parent
    if run_dir.name in (*STAGES, "logs", ".work") and (
        (parent / LOCK).is_file() or (parent / "student" / "card.json").is_file()
    ):
        raise UserError(
            f"'{run_dir}' is the {run_dir.name}/ folder of the run directory '{parent}', not a "
            f"run directory. Pass the run directory itself: --run {parent}"
        )


def _prepare(run_dir: Path, create: bool) -> bool:
    """Whether ``run_dir`` is there to lock (made when ``create``)."""
    _refuse_stage_folder(run_dir)
    try:
        if run_dir.exists() and not run_dir.is_dir():
            raise UserError(
                f"'{run_dir}' is a file, not a run directory. Pass a folder path, e.g. build/<run>."
            )
        if not create:
            return run_dir.is_dir()
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _os_error(run_dir, exc, "create the run directory") from exc
    return True


def _take(run_dir: Path) -> Any:
    """The lock file, locked by this process; a UserError naming the holder when it is taken."""
    import fcntl

    lock_path = run_dir / LOCK
    try:
        fh = open(lock_path, "a+")  # noqa: SIM115 - held until the caller's context ends
    except OSError as exc:
        raise _os_error(lock_path, exc, "write the lock file") from exc
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "unknown"
        fh.close()
        pid = holder.split()[0]
        raise UserError(
            f"run directory '{run_dir}' is in use by another tinyship process (PID {pid}, "
            f"lock {lock_path}: {holder!r}). Wait for it to finish or stop it (kill {pid}); "
            "only one command may write a run directory at a time. Nothing was changed."
        ) from None
    return fh


@contextlib.contextmanager
def locked(run_dir: str | os.PathLike, *, create: bool = True) -> Iterator[Path]:
    """Hold the run dir's one-writer lock (re-entrant within a process).

    ``fcntl.flock`` on ``run_dir/.lock``: the kernel frees it when the holder dies, so a
    lock left by a killed run is simply taken over; the file names the holder's PID for
    the message a second writer gets. The first acquisition repairs what a kill left
    (:func:`recover`). ``create=False`` (a stage that reads an earlier one): a missing
    folder is neither made nor locked, and the body runs to refuse with its own message.
    """
    import fcntl

    run_dir = Path(os.path.abspath(run_dir))
    if run_dir in _held:
        _held[run_dir][1] += 1
        try:
            yield run_dir
        finally:
            _held[run_dir][1] -= 1
        return
    if not _prepare(run_dir, create):
        yield run_dir
        return
    fh = _take(run_dir)
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()} {_dt_now()}\n")
        fh.flush()
        _held[run_dir] = [fh, 1]
        recover(run_dir)
        yield run_dir
    finally:
        _held.pop(run_dir, None)
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


def writes(param: str = "run_dir", *, create: bool = False) -> Callable[[F], F]:
    """Decorate a stage's entry point: the run directory named by its argument ``param`` is
    locked for the whole call, so a second writer is refused before any of the work."""

    def deco(fn: F) -> F:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with locked(sig.bind(*args, **kwargs).arguments[param], create=create):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return deco


def holds(run_dir: str | os.PathLike) -> bool:
    """Whether this process holds ``run_dir``'s lock."""
    return Path(os.path.abspath(run_dir)) in _held


def _dt_now() -> str:
    import datetime as _dt

    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _roll_forward(run_dir: Path, moves: dict[str, str]) -> None:
    """Finish a commit whose journal was written: every listed stage ends as its new folder.

    Idempotent, so a kill during it is repaired by running it again.
    """
    for stage, partial in moves.items():
        final, new, old = run_dir / stage, run_dir / partial, run_dir / f".{stage}.old"
        if new.exists():
            if final.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
            os.replace(new, final)
    _fsync_dir(run_dir)
    (run_dir / JOURNAL).unlink()
    for stage in moves:
        shutil.rmtree(run_dir / f".{stage}.old", ignore_errors=True)


def _finish_journal(run_dir: Path) -> list[str]:
    journal = run_dir / JOURNAL
    if not journal.exists():
        return []
    try:
        moves = json.loads(journal.read_text())["moves"]
        if not isinstance(moves, dict) or not all(
            s in STAGES and isinstance(p, str) and "/" not in p for s, p in moves.items()
        ):
            raise ValueError(moves)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        journal.unlink()  # a torn journal never committed anything: its rename is the commit
        return [f"removed unreadable {JOURNAL}"]
    _roll_forward(run_dir, moves)
    return [f"finished the interrupted commit of {', '.join(moves)}"]


def recover(run_dir: str | os.PathLike) -> list[str]:
    """Repair what a kill left in ``run_dir`` (call with the lock held); returns what was done.

    A written journal means the commit was decided: it is finished. Without one, a stage
    missing its folder gets its ``.old`` back, and partial folders, stray temp files and
    ``.old`` copies are deleted; a stage log left half-written is kept as ``<stage>.failed.log``;
    ``/tmp/tinyship-*`` folders older than a day go too.
    """
    from . import logs

    run_dir = Path(run_dir)
    done = _finish_journal(run_dir)
    for stage in STAGES:
        old = run_dir / f".{stage}.old"
        if old.is_dir() and not (run_dir / stage).exists():
            os.replace(old, run_dir / stage)
            done.append(f"restored {stage}/ from {old.name}")
    for p in run_dir.iterdir():
        if p.name.startswith(".") and (
            p.name.endswith((".partial", ".old", ".tmp")) or ".partial" in p.name
        ):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            done.append(f"deleted {p.name}")
    done += logs.settle_unfinished(run_dir)
    _clean_tmp()
    return done


def _clean_tmp() -> None:
    """``/tmp/tinyship-*`` left by killed runs: ours, older than a day."""
    import time

    base = Path(tempfile.gettempdir())
    cutoff = time.time() - TMP_MAX_AGE_S
    try:
        entries = list(base.glob(f"{TMP_PREFIX}*"))
    except OSError:
        return
    for p in entries:
        try:
            st = p.lstat()
            if st.st_uid == os.getuid() and st.st_mtime < cutoff:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
        except OSError:
            pass


@contextlib.contextmanager
def staged_dirs(
    run_dir: str | os.PathLike, stages: tuple[str, ...], force: bool = False
) -> Iterator[dict[str, Path]]:
    """Yield temp folders to fill; on success they replace ``run_dir/<stage>`` all together.

    An existing stage is refused unless ``force``; other stages are never touched; a disk
    without room for the stage is refused before it starts (``ground.space``). The run
    dir is locked throughout. The commit is one journal write (the decision) then renames; a
    kill at any instant leaves, after :func:`recover`, either every old folder or every new
    one. A Ctrl-C or SIGTERM seen during the stage discards the new folders even if a library
    swallowed it.
    """
    for stage in stages:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
    with locked(run_dir) as run_dir, signals.Watch() as watch:
        for stage in stages:
            final = run_dir / stage
            if final.exists() and not force:
                raise UserError(
                    f"'{final}' already exists. Pass --force to replace it (only {stage}/ is "
                    "replaced, and the old one is kept until the new one is complete)."
                )
        space.require(run_dir, stages)
        tmps: dict[str, Path] = {}
        try:
            for stage in stages:
                tmps[stage] = Path(
                    tempfile.mkdtemp(prefix=f".{stage}.", suffix=".partial", dir=run_dir)
                )
                os.chmod(tmps[stage], 0o755)
            yield tmps
            watch.raise_if_seen()
            moves = {stage: tmp.name for stage, tmp in tmps.items()}
            atomic_write_json(run_dir / JOURNAL, {"moves": moves})  # the commit point
        except BaseException as exc:
            written = sum(space.size(tmp) for tmp in tmps.values())
            for tmp in tmps.values():
                shutil.rmtree(tmp, ignore_errors=True)
            watch.raise_if_seen(exc)
            full = space.full_disk_error(run_dir, tmps, exc, written)
            if full is not None:
                raise full from exc
            if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
                raise _os_error(run_dir, exc, "write the stage folder in") from exc
            raise
        COMMITS.append((run_dir, tuple(stages)))
        _roll_forward(run_dir, moves)


@contextlib.contextmanager
def staged_dir(run_dir: str | os.PathLike, stage: str, force: bool = False) -> Iterator[Path]:
    """One stage's :func:`staged_dirs`."""
    with staged_dirs(run_dir, (stage,), force) as tmps:
        yield tmps[stage]
