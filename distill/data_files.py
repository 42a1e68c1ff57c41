"""Finding and trusting data files: recipe paths resolved to files, pinned checksums checked.

Shared by the loaders; it imports no loader.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ground.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[1]


def resolve_path(path: str | Path, key: str, base_dir: str | Path | None = None) -> Path:
    """A recipe path: absolute, or relative to ``base_dir`` (the recipe's folder); missing -> UserError.

    ``load_data`` has already made the recipe's own paths absolute; a loader's built-in default
    (e.g. MNIST's ``../shared/data/mnist``) is relative to the repository root.
    """
    base = Path(base_dir) if base_dir is not None else REPO_ROOT
    p = Path(path)
    if not p.is_absolute():
        p = base / p
    if not p.exists():
        raise UserError(
            f"recipe key '{key}' points to '{path}', which does not exist (looked at '{p}'). "
            f"Give a path relative to the recipe file's folder ({base}) or an absolute path."
        )
    return p


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(path: Path, expected: str, verify: bool) -> None:
    if verify and _sha256(path) != expected:
        raise UserError(
            f"'{path}' does not have the sha256 its README pins ({expected}); the file is corrupt or "
            f"a different release. Restore the original file, or set data.verify_sha256: false."
        )
