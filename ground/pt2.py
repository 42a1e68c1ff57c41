"""Load a ``.pt2`` (torch.export) archive without running code from it.

``torch.export.load`` in torch 2.13 is not safe on an untrusted file: it unpickles
sample inputs (falling back to ``weights_only=False``), weights and constants marked
``use_pickle``, ``custom_obj_``/``opaque_obj_`` constants and legacy ``.pt`` files; it
passes the graph's symbolic-shape strings to ``sympy.sympify`` (an ``eval``), compiles
``guards_code`` into Python, and loads AOTInductor shared libraries. So the archive is
read into memory once, every entry is checked against what a plain exported program
holds, and only then handed to torch from that same buffer (no re-read, no race).
Anything else is refused with one line naming the entry, unless the user passes
``--trust-pickles`` (then torch loads it as it would).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from . import zipbounds
from .errors import UserError
from .pt2_expr import expression_problem

MAX_ARCHIVE_BYTES = 1 << 30
MAX_TENSOR_ELEMENTS = 1 << 28
# bounds read from the zip's directory before any entry is read or inflated
MAX_ENTRIES = 10_000
MAX_JSON_BYTES = 64 << 20  # a models/*.json or payload config (the demo's graph: 17,683 B)
MAX_SMALL_BYTES = 1 << 20  # sample inputs, version strings, extra/
MAX_JSON_DEPTH = 64  # the demo's graph nests 9 deep
_TARGET_PREFIXES = ("torch.ops.aten.", "torch.ops.prims.")
_TARGET_NAMES = {
    "_operator.getitem", "_operator.add", "_operator.sub", "_operator.mul", "_operator.floordiv",
    "_operator.truediv", "_operator.mod", "_operator.neg", "_operator.pow", "_operator.eq",
    "_operator.ne", "_operator.lt", "_operator.le", "_operator.gt", "_operator.ge",
    "_operator.and_", "_operator.or_", "_operator.not_", "torch.sym_int", "torch.sym_float",
    "torch.sym_max", "torch.sym_min", "torch.sym_not", "torch.sym_sqrt", "torch.sym_ite",
    "math.ceil", "math.floor", "math.trunc", "math.sqrt",
}  # fmt: skip
_DENIED_OPS = ("from_file", "_load", "save")
_FIX = "Pass --trust-pickles only if you made this file yourself."


class UnsafeArchiveError(UserError):
    """A ``.pt2`` entry that ``torch.export.load`` would unpickle, eval or execute."""


def _refuse(path: Path, entry: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"'{path}' entry '{entry}' {why}: loading it could run code from the file, so tinyship "
        f"refuses it. {_FIX}"
    )


def _check_expr(path: Path, entry: str, text: Any, what: str) -> None:
    """torch hands shape expressions to ``sympy.sympify`` (an eval) and compiles guards into
    Python: each is parsed here, never evaluated, and refused unless plainly harmless."""
    problem = expression_problem(text)
    if problem:
        raise _refuse(path, entry, f"has a {what} that tinyship does not evaluate: {problem}")


def _check_target(path: Path, entry: str, target: str) -> None:
    ok = target in _TARGET_NAMES or (
        target.startswith(_TARGET_PREFIXES)
        and not any(f".{d}" in target for d in _DENIED_OPS)
        and "__" not in target
    )
    if not ok:
        raise _refuse(path, entry, f"calls '{target[:80]}', not an ATen operator")


def _walk_graph(path: Path, entry: str, obj: Any) -> None:
    """Every operator, shape expression and guard in ``models/<name>.json``."""
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, dict):
            for k, v in o.items():
                if k == "expr_str":
                    _check_expr(path, entry, v, "shape expression")
                elif k in ("target", "as_operator") and isinstance(v, str):
                    _check_target(path, entry, v)
                elif k == "guards_code":
                    for g in v if isinstance(v, list) else [v]:
                        _check_expr(path, entry, g, "guard")
                elif k in ("as_custom_obj", "custom_obj") and v:
                    raise _refuse(path, entry, "holds a custom (TorchScript) object")
                else:
                    stack.append(v)
        elif isinstance(o, list):
            stack.extend(o)


def _check_payloads(path: Path, entry: str, config: Any, prefix: str, sizes: dict) -> None:
    """Weights/constants configs: every payload a raw tensor file, none pickled, bounded size."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise _refuse(path, entry, "is not a payload config")
    for fqn, meta in config["config"].items():
        where = f"{entry}: {str(fqn)[:60]}"
        if not isinstance(meta, dict):
            raise _refuse(path, where, "is not a payload record")
        if meta.get("use_pickle"):
            raise _refuse(path, where, "is marked use_pickle (torch.load with weights_only=False)")
        name = meta.get("path_name")
        if not isinstance(name, str) or not re.fullmatch(prefix + r"[0-9]+", name):
            raise _refuse(path, where, f"names the payload {str(name)[:60]!r}, not a raw tensor")
        tm = meta.get("tensor_meta")
        dims = tm.get("sizes") if isinstance(tm, dict) else None
        if not isinstance(dims, list):
            raise _refuse(path, where, "has no tensor sizes")
        numel = 1
        for d in dims:
            v = d.get("as_int") if isinstance(d, dict) else None
            if not isinstance(v, int) or v < 0:
                raise _refuse(path, where, f"has the size {str(d)[:60]}, not a non-negative int")
            numel *= v
        if numel > MAX_TENSOR_ELEMENTS or (sizes.get(name, 0) == 0 and numel > 0):
            raise _refuse(path, where, f"declares {numel} elements but stores {sizes.get(name)} B")


