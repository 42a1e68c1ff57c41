"""The records the distill steps pass each other (recipe -> data -> teacher -> student).

Kept apart from the steps (distill/pipeline.py) and the card (distill/card.py), so both can
name them without importing each other.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .students import RawInput, build_student

if TYPE_CHECKING:
    from . import data as data_mod
    from .train import FitResult


@dataclass
class DistillResult:
    """What the stage produced: the card (as written) and where, plus wall-clock timings."""

    run_dir: Path
    card: dict
    timings_s: dict[str, float] = field(default_factory=dict)


@dataclass
class Config:
    """The validated recipe with the caller's overrides: everything the steps read."""

    recipe: dict
    recipe_path: str | None
    out: Path
    sections: dict[str, dict]  # data, teacher, transfer, student, train (with defaults)
    train: dict  # train section after --seed / --epochs
    base_dir: Path  # relative paths in a recipe are relative to the recipe file (else the cwd)
    # teacher outputs by content (distill.cache); a caller running many students off one teacher
    # passes a shared folder so each transfer set is labelled once (None: the run's own)
    teacher_cache: Path | None = None

    @property
    def seed(self) -> int:
        return self.train["seed"]

    @property
    def work(self) -> Path:
        return self.out / ".work"

    def fingerprint(self, teacher: Any, role: str) -> str:
        """Names a training configuration, so a checkpoint of another one is never resumed."""
        recipe = {k: self.recipe.get(k) for k in ("data", "teacher", "transfer", "student")}
        doc = {
            "recipe": json.loads(json.dumps(recipe, default=str)),
            "train": self.train,
            "teacher": teacher.fingerprint(),
            "role": role,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[
            :16
        ]


@dataclass
class Data:
    """The raw splits (as in the data file), the normalization fitted on the training split,
    and the student's input shape.

    Everything downstream takes raw rows: teacher members (library models normalize inside,
    see ``building.build_teacher``) and the student, whose graph starts with the
    normalization and the one-hot of nominal columns (``students.RawInput``).
    """

    dataset: Any  # distill.data.Dataset (raw splits, labels, source)
    normalizer: data_mod.Normalizer
    input_shape: tuple[int, ...]
    x_train: np.ndarray
    x_val: np.ndarray
    x_holdout: np.ndarray
    nominal_sizes: dict[int, int]  # nominal column -> categories (one-hot inside the student)

    @property
    def net_shape(self) -> tuple[int, ...]:
        """What the student's layers see after the encoding."""
        return RawInput.encoded_shape(self.input_shape, self.nominal_sizes)

    def make_student(self, spec: dict) -> RawInput:
        net = build_student(spec, self.net_shape, self.dataset.num_classes)
        n = self.normalizer
        return RawInput(net, self.input_shape, n.mean, n.std, self.nominal_sizes)

    @property
    def layout(self) -> str:
        return "NC" if len(self.input_shape) == 1 else "NCHW"

    def shaped(self, x: np.ndarray) -> torch.Tensor:
        """Rows as the student takes them ([n, d] or [n, C, H, W])."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        return torch.from_numpy(x).reshape(len(x), *self.input_shape)


@dataclass
class Labels:
    """The teacher's outputs on the transfer set, validation and holdout; hard transfer labels."""

    transfer: np.ndarray
    val: np.ndarray
    holdout: np.ndarray
    transfer_hard: np.ndarray


@dataclass
class Trained:
    """A trained network (best validation weights loaded) and how its training went."""

    model: torch.nn.Module
    fit: FitResult
    config: dict  # the train section it ran with (loss differs for the baseline)
    seconds: float


@dataclass
class Exported:
    """The student as ``torch.export`` program in the work folder, and its holdout probabilities."""

    path: Path
    probs: np.ndarray


@dataclass
class FittedLibrary:
    """A recipe's ``teacher.library`` fitted as :func:`run` fits it, and the data it was fitted on."""

    data: Data
    members: list  # raw rows in (each wraps the data's normalization): pass as run(members=...)
    seconds: float
