"""Native code in a forked child, so its crash or its exit() ends only the child.

Parsing untrusted model files (:func:`in_child`): onnx's protobuf/shape inference, torch's zip
reader and the LiteRT flatbuffer code are C++; a crafted or corrupt file can crash them
(SIGSEGV, abort) or spin. A signal or a timeout becomes one UserError naming the file and the fix.

Writing a file with a native library (:func:`write_in_child`): LLVM, inside the TFLite converter,
exits the whole process with status 1 when a write of its output file fails (a full disk), which
looked like "a budget missed" with nothing said and a ``.partial`` folder left (issue 41). In a
child, the parent sees the death, names a full disk as such (exit 2) and cleans up.

The caller's function runs in a forked child; its result comes back as JSON over a pipe (never
a pickle).
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from . import space
from .errors import InternalError, UserError

DEFAULT_TIMEOUT_S = 300.0
WRITE_TIMEOUT_S = 3600.0  # a converter on a large model is slow; a hang still ends
STALL_S = 60.0  # a writer child with no CPU time for this long is deadlocked, not working
TAIL_BYTES = 4096  # the end of a writer child's stderr kept for the message
_FULL_TEXT = ("No space left on device", "Disk quota exceeded")
_PR_SET_PDEATHSIG = 1


class ChildError(Exception):
    """The child's function failed (its exception as "Type: message"), or the child died
    without a result (``status``: its exit code or -signal): a library failing on this input,
    recorded by the caller like any other failure of that library."""

    def __init__(self, message: str, status: int | None = None, tail: str = "") -> None:
        super().__init__(message)
        self.status, self.tail = status, tail


class ChildStalled(ChildError):
    """The child used no CPU for ``stall_s`` and was killed: deadlocked on a lock or a thread
    pool that the fork copied without its threads (the caller may run the work in-process)."""


class _TimedOut(Exception):
    """The child ran past its time and was killed."""


class _Stalled(Exception):
    """The child used no CPU for its ``stall_s`` and was killed."""


def _cpu_ticks(pid: int) -> int | None:
    """User + system CPU of ``pid`` in clock ticks (Linux), None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    except (OSError, IndexError, ValueError):
        return None


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _fork() -> int:
    """``os.fork()`` without the warning Python gives when the parent has threads."""
    with warnings.catch_warnings():
        # Python warns when forking a process with threads (JAX, onnxruntime pools): the child
        # only runs the parser and exits; a deadlock there ends at the timeout, as a hang would
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _die_with_parent(parent: int) -> None:
    """Linux: the child is killed when the parent dies (a SIGKILLed command leaves no converter
    writing into a folder the next command deletes)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(70)


def _child(fn: Callable[..., Any], args: tuple, r: int, w: int, err_w: int | None) -> NoReturn:
    """The child: runs ``fn(*args)``, writes its outcome as JSON to ``w`` and exits; never
    returns into the caller's stack. With ``err_w``, its descriptor 2 goes there."""
    code = 0
    try:
        os.close(r)
        if err_w is not None:
            os.dup2(err_w, 2)
            os.close(err_w)
        import faulthandler

        faulthandler.disable()  # a crash is reported by the parent in one line
        try:
            out = {"ok": True, "value": fn(*args)}
        except UserError as exc:
            out = {"ok": False, "user": str(exc)}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            out = {"ok": False, "internal": f"{type(exc).__name__}: {str(exc)[:500]}"}
        data = json.dumps(out, allow_nan=False).encode()
        with os.fdopen(w, "wb") as fh:
            fh.write(data)
    except BaseException:  # noqa: BLE001
        code = 70
    finally:
        os._exit(code)


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _read_all(
    pid: int, r: int, timeout_s: float, err: int | None = None, stall_s: float | None = None
) -> tuple[bytes, bytes]:
    """Everything the child writes to ``r`` until it closes it, and the tail of what it writes
    to ``err`` (copied on to our descriptor 2 as it comes); the child is killed on a timeout
    (:class:`_TimedOut`), when it used no CPU for ``stall_s`` (:class:`_Stalled`), or on any
    error here."""
    chunks, tail, deadline = [], b"", time.monotonic() + timeout_s
    open_fds = [r] if err is None else [r, err]
    ticks, moved = _cpu_ticks(pid), time.monotonic()
    try:
        while r in open_fds:
            now = time.monotonic()
            if stall_s is not None and (t := _cpu_ticks(pid)) != ticks:
                ticks, moved = t, now
            if now >= deadline or (stall_s is not None and now - moved > stall_s):
                _kill(pid)
                raise _TimedOut if now >= deadline else _Stalled
            left = deadline - now
            ready, _, _ = select.select(open_fds, [], [], min(left, 1.0))
            for fd in ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    open_fds.remove(fd)
                elif fd == r:
                    chunks.append(chunk)
                else:
                    tail = (tail + chunk)[-TAIL_BYTES:]
                    _forward(chunk)
        if err in open_fds:  # the result is in: what is left on stderr, without waiting on a
            while select.select([err], [], [], 0.2)[0] and (chunk := os.read(err, 1 << 20)):
                tail = (tail + chunk)[-TAIL_BYTES:]  # grandchild that still holds the pipe
                _forward(chunk)
    except BaseException:
        try:
            _kill(pid)
        except (ProcessLookupError, ChildProcessError):
            pass
        raise
    finally:
        for fd in {r, err} - {None}:
            os.close(fd)
    return b"".join(chunks), tail