def _check_bounds(infos: list[zipfile.ZipInfo], archive_bytes: int, path: Path) -> None:
    """Entry count, names and inflated sizes from the zip's directory, before reading any entry."""
    found = zipbounds.problem(
        infos,
        archive_bytes,
        max_entries=MAX_ENTRIES,
        max_total=MAX_ARCHIVE_BYTES,
        entry_limit=lambda name: _entry_limit(name.split("/", 1)[-1]),
    )
    if found:
        raise _refuse(path, found[0][:80] or "(all entries)", found[1])


def _entry_limit(rel: str) -> int | None:
    """The most bytes one entry may inflate to; None for tensor payloads (bounded in total)."""
    if rel.endswith(".json"):
        return MAX_JSON_BYTES
    if re.search(r"(^|/)(weight|tensor)_[0-9]+$", rel):
        return None
    return MAX_SMALL_BYTES


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> bytes:
    try:
        return zf.read(info)
    except Exception as exc:  # zipfile raises BadZipFile, zlib.error, EOFError, ... on damage
        raise UserError(
            f"'{path}' entry '{info.filename}' cannot be read ({type(exc).__name__}): the archive "
            "is damaged. Re-run the stage that wrote it with --force."
        ) from exc


def _json_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` outside strings, without parsing (json.loads recurses)."""
    depth = deepest = 0
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        c = m.group()
        if c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


def _read_json(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, rel: str) -> Any:
    try:
        text = _read(zf, info, path).decode("utf-8")
        depth = _json_depth(text)
        if depth > MAX_JSON_DEPTH:
            raise _refuse(path, rel, f"nests {depth} deep (at most {MAX_JSON_DEPTH})")
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise _refuse(path, rel, f"is not JSON ({type(exc).__name__})") from exc


def check_archive(data: bytes, path: Path) -> None:
    """Raise UnsafeArchiveError unless every entry is one a plain exported program holds."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise UserError(f"'{path}' is not a .pt2 archive (a zip file): {exc}") from exc
    names = [i.filename for i in infos]
    roots = {n.split("/", 1)[0] for n in names}
    if len(roots) != 1 or any("/" not in n for n in names):
        raise _refuse(path, names[0][:80] if names else "(none)", "is outside one archive root")
    _check_bounds(infos, len(data), path)
    root = roots.pop() + "/"
    sizes = {}
    models, configs = [], []
    for info in infos:
        rel = info.filename[len(root) :]
        if ".." in rel.split("/") or rel.startswith("/"):
            raise _refuse(path, info.filename, "has a path that leaves the archive")
        if rel.startswith("data/weights/") or rel.startswith("data/constants/"):
            leaf = rel.rsplit("/", 1)[1]
            if leaf.endswith("_config.json"):
                configs.append((rel, info))
            elif re.fullmatch(r"(weight|tensor)_[0-9]+", leaf):
                sizes[leaf] = info.file_size
            else:
                raise _refuse(path, rel, "is a pickled or compiled payload")
        elif re.fullmatch(r"models/[A-Za-z0-9_]+\.json", rel):
            models.append((rel, info))
        elif re.fullmatch(r"data/sample_inputs/[A-Za-z0-9_]+\.pt", rel):
            _check_sample_inputs(path, rel, _read(zf, info, path))
        elif rel in ("archive_format", "archive_version", "byteorder", ".data/version"):
            pass
        elif rel in (".data/serialization_id",) or rel.startswith("extra/"):
            pass  # read as text by torch
        else:
            raise _refuse(path, rel[:80], "is not part of a plain exported program")
    if not models:
        raise UserError(f"'{path}' holds no exported program (no models/*.json entry).")
    for rel, info in configs:
        prefix = "weight_" if rel.startswith("data/weights/") else "tensor_"
        _check_payloads(path, rel, _read_json(zf, info, path, rel), prefix, sizes)
    for rel, info in models:
        _walk_graph(path, rel, _read_json(zf, info, path, rel))


def _check_sample_inputs(path: Path, rel: str, blob: bytes) -> None:
    """torch falls back to ``weights_only=False`` when the restricted unpickler refuses these."""
    if not blob:
        return
    import torch

    try:
        torch.load(io.BytesIO(blob), weights_only=True)
    except Exception as exc:
        raise _refuse(
            path, rel, f"cannot be read with weights_only=True ({type(exc).__name__})"
        ) from exc


def load(path: str | Path, trust_pickles: bool = False):
    """``torch.export.load`` from one in-memory read of ``path``, after :func:`check_archive`."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"torch.export program not found at '{path}'.")
    size = path.stat().st_size
    if size > MAX_ARCHIVE_BYTES:
        raise UserError(
            f"'{path}' is {size} bytes; tinyship loads .pt2 files up to {MAX_ARCHIVE_BYTES}."
        )
    data = path.read_bytes()
    if not trust_pickles:
        check_archive(data, path)
    return _load_quietly(torch, data)


def _load_quietly(torch, data: bytes):
    """``torch.export.load`` with its own failure log (a traceback on stderr) kept off the console:
    the cause it logs becomes the message of the error raised, which the caller turns into one
    clear line (a corrupt file is a user's input, not a crash)."""
    import logging

    caught: list[logging.LogRecord] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            caught.append(record)

    log = logging.getLogger("torch.export")
    keep, propagate, handlers = _Keep(logging.WARNING), log.propagate, log.handlers[:]
    log.handlers = [keep]  # torch's own handler on this logger prints the traceback
    log.propagate = False
    try:
        return torch.export.load(io.BytesIO(data))
    except Exception as exc:
        causes = [r.exc_info[1] for r in caught if r.exc_info and r.exc_info[1] is not None]
        if causes:
            cause = causes[-1]
            text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
            raise RuntimeError(text.split(". ")[0] or type(cause).__name__) from exc
        raise
    finally:
        log.handlers = handlers
        log.propagate = propagate
