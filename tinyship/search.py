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
import copy
import itertools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from ground import rundir
from ground.errors import UserError
from ground.recipe import Field, load_recipe, validate


def _list_of(types: tuple[type, ...]):
    def check(v: Any) -> str | None:
        if not isinstance(v, list) or not v or not all(isinstance(i, types) for i in v):
            return "must be a non-empty list"
        return None

    return check


SEARCH_FIELDS: dict[str, Field] = {
    "kind": Field(list, ["dscnn"], check=_list_of((str,)), doc="student kinds to try"),
    "channels": Field(list, [16, 32], check=_list_of((int,)), doc="widths to try"),
    "blocks": Field(list, [2, 3], check=_list_of((int,)), doc="depths to try (dscnn blocks)"),
    "first_stride": Field(
        list, [2], check=_list_of((int,)), doc="dscnn: strides of the first conv"
    ),
    "block_stride": Field(
        list,
        None,
        check=_list_of((int,)),
        doc="dscnn: block strides to try (default: the student's own block_stride)",
    ),
    "val_speakers": Field(
        list,
        None,
        check=_list_of((str,)),
        doc="audio_folder: rank candidates on these speakers, held out of a second teacher and of "
        "the candidates' training (a new voice); the full trainings keep the recipe's split",
    ),
    "epochs": Field(int, 6, min=1, doc="short distillation per candidate"),
    "rank_seeds": Field(
        int,
        1,
        min=1,
        max=10,
        doc="seeds each candidate is distilled at; ranked by their mean validation accuracy "
        "(one seed of a short run moves a candidate's accuracy on new voices by points)",
    ),
    "seeds": Field(int, 3, min=1, max=20, doc="full training of each chosen student: seeds"),
    "full_epochs": Field(int, None, min=1, doc="full training epochs (default: train.epochs)"),
}

SEARCH_FILE = "search.json"
# teacher outputs of every run of the search, keyed by content (distill.cache)
TEACHER_CACHE = "teacher_cache"


