"""``ship/SHA256SUMS``: what was shipped, so readers verify ship/ instead of trusting it.

The devices stage writes it last, inside the same commit as ``profile/`` and ``ship/``:
one line ``<sha256>  <path>`` per file under ship/ (the files of a model folder one by
one), and one for ``../profile/profile.json`` whose figures the manifest and the model
card repeat. It is the format ``sha256sum`` writes, so ``cd ship && sha256sum -c
SHA256SUMS`` checks a copy anywhere. ``tinyship check`` and ``tinyship summary`` call
:func:`verify`: a shipped file changed, deleted, added or replaced by a symlink, an
edited manifest.json or profile.json, or a manifest whose hashes are not the ones export
checked, is reported naming the file (issue 41).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from .errors import UserError
from .rundir import EXPORTS, MANIFEST, PROFILE, atomic_write_bytes, read_json, sha256_file

SUMS = "SHA256SUMS"
PROFILE_REL = "../" + PROFILE
_LINE = re.compile(r"([0-9a-f]{64})  (.+)")


def _walk(folder: Path, prefix: str = "") -> list[tuple[str, Path]]:
    """Every entry under ``folder`` as (relative path, path), sorted, without following links."""
    out = []
    for name in sorted(os.listdir(folder)):
        path, rel = folder / name, prefix + name
        mode = os.lstat(path).st_mode
        out.append((rel, path))
        if stat.S_ISDIR(mode):
            out.extend(_walk(path, rel + "/"))
    return out


def write(ship_dir: str | os.PathLike, profile_json: str | os.PathLike) -> Path:
    """Write ``ship_dir/SHA256SUMS`` over every file in it and the profile.json beside it."""
    ship_dir = Path(ship_dir)
    lines = []
    for rel, path in _walk(ship_dir):
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise UserError(f"'{path}' is not a regular file; ship/ holds only files and folders.")
        if "\n" in rel or "\\" in rel:
            raise UserError(f"'{path}' has a newline or backslash in its name; rename it.")
        if stat.S_ISREG(mode) and rel != SUMS:
            lines.append(f"{sha256_file(path)}  {rel}")
    lines.append(f"{sha256_file(profile_json)}  {PROFILE_REL}")
    return atomic_write_bytes(ship_dir / SUMS, ("\n".join(lines) + "\n").encode())


def _listed(ship: Path) -> tuple[dict[str, str], list[str]]:
    """SHA256SUMS as {path: sha256}, and what is wrong with the file itself."""
    sums = ship / SUMS
    if sums.is_symlink() or not sums.is_file():
        return {}, [
            f"ship/{SUMS} is missing: nothing records what was shipped (ship/ was edited, or "
            "written before tinyship recorded it)"
        ]
    listed, problems = {}, []
    for i, line in enumerate(sums.read_bytes().decode("utf-8", "replace").splitlines(), 1):
        m = _LINE.fullmatch(line)
        rel = m.group(2) if m else ""
        if not m or rel.startswith("/") or (".." in rel.split("/") and rel != PROFILE_REL):
            problems.append(f"ship/{SUMS} line {i} is not '<sha256>  <path inside ship/>'")
            continue
        listed[rel] = m.group(1)
    return listed, problems


def _file_problem(ship: Path, rel: str, want: str) -> str | None:
    path = ship / rel
    shown = rel[3:] if rel == PROFILE_REL else f"ship/{rel}"
    for parent in [path, *path.parents]:
        if parent == ship.parent:
            break
        if parent.is_symlink():
            return f"{shown} is a symlink (to '{os.readlink(parent)}'), not the file shipped"
    if not path.exists():
        return f"{shown} is missing (deleted after it was shipped)"
    if not path.is_file():
        return f"{shown} is not a regular file"
    got = sha256_file(path)
    if got != want:
        return f"{shown} changed after it was shipped (sha256 {got[:12]}…, recorded {want[:12]}…)"
    return None


def _chain_problems(run: Path) -> list[str]:
    """manifest.json: each file's sha256 is its bytes' and the one export checked (when export
    has not run again since)."""
    manifest = read_json(run / MANIFEST, "ship manifest (ship/manifest.json)")
    exports = read_json(run / EXPORTS, "exports record") if (run / EXPORTS).is_file() else {}
    recorded = (manifest.get("upstream") or {}).get("exports_sha256")
    if exports and recorded != sha256_file(run / EXPORTS):
        exports = {}  # export ran again since: stale (ground.rundir.stale says so), not tampered
    checked = {a["file"]: a.get("sha256") for a in exports.get("artifacts", [])}
    out = []
    for f in manifest["files"]:
        name = f["file"]
        path = run / "ship" / name
        if "/" in name or name in (".", "..") or not path.exists() or path.is_symlink():
            out.append(f"ship/manifest.json lists '{name[:80]}', which is not a file in ship/")
        elif sha256_file(path) != f["sha256"]:
            out.append(f"ship/{name}: its sha256 is not the one ship/manifest.json records")
        elif exports and checked.get(name) != f["sha256"]:
            out.append(f"ship/{name}: its sha256 is not the one export/exports.json records")
    return out


def verify(run_dir: str | os.PathLike) -> list[str]:
    """What differs between ``run_dir/ship`` and what was shipped; [] when all matches (or the
    devices stage has not run: neither profile/ nor ship/)."""
    run = Path(run_dir)
    ship = run / "ship"
    if ship.is_symlink():
        return [f"ship/ is a symlink (to '{os.readlink(ship)}'), not the folder tinyship wrote"]
    if not ship.is_dir():  # profile/ and ship/ are committed together: one without the other
        return ["ship/ is missing beside profile/"] if (run / PROFILE).is_file() else []
    listed, problems = _listed(ship)
    if not listed:
        return problems
    for rel, want in listed.items():
        why = _file_problem(ship, rel, want)
        if why:
            problems.append(why)
    for rel, path in _walk(ship):
        if rel != SUMS and rel not in listed and (path.is_symlink() or not path.is_dir()):
            problems.append(f"ship/{rel} was added after shipping (not in ship/{SUMS})")
    if PROFILE_REL not in listed and (run / PROFILE).is_file():
        problems.append(f"ship/{SUMS} does not record profile/profile.json")
    if not problems and (run / MANIFEST).is_file():
        problems += _chain_problems(run)
    elif not (run / MANIFEST).is_file() and "manifest.json" not in listed:
        problems.append("ship/manifest.json is missing")
    return problems


def refuse_if_broken(run_dir: str | os.PathLike) -> None:
    """A UserError listing what differs in ship/, with the command that rewrites it."""
    problems = verify(run_dir)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise UserError(
            "ship/ is not what tinyship shipped: " + "; ".join(problems[:5]) + more + ". "
            f"Rewrite profile/ and ship/ with: tinyship profile --run {run_dir} --force"
        )


def fail_lines(run_dir: str | os.PathLike) -> list[str]:
    """One ``FAIL`` line per difference, for the summary; [] when ship/ is as shipped."""
    return [
        f"FAIL {p}. Rewrite it: tinyship profile --run {run_dir} --force" for p in verify(run_dir)
    ]
