"""The teacher a student search shares across its runs, and the recipe its candidates are
ranked under: fitted once, handed to every worker, and the judge of validation accuracy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ground.errors import UserError


class Teacher:
    """A teacher's data (the recipe's split, as distill loads it) and its library members,
    fitted by the distill stage's own ``fit_library``. ``fit=False`` loads the data alone: the
    search fits the members as tasks of its pool and sets ``members`` when they are in."""

    def __init__(self, recipe: dict, seed: int, *, fit: bool = True) -> None:
        from distill.pipeline import fit_library

        lib = fit_library(recipe, seed=seed, names=None if fit else [])
        self.dataset, self.norm = lib.data.dataset, lib.data.normalizer
        # each takes raw rows (it wraps the normalization it was fitted on): distill passes such
        # a Python member through unchanged, and its cache key names that normalization
        self.members, self.fit_s = lib.members, lib.seconds
        self.recipe = recipe
        self.library: list[str] = list((recipe.get("teacher") or {}).get("library") or [])

    def judge(self) -> Judge:
        """What a worker needs to score a run on this teacher's validation split."""
        ds = self.dataset
        return Judge(ds.x_val, ds.y_val, tuple(ds.image_shape))

    def val_accuracy(self, run: Path) -> float:
        """Accuracy of ``run/student/student.pt2`` on the validation split."""
        return self.judge().val_accuracy(run)


@dataclass(frozen=True)
class Judge:
    """The validation split a run is scored on (what selection may use; never the holdout)."""

    x_val: Any
    y_val: Any
    image_shape: tuple[int, ...]

    def val_accuracy(self, run: Path) -> float:
        """Accuracy of ``run/student/student.pt2`` on the validation split."""
        import numpy as np
        import torch

        from ground import pt2

        program = pt2.load(run / "student" / "student.pt2").module()  # checked before loading
        # raw rows: the shipped graph starts with the normalization (distill.students.RawInput)
        x = torch.from_numpy(self.x_val.astype(np.float32)).reshape(
            len(self.x_val), *self.image_shape
        )
        with torch.no_grad():
            pred = program(x).argmax(1).numpy()
        return float(np.mean(pred == self.y_val))


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


def validation_said(teacher: Teacher, val_speakers: list[str] | None) -> str:
    """The validation split the candidates are ranked on, in words (log line and search.json)."""
    n = len(teacher.dataset.y_val)
    if val_speakers:
        return (
            f"speakers {', '.join(val_speakers)} ({n} clips), held out of the search's own "
            "teacher and of every candidate's training"
        )
    return f"the recipe's validation split ({n} clips)"
