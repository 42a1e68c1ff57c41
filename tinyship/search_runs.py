"""One stage run of a student search: a student distilled on the shared teacher, exported to
int8 and profiled, reduced to the figures the ranking and the full trainings record."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

from .search_teacher import Judge


def _recipe_for(recipe: dict, spec: dict, baseline: bool) -> dict:
    r = copy.deepcopy(recipe)
    r["student"] = spec
    r["teacher"] = {**(r.get("teacher") or {}), "library": []}  # fitted once, passed as members
    r["train"] = {**(r.get("train") or {}), "baseline": baseline}
    return r


def distil(
    recipe: dict,
    members: list,
    run: Path,
    *,
    epochs: int | None,
    seed: int,
    baseline: bool,
    cache: Path,
):
    """The distill stage on the search's fitted teacher ``members`` (``teacher.library``
    emptied: they are passed in, never refitted)."""
    from distill import run as distill

    return distill(
        _recipe_for(recipe, recipe["student"], baseline),
        run,
        force=True,
        epochs=epochs,
        seed=seed,
        members=members,
        command="tinyship.search",
        progress=False,  # runs go two or more at a time: the driver draws one bar over them
        teacher_cache=cache,
    )


def label_transfer(recipe: dict, members: list, *, seed: int, cache: Path) -> float:
    """The teacher's outputs on the transfer set a run at ``seed`` trains on (and on the
    validation and holdout splits), into the shared cache: distill's own steps up to its
    labelling, writing nothing else, so the runs that follow find their labels there.
    Returns the seconds it took."""
    import time

    from distill.distributed import DistContext
    from distill.pipeline import build_teacher, configure, label, load_data, make_transfer_set

    t = time.perf_counter()
    cfg = configure(_recipe_for(recipe, recipe["student"], False), None, seed=seed)
    cfg.teacher_cache = Path(cache)
    data = load_data(cfg)
    teacher = build_teacher(cfg, data, members)
    label(cfg, data, teacher, make_transfer_set(cfg, data), DistContext())
    return time.perf_counter() - t


def _device_figures(prof) -> dict[str, dict]:
    """Per device, the full-int8 file's verdict, latency, RAM and flash from a profile report."""
    per_device: dict[str, dict] = {}
    for r in prof.records:
        if r.precision != "int8-full":
            continue
        per_device[r.device] = {
            "verdict": r.verdict,
            "passes": r.passes,  # fits, or fits within error where the recipe allows it
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
    return per_device


def _drop_stages(run: Path, stages: tuple[str, ...]) -> None:
    """Remove what an earlier search left in ``run`` of stages this run does not do: they would
    describe another student. Renamed to a ``.partial`` first (a kill leaves a name the next
    lock-taker's recovery removes, never half a stage folder)."""
    import shutil

    for stage in stages:
        path = run / stage
        if path.exists():
            gone = run / f".{stage}.dropped.partial"
            shutil.rmtree(gone, ignore_errors=True)
            path.rename(gone)
            shutil.rmtree(gone)


def stage_run(
    recipe: dict,
    members: list,
    run: Path,
    *,
    judge: Judge,
    epochs: int | None,
    seed: int,
    baseline: bool,
    precisions: list[str],
    cache: Path,
    profile: bool = True,
) -> dict:
    """distill -> export -> profile one student in ``run``; returns what the driver needs.
    ``members``: the teacher's fitted members; ``judge``: its validation split. ``cache``:
    teacher outputs shared by every run of the search, filled by :func:`label_transfer` before
    the run starts, so no run labels its transfer set again. ``profile=False``: no devices stage
    (no profile/, no ship/), for a run whose device figures another run of the same
    architecture gives; its row says so (``devices``: None)."""
    import devices
    import export
    from ground import rundir

    with rundir.locked(run):  # one writer from the first stage to the last (issue 41)
        res = distil(recipe, members, run, epochs=epochs, seed=seed, baseline=baseline, cache=cache)
        # keep_going: a file below the export gate is recorded (passed: false), never shipped by
        # the devices stage, and does not stop the search; the gate's agreement is measured on
        # the holdout, so it is reported and never used to choose a candidate.
        exp = export.run(
            run, formats=["tflite"], precisions=precisions, force=True, progress=False,
            keep_going=True,
        )  # fmt: skip
        prof = None
        if profile:
            prof = devices.profile(run, force=True, settings=devices.Settings(runs=10, warmup=2))
        else:
            _drop_stages(run, ("profile", "ship"))
    failures = exp.failures()
    holdout = res.card["metrics"]["holdout"]
    return {
        "run": str(run),
        "macs": res.card["student"]["macs"],
        "params": res.card["student"]["params"],
        "val_accuracy": judge.val_accuracy(run),
        "holdout_accuracy": holdout["student"]["accuracy"],
        "baseline_holdout_accuracy": (holdout.get("baseline") or {}).get("accuracy"),
        "teacher_holdout_accuracy": holdout["teacher"]["accuracy"],
        "holdout_n": holdout["n"],
        "devices": None if prof is None else _device_figures(prof),
        "export_gate": {"passed": not failures, "failures": failures, "precisions": precisions},
    }


def say_gate(row: dict, what: str, consequence: str) -> None:
    """One stderr line per export-gate failure of a stage run, and what follows from it."""
    for f in row["export_gate"]["failures"]:
        print(f"search: {what} below the export gate: {f}; {consequence}", file=sys.stderr)
