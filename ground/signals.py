"""SIGTERM ends a command the way Ctrl-C does (DESIGN.md, exit codes; issue 41).

``kill PID`` (what a CI runner, systemd, torchrun or a batch scheduler sends) used to end
tinyship at once, with exit -15, child processes left running and a ``.partial`` folder
behind. :func:`sigterm_raises` makes SIGTERM raise :class:`Terminated` instead: a subclass of
KeyboardInterrupt, so every cleanup a Ctrl-C runs runs too (temp folders deleted, the old
stage kept, ``subprocess.run`` and ``ground.isolate`` children killed), and the command
exits 143 (128 + SIGTERM, what a shell reports for a process SIGTERM killed).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: raised where the main thread stands, unwound like a Ctrl-C."""


def _raise_terminated(signum: int, frame) -> None:  # noqa: ANN001 - a frame object
    raise Terminated(f"terminated by {signal.Signals(signum).name}")


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` (the CLIs wrap their command in it).

    Only in the main thread (the only one Python delivers signals to) and only over the
    default action: a handler someone else installed (a test runner, a host program) stays.
    """
    mine = threading.current_thread() is threading.main_thread() and signal.getsignal(
        signal.SIGTERM
    ) in (signal.SIG_DFL, None)
    if mine:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        if mine:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


class Watch:
    """Remember a Ctrl-C or SIGTERM during a stage even if some library swallows the exception.

    Wraps the handlers in place (SIGINT's, and SIGTERM's when :func:`sigterm_raises` set one), so the
    signal still raises where it lands; :meth:`raise_if_seen` raises it again at the commit,
    where nothing can swallow it.
    """

    def __init__(self) -> None:
        self.seen: int | None = None
        self._prev: dict[int, object] = {}

    def __enter__(self) -> Watch:
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in (signal.SIGINT, signal.SIGTERM):
            prev = signal.getsignal(sig)
            if sig == signal.SIGTERM and not callable(prev):
                continue  # SIGTERM's default kills at once; ground.rundir.recover repairs that
            self._prev[sig] = prev
            signal.signal(sig, self._handler)
        return self

    def _handler(self, signum: int, frame) -> None:  # noqa: ANN001 - a frame object
        self.seen = signum
        prev = self._prev.get(signum)
        if callable(prev):
            prev(signum, frame)
        elif signum == signal.SIGTERM:
            _raise_terminated(signum, frame)
        else:
            raise KeyboardInterrupt

    def raise_if_seen(self, cause: BaseException | None = None) -> None:
        """Raise the interruption a library may have swallowed (no-op when none came)."""
        if self.seen is None or isinstance(cause, KeyboardInterrupt):
            return
        exc = (
            Terminated(f"terminated by {signal.Signals(self.seen).name}")
            if self.seen == signal.SIGTERM
            else KeyboardInterrupt()
        )
        raise exc from cause

    def __exit__(self, *exc) -> None:
        for sig, prev in self._prev.items():
            signal.signal(sig, prev)
