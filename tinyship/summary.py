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

from .search import SEARCH_FILE  # tinyship.search writes it at the top of its --out folder


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


def devices_summary(profile: dict, exports: dict | None = None) -> str:
    """Per device: the file to ship by the rule in ground.recommend, or the nearest miss and why."""
    rows = []
    for dev, p in recommend.recommend(profile, exports).items():
        rows.append(
            [
                dev,
                f"{p.n_fit}/{p.n_files}",
                p.recommended or (f"none fits (nearest: {p.file})" if p.file else "none runnable"),
                _pct(p.accuracy),
                p.method or "-",
                _ms(p.latency_ms),
                _kb(p.ram_bytes),
                _kb(p.flash_bytes),
                "; ".join(p.reasons) if not p.fits else _margin(p),
            ]
        )
    return _table(
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
        parts.append(f"{_ms(m['latency_ms'])} under")
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


# ----------------------------------------------------------------------------- student search


def is_search(run: Path) -> bool:
    """A student search's output folder (``make kws``'s build/kws): search.json and no student/.
    Each full run inside it is an ordinary run directory (with a copy of search.json)."""
    return (run / SEARCH_FILE).is_file() and not (run / rundir.CARD).is_file()


def search_collect(run: Path) -> dict:
    """The machine-readable summary of a search: the choice per device, and per chosen student
    the distilled and hard-label accuracies over the seeds of its full training, with the gain."""
    doc = rundir.read_json(run / SEARCH_FILE, "student search (search.json)")
    rows = {c.get("name"): c for c in doc.get("candidates") or []}
    full = doc.get("full") or {}
    chosen = {}
    for dev, c in (doc.get("chosen") or {}).items():
        name = c.get("name")
        fig = ((rows.get(name) or {}).get("devices") or {}).get(dev) or {}
        chosen[dev] = {
            "student": name,
            "why": c.get("why"),
            "val_accuracy": (rows.get(name) or {}).get("val_accuracy"),
            "macs": (rows.get(name) or {}).get("macs"),
            **{k: fig.get(k) for k in ("latency_ms", "ram_bytes", "flash_bytes", "stack")},
            "budget": (doc.get("budgets") or {}).get(dev),
            "trained": name in full,
        }
    students = {}
    for name, f in full.items():
        students[name] = {
            "devices": [d for d, c in chosen.items() if c["student"] == name],
            "seeds": [s.get("seed") for s in f.get("seeds") or []],
            "holdout_n": f.get("holdout_n"),
            "teacher": f.get("teacher"),
            **{k: f.get(k) for k in ("distilled", "hard", "gain")},
            "extra_errors_vs_teacher": f.get("extra_errors_vs_teacher"),
            "shipped_run": f.get("shipped_run"),
            "export_gate": f.get("export_gate") or [],
        }
    return {
        "schema": "tinyship.summary.search/1",
        "run": str(run),
        "candidates": len(rows),
        "epochs": doc.get("epochs"),
        "rule": doc.get("rule"),
        "execution": doc.get("execution"),  # runs at once and torch threads per run
        "chosen": chosen,
        "students": students,
        "wall_s": doc.get("wall_s"),
    }


def _pm(stat: dict | None, signed: bool = False) -> str:
    """mean ± sd of accuracies (fractions) in percent / points."""
    if not stat or stat.get("mean") is None:
        return "-"
    sign = "+" if signed and stat["mean"] >= 0 else ""
    unit = "" if signed else "%"
    return f"{sign}{100 * stat['mean']:.2f}{unit} ± {100 * stat['sd']:.2f}"


def search_text(run: Path) -> str:
    """What `tinyship summary` prints for a search folder: per device the student chosen, and
    distillation's gain over the same network on hard labels, with its spread over seeds."""
    s = search_collect(run)
    out = [
        f"== tinyship summary: {run} (student search, {SEARCH_FILE}) ==",
        f"{s['candidates']} candidates, {s['epochs']} epochs each; {s['rule']}",
        *(
            [
                f"runs: {ex['jobs']} at a time, {ex['torch_threads_per_run']} torch thread(s) "
                "each (the figures depend on the threads, not on how many run at once)"
            ]
            if (ex := s.get("execution"))
            else []
        ),
        "",
        "chosen per device (figures of the candidate's search run):",
    ]
    rows = []
    for dev, c in s["chosen"].items():
        b = c["budget"] or {}
        rows.append(
            [
                dev,
                c["student"] or f"none ({c['why']})",
                _pct(c["val_accuracy"]),
                "-" if c["macs"] is None else f"{c['macs']:,}",
                _ms(c["latency_ms"]),
                _kb(c["ram_bytes"]),
                _kb(c["flash_bytes"]),
                ", ".join(
                    f"{b[k]:g} {unit}"
                    for k, unit in (
                        ("latency_ms", "ms"),
                        ("ram_kb", "KiB RAM"),
                        ("flash_kb", "KiB flash"),
                    )
                    if k in b
                )
                or "-",
                c["stack"] or "-",
            ]
        )
    out.append(
        _table(
            rows,
            ["device", "student", "val acc", "MACs", "latency", "RAM", "flash", "budget", "stack"],
        )
    )
    if not s["students"]:
        out.append("\nfull training of the chosen students: not run yet")
        return "\n".join(out)
    st = next(iter(s["students"].values()))
    out += [
        "",
        f"distilled vs the same network on hard labels, full training over seeds (holdout "
        f"n={st['holdout_n']}, teacher {_pct(st['teacher'])}; mean ± sd, gain in points):",
    ]
    rows = []
    for name, f in s["students"].items():
        rows.append(
            [
                name,
                ", ".join(f["devices"]) or "-",
                str(len(f["seeds"])),
                _pm(f["distilled"]),
                _pm(f["hard"]),
                _pm(f["gain"], signed=True),
                ", ".join(str(e) for e in f["extra_errors_vs_teacher"] or []) or "-",
            ]
        )
    out.append(
        _table(
            rows,
            [
                "student",
                "chosen for",
                "seeds",
                "distilled",
                "hard labels",
                "gain",
                "errors beyond teacher",
            ],
        )
    )
    for name, f in s["students"].items():
        per = zip(f["seeds"], f["distilled"]["values"], f["hard"]["values"])
        out.append(
            f"{name} per seed (distilled / hard): "
            + ", ".join(f"seed {k} {_pct(d)} / {_pct(h)}" for k, d, h in per)
            + f"; shipped: {f['shipped_run']} (tinyship summary --run {f['shipped_run']})"
        )
        for g in f["export_gate"]:
            for why in g.get("failures") or []:
                out.append(f"{name} seed {g['seed']}: below the export gate, not shipped: {why}")
    missing = [d for d, c in s["chosen"].items() if c["student"] and not c["trained"]]
    if missing:
        out.append(f"not trained fully yet: the students chosen for {', '.join(missing)}")
    return "\n".join(out)


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
