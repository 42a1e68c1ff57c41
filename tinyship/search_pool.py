"""The worker processes of a student search: every stage run is one task in a process pool.

Each run trains at a fixed torch thread count (``--threads``, default 1) in a worker process,
so its figures do not depend on how many run at once (``--jobs``). Small students scale
poorly over threads (one 2-thread process trains a c40 DS-CNN ~1.3x faster than one thread),
while two 1-thread processes on two cores run ~1.9x faster than one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .search_runs import distil, stage_run
from .search_teacher import Teacher

_WORKER: dict[str, Any] = {}


def _worker_init(teacher: Teacher, threads: int) -> None:
    """Runs once per worker: the fitted teacher arrives pickled in memory from the parent (never
    from a file), and the thread count every run of this search trains at is set."""
    import torch

    torch.set_num_threads(threads)
    _WORKER["teacher"] = teacher


def stage_task(recipe: dict, run: str, kw: dict) -> dict:
    """A stage run in a worker, on the teacher the worker was started with."""
    return stage_run(recipe, _WORKER["teacher"], Path(run), **kw)


def rank_task(recipe: dict, run: str, epochs: int, seed: int, cache: str) -> float:
    """A further ranking seed: only its validation accuracy is wanted. A file's size, arena and
    latency depend on the architecture, so the first seed's export and profile stand for all."""
    teacher = _WORKER["teacher"]
    distil(recipe, teacher, Path(run), epochs=epochs, seed=seed, baseline=False, cache=Path(cache))
    return teacher.val_accuracy(Path(run))


def run_tasks(
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
        # stop the runs now: a SIGTERM (or a worker's error) reaches this process only, and a
        # run left going would hold its run directory's lock; its .partial is cleaned up by the
        # next command that takes that lock
        workers = getattr(pool, "_processes", None) or {}  # CPython's {pid: Process}
        for proc in list(workers.values()):
            proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


def default_jobs() -> int:
    """One run per core this process may use (each run trains on one thread), at most 8."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cores or 1))
