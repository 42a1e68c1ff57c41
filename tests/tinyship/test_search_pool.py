"""The search's pool: tasks start when what they wait for is done, the costliest ready task
first, tasks added on the way run too, and a task that can never start is an error."""

from __future__ import annotations

import operator
import time

import pytest

from ground.errors import InternalError
from tinyship.search_pool import Task, run_tasks


def test_ready_tasks_go_costliest_first_and_wait_for_their_prerequisites(capsys):
    tasks = [
        Task("a", time.monotonic, (), cost=1.0),
        Task("b", time.monotonic, (), cost=5.0),
        Task("c", time.monotonic, (), after=("a",), cost=9.0),  # costliest, but waits for a
        Task("d", operator.add, lambda done: (done["a"], 1.0), after=("a",), cost=2.0),
    ]
    added = []

    def on_done(label, result, done):
        if label != "b":
            return []
        added.append(Task("e", time.monotonic, (), after=("c",), cost=0.0))
        return added

    done = run_tasks(tasks, jobs=1, threads=1, desc="test", on_done=on_done)
    assert set(done) == {"a", "b", "c", "d", "e"}
    # one worker, so tasks end in the order they start: b (a and b ready, b costlier), a, then
    # c before d (both ready once a is done), and e, added when b was done, once c is
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("search: ")]
    assert [ln.split()[1] for ln in lines] == ["b", "a", "c", "d", "e"], lines
    assert "(1/4, " in lines[0] and "(5/5, " in lines[-1]  # e counted once added
    assert all(ln.endswith(" s)") for ln in lines)  # and each says how long it took
    assert done["b"] < done["a"] < done["c"] < done["e"]
    assert done["d"] == done["a"] + 1.0  # its arguments were built from a's result


def test_a_task_that_waits_for_nothing_that_comes_is_an_error():
    with pytest.raises(InternalError, match="never come: x"):
        run_tasks([Task("x", time.monotonic, (), after=("missing",))], 2, 1, "test")


def test_a_worker_does_not_repeat_torchs_leafspec_deprecation():
    """Each worker unpickles export graphs; torch warns about LeafSpec on every one."""
    import pickle
    import warnings

    import torch
    import torch.utils._pytree as pytree

    from tinyship.search_pool import _worker_init

    spec = pytree.tree_structure([1, (2, 3)])
    threads = torch.get_num_threads()
    with warnings.catch_warnings(record=True) as before:
        warnings.simplefilter("always")
        pickle.loads(pickle.dumps(spec))
    with warnings.catch_warnings(record=True) as after:
        warnings.simplefilter("always")
        _worker_init(threads)
        pickle.loads(pickle.dumps(spec))
    assert any("LeafSpec" in str(w.message) for w in before)  # torch still warns here
    assert not any("LeafSpec" in str(w.message) for w in after)
