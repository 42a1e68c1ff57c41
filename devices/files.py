"""``profile FILE...``: profile any .onnx/.tflite that no tinyship run produced.

The devices stage reads a run directory (DESIGN.md), so this builds one around the files:
``OUT/student/card.json`` says only what the files themselves say (input and output read from the
file by its runtime, no labels, no metrics) and ``OUT/export/exports.json`` lists each file with
its bytes, sha256, input and output (shape, dtype, quantization: devices/file_io.py), a precision
read from its tensor dtypes (a description, never what decides runnability) and the check it
ships under (it loads and runs in its runtime: there is no reference to compare it with).
``OUT`` may be a fresh folder or one an earlier ``profile FILE`` made; a tinyship run's
``student/`` and ``export/`` are never replaced, ``--force`` or not.
Every .tflite the static analysis does not already rule out is run in TFLite Micro in a child
process (ground.tflm): its measured arena becomes the RAM figure on MCUs, and a file TFLM
refuses is recorded as "not runnable on TFLite Micro: <reason>". Then :func:`devices.profile`
writes ``OUT/profile/profile.json`` in the usual record schema.
"""

from __future__ import annotations

import datetime as _dt
import shutil
from pathlib import Path

from ground import rundir
from ground.errors import UserError

from . import analysis as _analysis
from . import file_io

FORMATS = {".onnx": "onnx", ".tflite": "tflite"}
FAMILY = {"onnx": "onnxruntime", "tflite": "litert"}
CLASSES = ("host", "sbc", "phone", "mcu", "pda", "apple")


def format_facts(fmt: str, tflm: dict) -> dict:
    """exports.json format facts for a foreign file: where its runtime runs, and why not elsewhere.
    MCU/PDA runnability comes from TFLite Micro itself (or the static analysis), not a label."""
    runs_on = ["host", "sbc", "phone"]
    not_on = {"apple": f"no {FAMILY[fmt]} runtime on Apple devices in this catalog"}
    if fmt == "tflite" and not tflm.get("tflm_refusal"):
        runs_on += ["mcu", "pda"]
    else:
        why = tflm.get("tflm_refusal") or "TFLite Micro runs .tflite flatbuffers only"
        not_on.update({c: f"not runnable on TFLite Micro: {why}" for c in ("mcu", "pda")})
    return {"runtime_family": FAMILY[fmt], "runs_on": runs_on, "not_on": not_on}


def precision_of(a: _analysis.Analysis) -> str:
    """A descriptive precision label from the file's own dtypes (runnability never reads it)."""
    mm = [op.dtype for op in a.ops if op.kind in _analysis.MATMUL_KINDS]
    if "hybrid" in mm:
        return "int8-dynamic"
    if mm and all(d == "int8" for d in mm):
        return "int8-full"
    if "float16" in a.weight_bytes_by_dtype:
        return "fp16"
    return "fp32"


def _tflm(path: Path, a: _analysis.Analysis) -> dict:
    """Run the file in TFLite Micro (child process) unless the analysis already rules it out."""
    if a.format != "tflite" or a.tflm_refusal is not None:
        return {"tflm_refusal": a.tflm_refusal}
    from ground import tflm

    try:
        r = tflm.run(path)
    except tflm.TflmRefused as exc:
        return {"tflm_refusal": exc.reason}
    return {
        "tflm_arena_bytes": r.arena_bytes,
        "tflm_arena": {"head_bytes": r.head_bytes, "tail_bytes": r.tail_bytes, "parts": r.parts},
        "tflm_runtime": r.runtime,
    }


def _made_by_profile_file(out: Path) -> bool:
    """Whether ``out``'s student/ and export/ (those present) were written by profile FILE."""
    for rel in (rundir.CARD, rundir.EXPORTS):
        if (out / rel).is_file():
            doc = rundir.read_json(out / rel, "run record")
            if not isinstance(doc, dict) or doc.get("origin") != "profile FILE":
                return False
        elif (out / rel).parent.exists():
            return False
    return True


def _check_out(out: Path, force: bool) -> None:
    """Refuse to touch a tinyship run's student/ or export/; replace profile FILE's own with --force."""
    present = [st for st in ("student", "export") if (out / st).exists()]
    if not present:
        return
    if not _made_by_profile_file(out):
        raise UserError(
            f"'{out}' holds a tinyship run ({' and '.join(p + '/' for p in present)} made by distill "
            "and export); profile FILE builds its own student/ and export/ around the files, and "
            "--force replaces only what the command names (profile FILE: what an earlier profile "
            "FILE wrote there), never a run's student/ or export/. Nothing was changed. Profile "
            f"the files into another folder (--run build/profile), or that run's own exports with "
            f"tinyship profile --run {out} --force."
        )
    if not force:
        raise UserError(
            f"'{out / present[0]}' already exists. Pass --force to replace it (it was "
            "written by an earlier profile FILE; --force replaces only profile FILE's "
            "own student/, export/, profile/ and ship/)."
        )


