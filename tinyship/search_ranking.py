"""The ranking of a student search: the candidates' short runs, their validation accuracy over
the ranking seeds, and per device the best that fits and the Pareto fronts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .search_grid import spec_name
from .search_pool import Task, rank_task, stage_task
from .search_runs import say_gate
from .search_tasks import TaskTeacher


def pareto(points: list[dict], x: str) -> list[str]:
    """Names of the candidates no other beats on both lower ``x`` and higher val accuracy."""
    ok = [p for p in points if p.get(x) is not None]
    front = []
    for p in ok:
        dominated = any(
            q[x] <= p[x]
            and q["val_accuracy"] >= p["val_accuracy"]
            and (q[x] < p[x] or q["val_accuracy"] > p["val_accuracy"])
            for q in ok
        )
        if not dominated:
            front.append(p["name"])
    return sorted(front, key=lambda n: next(p[x] for p in ok if p["name"] == n))


def ranking_tasks(
    cands: list[dict],
    rank_recipe: dict,
    grid: dict,
    seed: int,
    out: Path,
    cache: str,
    teacher: TaskTeacher,
) -> list[Task]:
    """One task per candidate and ranking seed, each after the labelling of its transfer set;
    the first seed is exported and profiled. Cost: the candidate's MACs (every run trains the
    same rows for the same epochs), so the widest go first and the narrowest fill the end."""
    tasks = []
    judge = teacher.teacher.judge()
    for spec in cands:
        name = spec_name(spec)
        r = {**rank_recipe, "student": spec}
        cost = float(teacher.macs(spec))
        for k in range(grid["rank_seeds"]):
            run = str(out / "search" / name / f"seed{seed + k}")
            members, after = teacher.members_after(seed + k)
            if k == 0:
                kw = dict(epochs=grid["epochs"], seed=seed, baseline=False, judge=judge)
                kw.update(precisions=["int8-full"], cache=Path(cache))
                args = _args(stage_task, r, members, run, kw)
                tasks.append(Task(f"{name} seed {seed}", stage_task, args, after, cost * 1.05))
            else:
                extra = (grid["epochs"], seed + k, cache, judge)
                args = _args(rank_task, r, members, run, *extra)
                tasks.append(Task(f"{name} seed {seed + k}", rank_task, args, after, cost))
    return tasks


def _args(fn, recipe: dict, members, *rest) -> Any:
    """A task's arguments once its teacher's members are in (``members(results)``)."""
    return lambda results: (recipe, members(results), *rest)


def ranked_rows(cands: list[dict], done: dict[str, Any], grid: dict, seed: int) -> list[dict]:
    """One row per candidate: its first seed's figures, validation accuracy averaged over the
    ranking seeds; one stderr line each, and one per export-gate failure."""
    rows = []
    for spec in cands:
        name = spec_name(spec)
        row = {**done[f"{name} seed {seed}"], "name": name, "spec": spec}
        accs = [row["val_accuracy"]]
        accs += [done[f"{name} seed {seed + k}"] for k in range(1, grid["rank_seeds"])]
        if len(accs) > 1:
            row["val_accuracy_seeds"] = accs
            row["val_accuracy"] = sum(accs) / len(accs)
        said_accs = " / ".join(f"{a:.2%}" for a in accs)
        print(
            f"search: {name} validation accuracy "
            + (f"over {len(accs)} seeds: {said_accs}, mean " if len(accs) > 1 else "")
            + f"{row['val_accuracy']:.2%}",
            file=sys.stderr,
        )
        rows.append(row)
        say_gate(
            row,
            f"{name} (after {grid['epochs']} epochs)",
            "still a candidate (the full training is checked again)",
        )
    return rows


def choose(rows: list[dict], budgets: dict) -> tuple[dict[str, dict], dict[str, dict]]:
    """Per device with a budget: the candidate chosen (best validation accuracy among those that
    fit, fewer MACs on a tie) and the Pareto fronts; returns ``(chosen, fronts)``."""
    chosen: dict[str, dict] = {}
    fronts: dict[str, dict] = {}
    for dev in budgets:
        pts = [
            {
                "name": r["name"],
                "val_accuracy": r["val_accuracy"],
                "latency_ms": (r["devices"].get(dev) or {}).get("latency_ms"),
                "ram_bytes": (r["devices"].get(dev) or {}).get("ram_bytes"),
            }
            for r in rows
        ]
        fronts[dev] = {
            "accuracy_vs_latency": pareto(pts, "latency_ms"),
            "accuracy_vs_ram": pareto(pts, "ram_bytes"),
        }
        fits = [r for r in rows if _passes(r["devices"].get(dev) or {})]
        if fits:
            best = max(fits, key=lambda r: (r["val_accuracy"], -r["macs"]))
            chosen[dev] = {"name": best["name"], "spec": best["spec"]}
        else:
            chosen[dev] = {"name": None, "why": "no candidate fits this budget"}
    return chosen, fronts


def _passes(figures: dict) -> bool:
    """A candidate passes a device when it fits (or fits within error where the recipe allows it);
    search.json files written before 'passes' existed say only the verdict."""
    return bool(figures.get("passes", figures.get("verdict") == "fits"))
