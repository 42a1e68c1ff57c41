"""A teacher of a student search as tasks of its pool: one task per library member fitted, one
per transfer set labelled; the runs that train on it wait for those tasks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .search_pool import Task, fit_member_task, label_task
from .search_teacher import Teacher

# Among ready tasks the costliest starts first (search_pool). The ranking teacher's members and
# labels gate every ranking run, so they come first; the recipe's teacher gates only the full
# trainings, which wait for the ranking anyway, so its tasks fill the workers the ranking
# teacher's leave free. Runs cost their student's MACs (far below these).
_COST = {("rank", "fit"): 6e15, ("rank", "label"): 5e15, ("full", "fit"): 4e15}
_COST[("full", "label")] = 3e15


class TaskTeacher:
    """The members of ``teacher`` (data loaded, nothing fitted) fitted as tasks, and the
    transfer sets its runs train on labelled as tasks. ``shared``: every run trains on the
    transfer set drawn at ``seed`` (labelled once); else each run seed draws its own."""

    def __init__(
        self, role: str, recipe: dict, teacher: Teacher, seed: int, cache: str, shared: bool
    ) -> None:
        self.role, self.recipe, self.teacher = role, recipe, teacher
        self.seed, self.cache, self.shared = seed, cache, shared
        self._handed: set[str] = set()
        self._macs: dict[str, int] = {}

    def _fit_label(self, name: str) -> str:
        return f"fitting of the {'ranking' if self.role == 'rank' else 'recipe'} teacher's {name}"

    def _label_label(self, transfer_seed: int) -> str:
        which = "ranking" if self.role == "rank" else "recipe's"
        return f"labelling of the {which} transfer set (seed {transfer_seed})"

    def transfer_seed(self, run_seed: int) -> int:
        return self.seed if self.shared else run_seed

    def fit_tasks(self) -> list[Task]:
        """One task per library member (each seeded on its own: fitted apart, fitted alike)."""
        cost = _COST[(self.role, "fit")]
        return [
            Task(self._fit_label(n), fit_member_task, (self.recipe, n, self.seed), (), cost)
            for n in self.teacher.library
        ]

    def members(self, results: dict[str, Any]) -> list:
        """The fitted members in the recipe's library order (from the fit tasks' results)."""
        return [m for n in self.teacher.library for m in results[self._fit_label(n)]]

    def label_tasks(self, run_seeds: list[int]) -> list[Task]:
        """The labelling tasks for runs at ``run_seeds``, each once (a teacher that serves the
        ranking and the full trainings hands out each of its transfer sets once)."""
        tasks = []
        after = tuple(self._fit_label(n) for n in self.teacher.library)
        for s in sorted({self.transfer_seed(r) for r in run_seeds}):
            name = self._label_label(s)
            if name in self._handed:
                continue
            self._handed.add(name)
            args = self._label_args(s)
            tasks.append(Task(name, label_task, args, after, _COST[(self.role, "label")]))
        return tasks

    def _label_args(self, transfer_seed: int) -> Callable[[dict[str, Any]], tuple]:
        return lambda results: (self.recipe, self.members(results), transfer_seed, self.cache)

    def members_after(self, run_seed: int) -> tuple[Callable[[dict[str, Any]], list], tuple]:
        """For a run at ``run_seed``: its members (from the results) and the tasks it waits for
        (its transfer set's labelling, which waits for the members)."""
        return self.members, (self._label_label(self.transfer_seed(run_seed)),)

    def macs(self, spec: dict) -> int:
        """The student's multiply-accumulates per row on this teacher's data (a run's cost)."""
        import json

        from distill.students import build_student, count_params_macs, student_input_shape

        key = json.dumps(spec, sort_keys=True)
        if key not in self._macs:
            ds = self.teacher.dataset
            shape = student_input_shape(spec, ds.n_features, ds.image_shape)
            model = build_student(spec, shape, ds.num_classes)
            self._macs[key] = count_params_macs(model, shape).macs
        return self._macs[key]
