"""Measured runners, looked up by name: host (local subprocess), ssh (a Linux board), adb (Android).

Each runner module builds a ``RUNNER`` (:class:`Runner`: its ``measure`` function with the
facts the profile stage needs: what it runs, how its targets are judged) from :mod:`.base`;
:mod:`.registry` names them by dotted path and imports one on first use. A plug-in adds its
own with :func:`register` (a decorated function) or :func:`register_path`. The profile stage
loops over the targets the user asked for and never names a runner.
"""

from __future__ import annotations

from .base import (
    REMOTE_BENCH,
    SETTINGS,
    Measurement,
    Runner,
    from_bench_json,
    parse_bench_output,
)
from .registry import BUILTIN, RUNNERS, get, register, register_path

__all__ = [
    "BUILTIN",
    "REMOTE_BENCH",
    "RUNNERS",
    "SETTINGS",
    "Measurement",
    "Runner",
    "from_bench_json",
    "get",
    "parse_bench_output",
    "register",
    "register_path",
]
