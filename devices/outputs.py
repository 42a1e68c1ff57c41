"""The report and ship steps: write profile/ (profile.json and its reports) and ship/ (the files
that fit, their manifest, MCU C files and the model card).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import shutil
from pathlib import Path

from ground import rundir
from ground.errors import UserError

from .judging import facts
from .planning import _RERUN_EXPORT
from .records import Estimator, Plan, Record


def not_checked(p: Plan, records: list[Record]) -> list[str]:
    """What this profile did not check, said in profile.json rather than hidden."""
    out = [
        "latency on catalog devices other than the host is estimated, not measured",
        "the adb runner is untested on a phone (parser tested on recorded outputs only)",
    ]
    for art, _ in p.artifacts:
        if all(r.verdict == "not runnable" for r in records if r.artifact == art["file"]):
            fam, runs_on, _ = facts(art)
            out.append(
                f"{art['file']}: no profiled device runs {fam} (it runs on {', '.join(runs_on)}), "
                "so its latency and RAM were not checked"
            )
    return out


def report(p: Plan, analyses: dict, est: Estimator, records: list[Record], out: Path) -> dict:
    """Write profile/ (profile.json, report.md, report.html, plots) into ``out``; returns the document."""
    from . import report as _report

    doc = {
        "schema": "tinyship.profile/1",
        "run": p.card.get("run", p.run_dir.name),
        "created": _dt.datetime.now(_dt.UTC).isoformat(),
        "card_sha256": rundir.sha256_file(p.run_dir / rundir.CARD),
        "exports_sha256": rundir.sha256_file(p.run_dir / rundir.EXPORTS),
        "settings": p.settings,
        "devices": [d.to_dict() for d in p.devices],
        "artifacts": {k: dataclasses.asdict(a) for k, a in analyses.items()},
        "estimator": est.record,
        "records": [dataclasses.asdict(r) for r in records],
        "not_checked": not_checked(p, records),
    }
    search_file = p.run_dir / "search.json"  # left by tinyship.search: the report plots its fronts
    if search_file.is_file():
        doc["search"] = rundir.read_json(search_file, "student search (search.json)")
    rundir.atomic_write_json(out / "profile.json", doc)
    _report.write(out, doc, p.card, p.exports)
    return doc


def ship(p: Plan, records: list[Record], out: Path, doc: dict | None = None) -> list[str]:
    """Write ship/ into ``out``: the artifacts that passed export's gate and fit at least one
    device, with manifest.json; returns their names. A gate-failed or unchecked file never ships."""
    gate = {art["file"] for art, _ in p.artifacts if art.get("passed") is True}
    passing = sorted({r.artifact for r in records if r.verdict == "fits" and r.artifact in gate})
    _write_ship(out, p.run_dir, passing, p.card, p.exports, records)
    if doc is not None:  # the model card reads the profile document for its recommendations
        from . import model_card

        manifest = rundir.read_json(out / "manifest.json", "ship manifest")
        model_card.write(out, p.card, p.exports, doc, manifest)
    return passing


def _write_ship(
    out: Path, run_dir: Path, passing: list[str], card: dict, exports: dict, records: list[Record]
) -> None:
    arts = {a["file"]: a for a in exports.get("artifacts", [])}
    files = []
    for name in passing:
        src = run_dir / "export" / name
        if src.is_dir():
            shutil.copytree(src, out / name)
        else:
            shutil.copy2(src, out / name)
        a = arts[name]
        sha = rundir.sha256_file(out / name)
        if sha != a["sha256"]:  # the copy is what ships: it must be the bytes export checked
            raise UserError(
                f"'{src}' changed while it was profiled (sha256 {sha[:12]}…, exports.json "
                f"{a['sha256'][:12]}…); nothing was shipped. {_RERUN_EXPORT}"
            )
        c_pair = _mcu_c_files(out, src, name, a, card, records)
        files.append(
            {
                **({"c_files": c_pair} if c_pair else {}),
                "file": name,
                "format": a["format"],
                "precision": a["precision"],
                "bytes": rundir.path_bytes(out / name),
                "sha256": sha,
                "checked_sha256": a["sha256"],
                "input": a.get("input"),
                "output": a.get("output"),
                "accuracy": a.get("accuracy"),
                "parity": a.get("parity"),
                "devices": {
                    r.device: {
                        "verdict": r.verdict,
                        "method": r.method,
                        "latency_ms": r.latency_ms,
                        "ram_bytes": r.ram_bytes,
                        "flash_bytes": r.flash_bytes,
                    }
                    for r in records
                    if r.artifact == name
                },
            }
        )
    rundir.atomic_write_json(
        out / "manifest.json",
        {
            "schema": "tinyship.ship/1",
            "run": card.get("run"),
            "input": card.get("input"),
            "output": card.get("output"),
            "labels": card.get("labels"),
            "metrics": (card.get("metrics") or {}).get("holdout"),
            "files": files,
            "rule": "an artifact ships when it passed export's gate and fits at least one profiled device "
            "(see profile/profile.json); its sha256 is the one export checked",
            "upstream": {
                "card_sha256": rundir.sha256_file(run_dir / rundir.CARD),
                "exports_sha256": rundir.sha256_file(run_dir / rundir.EXPORTS),
            },
        },
    )


def _mcu_c_files(
    out: Path, src: Path, name: str, art: dict, card: dict, records: list[Record]
) -> dict | None:
    """model_data.h/.c beside a full-int8 .tflite that fits a microcontroller (devices/mcu_files.py)."""
    mcus = [
        r.device
        for r in records
        if r.artifact == name and r.device_class == "mcu" and r.verdict == "fits"
    ]
    io_int8 = all((art.get(k) or {}).get("dtype") == "int8" for k in ("input", "output"))
    if not mcus or art["format"] != "tflite" or art["precision"] != "int8-full" or not io_int8:
        return None  # the C pair carries int8 I/O scales: only for files whose tensors are int8
    from .mcu_files import c_dir_name, write_model_c

    folder = c_dir_name(name)
    paths = write_model_c(src, out / folder, art, card, art.get("tflm_arena_bytes"))
    return {
        "dir": folder,
        "files": {p.name: rundir.sha256_file(p) for p in paths},
        "devices": mcus,
        "arena_bytes": art.get("tflm_arena_bytes"),
    }