def candidates(base: dict, grid: dict) -> list[dict]:
    """The student specs of the grid (keys the kind does not take are dropped from its spec),
    each validated here, so a bad grid value fails before any process starts."""
    from distill.students import STUDENTS, validate_spec

    out, seen = [], set()
    own_stride = base.get("block_stride", STUDENTS["dscnn"].fields["block_stride"].default)
    block_strides = grid.get("block_stride") or [own_stride]
    for kind, ch, blocks, stride, bstride in itertools.product(
        grid["kind"], grid["channels"], grid["blocks"], grid["first_stride"], block_strides
    ):
        if kind not in STUDENTS:
            raise UserError(
                f"recipe key 'student.search.kind' names {kind!r}; allowed: {', '.join(STUDENTS)}."
            )
        fields = STUDENTS[kind].fields
        spec = {k: v for k, v in base.items() if k in fields and k != "search"}
        spec["kind"] = kind
        if kind == "dscnn":
            spec.update(channels=ch, blocks=blocks, first_stride=stride, block_stride=bstride)
        elif kind == "cnn":
            spec["channels"] = [ch * 2**i for i in range(blocks)]
        try:
            validate_spec(spec)
        except UserError as exc:
            raise UserError(f"student.search: candidate {spec_name(spec)}: {exc}") from exc
        key = json.dumps(spec, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(spec)
    return out


def spec_name(spec: dict) -> str:
    if spec["kind"] == "dscnn":
        from distill.students import STUDENTS

        # kernel and block stride named only when not the kind's default, so names stay stable
        default = {k: f.default for k, f in STUDENTS["dscnn"].fields.items()}
        k = spec.get("first_kernel", default["first_kernel"])
        d = spec.get("block_stride", default["block_stride"])
        return (
            f"dscnn-c{spec['channels']}-b{spec['blocks']}"
            f"-s{spec.get('first_stride', default['first_stride'])}"
            + (f"-k{k}" if k != default["first_kernel"] else "")
            + (f"-d{d}" if d != default["block_stride"] else "")
        )
    if spec["kind"] == "cnn":
        return "cnn-" + "-".join(str(c) for c in spec["channels"])
    return spec["kind"] + "-" + "-".join(str(h) for h in spec.get("hidden", []))


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


class Teacher:
    """The recipe's library members, fitted once by the distill stage's own ``fit_library``."""

    def __init__(self, recipe: dict, seed: int) -> None:
        from distill.pipeline import fit_library

        lib = fit_library(recipe, seed=seed)
        self.dataset, self.norm = lib.data.dataset, lib.data.normalizer
        # each takes raw rows (it wraps the normalization it was fitted on): distill passes such
        # a Python member through unchanged, and its cache key names that normalization
        self.members, self.fit_s = lib.members, lib.seconds

    def val_accuracy(self, run: Path) -> float:
        """Accuracy of ``run/student/student.pt2`` on the validation split (what selection may use)."""
        import numpy as np
        import torch

        from ground import pt2

        program = pt2.load(run / "student" / "student.pt2").module()  # checked before loading
        # raw rows: the shipped graph starts with the normalization (distill.students.RawInput)
        x = torch.from_numpy(self.dataset.x_val.astype(np.float32)).reshape(
            len(self.dataset.x_val), *self.dataset.image_shape
        )
        with torch.no_grad():
            pred = program(x).argmax(1).numpy()
        return float(np.mean(pred == self.dataset.y_val))


def absolute_paths(recipe: dict, base: Path) -> dict:
    """data.path made absolute against the recipe file's folder, as distill would resolve it:
    the driver hands distill dicts, whose relative paths would be taken from the cwd."""
    data = dict(recipe.get("data") or {})
    if data.get("path") and not Path(data["path"]).is_absolute():
        data["path"] = str((base / data["path"]).resolve())
    return {**recipe, "data": data}


def ranking_recipe(recipe: dict, val_speakers: list[str] | None) -> dict:
    """The recipe the candidates are distilled and ranked under: with ``val_speakers``, those
    speakers' training clips are the validation split and train nothing (teacher, transfer set
    or candidate), so a candidate's validation accuracy is its accuracy on unheard voices."""
    if not val_speakers:
        return recipe
    data = recipe.get("data") or {}
    if data.get("name") != "audio_folder":
        raise UserError(
            "recipe key 'student.search.val_speakers' needs data.name: audio_folder with a "
            f"{{speaker}} field in data.pattern; this recipe's data.name is {data.get('name')!r}. "
            "Drop student.search.val_speakers to rank on the recipe's validation split."
        )
    return {**recipe, "data": {**data, "val_speakers": list(val_speakers)}}


def _validation_said(teacher: Teacher, val_speakers: list[str] | None) -> str:
    n = len(teacher.dataset.y_val)
    if val_speakers:
        return (
            f"speakers {', '.join(val_speakers)} ({n} clips), held out of the search's own "
            "teacher and of every candidate's training"
        )
    return f"the recipe's validation split ({n} clips)"


def _recipe_for(recipe: dict, spec: dict, baseline: bool) -> dict:
    r = copy.deepcopy(recipe)
    r["student"] = spec
    r["teacher"] = {**(r.get("teacher") or {}), "library": []}  # fitted once, passed as members
    r["train"] = {**(r.get("train") or {}), "baseline": baseline}
    return r


def _distil(
    recipe: dict,
    teacher: Teacher,
    run: Path,
    *,
    epochs: int | None,
    seed: int,
    baseline: bool,
    cache: Path,
):
    """The distill stage on the search's fitted teacher members (``teacher.library`` emptied)."""
    from distill import run as distill

    return distill(
        _recipe_for(recipe, recipe["student"], baseline),
        run,
        force=True,
        epochs=epochs,
        seed=seed,
        members=teacher.members,
        command="tinyship.search",
        progress=False,  # runs go two or more at a time: the driver draws one bar over them
        teacher_cache=cache,
    )


def _stage_run(
    recipe: dict,
    teacher: Teacher,
    run: Path,
    *,
    epochs: int | None,
    seed: int,
    baseline: bool,
    precisions: list[str],
    cache: Path,
) -> dict:
    """distill -> export -> profile one student in ``run``; returns what the driver needs.
    ``cache``: teacher outputs shared by every run of the search, so the students trained at one
    seed off one teacher label their (identical) transfer set once."""
    import devices
    import export

    res = _distil(recipe, teacher, run, epochs=epochs, seed=seed, baseline=baseline, cache=cache)
    # keep_going: a file below the export gate is recorded (passed: false), never shipped by the
    # devices stage, and does not stop the search; the gate's agreement is measured on the
    # holdout, so it is reported and never used to choose a candidate.
    exp = export.run(
        run, formats=["tflite"], precisions=precisions, force=True, progress=False, keep_going=True
    )
    failures = exp.failures()
    prof = devices.profile(run, force=True, settings=devices.Settings(runs=10, warmup=2))
    holdout = res.card["metrics"]["holdout"]
    per_device: dict[str, dict] = {}
    for r in prof.records:
        if r.precision != "int8-full":
            continue
        per_device[r.device] = {
            "verdict": r.verdict,
            "latency_ms": r.latency_ms,
            "ram_bytes": r.ram_bytes,
            "flash_bytes": r.flash_bytes,
            "budget": r.budget,
            "reasons": r.reasons,
            "frontend_ms": ((r.latency or {}).get("frontend") or {}).get("ms"),
            "stack": (r.latency or {}).get("stack"),  # the inference stack an MCU figure models
            "frontend_ram_bytes": (r.ram_frontend or {}).get("bytes")
            if (r.ram_frontend or {}).get("in_ram_bytes")
            else None,
        }
    return {
        "run": str(run),
        "macs": res.card["student"]["macs"],
        "params": res.card["student"]["params"],
        "val_accuracy": teacher.val_accuracy(run),
        "holdout_accuracy": holdout["student"]["accuracy"],
        "baseline_holdout_accuracy": (holdout.get("baseline") or {}).get("accuracy"),
        "teacher_holdout_accuracy": holdout["teacher"]["accuracy"],
        "holdout_n": holdout["n"],
        "devices": per_device,
        "export_gate": {"passed": not failures, "failures": failures},
    }


# ---- worker processes: every stage run of the search is one task -----------------------------
# Each run trains at a fixed torch thread count (``--threads``, default 1) in a worker process,
# so its figures do not depend on how many run at once (``--jobs``). Small students scale
# poorly over threads (one 2-thread process trains a c40 DS-CNN ~1.3x faster than one thread),
# while two 1-thread processes on two cores run ~1.9x faster than one.

_WORKER: dict[str, Any] = {}


def _worker_init(teacher: Teacher, threads: int) -> None:
    """Runs once per worker: the fitted teacher arrives pickled in memory from the parent (never
    from a file), and the thread count every run of this search trains at is set."""
    import torch

    torch.set_num_threads(threads)
    _WORKER["teacher"] = teacher


def _stage_task(recipe: dict, run: str, kw: dict) -> dict:
    return _stage_run(recipe, _WORKER["teacher"], Path(run), **kw)


def _rank_task(recipe: dict, run: str, epochs: int, seed: int, cache: str) -> float:
    """A further ranking seed: only its validation accuracy is wanted. A file's size, arena and
    latency depend on the architecture, so the first seed's export and profile stand for all."""
    teacher = _WORKER["teacher"]
    _distil(recipe, teacher, Path(run), epochs=epochs, seed=seed, baseline=False, cache=Path(cache))
    return teacher.val_accuracy(Path(run))


def _run_tasks(
    tasks: list[tuple[str, Any, tuple]], teacher: Teacher, jobs: int, threads: int, desc: str
) -> dict[str, Any]:
    """Run ``(label, function, args)`` tasks in ``jobs`` worker processes, in the order given
    (runs sharing a transfer set are queued apart, so the first labels it and the later ones hit
    the teacher cache); returns each label's result. One bar over the runs, one line per run."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from tqdm import tqdm

    results: dict[str, Any] = {}
    ctx = multiprocessing.get_context("spawn")  # no forked OpenMP pools
    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(tasks)),
        mp_context=ctx,
        initializer=_worker_init,
        initargs=(teacher, threads),
    )
    try:
        pending = {pool.submit(fn, *args): label for label, fn, args in tasks}
        with tqdm(total=len(tasks), desc=desc, unit="run", file=sys.stderr, disable=None) as bar:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    label = pending.pop(fut)
                    results[label] = fut.result()  # a worker's error is raised here
                    bar.update(1)
                    bar.write(
                        f"search: {label} done ({len(results)}/{len(tasks)})", file=sys.stderr
                    )
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


def _say_gate(row: dict, what: str, consequence: str) -> None:
    """One stderr line per export-gate failure of a stage run, and what follows from it."""
    for f in row["export_gate"]["failures"]:
        print(f"search: {what} below the export gate: {f}; {consequence}", file=sys.stderr)


def default_jobs() -> int:
    """One run per core this process may use (each run trains on one thread), at most 8."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cores or 1))


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
    recipe = absolute_paths(load_recipe(recipe_path), Path(recipe_path).resolve().parent)
    student = recipe.get("student") or {}
    grid = validate("student.search", student.get("search"), SEARCH_FIELDS)
    seed = int((recipe.get("train") or {}).get("seed", 0))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # with val_speakers the candidates get their own teacher (fitted without those speakers);
    # the full trainings below use the recipe's own split and teacher
    rank_recipe = ranking_recipe(recipe, grid["val_speakers"])
    cands = candidates(student, grid)  # a bad grid value fails here, before any fitting
    ranker = Teacher(rank_recipe, seed)
    said = _validation_said(ranker, grid["val_speakers"])
    print(
        f"search: teacher library fitted in {ranker.fit_s:.0f} s; ranking on {said}",
        file=sys.stderr,
    )

    cache = str(out / TEACHER_CACHE)
    tasks = []
    for spec in cands:  # candidate-major: a seed's transfer set is labelled once, then cached
        name = spec_name(spec)
        r = {**rank_recipe, "student": spec}
        for k in range(grid["rank_seeds"]):
            run = str(out / "search" / name / f"seed{seed + k}")
            if k == 0:
                kw = dict(epochs=grid["epochs"], seed=seed, baseline=False)
                kw.update(precisions=["int8-full"], cache=Path(cache))
                tasks.append((f"{name} seed {seed}", _stage_task, (r, run, kw)))
            else:
                args = (r, run, grid["epochs"], seed + k, cache)
                tasks.append((f"{name} seed {seed + k}", _rank_task, args))
    print(
        f"search: {len(cands)} candidates x {grid['rank_seeds']} seeds, {grid['epochs']} epochs "
        f"each; {jobs} at a time, {threads} torch thread(s) each",
        file=sys.stderr,
    )
    done = _run_tasks(tasks, ranker, jobs, threads, "search: ranking")
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
        _say_gate(
            row,
            f"{name} (after {grid['epochs']} epochs)",
            "still a candidate (the full training is checked again)",
        )

    budgets = ((recipe.get("devices") or {}).get("budgets")) or {}
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
        fits = [r for r in rows if (r["devices"].get(dev) or {}).get("verdict") == "fits"]
        if fits:
            best = max(fits, key=lambda r: (r["val_accuracy"], -r["macs"]))
            chosen[dev] = {"name": best["name"], "spec": best["spec"]}
        else:
            chosen[dev] = {"name": None, "why": "no candidate fits this budget"}

    doc: dict[str, Any] = {
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
        "execution": {"jobs": jobs, "torch_threads_per_run": threads},
        "candidates": rows,
        "budgets": budgets,
        "fronts": fronts,
        "chosen": chosen,
        "full": {},
    }
    rundir.atomic_write_json(out / SEARCH_FILE, doc)

    teacher = ranker
    if rank_recipe is not recipe:
        teacher = Teacher(recipe, seed)
        print(
            f"search: the recipe's teacher library fitted in {teacher.fit_s:.0f} s", file=sys.stderr
        )
    names = sorted({c["name"] for c in chosen.values() if c["name"]})
    tasks = []
    by_name = {r["name"]: r for r in rows}
    # the largest student first, so the runs left for the last, one-worker stretch are the
    # shortest; name-major, so the first name's seeds label and the others hit the cache
    for name in sorted(names, key=lambda n: -by_name[n]["macs"]):
        spec = by_name[name]["spec"]
        for k in range(grid["seeds"]):
            run = out / name / f"seed{seed + k}"
            run.mkdir(parents=True, exist_ok=True)
            rundir.atomic_write_json(run / SEARCH_FILE, doc)  # the report plots the fronts
            kw = dict(epochs=grid["full_epochs"], seed=seed + k, baseline=True)
            kw.update(precisions=["int8-full", "fp32"], cache=Path(cache))
            tasks.append(
                (
                    f"{name} seed {seed + k}",
                    _stage_task,
                    ({**recipe, "student": spec}, str(run), kw),
                )
            )
    print(
        f"search: full training of {', '.join(names) or 'nothing'} at {grid['seeds']} seeds, "
        "distilled and on hard labels",
        file=sys.stderr,
    )
    done = _run_tasks(tasks, teacher, jobs, threads, "search: full training") if tasks else {}
    for name in names:
        seeds = []
        for k in range(grid["seeds"]):
            row = done[f"{name} seed {seed + k}"]
            seeds.append({"seed": seed + k, **row})
            _say_gate(row, f"{name} seed {seed + k}", "not shipped")
        doc["full"][name] = _seed_summary(seeds)
    doc["wall_s"] = round(time.perf_counter() - t0, 1)
    rundir.atomic_write_json(out / SEARCH_FILE, doc)
    return doc


def _mean_sd(v: list[float]) -> dict:
    return {
        "mean": statistics.fmean(v),
        "sd": statistics.stdev(v) if len(v) > 1 else 0.0,
        "values": v,
    }


def _seed_summary(seeds: list[dict]) -> dict:
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
        "note": "holdout = FSDD's official test split; seeds differ in init, batch order and "
        "transfer set; the hard-label run is the distill stage's baseline (original clips only)",
    }


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
        doc = search(args.recipe, args.out, jobs=args.jobs, threads=args.threads)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("search: interrupted; finished runs are kept under --out", file=sys.stderr)
        return 130
    from tinyship import summary

    print(summary.search_text(Path(args.out)))  # what `tinyship summary --run OUT` prints
    print(f"wall {doc['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
