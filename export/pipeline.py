"""The export stage: program → convert → quantize → verify → record (STYLE.md, ExecuTorch-style).

``run`` reads ``student/``, exports every format × precision asked for into a
staged ``export/`` folder, checks each file against the torch student and swaps
the folder in only when every gate passed (or ``keep_going`` was asked).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from ground import logs, rundir
from ground.errors import InternalError, MissingDependencyError, UserError
from ground.recipe import validate

from .int8_io import IoChoice, choose
from .parity import verify
from .program import StudentRun, load_student
from .records import ArtifactRecord, ExportReport
from .registry import Format, plan
from .settings import FIELDS, export_settings, resolve_thresholds


def _finish(record: ArtifactRecord, path: Path) -> ArtifactRecord:
    if path.exists() and record.error is None:
        record.bytes = rundir.path_bytes(path)
        record.sha256 = rundir.sha256_file(path)
    return record


def _io_kwargs(fmt: Format, precision: str, io: IoChoice | None) -> dict[str, Any]:
    """``float_input`` for the static int8 precisions that take it; nothing for the others."""
    if io is None or precision not in fmt.float_input_precisions:
        return {}
    return {"float_input": io.float_io}


def _note_io(record: ArtifactRecord, fmt: Format, precision: str, io: IoChoice | None) -> None:
    """Say in the record (and so the manifest) why a static int8 file has the I/O it has."""
    if io is None or precision not in fmt.float_input_precisions:
        return
    for spec in (record.input, record.output):
        if spec is not None:
            spec.note = io.why


def _convert_and_verify(
    fmt: Format,
    precision: str,
    student: StudentRun,
    path: Path,
    thresholds: dict[str, float],
    exclude: tuple[str, ...] = (),
    io: IoChoice | None = None,
) -> ArtifactRecord:
    record = fmt.convert(
        student.program,
        student.card,
        student.calibration,
        precision,
        path,
        card_sha256=student.card_sha256,
        exclude=exclude,
        **_io_kwargs(fmt, precision, io),
    )
    _note_io(record, fmt, precision, io)
    return verify(fmt, path, record, student, thresholds)


def int8_fallback(
    fmt: Format,
    precision: str,
    student: StudentRun,
    path: Path,
    record: ArtifactRecord,
    thresholds: dict[str, float],
    max_excluded: int,
    io: IoChoice | None = None,
) -> ArtifactRecord:
    """Keep the worst layers float, one at a time, until the gate passes or nothing is left to exclude.

    Layer errors compare float and quantized activations layer by layer; the first
    attempt's errors stay in the record (``layer_errors``) so the reader sees why.
    """
    first = record
    kw = _io_kwargs(fmt, precision, io)
    first_errors = fmt.layer_errors(student, precision, path, (), **kw)
    errors, excluded = first_errors, []
    while not record.passed and len(excluded) < max_excluded:
        candidates = [e["layer"] for e in errors if e["layer"] not in excluded]
        if not candidates:
            break
        excluded.append(candidates[0])
        record = _convert_and_verify(fmt, precision, student, path, thresholds, tuple(excluded), io)
        if not record.passed:
            errors = fmt.layer_errors(student, precision, path, tuple(excluded), **kw)
    record.layer_errors = first_errors[:10]
    record.excluded_layers = excluded
    every = {e["layer"] for e in first_errors}
    if every and every <= set(excluded):
        last = record.parity
        reached = f"agreement {last.agreement:.4f}" if last else "no agreement figure"
        record.error = (
            f"int8 fallback kept every one of the {len(every)} layers float ({reached}; first "
            f"attempt {first.parity.agreement:.4f}; threshold {first.parity.threshold}): the file "
            f"is not {precision}, so it is recorded as failed rather than shipped under that name. "
            "Lower export.thresholds.agreement for int8, or drop the precision."
        )
    record.notes.append(
        f"int8 fallback: first attempt agreement {first.parity.agreement} < {first.parity.threshold}; kept "
        f"{len(excluded)} layer(s) float {excluded}; "
        + ("gate passed" if record.passed else "gate still fails")
        + (f" (agreement {record.parity.agreement})" if record.parity else "")
    )
    return record


def export_one(
    fmt: Format, precision: str, student: StudentRun, out_dir: Path, settings: dict[str, Any]
) -> ArtifactRecord:
    """Export and check one format × precision; a converter failure is recorded, not raised."""
    path = out_dir / fmt.filename(precision)
    try:
        io = settings.get("io")
        record = _convert_and_verify(fmt, precision, student, path, settings["thresholds"], io=io)
        if (
            record.passed is False
            and settings["fallback"]
            and precision in fmt.fallback_precisions
            and fmt.layer_errors is not None
        ):
            record = int8_fallback(
                fmt,
                precision,
                student,
                path,
                record,
                settings["thresholds"],
                settings["max_excluded_layers"],
                io,
            )
    except MissingDependencyError as exc:
        record = ArtifactRecord(
            file=path.name, format=fmt.name, precision=precision, error=str(exc), skipped=True
        )
    except (UserError, InternalError):  # the user's mistake, or our bug: not a converter failure
        raise
    except (
        Exception
    ) as exc:  # a converter or runtime failing on this model: record it, go on with the others
        record = ArtifactRecord(
            file=path.name,
            format=fmt.name,
            precision=precision,
            error=f"{type(exc).__name__}: {str(exc)[:500]}",
        )
    if record.error is not None and path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    facts = fmt.facts(precision)
    record.runtime_family, record.runs_on, record.not_on = (
        facts["runtime_family"],
        facts["runs_on"],
        facts["not_on"],
    )
    return _finish(record, path)


@rundir.writes("run_dir")  # one writer: a second export is refused before loading the student
def run(
    run_dir: str | Path,
    formats: list[str] | None = None,
    precisions: list[str] | None = None,
    *,
    force: bool = False,
    keep_going: bool = False,
    thresholds: dict[str, float] | None = None,
    recipe: str | Path | None = None,
    progress: bool = True,
    trust_pickles: bool = False,
) -> ExportReport:
    """Export ``run_dir/student`` to ``run_dir/export`` and return what was made and checked.

    Arguments given here override the recipe's ``export`` section. Raises one
    UserError listing every artifact below its threshold unless ``keep_going``;
    then nothing is written and a previous ``export/`` is left as it was. ``student.pt2``
    is refused when torch would unpickle part of it, unless ``trust_pickles``.
    """
    run_dir = Path(run_dir)
    student = load_student(run_dir, trust_pickles=trust_pickles)
    settings = export_settings(student.card, recipe)
    if thresholds:
        given = validate("export", {"thresholds": dict(thresholds)}, FIELDS)["thresholds"]
        settings["thresholds"] = resolve_thresholds(given, settings["thresholds"])
    keep_going = keep_going or settings["keep_going"]
    io = choose(student.card, settings["int8_io"])
    pairs = plan(formats or settings["formats"], precisions or settings["precisions"])
    settings.update(
        formats=sorted({f.name for f, _ in pairs}),
        precisions=[p for _, p in pairs],
        keep_going=keep_going,
        io=io,
    )
    from tqdm import tqdm

    with rundir.staged_dir(run_dir, "export", force) as out:
        records = []
        bar = tqdm(pairs, desc="export", unit="artifact", file=sys.stderr, disable=not progress)
        for fmt, precision in bar:
            bar.set_postfix_str(fmt.filename(precision))
            with logs.capture():  # converter prints and progress bars go to logs/export.log
                records.append(export_one(fmt, precision, student, out, settings))
        report = ExportReport(
            run=str(student.card["run"]),
            card_sha256=student.card_sha256,
            artifacts=records,
            export_dir=str(run_dir / "export"),
            settings={**settings, "io": {"float_io": io.float_io, "why": io.why}},
        )
        failures = report.failures()
        if failures and not keep_going:
            raise UserError(
                f"{len(failures)} artifact(s) failed the export gate:\n  "
                + "\n  ".join(failures)
                + "\nNothing was written. Lower the thresholds in the recipe's export section, drop the "
                "precision, or pass --keep-going to write exports.json with passed: false."
            )
        rundir.atomic_write_json(out / "exports.json", report.to_json())
    return report
