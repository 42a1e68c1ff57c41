"""Runner name -> where its :class:`~devices.runners.base.Runner` lives, imported on first use.

The built-in runners are named here by dotted path ("package.module:attr"), so this module
imports none of them at load time and they need not import it: each one only builds its
``RUNNER`` from :mod:`devices.runners.base`. A plug-in adds its own runner by dotted path
(:func:`register_path`) or by decorating its measure function (:func:`register`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from ground.errors import InternalError, UserError
from ground.lazy import LazyRegistry

from .base import Measurement, Runner, check_settings

#: The runners that ship with tinyship: name -> "package.module:attr" naming a Runner.
BUILTIN = {
    "adb": "devices.runners.adb:RUNNER",
    "host": "devices.runners.host:RUNNER",
    "ssh": "devices.runners.ssh:RUNNER",
}


class _Runners(Mapping[str, Runner]):
    """Every registered runner by name; a runner's module is imported the first time it is read."""

    def __init__(self, paths: dict[str, str]) -> None:
        self._where: LazyRegistry[Runner] = LazyRegistry(paths)

    def add(self, name: str, where: str | Runner) -> None:
        if name in self._where:
            raise InternalError(f"device runner {name!r} registered twice")
        self._where[name] = where

    def __getitem__(self, name: str) -> Runner:
        runner = self._where[name]
        if not isinstance(runner, Runner) or runner.name != name:
            raise InternalError(f"device runner {name!r} is not a Runner named {name!r}")
        return runner

    def __contains__(self, name: object) -> bool:
        return name in self._where  # without importing it

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


RUNNERS = _Runners(BUILTIN)


def register_path(name: str, where: str) -> None:
    """Register a plug-in's runner by dotted path ("package.module:attr" naming a Runner)."""
    RUNNERS.add(name, where)


def register(
    name: str,
    *,
    device_class: str,
    reference_device: str,
    runtimes: tuple[str, ...],
    settings: tuple[str, ...],
    address_arg: str | None = None,
) -> Callable[[Callable[..., Measurement]], Callable[..., Measurement]]:
    """Register a runner's ``measure`` function under ``name`` (a second ``name`` is refused)."""
    check_settings(name, settings)

    def deco(fn: Callable[..., Measurement]) -> Callable[..., Measurement]:
        runner = Runner(
            name, fn, device_class, reference_device, tuple(runtimes), tuple(settings), address_arg
        )
        RUNNERS.add(name, runner)
        return fn

    return deco


def get(name: str) -> Runner:
    if name not in RUNNERS:
        raise UserError(f"unknown runner '{name}'; known runners: {', '.join(sorted(RUNNERS))}.")
    return RUNNERS[name]
