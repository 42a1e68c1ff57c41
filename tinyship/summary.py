"""`python -m tinyship.summary --run build/demo`: the short table `make demo` ends with.

Reads only the run directory, so it works after any subset of the stages and says
which stage has not run yet.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ground import recommend, rundir, shipseal
from ground.cli import run_cli
from ground.settle import settle

from .search_files import SEARCH_FILE
from .search_summary import is_search, search_collect, search_text
from .summary_format import console_width, kb, ms, pct, table, wrap


def distill_summary(card: dict, width: int | None = None) -> str:
    h = card.get("metrics", {}).get("holdout", {})
    members = h.get("members", {})
    best = max(members.items(), key=lambda kv: kv[1].get("accuracy", 0.0), default=(None, {}))
    sizes = card.get("sizes", {})
    rows = [
        [
            "teacher (ensemble)",
            pct(h.get("teacher", {}).get("accuracy")),
            kb(sizes.get("teacher_bytes")),
        ],
        [f"best member ({best[0]}, hindsight)", pct(best[1].get("accuracy")), "-"],
        *(
            [[f"validation's pick ({pick['name']})", pct(pick.get("accuracy")), "-"]]
            if (pick := h.get("teacher", {}).get("validation_pick"))
            else []
        ),
        [
            f"student ({card.get('student', {}).get('arch')})",
            pct(h.get("student", {}).get("accuracy")),
            kb(sizes.get("student_bytes")),
        ],
        ["baseline (hard labels)", pct(h.get("baseline", {}).get("accuracy")), "-"],
    ]
    out = [
        f"holdout: {h.get('n', '?')} examples",
        table(rows, ["model", "holdout acc", "size"], width),
    ]
    if vs := h.get("teacher", {}).get("best_member", {}).get("vs_teacher"):
        both = vs["both_wrong"]
        pairs = list(zip(both["rows"], both["members_wrong"]))
        shared = (
            ", ".join(f"row {r} ({k} of {both['of_members']} members wrong)" for r, k in pairs[:5])
            or "none"
        )
        shared += f" and {len(pairs) - 5} more" if len(pairs) > 5 else ""
        line = (
            f"teacher vs best member, row by row: {vs['teacher_errors']} vs {vs['member_errors']} errors; "
            f"only the teacher wrong on {vs['only_teacher_wrong']}, only the member on "
            f"{vs['only_member_wrong']}; both wrong: {shared}"
        )
        out.append(wrap(line, width))
    if sizes.get("ratio") is not None:
        line = f"student / teacher size: {100 * sizes['ratio']:.3f}%  ({sizes.get('method', 'method not recorded')})"
        out.append(wrap(line, width))
    if flag := trails_baseline(card):
        out.append(wrap(flag, width))
    ho = ((card.get("input") or {}).get("preprocess") or {}).get("holdout") or {}
    if ho.get("filled") or ho.get("unseen"):  # issue 34: the holdout's preprocessing, counted
        n_f, n_u = sum(ho.get("filled", {}).values()), sum(ho.get("unseen", {}).values())
        line = f"holdout preprocessing: {n_f} missing values filled, {n_u} unseen categories"
        out.append(wrap(f"{line} (card.json input.preprocess.holdout)", width))
    out += [wrap(f"warning: {w}", width) for w in (card.get("data") or {}).get("warnings", [])]
    return "\n".join(out)


def trails_baseline(card: dict) -> str | None:
    """A warning when the distilled student is less accurate on the holdout than the same network
    trained on hard labels alone (card metrics.holdout.baseline): distillation did not pay."""
    h = card.get("metrics", {}).get("holdout", {})
    s, b = h.get("student", {}).get("accuracy"), h.get("baseline", {}).get("accuracy")
    if s is None or b is None or s >= b:
        return None
    t = card.get("data", {}).get("transfer") or {}
    used = f"transfer set {t['method']} x{t['size_multiplier']}; " if t.get("method") else ""
    return (
        f"WARNING: the student ({pct(s)}) trails the hard-label baseline ({pct(b)}) by "
        f"{100 * (b - s):.1f} points ({used}see the recipe's transfer and train sections): ship the "
        "baseline's architecture trained on hard labels, or enlarge the transfer set (transfer.method: "
        "munge, size_multiplier) or the training budget"
    )


def written(a: dict, export_dir: Path | None = None) -> str | None:
    """Why an artifact exports.json lists has no file (its recorded error, or the file is gone),
    or None when it was written. A file that was not written never shows a gate result."""
    if a.get("skipped"):
        return f"skipped: {_first_line(a.get('error'))}"
    if a.get("error"):
        return f"not written: {_first_line(a['error'])}"
    if export_dir is not None and a.get("file") and not (export_dir / a["file"]).exists():
        return f"not written: {a['file']} is not in {export_dir}"
    return None


def _first_line(text: str | None) -> str:
    return (str(text or "no reason recorded").strip().splitlines() or ["no reason recorded"])[0]


def export_summary(exports: dict, width: int | None = None, export_dir: Path | None = None) -> str:
    rows, notes = [], {}  # a long reason shared by several files is printed once, below the table

    def note(text: str) -> str:
        if width is None or len(text) <= 40:
            return text
        return f"[{notes.setdefault(text, len(notes) + 1)}]"

    for a in exports.get("artifacts", []):
        p = a.get("parity") or {}
        why_not = written(a, export_dir)
        if why_not:
            gate = "not written" if why_not.startswith("not written") else "skipped"
            rows.append([a.get("file", "?"), "-", "-", "-", gate, note(why_not)])
            continue
        runtime = a.get("runtime") or "; ".join(a.get("not_checked") or []) or "-"
        rows.append(
            [
                a.get("file", "?"),
                kb(a.get("bytes")),
                pct(p.get("agreement")),
                pct(a.get("accuracy")),
                ("pass" if p.get("passed") else "FAIL") if p else "not run",
                note(runtime),
            ]
        )
    head = ["artifact", "size", "agreement", "accuracy", "gate", "runtime / why"]
    out = [table(rows, head, width, [("wrap", 5), ("drop", 2), ("drop", 1)])]
    out += [wrap(f"[{k}] {text}", width, "    ") for text, k in notes.items()]
    return "\n".join(out)


def devices_summary(
    profile: dict,
    exports: dict | None = None,
    width: int | None = None,
    tolerance: float | None = None,
) -> str:
    """Per device: the file to ship by the rule in ground.recommend, or the nearest miss and why."""
    rows = []
    for dev, p in recommend.recommend(profile, exports, tolerance).items():
        rows.append(
            [
                dev,
                f"{p.n_fit}/{p.n_files}",
                _answer(p),
                pct(p.accuracy),
                _latency(p),
                kb(p.ram_bytes),
                kb(p.flash_bytes),
                "; ".join(p.reasons) if p.verdict != "fits" else _margin(p),
            ]
        )
    head = ["device", "fit", "recommended", "accuracy", "latency", "RAM", "flash"]
    head.append("least spare / why not")
    plan = [("drop", 1), ("wrap", 7), ("drop", 6), ("drop", 5), ("wrap", 2), ("drop", 3)]
    return table(rows, head, width, [*plan, ("wrap", 4)])  # last: the band under its figure


def _answer(p: recommend.Pick) -> str:
    """The recommended file, said 'within error' where its latency fits only inside its band."""
    if p.verdict == recommend.WITHIN:
        if p.fits:
            return f"{p.recommended} (fits within error, allowed)"
        return f"none fits with its error band ({p.file} fits within error; not allowed)"
    return p.recommended or (f"none fits (nearest: {p.file})" if p.file else "none runnable")


def _latency(p: recommend.Pick) -> str:
    """'19.66 ms est. [18.70-23.56]': the figure, where it comes from, and its error band (ms)."""
    tag = {"measured": "meas.", "estimated": "est.", "emulated": "emul."}.get(p.method or "", "")
    b = p.band or {}
    if b.get("low_ms") is not None and b.get("high_ms") is not None and p.latency_ms is not None:
        lo, hi = (ms(b[k]).removesuffix(" ms") for k in ("low_ms", "high_ms"))
        tag += f" [{lo}-{hi}]"  # the error band the verdict used, in ms
    return f"{ms(p.latency_ms)} {tag}".strip()


def _margin(p: recommend.Pick) -> str:
    """The budget with the least room left, as the share of it that is spare."""
    spare = []
    for key, bkey, scale, fmt, label in (
        ("latency_ms", "latency_ms", 1.0, ms, "latency"),
        ("ram_bytes", "ram_kb", 1024.0, recommend.size, "RAM"),
        ("flash_bytes", "flash_kb", 1024.0, recommend.size, "flash"),
    ):
        if key in p.margins and p.budget.get(bkey):
            share = p.margins[key] / (p.budget[bkey] * scale)
            spare.append((share, f"{label} {fmt(p.margins[key])} ({100 * share:.0f}%)"))
    return min(spare)[1] if spare else "no budget set"


def _export_entry(a: dict, export_dir: Path) -> dict:
    why_not = written(a, export_dir)
    return {
        "file": a.get("file"),
        "bytes": None if why_not else a.get("bytes"),
        "accuracy": None if why_not else a.get("accuracy"),
        "agreement": None if why_not else (a.get("parity") or {}).get("agreement"),
        "passed": False if why_not else (a.get("parity") or {}).get("passed"),
        "written": why_not is None,
        "not_written": why_not,
        "error": a.get("error"),
    }


def collect(run: Path) -> dict:
    """The machine-readable summary (`tinyship summary --json`; keys in docs/run-directory.md)."""
    if is_search(run):
        return search_collect(run)
    settle(run)  # a half-done commit is finished (or refused), never summarized
    card = rundir.read_json(run / rundir.CARD, "student card")
    h = card.get("metrics", {}).get("holdout", {})
    out: dict = {
        "schema": "tinyship.summary/1",
        "run": card.get("run", run.name),
        "holdout": {
            "n": h.get("n"),
            **{k: dict(h.get(k) or {}) for k in ("teacher", "student", "baseline")},
            "student_trails_baseline": trails_baseline(card),
        },
        "student": {k: card.get("student", {}).get(k) for k in ("arch", "params", "macs")},
        "exports": None,
        "devices": {},
        "rule": recommend.rule(recommend.tolerance(card)),
        "tolerance_points": recommend.tolerance(card),
        "stale": rundir.stale(run),
        "ship_problems": shipseal.verify(run),  # what differs from what was shipped
        "paths": {},
    }
    for k in ("teacher",):  # the teacher entry carries nested member comparisons: keep it small
        out["holdout"][k] = {
            x: v for x, v in out["holdout"][k].items() if not isinstance(v, (dict, list))
        }
    exports = None
    if (run / rundir.EXPORTS).is_file():
        exports = rundir.read_json(run / rundir.EXPORTS, "exports record")
        out["exports"] = [_export_entry(a, run / "export") for a in exports.get("artifacts", [])]
    if (run / rundir.PROFILE).is_file():
        prof = rundir.read_json(run / rundir.PROFILE, "profile")
        for dev, p in recommend.recommend(prof, exports, recommend.tolerance(card)).items():
            out["devices"][dev] = {
                "recommended": p.recommended,
                "fits": p.fits,
                "verdict": p.verdict,
                "file": p.file,
                "accuracy": p.accuracy,
                "latency_ms": p.latency_ms,
                "latency_method": p.method,
                "ram_bytes": p.ram_bytes,
                "flash_bytes": p.flash_bytes,
                "budget": p.budget,
                "margins": p.margins,
                "reasons": p.reasons,
                "chosen_by": p.chosen_by,
                "most_accurate": p.most_accurate,
            }
        out["estimator_loo_median_ape_pct"] = (
            (prof.get("estimator") or {}).get("loo", {}).get("median_ape")
        )
    for name, rel in (
        ("card", rundir.CARD),
        ("exports", rundir.EXPORTS),
        ("profile", rundir.PROFILE),
        ("report", "profile/report.html"),
        ("manifest", rundir.MANIFEST),
        ("model_card", "ship/MODEL_CARD.md"),
    ):
        out["paths"][name] = str(run / rel) if (run / rel).exists() else None
    return out


# the command that rewrites each stage's folder (ship/ is written by the profile stage)
_RERUN = {"export": "export", "profile": "profile", "ship": "profile"}


def stale_lines(run: Path) -> list[str]:
    """One line per stage whose upstream changed after it ran: its figures below describe files
    that are no longer the ones in the run dir."""
    return [
        f"STALE {stage}/: {why}; its figures below are out of date. "
        f"Re-run: tinyship {_RERUN[stage]} --run {run} --force"
        for stage, why in rundir.stale(run).items()
    ]


def _no_profile_line(run: Path) -> str:
    """Why there is no profile: a search's unshipped seed skips it on purpose (its search.json
    copy says so), any other run has not reached the devices stage yet."""
    mine = run / SEARCH_FILE
    this = rundir.read_json(mine, "search").get("this_run", {}) if mine.is_file() else {}
    if this.get("not_done"):
        return "(devices stage skipped: " + "; ".join(this["not_done"]) + ")"
    return f"(devices stage not run yet: tinyship profile --run {run})"


def text(run: Path, width: int | None = None) -> str:
    """The human summary `make demo` ends with; its tables and lines fit ``width`` characters
    (None: every column, unwrapped: ``tinyship summary --wide``)."""
    if is_search(run):
        return search_text(run)
    out = [f"== tinyship summary: {run} =="]
    settle(run)  # a half-done commit is finished (or refused), never summarized
    card = rundir.read_json(run / rundir.CARD, "student card")
    out += stale_lines(run)  # not wrapped: each ends with the command to copy
    out += shipseal.fail_lines(run)  # ship/ verified against what was shipped
    out.append(distill_summary(card, width))
    exports = None
    if (run / rundir.EXPORTS).is_file():
        exports = rundir.read_json(run / rundir.EXPORTS, "exports record")
        out.append("\n" + export_summary(exports, width, run / "export"))
    else:
        out.append(f"\n(export stage not run yet: tinyship export --run {run})")
    if (run / rundir.PROFILE).is_file():
        prof = rundir.read_json(run / rundir.PROFILE, "profile")
        tol = recommend.tolerance(card)
        out += ["", wrap(f"recommended per device ({recommend.rule(tol)}):", width)]
        out.append(devices_summary(prof, exports, width, tol))
        out += _chosen_lines(prof, exports, tol, width)
        err = (prof.get("estimator") or {}).get("loo", {}).get("median_ape")
        if err is not None:
            line = (
                f"latency estimator leave-one-out error vs host measurements: {err:.1f}% (median "
                "abs %); estimates for unreachable devices carry at least this error (MCU stacks: "
                "the report's 'Sources' section)"
            )
            out.append(wrap(line, width))
    else:
        out.append("\n" + _no_profile_line(run))
    for name, rel in (
        ("report", "profile/report.html"),
        ("ship manifest", rundir.MANIFEST),
        ("model card", "ship/MODEL_CARD.md"),
    ):
        p = run / rel
        out.append(f"{name}: {p if p.exists() else 'not written yet'}")
    return "\n".join(out)


def _chosen_lines(prof: dict, exports: dict | None, tol: float, width: int | None) -> list[str]:
    """Where the tolerance, not raw accuracy, chose the file: which file was more accurate."""
    picks = recommend.recommend(prof, exports, tol)
    by_reason: dict[str, list[str]] = {}
    for dev, p in picks.items():
        if p.fits and p.most_accurate and p.most_accurate != p.recommended:
            by_reason.setdefault(f"{p.recommended}: {p.chosen_by}", []).append(dev)
    return [wrap(f"on {', '.join(devs)}: {why}", width) for why, devs in by_reason.items()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinyship.summary", description=__doc__)
    ap.add_argument("--run", required=True, type=Path, help="run directory, e.g. build/demo")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    ap.add_argument("--wide", action="store_true", help="every column, however wide")
    args = ap.parse_args(argv)
    if args.json:
        print(json.dumps(collect(args.run), indent=2))
    else:
        print(text(args.run, None if args.wide else console_width()))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
