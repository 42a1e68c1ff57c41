"""``tinyship run|distill|export|profile|check|summary|catalog|report``: one command over the stages.

A thin layer: each subcommand maps its flags onto one library call (distill.run,
export.run, devices.profile, devices.check, devices.report) and prints the result.
Every subcommand takes the same flags (--run, --quiet, --json, --version, --debug; --force
and its --out alias for --run only on those that write: run, distill, export, profile).
Third-party output of a stage goes to ``<run>/logs/<stage>.log`` (ground.logs); the console
keeps tinyship's progress and results: progress bars only when stderr is a terminal, one
line per stage otherwise (a file or a pipe never gets carriage returns). Tables fit the
terminal (``--wide`` for every column). With --json, stdout holds one JSON document and
nothing else. Exit codes come from ground.cli.run_cli.
``python -m distill|export|devices`` keep working as before.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ground import logs, recommend, rundir, shipseal
from ground.cli import run_cli
from ground.errors import UserError
from ground.settle import settle

from . import command_lock
from .command_args import PROG, parser

__all__ = ["PROG", "Call", "Console", "check_lines", "entry", "main", "parser"]

# ----------------------------------------------------------------------------- helpers


class Console:
    """Where tinyship's own words go: results on stdout (unless --json), progress on stderr."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.json = args.json
        self.quiet = args.quiet
        self.bars = bars(args)

    def result(self, text: str) -> None:
        """A result line: stdout, or stderr when stdout is reserved for JSON."""
        if self.quiet and not text.startswith(("error", "warning", "FAIL")):
            return
        print(text, file=sys.stderr if self.json else sys.stdout, flush=True)

    def note(self, text: str) -> None:
        """Progress and pointers (log paths): stderr, silenced by --quiet."""
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True)
class Call:
    """What every subcommand step gets: the parsed flags, the console, and the command line
    (distill records it in the student card)."""

    args: argparse.Namespace
    con: Console
    argv: list[str]


def bars(args: argparse.Namespace) -> bool:
    """Progress bars only on a terminal: a file or a pipe gets one plain line per stage."""
    return not args.quiet and sys.stderr.isatty()


def width(args: argparse.Namespace) -> int | None:
    """The width tables fit: None with --wide, else the terminal's (120 off a terminal)."""
    from .summary_format import console_width

    return None if getattr(args, "wide", False) else console_width()


@contextlib.contextmanager
def _stage(con: Console, run: Path, stage: str) -> Iterator[logs.StageLog]:
    """Run a stage with its third-party output in its own log (the run's lock is held, by
    :func:`main`); afterwards say which stage folders --force replaced."""
    running, final = logs.log_path(run, stage, logs.RUNNING), logs.log_path(run, stage)
    con.note(f"{stage}: {run}  (third-party output: {running}, kept as {final.name} on success)")
    t0 = time.monotonic()
    before = command_lock.folders(run)
    log = None
    try:
        with logs.stage_log(run, stage) as log:
            yield log
    except BaseException:
        if log is not None and log.settled is not None:  # a refusal wrote nothing there
            where = log.settled
            print(
                f"{stage} failed; what converters and runtimes printed is in {where}",
                file=sys.stderr,
            )
        raise
    note = command_lock.replaced_note(stage, run, before)
    if note:
        con.note(note)
    con.note(f"{stage}: done in {time.monotonic() - t0:.1f} s")


def _emit_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


# ----------------------------------------------------------------------------- subcommands


def _check_whole_recipe(args: argparse.Namespace) -> None:
    """``run`` and ``distill``: the recipe's every section (tinyship.recipe_check) and the later
    stages' flags are refused in a second, not after a distill."""
    from .recipe_check import validate_recipe

    elsewhere = bool(getattr(args, "ssh", None) or getattr(args, "adb", None))
    validate_recipe(
        args.recipe, catalog=getattr(args, "catalog", None), measured_elsewhere=elsewhere
    )
    if getattr(args, "budget", None):
        _budgets(args)
    if getattr(args, "formats", None) or getattr(args, "precisions", None):
        from export.registry import plan

        plan(args.formats, args.precisions)


def _distill(call: Call) -> int:
    from distill.__main__ import run_stage
    from distill.__main__ import summary as distill_text

    args, con, argv = call.args, call.con, call.argv
    _check_whole_recipe(args)  # every section and flag, before any stage runs
    with _stage(con, args.run, "distill"):
        command = "tinyship " + " ".join(shlex.quote(a) for a in argv)
        res, is_main = run_stage(args, args.run, command)
        if not is_main:
            return 0
        con.result(distill_text(res.card, res.timings_s))
    if args.json and args.cmd == "distill":
        card = res.card
        _emit_json(
            {
                "run": card.get("run"),
                "holdout": card.get("metrics", {}).get("holdout"),
                "student": card.get("student"),
                "sizes": card.get("sizes"),
                "timings_s": res.timings_s,
                "card": str(args.run / rundir.CARD),
            }
        )
    return 0


