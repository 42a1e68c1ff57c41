"""Student search under device budgets: the driver behind ``make kws``.

The stages stay independent: this driver calls their public APIs (``distill.run``,
``export.run``, ``devices.profile``) and reads what they wrote in the run directory. It is
the only place that knows about all three; no stage imports another's internals.

1. The teacher's library members are fitted once (``distill.pipeline.fit_library``: what
   ``distill`` itself would fit, by the same code) and handed to every distill call as Python
   members, so candidates share one teacher and one labelled transfer set.
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
4. Each chosen architecture is trained fully over ``search.seeds`` seeds, distilled and on
   hard labels (the distill stage's baseline), exported and profiled; seed 0 is the shipped
   run. ``search.json`` at the top of ``--out`` holds everything; each full run gets a copy of
   the search so its report plots the fronts with the budget lines.

Every stage run (a candidate at one seed, a full training at one seed) is a task for a pool of
``--jobs`` worker processes, each training at ``--threads`` torch threads (default 1): the
runs are independent once the teacher is fitted, and small students use a second core far
better as a second process than as a second thread. The figures depend on ``--threads`` only.
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
from .search_grid import SEARCH_FIELDS, candidates, spec_name
from .search_pool import default_jobs, run_tasks
from .search_ranking import choose, pareto, ranked_rows, ranking_tasks
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


def _ranking_teacher(rank_recipe: dict, grid: dict, seed: int) -> tuple[Teacher, str]:
    """The teacher the candidates are distilled from and ranked by, and its validation named."""
    ranker = Teacher(rank_recipe, seed)
    said = validation_said(ranker, grid["val_speakers"])
    print(
        f"search: teacher library fitted in {ranker.fit_s:.0f} s; ranking on {said}",
        file=sys.stderr,
    )
    return ranker, said


def _rank(
    cands: list[dict],
    rank_recipe: dict,
    ranker: Teacher,
    grid: dict,
    seed: int,
    out: Path,
    cache: str,
    jobs: int,
    threads: int,
) -> list[dict]:
    """Every candidate's short runs in the worker pool; one row per candidate."""
    tasks = ranking_tasks(cands, rank_recipe, grid, seed, out, cache)
    print(
        f"search: {len(cands)} candidates x {grid['rank_seeds']} seeds, {grid['epochs']} epochs "
        f"each; {jobs} at a time, {threads} torch thread(s) each",
        file=sys.stderr,
    )
    done = run_tasks(tasks, ranker, jobs, threads, "search: ranking")
    return ranked_rows(cands, done, grid, seed)


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
        "validation": said,
        "execution": execution,
        "candidates": rows,
        "budgets": budgets,
        "fronts": fronts,
        "chosen": chosen,
        "full": {},
    }


def _full_teacher(recipe: dict, rank_recipe: dict, ranker: Teacher, seed: int) -> Teacher:
    """The ranking teacher, or with ``val_speakers`` the recipe's own, fitted on its own split."""
    if rank_recipe is recipe:
        return ranker
    teacher = Teacher(recipe, seed)
    print(f"search: the recipe's teacher library fitted in {teacher.fit_s:.0f} s", file=sys.stderr)
    return teacher


def _train_chosen(
    doc: dict,
    recipe: dict,
    teacher: Teacher,
    grid: dict,
    seed: int,
    out: Path,
    cache: str,
    jobs: int,
    threads: int,
) -> dict:
    """The full trainings of every chosen student; returns ``search.json``'s ``full``."""
    names = sorted({c["name"] for c in doc["chosen"].values() if c["name"]})
    tasks = full_tasks(names, doc["candidates"], recipe, grid, seed, out, cache, doc)
    print(
        f"search: full training of {', '.join(names) or 'nothing'} at {grid['seeds']} seeds, "
        "distilled and on hard labels",
        file=sys.stderr,
    )
    done = run_tasks(tasks, teacher, jobs, threads, "search: full training") if tasks else {}
    return full_results(names, done, grid, seed)


def search(
    recipe_path: str | Path, out: str | Path, *, jobs: int | None = None, threads: int = 1
) -> dict:
    """Run the whole search and the full trainings; writes ``out/search.json``; returns it.

    ``jobs`` stage runs at once in worker processes (default: :func:`default_jobs`), each
    training at ``threads`` torch threads; the figures depend on ``threads``, not on ``jobs``.
    The teachers are fitted in this process, at torch's own thread count."""
    t0 = time.perf_counter()
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1 or threads < 1:
        raise UserError(f"--jobs and --threads must be >= 1; got {jobs} and {threads}.")
    recipe, student, grid, seed, out = _prepare(recipe_path, out)
    # with val_speakers the candidates get their own teacher (fitted without those speakers);
    # the full trainings below use the recipe's own split and teacher
    rank_recipe = ranking_recipe(recipe, grid["val_speakers"])
    cands = candidates(student, grid)  # a bad grid value fails here, before any fitting
    ranker, said = _ranking_teacher(rank_recipe, grid, seed)
    cache = str(out / TEACHER_CACHE)
    rows = _rank(cands, rank_recipe, ranker, grid, seed, out, cache, jobs, threads)
    budgets = ((recipe.get("devices") or {}).get("budgets")) or {}
    chosen, fronts = choose(rows, budgets)
    execution = {"jobs": jobs, "torch_threads_per_run": threads}
    doc = _search_doc(recipe_path, grid, said, execution, rows, budgets, fronts, chosen)
    rundir.atomic_write_json(out / SEARCH_FILE, doc)
    teacher = _full_teacher(recipe, rank_recipe, ranker, seed)
    full = _train_chosen(doc, recipe, teacher, grid, seed, out, cache, jobs, threads)
    doc["full"].update(full)
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
