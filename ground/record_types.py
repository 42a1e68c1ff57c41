"""The small vocabulary the run directory's record schemas are written in (ground.schemas).

Each builder returns a check ``(value, path) -> None`` that raises :class:`Mismatch` naming
the first field that is not what the schema declares: its path (``artifacts[2].runtime``),
the value found (shortened) and what is allowed. Keys are optional unless listed as
required; keys a schema does not name are left alone (a newer writer may add fields).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any, str], None]
MISSING = object()  # the value of a required key that is absent
MAX_ITEMS = 1_000_000


class Mismatch(Exception):
    """A record field that is not what its schema declares."""

    def __init__(self, path: str, value: Any, expected: str) -> None:
        super().__init__(path)
        self.path, self.value, self.expected = path or "(the whole record)", value, expected

    def describe(self) -> str:
        if self.value is MISSING:
            return f"{self.path} is missing ({self.expected})"
        return f"{self.path} is {short(self.value)}; expected {self.expected}"


def short(value: Any) -> str:
    """A value as it appears in a message: its type and at most 60 characters of it."""
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _join(path: str, key: Any) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))


def number(
    lo: float = -1e300, hi: float = 1e300, *, integer: bool = False, null: bool = False
) -> Check:
    """A finite JSON number in [lo, hi] (an int when ``integer``); never a bool."""
    kind = "an integer" if integer else "a finite number"
    expected = f"{kind} in [{lo:g}, {hi:g}]" + (" or null" if null else "")

    def check(v: Any, path: str) -> None:
        if v is None and null:
            return
        ok_type = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok_type or not math.isfinite(v) or not lo <= v <= hi:
            raise Mismatch(path, v, expected)

    return check


def count(hi: float = 2**53, null: bool = False) -> Check:
    """A non-negative integer (a count of rows, bytes, parameters)."""
    return number(0, hi, integer=True, null=null)


def text(
    choices: tuple[str, ...] | None = None,
    pattern: str | None = None,
    *,
    max_len: int = 100_000,
    null: bool = False,
) -> Check:
    """A string, one of ``choices`` or matching ``pattern`` when given."""
    rx = re.compile(pattern) if pattern else None
    if choices:
        expected = "one of " + ", ".join(repr(c) for c in choices)
    elif rx:
        expected = f"a string matching {pattern}"
    else:
        expected = "a string"
    expected += " or null" if null else ""

    def check(v: Any, path: str) -> None:
        if v is None and null:
            return
        if not isinstance(v, str) or len(v) > max_len:
            raise Mismatch(path, v, expected)
        if (choices and v not in choices) or (rx and not rx.fullmatch(v)):
            raise Mismatch(path, v, expected)

    return check


def flag(null: bool = False) -> Check:
    def check(v: Any, path: str) -> None:
        if not (isinstance(v, bool) or (v is None and null)):
            raise Mismatch(path, v, "true or false" + (" or null" if null else ""))

    return check


def anything(v: Any, path: str) -> None:
    """Any JSON value (a field no reader interprets)."""


def null(v: Any, path: str) -> None:
    """Only null (an alternative in :func:`either`)."""
    if v is not None:
        raise Mismatch(path, v, "null")


def items(of: Check, *, max_len: int = MAX_ITEMS, null: bool = False) -> Check:
    """A list whose every item passes ``of``."""

    def check(v: Any, path: str) -> None:
        if v is None and null:
            return
        if not isinstance(v, list) or len(v) > max_len:
            raise Mismatch(
                path, v, f"a list (at most {max_len} items)" + (" or null" if null else "")
            )
        for i, x in enumerate(v):
            of(x, _join(path, i))

    return check


def mapping(of: Check, *, null: bool = False) -> Check:
    """An object with any string keys whose every value passes ``of``."""

    def check(v: Any, path: str) -> None:
        if v is None and null:
            return
        if not isinstance(v, Mapping):
            raise Mismatch(path, v, "an object" + (" or null" if null else ""))
        for k, x in v.items():
            of(x, _join(path, k))

    return check


def record(
    fields: dict[str, Check], required: tuple[str, ...] = (), *, null: bool = False
) -> Check:
    """An object: the named fields checked where present, ``required`` ones present."""

    def check(v: Any, path: str) -> None:
        if v is None and null:
            return
        if not isinstance(v, Mapping):
            raise Mismatch(path, v, "an object" + (" or null" if null else ""))
        for key in required:
            if key not in v:
                raise Mismatch(_join(path, key), MISSING, "a required key")
        for key, of in fields.items():
            if key in v:
                of(v[key], _join(path, key))

    return check


def either(*checks: Check, expected: str) -> Check:
    """The first of ``checks`` that accepts the value; ``expected`` names them all."""

    def check(v: Any, path: str) -> None:
        for c in checks:
            try:
                c(v, path)
                return
            except Mismatch:
                continue
        raise Mismatch(path, v, expected)

    return check
