"""Student search under device budgets: the driver behind ``make kws``.

The stages stay independent: this driver calls their public APIs (``distill.run``,
``export.run``, ``devices.profile``) and reads what they wrote in the run directory. It is
the only place that knows about all three; no stage imports another's internals.

1. The teacher's library members are fitted once (``distill.pipeline.fit_library``: what
   ``distill`` itself would fit, by the same code, one task per member) and handed to every
   distill call as Python members, so candidates share one teacher; with
   ``search.shared_transfer`` (default) every run trains on one transfer set per teacher,
   labelled once by a task of its own before the runs start.
2. Each candidate of ``student.search`` (grid over kind, channels, blocks, first_stride) is
   distilled for ``search.epochs``, exported to full int8 and profiled: MACs, params, int8
   bytes, RAM (the TFLite Micro arena plus, on MCUs, the front-end buffers), latency incl. the
   audio front-end, per device.
3. Per device with a budget, the candidate with the best *validation* accuracy (its
   ``student.pt2`` on the validation split; the holdout is only reported) that fits is chosen,
   and the Pareto fronts (validation accuracy vs latency, vs RAM) are recorded. With
   ``search.val_speakers`` the candidates come from a second teacher fitted without those
   speakers, and the validation split is their clips: the ranking is on voices nothing heard,
   which a same-speaker split cannot give (its accuracies tie near the top).
4. Each chosen architecture is trained fully over ``search.seeds`` seeds (``search.other_seeds``
   for one chosen only for devices after the first target; ``search.full_epochs``, default
   ``train.epochs``), distilled and on
   hard labels (the distill stage's baseline) and exported to full int8; seed 0 is the shipped
   run, the only one also exported to fp32 and profiled (search_full). ``search.json`` at the
   top of ``--out`` holds everything; each full run gets a copy of the search so its report
   plots the fronts with the budget lines.

Every piece of work (a teacher member fitted, a transfer set labelled, a candidate at one seed,
a full training at one seed) is a task for one pool of ``--jobs`` worker processes, each at
``--threads`` torch threads (default 1), started when the tasks it needs are done, costliest
first (search_pool): small students use a second core far better as a second process than as a
second thread. The figures depend on ``--threads`` only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ground import rundir, signals
from ground.errors import UserError
from ground.recipe import load_recipe, validate

from . import summary
from .search_files import SEARCH_FILE, TEACHER_CACHE
from .search_full import full_results, full_tasks
from .search_grid import SEARCH_FIELDS, candidates, full_epochs, seeds_per_student, spec_name
from .search_pool import Task, default_jobs, run_tasks
from .search_ranking import choose, pareto, ranked_rows, ranking_tasks
from .search_tasks import TaskTeacher
from .search_teacher import Teacher, absolute_paths, ranking_recipe, validation_said

__all__ = [
    "SEARCH_FIELDS",
    "SEARCH_FILE",
    "TEACHER_CACHE",
    "Teacher",
    "absolute_paths",
    "candidates",
    "default_jobs",
    "main",
    "pareto",
    "ranking_recipe",
    "search",
    "spec_name",
]


def _prepare(recipe_path: str | Path, out: str | Path) -> tuple[dict, dict, dict, int, Path]:
    """The recipe (paths made absolute), its student, the validated grid, the seed, and ``out``
    created."""
    recipe = absolute_paths(load_recipe(recipe_path), Path(recipe_path).resolve().parent)
    student = recipe.get("student") or {}
    grid = validate("student.search", student.get("search"), SEARCH_FIELDS)
    seed = int((recipe.get("train") or {}).get("seed", 0))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return recipe, student, grid, seed, out


def _teachers(
    recipe: dict, rank_recipe: dict, grid: dict, seed: int, cache: str
) -> tuple[TaskTeacher, TaskTeacher, str]:
    """The ranking teacher and the recipe's (one and the same without ``val_speakers``), their
    data loaded here and their members left to the pool; and the ranking's validation named."""
    shared = grid["shared_transfer"]
    ranker = Teacher(_transfer_seeded(rank_recipe, seed, shared), seed, fit=False)
    said = validation_said(ranker, grid["val_speakers"])
    rank = TaskTeacher("rank", ranker.recipe, ranker, seed, cache, shared)
    if rank_recipe is recipe:
        return rank, rank, said
    full = Teacher(_transfer_seeded(recipe, seed, shared), seed, fit=False)
    return rank, TaskTeacher("full", full.recipe, full, seed, cache, shared), said


