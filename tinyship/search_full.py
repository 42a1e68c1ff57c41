"""The full trainings of a student search: each chosen student over ``search.seeds`` seeds,
distilled and on hard labels, summarised as mean and spread of its holdout accuracy."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from ground import rundir

from .search_files import SEARCH_FILE
from .search_pool import Task, stage_task
from .search_runs import say_gate
from .search_tasks import TaskTeacher

# The first seed's run is the one shipped; the other seeds are there for the spread of the
# holdout accuracy (distilled and hard labels), which needs neither the fp32 file nor the devices
# stage: their full-int8 file is exported for the export gate and its int8 accuracy.
SHIPPED_PRECISIONS = ["int8-full", "fp32"]
UNSHIPPED_NOT_DONE = [
    "fp32 not exported: only the first seed's run ships (its fp32 file is in its export/)",
    "not profiled (no profile/, no ship/): a file's latency, RAM and flash depend on its "
    "architecture, not its seed; the shipped seed's run has the figures",
]


def full_tasks(
    seeds_of: dict[str, int],
    rows: list[dict],
    recipe: dict,
    grid: dict,
    seed: int,
    out: Path,
    cache: str,
    doc: dict,
    teacher: TaskTeacher,
) -> list[Task]:
    """One task per chosen student and seed (``seeds_of``: student -> seeds), each in its own
    run directory under ``out`` with a copy of the search (``doc``, and what this run does) for
    its report, after the labelling of its transfer set. Only the first seed's run ships: the
    others export the full-int8 file alone (export gate, int8 accuracy) and are not profiled
    (:data:`UNSHIPPED_NOT_DONE`). Cost: the student's MACs, so the largest go first."""
    tasks = []
    by_name = {r["name"]: r for r in rows}
    judge = teacher.teacher.judge()
    for name in sorted(seeds_of, key=lambda n: -by_name[n]["macs"]):
        spec = by_name[name]["spec"]
        for k in range(seeds_of[name]):
            run = out / name / f"seed{seed + k}"
            run.mkdir(parents=True, exist_ok=True)
            shipped = k == 0
            this = {"student": name, "seed": seed + k, "shipped": shipped}
            this["not_done"] = [] if shipped else UNSHIPPED_NOT_DONE
            # the report plots the fronts (the shipped run's); the others say what they skip
            rundir.atomic_write_json(run / SEARCH_FILE, {**doc, "this_run": this})
            kw = dict(epochs=grid["full_epochs"], seed=seed + k, baseline=True, judge=judge)
            kw.update(precisions=SHIPPED_PRECISIONS if shipped else ["int8-full"])
            kw.update(cache=Path(cache), profile=shipped)
            members, after = teacher.members_after(seed + k)
            r = {**recipe, "student": spec}
            args = _args(r, members, str(run), kw)
            tasks.append(
                Task(
                    full_label(name, seed + k),
                    stage_task,
                    args,
                    after,
                    float(by_name[name]["macs"]),
                )
            )
    return tasks


def full_label(name: str, seed: int) -> str:
    """A full training's task (its ranking runs are named ``{name} seed {seed}``)."""
    return f"full training of {name} seed {seed}"


def _args(recipe: dict, members, run: str, kw: dict) -> Any:
    return lambda results: (recipe, members(results), run, kw)


def full_results(seeds_of: dict[str, int], done: dict[str, Any], grid: dict, seed: int) -> dict:
    """Per chosen student, the summary of its seeds (``search.json``'s ``full``); one stderr line
    per run below the export gate."""
    full = {}
    for name, n_seeds in seeds_of.items():
        seeds = []
        for k in range(n_seeds):
            row = done[full_label(name, seed + k)]
            seeds.append(
                {"seed": seed + k, **row, "not_done": [] if k == 0 else UNSHIPPED_NOT_DONE}
            )
            say_gate(row, f"{name} seed {seed + k}", "not shipped")
        full[name] = seed_summary(seeds, grid.get("shared_transfer", False))
    return full


def _mean_sd(v: list[float]) -> dict:
    return {
        "mean": statistics.fmean(v),
        "sd": statistics.stdev(v) if len(v) > 1 else 0.0,
        "values": v,
    }


def seed_summary(seeds: list[dict], shared_transfer: bool = False) -> dict:
    """One student's full trainings: holdout accuracy distilled, on hard labels, and the gain."""
    n = seeds[0]["holdout_n"]
    dist = [s["holdout_accuracy"] for s in seeds]
    hard = [s["baseline_holdout_accuracy"] for s in seeds]
    teacher = seeds[0]["teacher_holdout_accuracy"]
    gain = [d - h for d, h in zip(dist, hard)]
    return {
        "seeds": seeds,
        "holdout_n": n,
        "teacher": teacher,
        "distilled": _mean_sd(dist),
        "hard": _mean_sd(hard),
        "gain": _mean_sd(gain),
        "extra_errors_vs_teacher": [round((teacher - d) * n) for d in dist],
        "shipped_run": seeds[0]["run"],
        "export_gate": [{"seed": s["seed"], **s["export_gate"]} for s in seeds],
        "note": "holdout = FSDD's official test split; seeds differ in init and batch order"
        + (
            " (one transfer set for every seed, so its draw is not in the spread)"
            if shared_transfer
            else " and transfer set"
        )
        + "; the hard-label run is the distill stage's baseline (the same rows on their clips' "
        "labels where the transfer set keeps each row's origin, else the original clips); "
        "the first seed's run is shipped, the others export full int8 alone and are not "
        "profiled (each seed's not_done)",
    }
