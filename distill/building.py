"""Building a teacher from a recipe: the ``teacher`` schema, its members, selection.

A recipe's ``teacher`` section names library models (fitted here on the training
split), explicit members stored in files (loaded by :mod:`distill.member_loaders`), and
how to combine them; ensemble selection (Caruana et al. 2004) then weights the members
on the validation split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ground.errors import UserError
from ground.recipe import Field, validate

from .ensemble import COMBINES, Teacher
from .library import MODELS, build_library
from .member_loaders import (
    _IDENTITY,
    MEMBER_FIELDS,
    MEMBER_LOADERS,
    PICKLE_RISK,
    Normalize,
    load_member,
)
from .members import PROBE_ROWS, Member, NormalizedInput, PythonMember, check_inputs
from .selection import bagged_ensemble_selection, ensemble_selection

__all__ = [
    "MEMBER_FIELDS",
    "MEMBER_LOADERS",
    "PICKLE_RISK",
    "TEACHER_FIELDS",
    "Normalize",
    "build_teacher",
    "fit_library",
    "load_member",
]


def _check_weights(v: Any) -> str | None:
    if not isinstance(v, dict) or not all(
        isinstance(k, str) and isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0
        for k, w in v.items()
    ):
        return "must map member names to non-negative numbers, e.g. {rf: 2, knn: 1}"
    return None


def _check_library(v: Any) -> str | None:
    if not isinstance(v, list) or not all(isinstance(n, str) for n in v):
        return "must be a list of model names"
    bad = [n for n in v if n not in MODELS]
    if bad:
        return f"unknown model(s) {bad}; allowed: {', '.join(MODELS)}"
    if len(set(v)) != len(v):
        return "lists a model twice"
    return None


TEACHER_FIELDS: dict[str, Field] = {
    "library": Field(
        list, default=[], check=_check_library, doc="models built and fitted on the training split"
    ),
    "members": Field(
        list,
        default=[],
        doc="explicit members: list of {name, kind, path | inputs+outputs, output}",
    ),
    "combine": Field(
        str, default="mean", choices=COMBINES, doc="how member probabilities are combined"
    ),
    "weights": Field(
        dict, default=None, check=_check_weights, doc="combine: weights -> member name to weight"
    ),
    "selection": Field(
        str,
        default="greedy",
        choices=("greedy", "bagged", "none"),
        doc="Caruana 2004 ensemble selection on the validation split (when >= 2 members); "
        "bagged: §2.4, selection on random halves of the library, averaged",
    ),
    "selection_bags": Field(int, default=20, min=1, max=1000, doc="bagged: number of bags"),
    "selection_bag_fraction": Field(
        float,
        default=0.5,
        min=0.05,
        max=1.0,
        doc="bagged: share of the library drawn into each bag",
    ),
    "selection_metric": Field(
        str,
        default="nll",
        choices=("nll", "accuracy", "rmse"),
        doc="validation score ensemble selection optimizes",
    ),
    "selection_init": Field(
        int, default=3, min=0, doc="sorted initialization: start from the k best members"
    ),
    "selection_iters": Field(int, default=50, min=1, doc="greedy additions (with replacement)"),
    "trust_pickles": Field(
        bool,
        default=False,
        doc="allow sklearn-pickle and torch (TorchScript) members: loading either runs code from the file",
    ),
    "num_classes": Field(int, default=None, min=2, max=10_000, doc="default: max label + 1"),
}


def fit_library(
    names: list[str],
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    seed: int,
    num_classes: int,
    input_shape: tuple[int, ...] | None = None,
    normalize: Normalize | None = None,
) -> list[NormalizedInput]:
    """The named library models fitted on the normalized training rows, each wrapped to take raw
    rows. One function for the teacher built here and for a driver (``tinyship.search``) that
    fits the library once and hands it to many distill runs, so the two cannot drift apart."""
    norm = normalize or _IDENTITY
    fitted = build_library(
        names,
        norm[0](x_train),
        y_train,
        seed=seed,
        num_classes=num_classes,
        input_shape=input_shape,
    )
    return [NormalizedInput(m, *norm) for m in fitted.values()]


def build_teacher(
    section: dict | None,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None,
    y_val: np.ndarray | None,
    *,
    seed: int,
    base_dir: Path,
    members: list[Any] | None = None,
    trust_pickles: bool = False,
    input_shape: tuple[int, ...] | None = None,
    normalize: Normalize | None = None,
    specialists: dict | None = None,
    image_shape: tuple[int, ...] | None = None,
) -> Teacher:
    """Build the teacher a recipe describes: library models fitted on train, explicit members
    loaded from files, Python members, the recipe's specialists; then ensemble selection on the
    validation split (Caruana et al. 2004, as used by Bucilua et al. 2006 §2) unless combine is
    'weights'.

    ``x_train``/``x_val`` are raw rows (as in the data file). ``normalize`` is the data's
    normalization: library models and specialists are fitted on normalized rows and fed them;
    explicit and Python members get raw rows unless they declare ``input: normalized``.
    """
    cfg = validate("teacher", section, TEACHER_FIELDS)
    trust = trust_pickles or cfg["trust_pickles"]
    y_train = np.asarray(y_train)
    labels = [y_train] + ([np.asarray(y_val)] if y_val is not None else [])
    nc = cfg["num_classes"] or int(max(int(y.max()) for y in labels if len(y)) + 1)
    x_train = check_inputs(x_train, "teacher training data")
    norm = normalize or _IDENTITY
    built = _gather_members(
        cfg,
        x_train,
        y_train,
        nc,
        seed=seed,
        base_dir=base_dir,
        members=members,
        trust=trust,
        input_shape=input_shape,
        norm=norm,
        specialists=specialists,
        image_shape=image_shape,
    )
    if cfg["combine"] == "weights":
        return _weighted_teacher(cfg, built, nc)
    return _selected_teacher(cfg, built, nc, x_val, y_val, seed)


def _gather_members(
    cfg: dict,
    x_train: np.ndarray,
    y_train: np.ndarray,
    nc: int,
    *,
    seed: int,
    base_dir: Path,
    members: list[Any] | None,
    trust: bool,
    input_shape: tuple[int, ...] | None,
    norm: Normalize,
    specialists: dict | None,
    image_shape: tuple[int, ...] | None,
) -> list[Member]:
    """Every member in the teacher's order: library, recipe members, specialists, Python members."""
    x_model = norm[0](x_train)
    built: list[Member] = []
    if cfg["library"]:
        built.extend(
            fit_library(
                cfg["library"],
                x_train,
                y_train,
                seed=seed,
                num_classes=nc,
                input_shape=input_shape,
                normalize=norm,
            )
        )
    for i, spec in enumerate(cfg["members"]):
        built.append(load_member(spec, i, base_dir, nc, trust, norm))
    if specialists:
        from .specialists import member_from_recipe

        fitted = member_from_recipe(
            specialists,
            x_model,
            y_train,
            n_features=x_train.shape[1],
            image_shape=image_shape or input_shape,
            num_classes=nc,
            seed=seed,
        )
        built.append(NormalizedInput(fitted, *norm))
    for i, m in enumerate(members or []):
        built.append(_python_member(m, i, nc, x_train, norm))
    if not built:
        raise UserError(
            "the teacher has no members: set teacher.library (e.g. [rf, knn, logreg]) or "
            "teacher.members, or pass members=[...]."
        )
    return built


