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
        if f.choices is not None and value not in f.choices:
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


def load_recipe(path: str | Path) -> dict[str, Any]:
    """Parse a recipe and check its top-level sections; sections are validated by their stage."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"recipe '{path}' not found. Pass --recipe with a YAML file, e.g. recipes/demo.yaml."
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"recipe '{path}' is not valid YAML: {exc}") from exc
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
    data.setdefault("name", path.stem)
    return data
