"""A name -> object table whose entries may be dotted paths, so a registry need not import its members.

An entry is the object itself or ``"package.module:attr"``; the path is imported with
:mod:`importlib` the first time the name is looked up (Olive's ``package_config`` does the
same). Listing a member by path keeps the registry below its members in the import graph:
the member module never has to import the registry to be found.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any, TypeVar

T = TypeVar("T")


def check_path(path: str) -> str:
    """``path`` itself when it reads ``package.module:attr``; ValueError otherwise."""
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"{path!r} is not a dotted path of the form 'package.module:attr'")
    return path


def resolve(path: str) -> Any:
    """The object ``package.module:attr`` names (``attr`` may be dotted), importing its module."""
    module, _, attr = check_path(path).partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class LazyRegistry(MutableMapping[str, T]):
    """Insertion-ordered ``name -> object``; an entry given as a dotted path is imported on first use.

    Membership, iteration and ``len`` look at the names only, so checking a recipe's names
    imports nothing.
    """

    def __init__(self, entries: dict[str, T | str] | None = None) -> None:
        self._entries: dict[str, T | str] = {}
        for name, entry in (entries or {}).items():
            self[name] = entry

    def __getitem__(self, name: str) -> T:
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = self._entries[name] = resolve(entry)
        return entry

    def __setitem__(self, name: str, entry: T | str) -> None:
        self._entries[name] = check_path(entry) if isinstance(entry, str) else entry

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._entries)})"
