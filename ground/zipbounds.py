"""Bounds on a zip archive read from its directory, before any entry is inflated (issue 41).

A few hundred KB of deflated zeros can inflate to gigabytes (a decompression bomb), and a
zip may list thousands of entries or one name twice (each reader could pick a different
copy). ``zipfile`` stops inflating an entry at the size its directory records and then
fails its CRC, so the recorded sizes are a bound that holds; checking them first costs
nothing. ``ground.pt2`` applies these with per-entry limits; ``.npz`` files of the run
directory (``ground.rundir.read_npz``) with :func:`check_npz`.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path

from .errors import UserError

MAX_TOTAL_BYTES = 1 << 33  # 8 GiB inflated in all
MAX_INFLATION = 20  # inflated bytes per archive byte; numpy.savez and torch store, not deflate
MAX_ENTRIES = 10_000


def problem(
    infos: list[zipfile.ZipInfo],
    archive_bytes: int,
    *,
    max_entries: int = MAX_ENTRIES,
    max_total: int = MAX_TOTAL_BYTES,
    entry_limit: Callable[[str], int | None] = lambda name: None,
) -> tuple[str, str] | None:
    """(entry, why) for the first bound the directory breaks (entry "" for the total), else None."""
    if len(infos) > max_entries:
        return infos[0].filename, f"is one of {len(infos)} entries (at most {max_entries})"
    seen: set[str] = set()
    total = 0
    for info in infos:
        if info.filename in seen:
            return info.filename, "appears twice (each reader could pick a different copy)"
        seen.add(info.filename)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            return info.filename, f"uses zip compression method {info.compress_type}"
        limit = entry_limit(info.filename)
        if limit is not None and info.file_size > limit:
            return info.filename, f"inflates to {info.file_size} bytes (at most {limit} here)"
        total += info.file_size
    limit = min(max_total, max(archive_bytes, 1 << 20) * MAX_INFLATION)
    if total > limit:
        return "", (
            f"inflate to {total} bytes from {archive_bytes} (at most {limit}: a decompression bomb)"
        )
    return None


def check_npz(path: str | os.PathLike, what: str) -> None:
    """UserError when the ``.npz`` at ``path`` breaks a bound (read before numpy inflates it)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            found = problem(zf.infolist(), path.stat().st_size, max_entries=256)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UserError(
            f"{what} at '{path}' is not an .npz archive ({type(exc).__name__}). Re-run the stage "
            "that wrote it with --force."
        ) from None
    if found:
        raise UserError(
            f"{what} at '{path}': "
            + (f"entry '{found[0][:80]}'" if found[0] else "its entries")
            + f" {found[1]}. Re-run the stage that wrote it with --force."
        )
