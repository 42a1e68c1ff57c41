"""Two error families: the user's mistakes and our bugs. Only CLIs turn them into exit codes."""

import errno

# disk full, read-only, no permission, name too long: the user's to fix, not our bug
DISK_ERRNOS = (
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EACCES,
    errno.EPERM,
    errno.ENAMETOOLONG,
)


class TinyshipError(Exception):
    """Base of every error tinyship raises on purpose."""


class UserError(TinyshipError):
    """A mistake the user can fix: bad recipe, missing file, bad data, unreachable device.

    The message names the value received, what is allowed and the fix.
    """


class MissingDependencyError(UserError):
    """An optional dependency is not installed; the message names the extra."""

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python module '{module}', which is not installed. "
            f"Install it with: pip install 'tinyship[{extra}]'"
        )
        self.module = module
        self.extra = extra


class InternalError(TinyshipError):
    """A bug in tinyship: please report it with the command that triggered it."""


def require(module: str, extra: str, purpose: str):
    """Import an optional heavy dependency lazily, naming the extra when it is missing."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised via monkeypatch in tests
        raise MissingDependencyError(module, extra, purpose) from exc
