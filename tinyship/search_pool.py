"""The worker processes of a student search: every piece of work is one task in one pool.

Each task (a teacher member fitted, a transfer set labelled, a student run) runs at a fixed
torch thread count (``--threads``, default 1) in a worker process, so its result does not depend
on how many run at once (``--jobs``) nor on the order they run in. Small students scale poorly
over threads (one 2-thread process trains a c40 DS-CNN ~1.3x faster than one thread), while two
1-thread processes on two cores run ~1.9x faster than one.

One pool serves the whole search: tasks name the tasks they wait for (``after``), and a free
worker takes the costliest task that is ready (longest first), so the teachers' members, the
labelling and the ranking runs overlap and no core waits for a phase to end while work is left.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ground.errors import InternalError

from .search_runs import distil, label_transfer, stage_run

_WORKER: dict[str, Any] = {}


@dataclass
class Task:
    """One piece of work for a worker: ``fn(*args)``, started once every task in ``after`` is
    done; ``args`` may be a function of the results so far (``args(results)``), for work that
    needs what an earlier task made (a teacher's members). Among ready tasks the one with the
    largest ``cost`` (expected seconds, any unit) goes first."""

    label: str
    fn: Callable[..., Any]
    args: tuple | Callable[[dict[str, Any]], tuple]
    after: tuple[str, ...] = ()
    cost: float = 0.0


def _worker_init(threads: int) -> None:
    """Runs once per worker: the thread count every task of this search runs at, and quiet about
    torch's own deprecation of LeafSpec, which every unpickled export graph repeats (hundreds of
    lines in a `make kws` log, none about the user's work)."""
    import warnings

    import torch

    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore", message=r".*treespec, LeafSpec", category=FutureWarning)


def fit_member_task(recipe: dict, name: str, seed: int) -> list:
    """One library member of a teacher, fitted by the distill stage's own ``fit_library``. Its
    fingerprint is taken here, before it leaves the worker: a member keeps the first one it
    took (distill.members), so every process names it alike."""
    from distill.members import member_fingerprint
    from distill.pipeline import fit_library

    members = fit_library(recipe, seed=seed, names=[name]).members
    for m in members:
        member_fingerprint(m)
    return members


def stage_task(recipe: dict, members: list, run: str, kw: dict) -> dict:
    """A stage run (distill, export, profile) on the teacher's fitted ``members``."""
    return stage_run(recipe, members, Path(run), **kw)


def rank_task(
    recipe: dict, members: list, run: str, epochs: int, seed: int, cache: str, judge: Any
) -> float:
    """A further ranking seed: only its validation accuracy is wanted. A file's size, arena and
    latency depend on the architecture, so the first seed's export and profile stand for all."""
    distil(recipe, members, Path(run), epochs=epochs, seed=seed, baseline=False, cache=Path(cache))
    return judge.val_accuracy(Path(run))


def label_task(recipe: dict, members: list, seed: int, cache: str) -> float:
    """The teacher's outputs on a transfer set, written to the search's cache before the runs
    that train on it start (so none of them labels it again); returns the seconds it took."""
    return label_transfer(recipe, members, seed=seed, cache=Path(cache))


def _ready(pending: list[Task], results: dict[str, Any]) -> list[Task]:
    """Tasks whose prerequisites are done, costliest first (ties: the order they were added)."""
    ready = [t for t in pending if all(a in results for a in t.after)]
    return sorted(ready, key=lambda t: -t.cost)


def run_tasks(
    tasks: list[Task],
    jobs: int,
    threads: int,
    desc: str,
    on_done: Callable[[str, Any, dict[str, Any]], list[Task]] | None = None,
) -> dict[str, Any]:
    """Run ``tasks`` in ``jobs`` worker processes, each started when its ``after`` tasks are done;
    ``on_done(label, result, results)`` may add tasks (e.g. the full trainings once the ranking
    is in). Returns each label's result. One bar over the tasks, one line per task."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from tqdm import tqdm

    results: dict[str, Any] = {}
    pending = list(tasks)
    ctx = multiprocessing.get_context("spawn")  # no forked OpenMP pools
    pool = ProcessPoolExecutor(
        max_workers=jobs, mp_context=ctx, initializer=_worker_init, initargs=(threads,)
    )
    total = len(pending)  # grows as on_done adds tasks (the bar may be off: count here)
    bar = tqdm(total=total, desc=desc, unit="task", file=sys.stderr, disable=None)
    running: dict[Any, Task] = {}
    started: dict[str, float] = {}
    try:
        while pending or running:
            for task in _ready(pending, results)[: jobs - len(running)]:
                pending.remove(task)
                args = task.args(results) if callable(task.args) else task.args
                running[pool.submit(task.fn, *args)] = task
                started[task.label] = time.perf_counter()
            if not running:
                waiting = ", ".join(t.label for t in pending)
                raise InternalError(f"search: tasks wait for tasks that never come: {waiting}")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: running[f].label):
                task = running.pop(fut)
                results[task.label] = fut.result()  # a worker's error is raised here
                bar.update(1)
                took = time.perf_counter() - started[task.label]
                bar.write(
                    f"search: {task.label} done ({len(results)}/{total}, {took:.0f} s)",
                    file=sys.stderr,
                )
                more = on_done(task.label, results[task.label], results) if on_done else []
                pending += more
                total += len(more)
                bar.total = total
                bar.refresh()
    except BaseException:
        # stop the runs now: a SIGTERM (or a worker's error) reaches this process only, and a
        # run left going would hold its run directory's lock; its .partial is cleaned up by the
        # next command that takes that lock
        workers = getattr(pool, "_processes", None) or {}  # CPython's {pid: Process}
        for proc in list(workers.values()):
            proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        bar.close()
    pool.shutdown(wait=True)
    return results


def default_jobs() -> int:
    """One run per core this process may use (each run trains on one thread), at most 8."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cores or 1))