def build_run(files: list[str | Path], out_dir: str | Path, force: bool = False) -> Path:
    """Make ``out_dir`` a run directory holding ``files`` (student/card.json, export/)."""
    out = Path(out_dir)
    paths = [Path(f) for f in files]
    if not paths:
        raise UserError("profile needs at least one model file (.onnx or .tflite).")
    for p in paths:
        if not p.is_file():
            raise UserError(f"model file '{p}' not found. Check the path.")
        if p.suffix not in FORMATS:
            raise UserError(
                f"model file '{p}' has suffix '{p.suffix}'; profile FILE takes {', '.join(FORMATS)}."
            )
    names = [p.name for p in paths]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UserError(
            f"two files share the name {dup[0]!r}; profile them in separate --out folders or rename one."
        )
    _check_out(out, force)
    analyses = [_analysis.analyse(p) for p in paths]
    ios = [file_io.read(p, FORMATS[p.suffix]) for p in paths]
    card = {
        "schema": "tinyship.card/1",
        "run": out.name,
        "task": "unknown (profile FILE: no tinyship run made these files)",
        "origin": "profile FILE",
        "input": _card_tensor(
            [t for io, a in zip(ios, analyses) if (t := io.input or a.input)] or [None]
        ),
        "output": _card_tensor([io.output for io in ios if io.output] or [None]),
        "labels": None,
        "metrics": {},
        "lineage": {
            "command": "profile FILE",
            "files": [str(p.resolve()) for p in paths],
            "created": _dt.datetime.now(_dt.UTC).isoformat(),
            "versions": rundir.package_versions(),
        },
    }
    with rundir.staged_dir(out, "student", force=True) as st:
        rundir.atomic_write_json(st / "card.json", card)
    with rundir.staged_dir(out, "export", force=True) as exp:
        arts = []
        for p, a, io in zip(paths, analyses, ios):
            shutil.copyfile(p, exp / p.name)
            tflm = _tflm(exp / p.name, a)
            arts.append(
                {
                    "file": p.name,
                    "format": FORMATS[p.suffix],
                    "precision": precision_of(a),
                    "precision_source": "read from the file's tensor dtypes",
                    "bytes": p.stat().st_size,
                    "sha256": rundir.sha256_file(p),
                    "source_path": str(p.resolve()),
                    "input": io.input or a.input,
                    "output": io.output,
                    "runtime": io.runtime,
                    "parity": None,
                    "accuracy": None,
                    "passed": io.runs,
                    "gate": io.check,
                    **format_facts(FORMATS[p.suffix], tflm),
                    **tflm,
                }
            )
        rundir.atomic_write_json(
            exp / "exports.json",
            {
                "schema": "tinyship.exports/1",
                "origin": "profile FILE",
                # the integrity chain's link to the card written above (devices checks it)
                "card_sha256": rundir.sha256_file(out / rundir.CARD),
                "artifacts": arts,
            },
        )
    return out


def _card_tensor(specs: list[dict | None]) -> dict:
    """The card's input (or output): the shape without the batch axis, and the dtype when every
    file shares it; each file's own dtype and quantization are in exports.json (files[] in the
    ship manifest)."""
    first = specs[0]
    if first is None:
        return {"source": "no file ran in its runtime, so none reported this tensor"}
    dtypes = sorted({s["dtype"] for s in specs})
    return {
        "name": first.get("name", "input"),
        "shape": list(first["shape"][1:]),
        "dtype": dtypes[0] if len(dtypes) == 1 else "per file: " + ", ".join(dtypes),
        "layout": "not recorded by profile FILE",
        "source": "read from the file(s) by their runtime; per file in exports.json",
    }


def profile_files(
    files: list[str | Path],
    out_dir: str | Path = "build/profile",
    devices: list[str] | None = None,
    stack: str | None = None,
    force: bool = False,
    **profile_kwargs,
):
    """Build a run dir around ``files`` in ``out_dir``, then profile it (``OUT/profile/profile.json``).

    ``profile_kwargs`` go to :func:`devices.profile` (``targets``, ``settings``, ``catalog``, ``budgets``).
    """
    from .profile import profile

    run = build_run(files, out_dir, force=force)
    return profile(run, devices, stack=stack, force=True, **profile_kwargs)
