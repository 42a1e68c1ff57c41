"""The run directory: the only contract between the stages (DESIGN.md).

Writes are atomic: a file goes to a temp name then is renamed; a stage builds its whole
output folder under a temp name and swaps it in only when everything succeeded, so a
failure or a kill never leaves a half-written stage, and an existing stage is only
replaced with ``force=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DISK_ERRNOS, UserError

STAGES = ("student", "export", "profile", "ship")

CARD = "student/card.json"
STUDENT = "student/student.pt2"
CALIBRATION = "student/calibration.npz"
HOLDOUT = "student/holdout.npz"
EXPORTS = "export/exports.json"
PROFILE = "profile/profile.json"
MANIFEST = "ship/manifest.json"


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file, or of every file in a folder (an .mlpackage) in sorted order."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def path_bytes(path: str | os.PathLike) -> int:
    """Bytes on disk of a file, or the sum over a folder (an .mlpackage)."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _tmp_sibling(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be read by others
    return Path(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=False, default=_jsonable, allow_nan=False)
    return atomic_write_bytes(path, (text + "\n").encode())


def atomic_write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _no_nan(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number (tinyship writes JSON with allow_nan=False)")


def read_json(path: str | os.PathLike, what: str) -> dict:
    """Read a JSON file of the run directory with an error that names it and the fix."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{what} not found at '{path}'. Run the stage that writes it first (see README: make demo)."
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_nan)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UserError(
            f"{what} at '{path}' is not valid JSON ({exc}). Re-run the stage that writes it with --force."
        ) from exc


def read_npz(path: str | os.PathLike, what: str, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Load an .npz of the run directory (never with pickles) and check its keys."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found at '{path}'. Run the distill stage first.")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:  # corrupt zip, truncated file, pickled object arrays
        raise UserError(
            f"{what} at '{path}' cannot be read ({exc}). Re-run the distill stage with --force."
        ) from exc
    missing = [k for k in keys if k not in data]
    if missing:
        raise UserError(
            f"{what} at '{path}' lacks arrays {missing}; it has {sorted(data)}. Re-run the distill stage with --force."
        )
    return data


def inside(run_dir: str | os.PathLike, stage: str, name: Any, what: str) -> Path:
    """``run_dir/stage/name`` after refusing names that leave the stage folder.

    A record's file name is plain: no absolute path, no ``..`` or separator, and neither
    the folder nor the file may be a symlink (it could point anywhere).
    """
    run_dir = Path(run_dir)
    folder = run_dir / stage
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or os.path.isabs(name)
    ):
        raise UserError(
            f"{what} is {str(name)[:120]!r}: a file name inside '{folder}' is expected (no path, "
            "no '..'). The record was edited or corrupted; re-run the stage that wrote it with --force."
        )
    path = folder / name
    for p in (folder, path):
        if p.is_symlink():
            raise UserError(
                f"'{p}' is a symlink (to '{os.readlink(p)}'); tinyship reads only regular files "
                "inside the run directory. Re-run the stage that wrote it with --force."
            )
    return path


def stale(run_dir: str | os.PathLike) -> dict[str, str]:
    """Stages whose upstream changed after they ran: {stage: why}; for check and summary.

    export records the card's sha256; profile and ship record the card's and exports.json's.
    """
    run_dir = Path(run_dir)
    out: dict[str, str] = {}

    def sha(rel: str) -> str | None:
        p = run_dir / rel
        return sha256_file(p) if p.is_file() else None

    def recorded(rel: str) -> dict:
        try:
            d = read_json(run_dir / rel, rel)
        except UserError:
            return {}
        return d if isinstance(d, dict) else {}

    card, exports = sha(CARD), sha(EXPORTS)
    ex = recorded(EXPORTS) if exports else {}
    if ex and ex.get("card_sha256") != card:
        out["export"] = "student/card.json changed after export ran"
    for stage, rel in (("profile", PROFILE), ("ship", MANIFEST)):
        if not (run_dir / rel).is_file():
            continue
        d = recorded(rel)
        up = d.get("upstream", d) if stage == "ship" else d
        if up.get("card_sha256") != card:
            out[stage] = "student/card.json changed after it ran"
        elif up.get("exports_sha256") != exports:
            out[stage] = "export/exports.json changed after it ran"
    return out


LOCK = ".lock"
JOURNAL = ".commit.json"
TMP_PREFIX = "tinyship-"
TMP_MAX_AGE_S = 24 * 3600
_held: dict[Path, list] = {}  # run dir -> [open lock file, depth] held by this process


def _os_error(path: Path, exc: OSError, doing: str) -> UserError:
    where = exc.filename or path
    return UserError(
        f"cannot {doing} '{where}': {exc.strerror or exc} (errno {exc.errno}). Free some space, "
        f"or choose a writable folder whose path components are under 255 bytes, e.g. --out build/<run>."
    )


def _prepare(run_dir: Path) -> None:
    try:
        if run_dir.exists() and not run_dir.is_dir():
            raise UserError(
                f"'{run_dir}' is a file, not a run directory. Pass a folder path, e.g. build/<run>."
            )
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _os_error(run_dir, exc, "create the run directory") from exc


@contextlib.contextmanager
def locked(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold the run dir's one-writer lock (re-entrant within a process).

    ``fcntl.flock`` on ``run_dir/.lock``: the kernel frees it when the holder dies, so a
    lock left by a killed run is simply taken over; the file names the holder's PID for
    the message a second writer gets. The first acquisition repairs what a kill left
    (:func:`recover`).
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
    _prepare(run_dir)
    lock_path = run_dir / LOCK
    try:
        fh = open(lock_path, "a+")  # noqa: SIM115 - held until the context ends
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
            "only one command may write a run directory at a time."
        ) from None
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


def recover(run_dir: str | os.PathLike) -> list[str]:
    """Repair what a kill left in ``run_dir`` (call with the lock held); returns what was done.

    A written journal means the commit was decided: it is finished. Without one, a stage
    missing its folder gets its ``.old`` back, and partial folders, stray temp files and
    ``.old`` copies are deleted; ``/tmp/tinyship-*`` folders older than a day go too.
    """
    run_dir = Path(run_dir)
    done = []
    journal = run_dir / JOURNAL
    if journal.exists():
        try:
            moves = json.loads(journal.read_text())["moves"]
            if not isinstance(moves, dict) or not all(
                s in STAGES and isinstance(p, str) and "/" not in p for s, p in moves.items()
            ):
                raise ValueError(moves)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            journal.unlink()  # a torn journal never committed anything: its rename is the commit
            done.append(f"removed unreadable {JOURNAL}")
        else:
            _roll_forward(run_dir, moves)
            done.append(f"finished the interrupted commit of {', '.join(moves)}")
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


class _SigintWatch:
    """Remember a Ctrl-C during a stage even if some library swallows the KeyboardInterrupt."""

    def __init__(self) -> None:
        self.seen = False
        self._prev = None

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._prev = signal.getsignal(signal.SIGINT)

            def handler(signum, frame):
                self.seen = True
                if callable(self._prev):
                    self._prev(signum, frame)
                else:
                    raise KeyboardInterrupt

            signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        if self._prev is not None:
            signal.signal(signal.SIGINT, self._prev)


@contextlib.contextmanager
def staged_dirs(
    run_dir: str | os.PathLike, stages: tuple[str, ...], force: bool = False
) -> Iterator[dict[str, Path]]:
    """Yield temp folders to fill; on success they replace ``run_dir/<stage>`` all together.

    An existing stage is refused unless ``force``. The run dir is locked throughout. The
    commit is one journal write (the decision) then renames; a kill at any instant leaves,
    after :func:`recover`, either every old folder or every new one. A Ctrl-C seen during
    the stage discards the new folders even if a library swallowed it.
    """
    for stage in stages:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
    with locked(run_dir) as run_dir, _SigintWatch() as sigint:
        for stage in stages:
            final = run_dir / stage
            if final.exists() and not force:
                raise UserError(
                    f"'{final}' already exists. Pass --force to replace it (the old one is kept "
                    "until the new one is complete)."
                )
        tmps: dict[str, Path] = {}
        try:
            for stage in stages:
                tmps[stage] = Path(
                    tempfile.mkdtemp(prefix=f".{stage}.", suffix=".partial", dir=run_dir)
                )
                os.chmod(tmps[stage], 0o755)
            yield tmps
            if sigint.seen:
                raise KeyboardInterrupt
        except BaseException as exc:
            for tmp in tmps.values():
                shutil.rmtree(tmp, ignore_errors=True)
            if sigint.seen and not isinstance(exc, KeyboardInterrupt):
                raise KeyboardInterrupt from exc
            if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
                raise _os_error(run_dir, exc, "write the stage folder in") from exc
            raise
        moves = {stage: tmp.name for stage, tmp in tmps.items()}
        atomic_write_json(run_dir / JOURNAL, {"moves": moves})  # the commit point
        _roll_forward(run_dir, moves)


@contextlib.contextmanager
def staged_dir(run_dir: str | os.PathLike, stage: str, force: bool = False) -> Iterator[Path]:
    """One stage's :func:`staged_dirs`."""
    with staged_dirs(run_dir, (stage,), force) as tmps:
        yield tmps[stage]


def package_versions(
    names: tuple[str, ...] = (
        "torch",
        "numpy",
        "scikit-learn",
        "onnx",
        "onnxruntime",
        "litert-torch",
        "ai-edge-litert",
        "tflite-micro",
        "coremltools",
    ),
) -> dict[str, str]:
    """Installed versions for the lineage record; a missing package is recorded as absent."""
    from importlib import metadata

    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "absent"
    return out