def _transfer_seeded(recipe: dict, seed: int, shared: bool) -> dict:
    """With a shared transfer set, the recipe's ``transfer.seed`` fixed at the search's seed (a
    recipe that fixes it keeps its own): every run at every seed draws the same rows."""
    if not shared:
        return recipe
    transfer = dict(recipe.get("transfer") or {})
    transfer.setdefault("seed", seed)
    return {**recipe, "transfer": transfer}


def _primary(recipe: dict, budgets: dict) -> str | None:
    """The device the recipe is for: its first target with a budget, else its first budget."""
    targets = (recipe.get("devices") or {}).get("targets") or []
    ordered = [t for t in targets if t in budgets] or list(budgets)
    return ordered[0] if ordered else None


def _search_doc(
    recipe_path: str | Path,
    grid: dict,
    said: str,
    execution: dict,
    rows: list[dict],
    budgets: dict,
    fronts: dict,
    chosen: dict,
) -> dict[str, Any]:
    """``search.json`` before the full trainings: the rule, the candidates and the choices."""
    return {
        "schema": "tinyship.search/1",
        "recipe": str(recipe_path),
        "rule": "per device: the candidate with the best validation accuracy"
        + (f" (mean over {grid['rank_seeds']} seeds)" if grid["rank_seeds"] > 1 else "")
        + f" (validation: {said}) among those whose "
        "full-int8 .tflite fits the budget (latency incl. front-end, RAM = TFLM arena + front-end "
        "buffers on MCUs, flash); "
        "the holdout is reported, never used to choose (nor is the export gate, which is measured "
        "on the holdout: a full run's file below it is not shipped)",
        "epochs": grid["epochs"],
        "rank_seeds": grid["rank_seeds"],
        "transfer": "one transfer set per teacher, drawn at the search's seed and labelled once; "
        "seeds differ in the student's init and batch order"
        if grid["shared_transfer"]
        else "a transfer set per seed",
        "full_epochs": {"epochs": grid["full_epochs"], "rule": grid["full_epochs_rule"]},
        "validation": said,
        "execution": execution,
        "candidates": rows,
        "budgets": budgets,
        "fronts": fronts,
        "chosen": chosen,
        "full": {},
    }


class _Plan:
    """What the search runs, as tasks of one pool: the teachers' members and labels, the
    ranking runs, and (added the moment the last ranking run is in) the full trainings."""

    def __init__(self, recipe_path, recipe, cands, grid, seed, out, execution) -> None:
        self.recipe_path, self.recipe, self.cands, self.grid = recipe_path, recipe, cands, grid
        self.seed, self.out, self.execution = seed, out, execution
        self.cache = str(out / TEACHER_CACHE)
        rank_recipe = ranking_recipe(recipe, grid["val_speakers"])
        self.rank, self.full, self.said = _teachers(recipe, rank_recipe, grid, seed, self.cache)
        self.rank_tasks = ranking_tasks(
            cands, self.rank.recipe, grid, seed, out, self.cache, self.rank
        )
        self.waiting = {t.label for t in self.rank_tasks}
        self.doc: dict[str, Any] = {}

    def first_tasks(self) -> list[Task]:
        """Members of both teachers, the labelling of every transfer set, the ranking runs."""
        grid, seed = self.grid, self.seed
        teachers = [self.rank] if self.full is self.rank else [self.rank, self.full]
        tasks = [t for teacher in teachers for t in teacher.fit_tasks()]
        tasks += self.rank.label_tasks([seed + k for k in range(grid["rank_seeds"])])
        most = max(grid["seeds"], grid.get("other_seeds") or 1)
        tasks += self.full.label_tasks([seed + k for k in range(most)])
        return tasks + self.rank_tasks

    def on_done(self, label: str, result: Any, results: dict[str, Any]) -> list[Task]:
        """Once every ranking run is in: rank, choose, write search.json, queue the full runs."""
        self.waiting.discard(label)
        if self.waiting or self.doc:
            return []
        rows = ranked_rows(self.cands, results, self.grid, self.seed)
        budgets = ((self.recipe.get("devices") or {}).get("budgets")) or {}
        chosen, fronts = choose(rows, budgets)
        self.doc = _search_doc(
            self.recipe_path, self.grid, self.said, self.execution, rows, budgets, fronts, chosen
        )
        self.seeds_of = seeds_per_student(self.grid, chosen, _primary(self.recipe, budgets))
        self.doc["full_seeds"] = self.seeds_of
        rundir.atomic_write_json(self.out / SEARCH_FILE, self.doc)
        said = ", ".join(f"{n} at {k} seed{'s' * (k > 1)}" for n, k in self.seeds_of.items())
        print(
            f"search: full training of {said or 'nothing'} (epochs: "
            f"{self.grid['full_epochs_rule']}), distilled and on hard labels",
            file=sys.stderr,
        )
        args = (self.recipe, self.grid, self.seed, self.out, self.cache, self.doc, self.full)
        return full_tasks(self.seeds_of, rows, self.full.recipe, *args[1:])