def _export(call: Call) -> int:
    import export
    from export.__main__ import table

    args, con = call.args, call.con
    with _stage(con, args.run, "export"):
        report = export.run(
            args.run,
            formats=args.formats,
            precisions=args.precisions,
            force=args.force,
            keep_going=args.keep_going,
            recipe=getattr(args, "recipe", None) if args.cmd == "export" else None,
            progress=con.bars,
        )
    con.result(table(report))
    con.result(
        f"wrote {report.export_dir}/exports.json "
        f"({'all gates passed' if report.passed else 'SOME GATES FAILED'})"
    )
    for a in report.artifacts:
        if a.error:
            print(f"warning: {a.file}: {a.error.splitlines()[0][:200]}", file=sys.stderr)
    if args.json and args.cmd == "export":
        _emit_json(report.to_json())
    return 0 if report.passed or report.settings.get("keep_going") else 1


def _budgets(args: argparse.Namespace) -> dict | None:
    from devices.budgets import parse_budget_flag

    return dict(parse_budget_flag(b) for b in args.budget) or None


def _profile(call: Call) -> int:
    import devices

    args, con = call.args, call.con
    files = getattr(args, "files", None) or []
    if files and not hasattr(devices, "profile_files"):
        raise UserError(
            f"profiling bare model files ({', '.join(map(str, files))}) is not available in this "
            "version; export them into a run directory and use: tinyship profile --run DIR"
        )
    if not files and args.run is None:
        raise UserError(
            "tinyship profile needs --run DIR (a run directory with export/) or model files: "
            "tinyship profile model.tflite --run build/p"
        )
    run = args.run or Path("build/profile")
    with _stage(con, run, "profile"):
        kw = dict(
            targets=devices.ssh_targets(
                args.ssh, args.ssh_config, args.ssh_option, args.remote_python
            )
            + devices.adb_targets(args.adb, args.benchmark_model),
            settings=devices.Settings(args.threads, args.runs, args.warmup, args.pin_core),
            catalog=args.catalog,
            budgets=_budgets(args),
            stack=args.stack,
            emulate=getattr(args, "emulate", False),
        )
        if files:  # the devices stage builds a run directory around the files in --run (default build/profile)
            rep = devices.profile_files(files, run, devices=args.devices, force=args.force, **kw)
        else:
            rep = devices.profile(run, devices=args.devices, force=args.force, **kw)
    loo = rep.estimator["loo"]
    con.result(
        f"profile: {len(rep.analyses)} files x {len({r.device for r in rep.records})} devices -> {rep.path}"
    )
    ape = loo["median_ape"]
    con.result(
        "estimator leave-one-out error vs host measurements: "
        + (f"median {ape:.1f} % over {loo['n']} files" if ape is not None else loo["note"])
    )
    from devices.firmware import summary_lines  # the emulated figures, one line per file x device

    for line in summary_lines(rep.records):
        con.result(line)
    con.result(f"report: {rep.path.parent / 'report.html'}")
    if args.json and args.cmd == "profile":
        from . import summary

        _emit_json(summary.collect(run)["devices"])
    return 0


def check_lines(
    ok: bool, rows: list[dict], profile: dict, exports: dict | None, tolerance: float | None = None
) -> list[str]:
    """One line per device that passes (its recommended file), one per device nothing could be
    judged on and no budget asks for ("skip"), and one per failing device x file ("FAIL")."""
    picks = recommend.recommend(profile, exports, tolerance)
    lines = []
    for dev in dict.fromkeys(r["device"] for r in rows):
        drows = [r for r in rows if r["device"] == dev]
        fit = [r for r in drows if _passes(r)]
        if fit:
            p = picks.get(dev)
            name = (
                p.recommended
                if p and p.recommended in {r["artifact"] for r in fit}
                else fit[0]["artifact"]
            )
            how = next(r["verdict"] for r in fit if r["artifact"] == name)
            if how != "fits":  # only a within-error verdict the recipe allowed passes otherwise
                how += " (allowed: devices.allow_within_error in the recipe)"
            lines.append(f"ok    {dev}: {name} {how} ({len(fit)} of {len(drows)} files pass)")
            continue
        unjudged = [r for r in drows if r["verdict"] == "not judged"]
        if unjudged:  # gate.check found nothing to judge and no budget that asks for it
            lines.append(f"skip  {dev}: {unjudged[0]['reasons'][0]}")
            continue
        bad = [r for r in drows if not _passes(r) and r["verdict"] != "not runnable"]
        for r in bad:
            lines.append(f"FAIL  {dev}: {r['artifact']}: {'; '.join(r['reasons']) or r['verdict']}")
        if not bad:
            lines.append(
                f"FAIL  {dev}: no file runs there ({drows[0]['reasons'][0] if drows else 'none profiled'})"
            )
    lines.append(
        "check: PASS"
        if ok
        else "check: FAIL (a device has no file within its budget; see the FAIL lines)"
    )
    return lines


