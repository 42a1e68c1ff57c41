"""The sha256 of a folder (an ``.mlpackage``): a Merkle hash over (relative path, size, content).

Hashing the concatenated file contents in sorted order lets bytes move between files
unnoticed (the last byte of a file moved into a new file named ``}`` keeps the hash).
Here every entry is one length-prefixed record (kind, name, size, digest of its content
or of its own entries), so any change of name, boundary, size or content changes the
hash. A symlink is refused rather than followed: it could point anywhere on the machine.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from .errors import UserError

MAX_ENTRIES = 100_000
MAX_DEPTH = 32
_CHUNK = 1 << 20


def _file_digest(path: Path) -> tuple[int, bytes]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
            size += len(chunk)
    return size, h.digest()


def _record(kind: bytes, name: str, size: int, digest: bytes) -> bytes:
    raw = name.encode("utf-8", "surrogateescape")
    return kind + len(raw).to_bytes(8, "big") + raw + size.to_bytes(8, "big") + digest


def _refuse(root: Path, path: Path, why: str) -> UserError:
    return UserError(
        f"'{path}' inside '{root}' {why}; tinyship hashes only regular files and folders inside "
        "a model folder. Re-run the stage that wrote it with --force."
    )


def _tree(root: Path, folder: Path, depth: int, count: list[int]) -> tuple[int, bytes]:
    """(total bytes, digest) of ``folder``: sha256 over its entries' records in name order."""
    if depth > MAX_DEPTH:
        raise _refuse(root, folder, f"nests deeper than {MAX_DEPTH} folders")
    h = hashlib.sha256(b"tinyship.tree/1\n")
    total = 0
    for name in sorted(os.listdir(folder)):
        count[0] += 1
        if count[0] > MAX_ENTRIES:
            raise _refuse(root, folder, f"holds more than {MAX_ENTRIES} entries")
        path = folder / name
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            raise _refuse(root, path, f"is a symlink (to '{os.readlink(path)}')")
        if stat.S_ISDIR(mode):
            size, digest = _tree(root, path, depth + 1, count)
            h.update(_record(b"d", name, size, digest))
        elif stat.S_ISREG(mode):
            size, digest = _file_digest(path)
            h.update(_record(b"f", name, size, digest))
        else:
            raise _refuse(root, path, "is not a regular file or folder")
        total += size
    return total, h.digest()


def tree_sha256(folder: str | os.PathLike) -> str:
    """Merkle sha256 of ``folder`` (hex); UserError on a symlink or special file inside it."""
    folder = Path(folder)
    if folder.is_symlink():
        raise _refuse(folder.parent, folder, f"is a symlink (to '{os.readlink(folder)}')")
    return _tree(folder, folder, 0, [0])[1].hex()