def search(
    recipe_path: str | Path, out: str | Path, *, jobs: int | None = None, threads: int = 1
) -> dict:
    """Run the whole search and the full trainings; writes ``out/search.json``; returns it.

    ``jobs`` tasks at once in worker processes (default: :func:`default_jobs`), each at
    ``threads`` torch threads; the figures depend on ``threads``, not on ``jobs``. The teachers'
    members are fitted in the workers too (one task each, at ``threads``)."""
    t0 = time.perf_counter()
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1 or threads < 1:
        raise UserError(f"--jobs and --threads must be >= 1; got {jobs} and {threads}.")
    recipe, student, grid, seed, out = _prepare(recipe_path, out)
    epochs, why = full_epochs(grid, recipe.get("train") or {})
    grid = {**grid, "full_epochs": epochs, "full_epochs_rule": why}
    cands = candidates(student, grid)  # a bad grid value fails here, before any fitting
    execution = {"jobs": jobs, "torch_threads_per_run": threads}
    plan = _Plan(recipe_path, recipe, cands, grid, seed, out, execution)
    print(
        f"search: ranking on {plan.said}; {len(cands)} candidates x {grid['rank_seeds']} seeds, "
        f"{grid['epochs']} epochs each, on "
        + ("one transfer set" if grid["shared_transfer"] else "a transfer set per seed")
        + f"; {jobs} task(s) at a time, {threads} torch thread(s) each",
        file=sys.stderr,
    )
    done = run_tasks(plan.first_tasks(), jobs, threads, "search", plan.on_done)
    doc = plan.doc
    doc["full"].update(full_results(plan.seeds_of, done, grid, seed))
    doc["wall_s"] = round(time.perf_counter() - t0, 1)
    rundir.atomic_write_json(out / SEARCH_FILE, doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tinyship.search", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--recipe", required=True, help="recipe with student.search and device budgets")
    ap.add_argument("--out", required=True, help="folder for the search and the full runs")
    ap.add_argument(
        "--jobs",
        type=int,
        default=None,
        help=f"stage runs at once, each in its own process (default: one per core, at most 8; "
        f"here {default_jobs()}); the figures do not depend on it",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads each run trains at (default 1); the figures depend on it",
    )
    args = ap.parse_args(argv)
    try:
        with signals.sigterm_raises():  # SIGTERM stops the workers as Ctrl-C does
            doc = search(args.recipe, args.out, jobs=args.jobs, threads=args.threads)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("search: interrupted; finished runs are kept under --out", file=sys.stderr)
        return signals.TERMINATED if isinstance(exc, signals.Terminated) else 130
    print(summary.search_text(Path(args.out)))  # what `tinyship summary --run OUT` prints
    print(f"wall {doc['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