def _weighted_teacher(cfg: dict, built: list[Member], nc: int) -> Teacher:
    """``combine: weights``: the recipe's fixed weights, one for every member by name."""
    given = cfg["weights"] or {}
    names = [m.name for m in built]
    unknown = sorted(set(given) - set(names))
    missing = [n for n in names if n not in given]
    if unknown or missing:
        raise UserError(
            f"recipe key 'teacher.weights' must give a weight for every member {names}; "
            f"missing {missing}, unknown {unknown}."
        )
    return Teacher(built, np.array([given[n] for n in names], float), "weights", nc, None)


def _selected_teacher(
    cfg: dict,
    built: list[Member],
    nc: int,
    x_val: np.ndarray | None,
    y_val: np.ndarray | None,
    seed: int,
) -> Teacher:
    """Equal weights, or the weights ensemble selection (plain or bagged) finds on validation."""
    teacher = Teacher(built, np.ones(len(built)), cfg["combine"], nc, None)
    if cfg["selection"] != "none" and len(built) > 1:
        if x_val is None or y_val is None or len(y_val) == 0:
            raise UserError(
                f"teacher.selection '{cfg['selection']}' needs a validation split; set "
                "data.val_fraction > 0 or teacher.selection: none."
            )
        probas = teacher.member_probas(x_val)
        common = dict(
            metric=cfg["selection_metric"],
            init_k=cfg["selection_init"],
            max_iter=cfg["selection_iters"],
            combine=cfg["combine"],
        )
        if cfg["selection"] == "bagged":
            result = bagged_ensemble_selection(
                probas,
                np.asarray(y_val),
                bags=cfg["selection_bags"],
                fraction=cfg["selection_bag_fraction"],
                seed=seed,
                **common,
            )
        else:
            result = ensemble_selection(probas, np.asarray(y_val), **common)
        teacher = Teacher(
            built,
            np.array([result.weights[m.name] for m in built]),
            cfg["combine"],
            nc,
            result.record(),
        )
    return teacher


def _python_member(m: Any, i: int, nc: int, x_train: np.ndarray, norm: Normalize) -> Member:
    """An API member: a Member, or any object with predict_proba / a callable (wrapped, not pickled)."""
    if not isinstance(m, Member):
        if not (hasattr(m, "predict_proba") or callable(m)):
            raise UserError(
                f"members[{i}] is a {type(m).__name__}: give an object with predict_proba(x), a "
                "callable x -> probabilities, or distill.members.PythonMember(model, name=...)."
            )
        m = PythonMember(m, name=getattr(m, "name", None) or f"python{i}")
    if getattr(m, "num_classes", "absent") is None:
        m.num_classes = nc
    wants = getattr(m, "input_kind", "raw")
    if isinstance(m, NormalizedInput) or wants == "raw":
        if hasattr(m, "probe") and m.probe is None:
            m.probe = x_train[:PROBE_ROWS]
        if not isinstance(m, NormalizedInput):
            m.input_kind = "raw"
        return m
    if hasattr(m, "probe") and m.probe is None:
        m.probe = norm[0](x_train[:PROBE_ROWS])
    return NormalizedInput(m, *norm)
