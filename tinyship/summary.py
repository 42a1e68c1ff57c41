"""`python -m tinyship.summary --run build/demo`: the short table `make demo` ends with.

Reads only the run directory, so it works after any subset of the stages and says
which stage has not run yet.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ground import recommend, rundir
from ground.cli import run_cli

from .search_summary import is_search, search_collect, search_text
from .summary_format import kb, ms, pct, table


def distill_summary(card: dict) -> str:
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
    out = [f"holdout: {h.get('n', '?')} examples", table(rows, ["model", "holdout acc", "size"])]
    if vs := h.get("teacher", {}).get("best_member", {}).get("vs_teacher"):
        both = vs["both_wrong"]
        pairs = list(zip(both["rows"], both["members_wrong"]))
        shared = (
            ", ".join(f"row {r} ({k} of {both['of_members']} members wrong)" for r, k in pairs[:5])
            or "none"
        )
        shared += f" and {len(pairs) - 5} more" if len(pairs) > 5 else ""
        out.append(
            f"teacher vs best member, row by row: {vs['teacher_errors']} vs {vs['member_errors']} errors; "
            f"only the teacher wrong on {vs['only_teacher_wrong']}, only the member on "
            f"{vs['only_member_wrong']}; both wrong: {shared}"
        )
    if sizes.get("ratio") is not None:
        out.append(
            f"student / teacher size: {100 * sizes['ratio']:.3f}%  ({sizes.get('method', 'method not recorded')})"
        )
    return "\n".join(out)


def export_summary(exports: dict) -> str:
    rows = []
    for a in exports.get("artifacts", []):
        p = a.get("parity") or {}
        rows.append(
            [
                a.get("file", "?"),
                kb(a.get("bytes")),
                pct(p.get("agreement")),
                pct(a.get("accuracy")),
                ("pass" if p.get("passed") else "FAIL") if p else "not run",
                a.get("runtime") or "; ".join(a.get("not_checked") or []) or a.get("error") or "-",
            ]
        )
    return table(rows, ["artifact", "size", "agreement", "accuracy", "gate", "runtime"])


def devices_summary(profile: dict, exports: dict | None = None) -> str:
    """Per device: the file to ship by the rule in ground.recommend, or the nearest miss and why."""
    rows = []
    for dev, p in recommend.recommend(profile, exports).items():
        rows.append(
            [
                dev,
                f"{p.n_fit}/{p.n_files}",
                p.recommended or (f"none fits (nearest: {p.file})" if p.file else "none runnable"),
                pct(p.accuracy),
                p.method or "-",
                ms(p.latency_ms),
                kb(p.ram_bytes),
                kb(p.flash_bytes),
                "; ".join(p.reasons) if not p.fits else _margin(p),
            ]
        )
    return table(
        rows,
        [
            "device",
            "fit",
            "recommended",
            "accuracy",
            "latency from",
            "latency",
            "RAM",
            "flash",
            "margin / why",
        ],
    )


def _margin(p: recommend.Pick) -> str:
    m = p.margins
    parts = []
    if "latency_ms" in m:
        parts.append(f"{ms(m['latency_ms'])} under")
    if "ram_bytes" in m:
        parts.append(f"RAM {recommend.size(m['ram_bytes'])} spare")
    if "flash_bytes" in m:
        parts.append(f"flash {recommend.size(m['flash_bytes'])} spare")
    return ", ".join(parts) or "no budget set"


def collect(run: Path) -> dict:
    """The machine-readable summary (`tinyship summary --json`; keys in docs/run-directory.md)."""
    if is_search(run):
        return search_collect(run)
    card = rundir.read_json(run / rundir.CARD, "student card")
    h = card.get("metrics", {}).get("holdout", {})
    out: dict = {
        "schema": "tinyship.summary/1",
        "run": card.get("run", run.name),
        "holdout": {
            "n": h.get("n"),
            **{k: dict(h.get(k) or {}) for k in ("teacher", "student", "baseline")},
        },
        "student": {k: card.get("student", {}).get(k) for k in ("arch", "params", "macs")},
        "exports": None,
        "devices": {},
        "rule": recommend.RULE,
        "stale": rundir.stale(run),
        "paths": {},
    }
    for k in ("teacher",):  # the teacher entry carries nested member comparisons: keep it small
        out["holdout"][k] = {
            x: v for x, v in out["holdout"][k].items() if not isinstance(v, (dict, list))
        }
    exports = None
    if (run / rundir.EXPORTS).is_file():
        exports = rundir.read_json(run / rundir.EXPORTS, "exports record")
        out["exports"] = [
            {
                "file": a.get("file"),
                "bytes": a.get("bytes"),
                "accuracy": a.get("accuracy"),
                "agreement": (a.get("parity") or {}).get("agreement"),
                "passed": (a.get("parity") or {}).get("passed"),
                "error": a.get("error"),
            }
            for a in exports.get("artifacts", [])
        ]
    if (run / rundir.PROFILE).is_file():
        prof = rundir.read_json(run / rundir.PROFILE, "profile")
        for dev, p in recommend.recommend(prof, exports).items():
            out["devices"][dev] = {
                "recommended": p.recommended,
                "fits": p.fits,
                "file": p.file,
                "accuracy": p.accuracy,
                "latency_ms": p.latency_ms,
                "latency_method": p.method,
                "ram_bytes": p.ram_bytes,
                "flash_bytes": p.flash_bytes,
                "budget": p.budget,
                "margins": p.margins,
                "reasons": p.reasons,
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


def text(run: Path) -> str:
    """The human summary `make demo` ends with."""
    if is_search(run):
        return search_text(run)
    out = [f"== tinyship summary: {run} =="]
    card = rundir.read_json(run / rundir.CARD, "student card")
    out += stale_lines(run)
    out.append(distill_summary(card))
    exports = None
    if (run / rundir.EXPORTS).is_file():
        exports = rundir.read_json(run / rundir.EXPORTS, "exports record")
        out.append("\n" + export_summary(exports))
    else:
        out.append(f"\n(export stage not run yet: tinyship export --run {run})")
    if (run / rundir.PROFILE).is_file():
        prof = rundir.read_json(run / rundir.PROFILE, "profile")
        out.append(f"\nrecommended per device ({recommend.RULE}):")
        out.append(devices_summary(prof, exports))
        err = (prof.get("estimator") or {}).get("loo", {}).get("median_ape")
        if err is not None:
            out.append(
                f"latency estimator leave-one-out error vs host measurements: {err:.1f}% (median abs %); "
                "estimates for unreachable devices carry at least this error (MCUs: see devices/README.md)"
            )
    else:
        out.append(f"\n(devices stage not run yet: tinyship profile --run {run})")
    for name, rel in (
        ("report", "profile/report.html"),
        ("ship manifest", rundir.MANIFEST),
        ("model card", "ship/MODEL_CARD.md"),
    ):
        p = run / rel
        out.append(f"{name}: {p if p.exists() else 'not written yet'}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinyship.summary", description=__doc__)
    ap.add_argument("--run", required=True, type=Path, help="run directory, e.g. build/demo")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    args = ap.parse_args(argv)
    if args.json:
        print(json.dumps(collect(args.run), indent=2))
    else:
        print(text(args.run))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
