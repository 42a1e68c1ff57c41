"""Parse untrusted model files in a child process, so a native crash becomes a UserError.

onnx's protobuf/shape inference, torch's zip reader and the LiteRT flatbuffer code are
C++; a crafted or corrupt file can crash them (SIGSEGV, abort) or spin. The caller's
function runs in a forked child; its result comes back as JSON over a pipe (never a
pickle), a signal or a timeout becomes one UserError naming the file and the fix.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
import warnings
from collections.abc import Callable
from typing import Any, NoReturn

from .errors import InternalError, UserError

DEFAULT_TIMEOUT_S = 300.0


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


def _child(fn: Callable[..., Any], args: tuple, r: int, w: int) -> NoReturn:
    """The child: runs ``fn(*args)``, writes its outcome as JSON to ``w`` and exits; never
    returns into the caller's stack."""
    code = 0
    try:
        os.close(r)
        import faulthandler

        faulthandler.disable()  # a crash is reported by the parent in one line
        try:
            out = {"ok": True, "value": fn(*args)}
        except UserError as exc:
            out = {"ok": False, "user": str(exc)}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent as our bug
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


def _read_all(pid: int, r: int, what: str, timeout_s: float) -> bytes:
    """Everything the child writes to ``r`` until it closes it; the child is killed on a timeout
    (a UserError) or on any error here."""
    chunks, deadline = [], time.monotonic() + timeout_s
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                _kill(pid)
                raise UserError(
                    f"reading {what} did not finish in {timeout_s:.0f} s (a corrupt or hostile file?); "
                    "re-create it from a trusted source."
                )
            ready, _, _ = select.select([r], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(r, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
    except BaseException:
        try:
            _kill(pid)
        except (ProcessLookupError, ChildProcessError):
            pass
        raise
    finally:
        os.close(r)
    return b"".join(chunks)


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
    r, w = os.pipe()
    pid = _fork()
    if pid == 0:
        _child(fn, args, r, w)
    os.close(w)
    data = _read_all(pid, r, what, timeout_s)
    _, status = os.waitpid(pid, 0)
    return _outcome(status, data, what)