def _failures(rows: list[dict], artifacts: list[str]) -> list[dict]:
    """The rows ``check --json`` lists as failures: every failing file with --artifact, else the
    files of the devices where none fits."""
    return [
        {
            "device": r["device"],
            "file": r["artifact"],
            "verdict": r["verdict"],
            "reasons": r["reasons"],
        }
        for r in rows
        if not _passes(r)
        and r["verdict"] not in ("not runnable", "not judged")
        and (artifacts or not any(x["device"] == r["device"] and _passes(x) for x in rows))
    ]


def _passes(row: dict) -> bool:
    """A check row that passes: 'fits', or 'fits within error' the recipe allows (devices.gate)."""
    return bool(row.get("passes", row["verdict"] == "fits"))


def _check(call: Call) -> int:
    import devices

    args = call.args
    ok, rows = devices.check(args.run, _budgets(args), args.artifact or None)
    prof = rundir.read_json(args.run / rundir.PROFILE, "profile (profile/profile.json)")
    exports = (
        rundir.read_json(args.run / rundir.EXPORTS, "exports record")
        if (args.run / rundir.EXPORTS).is_file()
        else None
    )
    if args.artifact:
        lines = [
            f"{'ok  ' if _passes(r) else 'FAIL'}  {r['device']}: {r['artifact']}: "
            f"{r['verdict']}{': ' + '; '.join(r['reasons']) if r['reasons'] and r['verdict'] != 'fits' else ''}"
            for r in rows
        ]
        lines.append("check: PASS" if ok else "check: FAIL (see the FAIL lines)")
    else:
        card = rundir.read_json(args.run / rundir.CARD, "student card (student/card.json)")
        lines = check_lines(ok, rows, prof, exports, recommend.tolerance(card))
    ok = ok and not any(line.startswith("FAIL") for line in lines)  # a FAIL line is never a PASS
    if not ok and lines[-1] == "check: PASS":
        lines[-1] = "check: FAIL (see the FAIL lines)"
    for line in lines:
        if args.json:
            continue
        if line.startswith("FAIL") or line.startswith("check") or not args.quiet:
            print(line)
    if args.json:
        _emit_json(
            {
                "ok": ok,
                "failures": _failures(rows, args.artifact),
                "rows": rows,
            }
        )
    return 0 if ok else 1


def _summary(call: Call) -> int:
    from . import summary

    args = call.args
    if args.json:
        _emit_json(summary.collect(args.run))
    else:
        print(summary.text(args.run, width(args)))
    return 0


def _catalog(call: Call) -> int:
    from devices.__main__ import main as devices_main

    args = call.args
    return devices_main(
        [
            "catalog",
            *(["--catalog", args.catalog] if args.catalog else []),
            *(["--json"] if args.json else []),
        ]
    )


def _report(call: Call) -> int:
    from devices import report

    args, con = call.args, call.con
    run = args.run
    settle(run)  # a half-done commit is finished (or refused) before anything is rendered
    shipseal.refuse_if_broken(run)  # never re-render (and re-seal) a ship/ that was changed
    doc = rundir.read_json(run / rundir.PROFILE, "profile (profile/profile.json)")
    card = rundir.read_json(run / rundir.CARD, "student card (student/card.json)")
    exports = rundir.read_json(run / rundir.EXPORTS, "exports record (export/exports.json)")
    with _stage(con, run, "report"):  # the runtimes that re-run the files print natively
        written = report.write(run / "profile", doc, card, exports)
    if (run / rundir.MANIFEST).is_file():
        from devices import model_card

        manifest = rundir.read_json(run / rundir.MANIFEST, "ship manifest (ship/manifest.json)")
        written.append(model_card.write(run / "ship", card, exports, doc, manifest))
        shipseal.write(run / "ship", run / rundir.PROFILE)  # the new model card is recorded
    path = run / "profile" / "report.html"
    if args.json:
        _emit_json({"report": str(path), "written": [str(p) for p in written]})
    else:
        con.result(f"report: {path}")
    return 0


def _run(call: Call) -> int:
    args, con = call.args, call.con
    for step in (_distill, _export, _profile):
        rc = step(call)
        if rc:
            return rc
    import devices

    from . import summary

    if args.json:
        ok, _ = devices.check(args.run, _budgets(args), None)
        _emit_json({**summary.collect(args.run), "check": {"ok": ok}})
        return 0 if ok else 1
    con.result("\n" + summary.text(args.run, width(args)))
    return _check(
        dataclasses.replace(call, args=argparse.Namespace(**{**vars(args), "artifact": []}))
    )


COMMANDS: dict[str, Callable[[Call], int]] = {
    "run": _run,
    "distill": _distill,
    "export": _export,
    "profile": _profile,
    "check": _check,
    "summary": _summary,
    "catalog": _catalog,
    "report": _report,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if not bars(args):  # tqdm reads it when first imported: every bar, ours and the converters'
        os.environ["TQDM_DISABLE"] = "1"
    with command_lock.held(args):  # before any file of the run is touched (issue 41)
        return COMMANDS[args.cmd](Call(args, Console(args), argv))


def entry() -> None:
    """The ``tinyship`` console script."""
    sys.exit(run_cli(main, sys.argv[1:]))  # run_cli strips --debug and prints the traceback
