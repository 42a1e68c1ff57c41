"""The teacher a student search shares across its runs, and the recipe its candidates are
ranked under: fitted once, handed to every worker, and the judge of validation accuracy."""

from __future__ import annotations

from pathlib import Path

from ground.errors import UserError


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


def validation_said(teacher: Teacher, val_speakers: list[str] | None) -> str:
    """The validation split the candidates are ranked on, in words (log line and search.json)."""
    n = len(teacher.dataset.y_val)
    if val_speakers:
        return (
            f"speakers {', '.join(val_speakers)} ({n} clips), held out of the search's own "
            "teacher and of every candidate's training"
        )
    return f"the recipe's validation split ({n} clips)"
