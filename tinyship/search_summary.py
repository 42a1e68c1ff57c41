"""What `tinyship summary` says about a student search's folder (``make kws``'s build/kws): the
choice per device and the full trainings' distilled vs hard-label accuracy over seeds."""

from __future__ import annotations

from pathlib import Path

from ground import rundir

from .search_files import SEARCH_FILE  # tinyship.search writes it at the top of its --out folder
from .summary_format import kb, ms, pct, table


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


def _search_head(run: Path, s: dict) -> list[str]:
    """The search's folder, size and rule, and how its runs were executed."""
    return [
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


def _budget_text(b: dict) -> str:
    return (
        ", ".join(
            f"{b[k]:g} {unit}"
            for k, unit in (
                ("latency_ms", "ms"),
                ("ram_kb", "KiB RAM"),
                ("flash_kb", "KiB flash"),
            )
            if k in b
        )
        or "-"
    )


def _chosen_table(s: dict) -> str:
    """Per device: the student chosen, its search-run figures and the budget it was chosen for."""
    rows = []
    for dev, c in s["chosen"].items():
        b = c["budget"] or {}
        rows.append(
            [
                dev,
                c["student"] or f"none ({c['why']})",
                pct(c["val_accuracy"]),
                "-" if c["macs"] is None else f"{c['macs']:,}",
                ms(c["latency_ms"]),
                kb(c["ram_bytes"]),
                kb(c["flash_bytes"]),
                _budget_text(b),
                c["stack"] or "-",
            ]
        )
    return table(
        rows,
        ["device", "student", "val acc", "MACs", "latency", "RAM", "flash", "budget", "stack"],
    )


def _students_table(s: dict) -> list[str]:
    """Per chosen student: distilled vs hard-label holdout accuracy over the full trainings."""
    st = next(iter(s["students"].values()))
    out = [
        "",
        f"distilled vs the same network on hard labels, full training over seeds (holdout "
        f"n={st['holdout_n']}, teacher {pct(st['teacher'])}; mean ± sd, gain in points):",
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
        table(
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
    return out


def _per_seed_lines(s: dict) -> list[str]:
    """Per chosen student: each seed's accuracies, the shipped run and its export-gate failures;
    then the devices whose student is not trained fully yet."""
    out = []
    for name, f in s["students"].items():
        per = zip(f["seeds"], f["distilled"]["values"], f["hard"]["values"])
        out.append(
            f"{name} per seed (distilled / hard): "
            + ", ".join(f"seed {k} {pct(d)} / {pct(h)}" for k, d, h in per)
            + f"; shipped: {f['shipped_run']} (tinyship summary --run {f['shipped_run']})"
        )
        for g in f["export_gate"]:
            for why in g.get("failures") or []:
                out.append(f"{name} seed {g['seed']}: below the export gate, not shipped: {why}")
    missing = [d for d, c in s["chosen"].items() if c["student"] and not c["trained"]]
    if missing:
        out.append(f"not trained fully yet: the students chosen for {', '.join(missing)}")
    return out


def search_text(run: Path) -> str:
    """What `tinyship summary` prints for a search folder: per device the student chosen, and
    distillation's gain over the same network on hard labels, with its spread over seeds."""
    s = search_collect(run)
    out = _search_head(run, s)
    out.append(_chosen_table(s))
    if not s["students"]:
        out.append("\nfull training of the chosen students: not run yet")
        return "\n".join(out)
    out += _students_table(s)
    out += _per_seed_lines(s)
    return "\n".join(out)
