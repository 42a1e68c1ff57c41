"""The report and ship steps: write profile/ (profile.json and its reports) and ship/ (the files
that fit, their manifest, MCU C files and the model card).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import shutil
import sys
from pathlib import Path

from ground import rundir
from ground.errors import UserError

from . import examples, examples_check, integration_examples
from .judging import facts
from .planning import _RERUN_EXPORT
from .records import Estimator, Plan, Record


def _qemu_user(r: Record) -> bool:
    """Timed under qemu-user on this machine (the pi-sim): a measurement, not a device timing."""
    return r.method == "measured" and str((r.latency or {}).get("timing", "")).startswith(
        "emulated"
    )


_LATENCY_KINDS = (  # (which records, the line's words); a measured record needs no line
    (lambda r: r.method == "estimated", "latency estimated, not measured, on {}"),
    (
        lambda r: r.method == "emulated",
        "latency on {} from instructions counted in QEMU and the core's cycle model (emulated, "
        "not timed on the board)",
    ),
    (
        _qemu_user,
        "latency on {} timed under qemu-user on this machine's CPU (not a device timing, not "
        "judged)",
    ),
)


def _devices_where(records: list[Record], kind) -> str:  # noqa: ANN001 - a predicate
    """The devices with records of ``kind``, each followed by its files when not all of its
    files with a latency are of that kind (e.g. only the int8 file is emulated)."""
    parts = []
    for dev in dict.fromkeys(r.device for r in records):
        mine = [r for r in records if r.device == dev and r.latency_ms is not None]
        hits = [r.artifact for r in mine if kind(r)]
        if hits:
            parts.append(dev if len(hits) == len(mine) else f"{dev} ({', '.join(hits)})")
    return ", ".join(parts)


def not_checked(p: Plan, records: list[Record]) -> list[str]:
    """What this profile did not check, said in profile.json rather than hidden: per run, how
    each device's latency was found where it was not measured on the device itself."""
    out = [
        line.format(where)
        for kind, line in _LATENCY_KINDS
        if (where := _devices_where(records, kind))
    ]
    if any(t.runner == "adb" for t in p.targets):
        out.append("the adb runner is untested on a phone (parser tested on recorded outputs only)")
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
    """Write ship/ into ``out``: the artifacts that passed export's gate, fit at least one
    device and whose example reproduces their holdout accuracy, with manifest.json,
    preprocess.json and examples/; returns their names. A gate-failed or unchecked file never
    ships."""
    gate = {art["file"] for art, _ in p.artifacts if art.get("passed") is True}
    passing = sorted({r.artifact for r in records if r.passes and r.artifact in gate})
    arts = {a["file"]: a for a in p.exports.get("artifacts", [])}
    for name in passing:
        _copy(out, p.run_dir / "export" / name, arts[name])
    checks = _run_examples(out, p, passing, arts)
    refused = [c for c in checks.values() if not c.passed]
    for c in refused:  # shipped only as its own example runs it
        _remove(out / c.file)
        examples.remove(out, c.file)
        print(f"ship: {c.file} refused: {c.reason}", file=sys.stderr)
    passing = [f for f in passing if f not in {c.file for c in refused}]
    _write_ship(out, p.run_dir, passing, p.card, p.exports, records, checks)
    integration_examples.write(
        out, p.run_dir, p.card, p.exports, passing, doc
    )  # C++, Kotlin, Swift
    if doc is not None:  # the model card reads the profile document for its recommendations
        from . import model_card

        manifest = rundir.read_json(out / "manifest.json", "ship manifest")
        model_card.write(out, p.card, p.exports, doc, manifest)
    return passing


def _copy(out: Path, src: Path, a: dict) -> None:
    name = src.name
    if src.is_dir():
        shutil.copytree(src, out / name)
    else:
        shutil.copy2(src, out / name)
    sha = rundir.sha256_file(out / name)
    if sha != a["sha256"]:  # the copy is what ships: it must be the bytes export checked
        raise UserError(
            f"'{src}' changed while it was profiled (sha256 {sha[:12]}…, exports.json "
            f"{a['sha256'][:12]}…); nothing was shipped. {_RERUN_EXPORT}"
        )


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _run_examples(
    out: Path, p: Plan, passing: list[str], arts: dict[str, dict]
) -> dict[str, examples_check.ExampleCheck]:
    """preprocess.json and examples/ for the files that would ship, each example run on the
    raw holdout (devices/examples_check.py)."""
    if rundir.HOLDOUT.split("/")[-1] not in (p.card.get("sha256") or {}):
        return {}  # files made elsewhere (profile FILE): no holdout, no contract to run them on
    written = examples.write(out, p.card, [arts[f] for f in passing])
    return examples_check.check(out, p.run_dir, p.card, arts, written)


def _write_ship(
    out: Path,
    run_dir: Path,
    passing: list[str],
    card: dict,
    exports: dict,
    records: list[Record],
    checks: dict[str, examples_check.ExampleCheck],
) -> None:
    arts = {a["file"]: a for a in exports.get("artifacts", [])}
    files = []
    for name in passing:
        a = arts[name]
        c_pair = _mcu_c_files(out, run_dir / "export" / name, name, a, card, records)
        firmware = _firmware_folder(out, run_dir / "export" / name, name, records)
        check = checks.get(name)
        files.append(
            {
                **({"c_files": c_pair} if c_pair else {}),
                **({"firmware": firmware} if firmware else {}),
                **({"example": check.example, "example_check": check.record()} if check else {}),
                "file": name,
                "format": a["format"],
                "precision": a["precision"],
                "bytes": rundir.path_bytes(out / name),
                "sha256": rundir.sha256_file(out / name),
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
            # none for profile FILE: files no run made have no preprocessing contract
            "preprocess": examples.PREPROCESS if (out / examples.PREPROCESS).is_file() else None,
            "files": files,
            "refused": [c.record() for c in checks.values() if not c.passed],
            "rule": "an artifact ships when it passed export's gate, fits at least one profiled "
            "device (see profile/profile.json) and its example (examples/<file>.py), run on the "
            "raw holdout, reproduces its recorded holdout accuracy; its sha256 is the one export "
            "checked",
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
        r.device for r in records if r.artifact == name and r.device_class == "mcu" and r.passes
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


def _firmware_folder(out: Path, src: Path, name: str, records: list[Record]) -> dict | None:
    """The buildable firmware folder of a file emulated byte-identically (devices/firmware/bundle.py)."""
    if not any(getattr(r, "emulated", None) for r in records if r.artifact == name):
        return None
    from .firmware.bundle import ship_entry

    return ship_entry(out, src, name, records)
