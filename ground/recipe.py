"""Recipes: one YAML file = one experiment, from data to devices.

Each stage validates its own section with :func:`validate`, so a bad key or value
fails with the key's full path, the value received and what is allowed, in the
style of scikit-learn's parameter errors.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError

SECTIONS = (
    "name",
    "description",
    "data",
    "teacher",
    "transfer",
    "student",
    "train",
    "specialists",
    "export",
    "devices",
    "recommend",
)

_REQUIRED = object()


@dataclass(frozen=True)
class Field:
    """One recipe key: its type(s), default, and allowed values or range."""

    type: type | tuple[type, ...]
    default: Any = _REQUIRED
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    check: Callable[[Any], str | None] | None = field(default=None, compare=False)
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


def _type_name(t: type | tuple[type, ...]) -> str:
    ts = t if isinstance(t, tuple) else (t,)
    return " or ".join(x.__name__ for x in ts)


def validate(
    section: str, given: Mapping[str, Any] | None, fields: Mapping[str, Field]
) -> dict[str, Any]:
    """Return ``given`` with defaults filled in, or raise UserError naming the bad key."""
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise UserError(
            f"recipe section '{section}' must be a mapping of keys to values; got {type(given).__name__} {given!r}."
        )
    out: dict[str, Any] = {}
    for key in given:
        if key not in fields:
            near = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" Did you mean '{near[0]}'?" if near else ""
            raise UserError(
                f"recipe key '{section}.{key}' is not known.{hint} Allowed keys: {', '.join(sorted(fields))}."
            )
    for key, f in fields.items():
        path = f"{section}.{key}"
        if key not in given:
            if f.required:
                raise UserError(f"recipe key '{path}' is required ({f.doc or _type_name(f.type)}).")
            out[key] = f.default
            continue
        value = given[key]
        types = f.type if isinstance(f.type, tuple) else (f.type,)
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in types:
            ok = False
        else:
            ok = isinstance(value, types) or (value is None and f.default is None)
        if not ok:
            raise UserError(
                f"recipe key '{path}' must be {_type_name(f.type)}; got {type(value).__name__} {value!r}."
            )
        if f.choices is not None and value not in f.choices and not (value is None and ok):
            raise UserError(
                f"recipe key '{path}' must be one of {', '.join(repr(c) for c in f.choices)}; got {value!r}."
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"recipe key '{path}' must be a finite number; got {value!r}.")
            if (f.min is not None and value < f.min) or (f.max is not None and value > f.max):
                lo = "-inf" if f.min is None else f.min
                hi = "inf" if f.max is None else f.max
                raise UserError(
                    f"recipe key '{path}' must be in the range [{lo}, {hi}]; got {value!r}."
                )
        if f.check is not None and value is not None:
            problem = f.check(value)
            if problem:
                raise UserError(f"recipe key '{path}': {problem}; got {value!r}.")
        out[key] = value
    return out


MAX_YAML_BYTES = 1 << 20


def read_yaml(path: str | Path, what: str = "recipe") -> Any:
    """``yaml.safe_load`` of a user's file, bounded: at most 1 MiB, UTF-8, no aliases.

    Aliases are refused because a few KB of nested ``*refs`` expand to gigabytes (an
    alias bomb); a recipe never needs them.
    """
    import yaml

    class _NoAliases(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                ev = self.peek_event()
                raise UserError(
                    f"{what} '{path}' uses the YAML alias '*{ev.anchor}' at line "
                    f"{ev.start_mark.line + 1}; tinyship refuses aliases (they can expand without "
                    "bound). Write the values out in full."
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.setdefault(key, line)
                except TypeError:  # an unhashable key: the base loader explains it
                    continue
                if first != line:
                    raise UserError(
                        f"{what} '{path}' sets the key '{str(key)[:80]}' twice (lines {first} and "
                        f"{line}); YAML would silently keep the last. Keep one of them."
                    )
            return super().construct_mapping(node, deep=deep)

    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{what} '{path}' not found. Pass --recipe with a YAML file, e.g. recipes/demo.yaml."
        )
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise UserError(
            f"{what} '{path}' is {size} bytes; the limit is {MAX_YAML_BYTES} (1 MiB). Put data in "
            "a data file (data.path) rather than in the recipe."
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{what} '{path}' is not UTF-8 text (byte {exc.start}: {exc.object[exc.start : exc.start + 1]!r}). "
            "Save it as UTF-8."
        ) from exc
    try:
        return yaml.load(text, Loader=_NoAliases)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise UserError(f"{what} '{path}' is not valid YAML{_yaml_where(exc)}") from None
    except RecursionError as exc:
        raise UserError(f"{what} '{path}' nests too deeply for YAML parsing.") from exc


def _yaml_where(exc: Exception) -> str:
    """Where and what, without the snippet of the file PyYAML's message quotes: the file may
    be anything a recipe or a flag points to, and its lines are not ours to print (issue 41)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or type(exc).__name__
    return f"{where}: {one_line(str(problem))[:120]}"


def one_line(text: str) -> str:
    return " ".join(t.strip() for t in text.splitlines() if t.strip())


def load_recipe(path: str | Path) -> dict[str, Any]:
    """Parse a recipe and check its top-level sections; sections are validated by their stage."""
    path = Path(path)
    data = read_yaml(path, "recipe")
    if not isinstance(data, dict):
        raise UserError(
            f"recipe '{path}' must be a YAML mapping with sections {', '.join(SECTIONS)}; got {type(data).__name__}."
        )
    for key in data:
        if key not in SECTIONS:
            near = difflib.get_close_matches(str(key), SECTIONS, n=1)
            hint = f" Did you mean '{near[0]}'?" if near else ""
            raise UserError(
                f"recipe section '{key}' in '{path}' is not known.{hint} Allowed sections: {', '.join(SECTIONS)}."
            )
    _refuse_non_finite(data, "")
    data.setdefault("name", path.stem)
    return data


MAX_RECIPE_INT = 2**63 - 1


def _refuse_non_finite(value: Any, key: str) -> None:
    """NaN, inf and integers past int64 anywhere in a recipe, named by their key path: a field
    table checks its own keys, but nested values (budgets, thresholds, lists) reach code that
    assumes a finite number (issue 41: a budget of .nan crashed distill after 30 s)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _refuse_non_finite(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _refuse_non_finite(v, f"{key}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"recipe key '{key}' must be a finite number; got {value!r}.")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_RECIPE_INT:
        raise UserError(
            f"recipe key '{key}' is {str(value)[:40]}, past the largest integer a recipe may hold "
            f"({MAX_RECIPE_INT})."
        )