def _forward(chunk: bytes) -> None:
    """The child's stderr on to ours (the stage log); a failing write there loses only text."""
    try:
        os.write(2, chunk)
    except OSError:
        pass


def _start(fn: Callable[..., Any], args: tuple, capture_err: bool) -> tuple[int, int, int | None]:
    r, w = os.pipe()
    err_r, err_w = os.pipe() if capture_err else (None, None)
    parent = os.getpid()
    pid = _fork()
    if pid == 0:
        if err_r is not None:
            os.close(err_r)
        _die_with_parent(parent)
        _child(fn, args, r, w, err_w)
    os.close(w)
    if err_w is not None:
        os.close(err_w)
    return pid, r, err_r


def _outcome(status: int, data: bytes, what: str) -> Any:
    """The child's result from its exit status and what it wrote, or the error it stands for."""
    if os.WIFSIGNALED(status):
        raise UserError(
            f"reading {what} crashed the parser ({_signal_name(os.WTERMSIG(status))}): the file is "
            "corrupt or hostile. Re-create it from a trusted source (e.g. re-run its stage with --force)."
        )
    try:
        out = json.loads(data)
    except ValueError as exc:
        raise InternalError(
            f"the child reading {what} exited {os.WEXITSTATUS(status)} without a result"
        ) from exc
    if out.get("ok"):
        return out["value"]
    if "user" in out:
        raise UserError(out["user"])
    raise InternalError(f"reading {what} failed in the child: {out.get('internal')}")


def in_child(
    fn: Callable[..., Any], *args: Any, what: str, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Any:
    """``fn(*args)`` in a forked child; returns its JSON-able result.

    ``what`` names the file for the messages, e.g. "ONNX model 'export/model.fp32.onnx'".
    A UserError raised in the child is raised here with the same message; any other
    exception there is an InternalError; a crash or a timeout is a UserError.
    """
    if not hasattr(os, "fork"):  # pragma: no cover - Windows: no isolation, same results
        return fn(*args)
    pid, r, _ = _start(fn, args, capture_err=False)
    try:
        data, _ = _read_all(pid, r, timeout_s)
    except _TimedOut:
        raise UserError(
            f"reading {what} did not finish in {timeout_s:.0f} s (a corrupt or hostile file?); "
            "re-create it from a trusted source."
        ) from None
    _, status = os.waitpid(pid, 0)
    return _outcome(status, data, what)


def _died(status: int) -> tuple[int, str]:
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status), f"was killed by {_signal_name(os.WTERMSIG(status))}"
    return os.WEXITSTATUS(status), f"exited the process with status {os.WEXITSTATUS(status)}"


def _disk_full(out: Path, failure: ChildError, what: str) -> UserError | None:
    """A UserError (caused by an ENOSPC OSError naming ``out``) when ``failure`` came from a
    full disk: the child said so, or it died without a result where less than
    ``ground.space.MIN_FREE`` is free."""
    said = any(t in f"{failure} {failure.tail}" for t in _FULL_TEXT)
    have = space.free(out.parent)
    short = have is not None and have < space.MIN_FREE
    if not (said or (failure.status is not None and short)):
        return None
    written = space.size(out)
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out))
    exc = UserError(
        f"the disk of '{out.parent}' is full: writing {what} to '{out.name}' failed after "
        f"{space.human(written)}, and {space.human(have or 0)} are free there. A stage needs at "
        f"least {space.human(space.MIN_FREE)} free; free some space, or pass --run a folder on a "
        "disk with room."
    )
    exc.__cause__ = full
    return exc


def write_in_child(
    fn: Callable[..., Any],
    *args: Any,
    out: Path,
    what: str,
    timeout_s: float = WRITE_TIMEOUT_S,
    stall_s: float = STALL_S,
) -> Any:
    """``fn(*args)``, which writes the file ``out``, in a forked child; returns its JSON-able result.

    The child's stderr passes through to ours (its tail is kept). A full disk (the child says
    "No space left on device", or dies where the disk is nearly full) is a UserError caused by
    an ENOSPC OSError naming ``out`` (``ground.space.full_disk_error`` words it for a stage); a
    UserError in the child is raised here; any other failure, exit or crash of the child is a
    :class:`ChildError` naming ``what`` and the end of its stderr; a child that used no CPU for
    ``stall_s`` is killed and raised as :class:`ChildStalled`.
    """
    if not hasattr(os, "fork"):  # pragma: no cover - Windows: no isolation, same results
        return fn(*args)
    pid, r, err = _start(fn, args, capture_err=True)
    try:
        data, tail_b = _read_all(pid, r, timeout_s, err, stall_s)
    except _TimedOut:
        raise ChildError(f"{what} did not finish in {timeout_s:.0f} s and was stopped") from None
    except _Stalled:
        raise ChildStalled(f"{what} used no CPU for {stall_s:.0f} s and was stopped") from None
    _, status = os.waitpid(pid, 0)
    tail = tail_b.decode("utf-8", "replace").strip()
    last = tail.splitlines()[-1][:300] if tail else "nothing on stderr"
    try:
        out_json = json.loads(data)
    except ValueError:
        code, how = _died(status)
        failure = ChildError(f"{what} {how} without a result (its last words: {last})", code, tail)
    else:
        if out_json.get("ok"):
            return out_json["value"]
        if "user" in out_json:
            raise UserError(out_json["user"])
        failure = ChildError(str(out_json.get("internal")), None, tail)
    full = _disk_full(out, failure, what)
    if full is not None:
        raise full
    raise failure
