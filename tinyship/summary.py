"""`python -m tinyship.summary --run build/demo`: the short table `make demo` ends with.

Reads only the run directory, so it works after any subset of the stages and says
which stage has not run yet.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import rundir
from .cli import run_cli


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _kb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:,.1f} KiB"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def distill_summary(card: dict) -> str:
    h = card.get("metrics", {}).get("holdout", {})
    members = h.get("members", {})
    best = max(members.items(), key=lambda kv: kv[1].get("accuracy", 0.0), default=(None, {}))
    sizes = card.get("sizes", {})
    rows = [
        [
            "teacher (ensemble)",
            _pct(h.get("teacher", {}).get("accuracy")),
            _kb(sizes.get("teacher_bytes")),
        ],
        [f"best member ({best[0]}, hindsight)", _pct(best[1].get("accuracy")), "-"],
        *(
            [[f"validation's pick ({pick['name']})", _pct(pick.get("accuracy")), "-"]]
            if (pick := h.get("teacher", {}).get("validation_pick"))
            else []
        ),
        [
            f"student ({card.get('student', {}).get('arch')})",
            _pct(h.get("student", {}).get("accuracy")),
            _kb(sizes.get("student_bytes")),
        ],
        ["baseline (hard labels)", _pct(h.get("baseline", {}).get("accuracy")), "-"],
    ]
    out = [f"holdout: {h.get('n', '?')} examples", _table(rows, ["model", "holdout acc", "size"])]
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
                _kb(a.get("bytes")),
                _pct(p.get("agreement")),
                _pct(a.get("accuracy")),
                ("pass" if p.get("passed") else "FAIL") if p else "not run",
                a.get("runtime") or "; ".join(a.get("not_checked") or []) or a.get("error") or "-",
            ]
        )
    return _table(rows, ["artifact", "size", "agreement", "accuracy", "gate", "runtime"])


def _ms(x: float | None) -> str:
    return "-" if x is None else (f"{x:.4f} ms" if x < 1 else f"{x:.2f} ms")


def devices_summary(profile: dict) -> str:
    """Per device: how many artifacts fit its budget and the smallest one that does (the one to ship there)."""
    by_dev: dict[str, list[dict]] = {}
    for r in profile.get("records", []):
        by_dev.setdefault(r.get("device", "?"), []).append(r)
    rows = []
    for dev, recs in by_dev.items():
        fits = [r for r in recs if r.get("verdict") == "fits"]
        pick = min(
            fits, key=lambda r: (r.get("flash_bytes") or 0, r.get("latency_ms") or 0), default=None
        )
        verdicts = sorted({r.get("verdict", "?") for r in recs} - {"fits"})
        rows.append(
            [
                dev,
                f"{len(fits)}/{len(recs)}"
                + (f" ({', '.join(verdicts)} for the rest)" if verdicts else ""),
                pick["artifact"] if pick else "-",
                pick.get("method", "-") if pick else "-",
                _ms(pick.get("latency_ms")) if pick else "-",
                _kb(pick.get("ram_bytes")) if pick else "-",
                _kb(pick.get("flash_bytes")) if pick else "-",
            ]
        )
    return _table(
        rows,
        [
            "device",
            "artifacts that fit",
            "smallest that fits",
            "latency from",
            "latency",
            "RAM",
            "flash",
        ],
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinyship.summary", description=__doc__)
    ap.add_argument("--run", required=True, type=Path, help="run directory, e.g. build/demo")
    args = ap.parse_args(argv)
    run = args.run
    print(f"\n== tinyship summary: {run} ==")
    card = rundir.read_json(run / rundir.CARD, "student card")
    print(distill_summary(card))
    exports_path = run / rundir.EXPORTS
    if exports_path.is_file():
        print("\n" + export_summary(rundir.read_json(exports_path, "exports record")))
    else:
        print("\n(export stage not run yet: python -m export --run", run, ")")
    for name, rel in (
        ("profile report", "profile/report.html"),
        ("profile", rundir.PROFILE),
        ("ship manifest", rundir.MANIFEST),
    ):
        p = run / rel
        print(f"{name}: {p if p.exists() else 'not written yet'}")
    if (run / rundir.PROFILE).is_file():
        prof = json.loads((run / rundir.PROFILE).read_text())
        err = (
            prof.get("estimator", {}).get("loo_mape")
            if isinstance(prof.get("estimator"), dict)
            else None
        )
        print("\n" + devices_summary(prof))
        if err is not None:
            print(
                f"latency estimator leave-one-out error vs host measurements: {100 * err:.1f}% (median abs %); "
                "estimates for unreachable devices carry at least this error (MCUs: see devices/README.md)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
