"""The distill stage as named steps: recipe -> teacher -> transfer set -> student -> ``student/``.

Bucilua et al. 2006 §3: fit a cumbersome ensemble, grow a transfer set around the training
data (MUNGE), label it with the ensemble and train a small net to mimic it; Hinton et al.
2015 §2 supplies the soft-target loss. A same-architecture student trained with the same
schedule on hard labels of the same rows (:func:`baseline_rows`) is the baseline that shows
what the teacher added. Everything is evaluated on the same holdout split, which nothing was tuned on.

:func:`run` is the steps in order: ``configure -> load_data -> build_teacher ->
make_transfer_set -> label -> train_student -> train_baseline -> evaluate ->
write_student_dir``; each takes and returns plain records, so each is testable alone.
Only :func:`write_student_dir` writes ``student/``: built in a temp folder and swapped in
when complete (``ground.rundir.staged_dir``); checkpoints and teacher-output caches live
in ``out/.work`` so a killed run resumes. The run directory is locked from the first step
to the commit (``ground.rundir.locked``): a second distill of it is refused at once, never
sharing ``.work/``. The records the steps pass are in
:mod:`distill.records`; the last three steps (export, evaluate, write) in
:mod:`distill.student_dir`; both are re-exported here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ground import rundir, space
from ground.errors import UserError
from ground.recipe import load_recipe, validate

from . import data as data_mod
from .card import Lineage
from .decision_choice import choose_for_student
from .records import (
    Config,
    Data,
    DistillResult,
    Exported,
    FittedLibrary,
    Labels,
    Trained,
)
from .student_dir import CALIBRATION_ROWS, evaluate, export_student, write_student_dir
from .students import student_input_shape, validate_spec
from .train import (
    EpochData,
    TrainContext,
    accuracy_score,
    fidelity_score,
    fit,
    log_probs,
    train_config,
)

__all__ = [
    "CALIBRATION_ROWS",
    "Config",
    "Data",
    "DistillResult",
    "Exported",
    "FittedLibrary",
    "Labels",
    "Lineage",
    "Trained",
    "build_teacher",
    "configure",
    "evaluate",
    "export_student",
    "fit_library",
    "label",
    "load_data",
    "make_transfer_set",
    "run",
    "baseline_rows",
    "train_baseline",
    "train_student",
    "validate_recipe",
    "write_student_dir",
]


# ---------------------------------------------------------------- steps


def configure(
    recipe: dict | str | Path,
    out: str | Path | None,
    *,
    force: bool = False,
    seed: int | None = None,
    epochs: int | None = None,
) -> Config:
    """Load and validate every section distill reads before any work starts (``out`` None:
    nothing will be written, e.g. :func:`fit_library`)."""
    from .building import TEACHER_FIELDS
    from .transfer import TRANSFER_FIELDS

    recipe_path = None
    base_dir = Path.cwd()  # relative paths in a recipe are relative to the recipe file
    if not isinstance(recipe, dict):
        recipe_path = str(recipe)
        base_dir = Path(recipe).resolve().parent
        recipe = load_recipe(recipe)
    writes = out is not None
    out = Path(out) if writes else Path.cwd()
    if writes and (out / "student").exists() and not force:
        raise UserError(
            f"'{out / 'student'}' already exists. Pass --force to replace it "
            f"(the old one is kept until the new one is complete)."
        )
    for key in ("data", "student"):
        if key not in recipe:
            raise UserError(f"recipe section '{key}' is required for the distill stage.")
    sections = validate_recipe(recipe, TEACHER_FIELDS, TRANSFER_FIELDS)
    train = dict(sections["train"])
    if seed is not None:
        train["seed"] = int(seed)
    if epochs is not None:
        if epochs < 1:
            raise UserError(f"--epochs must be at least 1; got {epochs}.")
        train["epochs"] = int(epochs)
    return Config(recipe, recipe_path, out, sections, train, base_dir)


def validate_recipe(recipe: dict, teacher_fields: dict, transfer_fields: dict) -> dict[str, dict]:
    """Validate every section distill reads; returns them with defaults."""
    return {
        "data": data_mod.validate_section(recipe.get("data")),
        "teacher": validate("teacher", recipe.get("teacher"), teacher_fields),
        "transfer": validate("transfer", recipe.get("transfer"), transfer_fields),
        "student": validate_spec(recipe.get("student"))[1],
        "train": train_config(recipe.get("train")),
    }


def load_data(cfg: Config) -> Data:
    """Load the data, split train / validation / holdout, normalise with the training split."""
    ds = data_mod.load_data(cfg.sections["data"], cfg.base_dir)
    shape = student_input_shape(cfg.sections["student"], ds.n_features, ds.image_shape)
    if int(np.prod(shape)) != ds.n_features:
        raise UserError(
            f"student input shape {list(shape)} needs {int(np.prod(shape))} features per row; "
            f"data '{ds.name}' has {ds.n_features}."
        )
    norm = data_mod.Normalizer.fit(ds.x_train, cfg.sections["data"]["normalize"])
    sizes = _nominal_sizes(ds) if len(shape) == 1 else {}
    return Data(ds, norm, tuple(shape), ds.x_train, ds.x_val, ds.x_holdout, sizes)


def _nominal_sizes(ds: Any) -> dict[int, int]:
    """Categories per nominal column (from the data's vocabulary, else the training codes)."""
    sizes = {}
    for j in np.flatnonzero(ds.nominal):
        vocab = ds.categories.get(int(j))
        sizes[int(j)] = len(vocab) if vocab else int(ds.x_train[:, j].max()) + 1
    return sizes


def fit_library(
    recipe: dict | str | Path, *, seed: int | None = None, names: list[str] | None = None
) -> FittedLibrary:
    """The library members :func:`run` would fit for ``recipe`` (same data, splits,
    normalization and seed), for a driver that distils many students from one teacher: it
    passes them as ``members=`` with ``teacher.library`` emptied, so each run labels its
    transfer set with the same models instead of refitting them. ``names``: only these of the
    library (each member is seeded on its own, so fitting them apart gives the same members;
    ``[]`` loads the data alone)."""
    from .building import fit_library as fit

    cfg = configure(recipe, None, seed=seed)
    data = load_data(cfg)
    ds = data.dataset
    t = time.perf_counter()
    members = fit(
        cfg.sections["teacher"]["library"] if names is None else names,
        data.x_train,
        ds.y_train,
        seed=cfg.seed,
        num_classes=cfg.sections["teacher"]["num_classes"] or ds.num_classes,
        input_shape=ds.image_shape,
        normalize=_normalize(data),
    )
    return FittedLibrary(data, members, time.perf_counter() - t)


def _normalize(data: Data) -> tuple[Any, str]:
    """The data's normalization and the key members fitted on it are fingerprinted with."""
    return data.normalizer, _short_hash(data.normalizer.card())


def build_teacher(
    cfg: Config, data: Data, members: list | None = None, trust_pickles: bool = False
) -> Any:
    """The cumbersome model: library fitted on train, ensemble selection on validation."""
    from .building import build_teacher as build

    ds = data.dataset
    return build(
        cfg.recipe.get("teacher") or {},
        data.x_train,
        ds.y_train,
        data.x_val,
        ds.y_val,
        seed=cfg.seed,
        base_dir=cfg.base_dir,
        members=members,
        trust_pickles=trust_pickles,
        input_shape=ds.image_shape,
        normalize=_normalize(data),
        specialists=cfg.recipe.get("specialists"),
    )


def _short_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def make_transfer_set(cfg: Config, data: Data) -> np.ndarray:
    """The transfer set, grown in raw space (nominal values stay in their set), kept raw."""
    from .transfer import make_transfer

    ds = data.dataset
    raw = make_transfer(
        cfg.recipe.get("transfer") or {},
        ds.x_train,
        ds.nominal,
        seed=cfg.seed,
        image_shape=ds.image_shape,
        frontend=(ds.source or {}).get("frontend"),
    )
    data_mod.check_finite(raw, "the transfer set")
    return raw


def label(cfg: Config, data: Data, teacher: Any, x_transfer: np.ndarray, dist_ctx: Any) -> Labels:
    """The teacher's outputs (cached on disk, sharded across ranks) and hard transfer labels."""
    from .cache import TeacherCache
    from .distributed import cached_teacher_outputs
    from .transfer import hard_labels

    cache = TeacherCache(cfg.teacher_cache or cfg.work / "cache")
    p_transfer, p_val, p_ho = (
        np.array(cached_teacher_outputs(teacher, x, cache, dist_ctx), dtype=np.float32)
        for x in (x_transfer, data.x_val, data.x_holdout)
    )
    y_transfer = hard_labels(x_transfer, data.x_train, data.dataset.y_train, p_transfer)
    return Labels(p_transfer, p_val, p_ho, y_transfer)


def train_student(
    cfg: Config,
    data: Data,
    teacher: Any,
    x_transfer: np.ndarray,
    labels: Labels,
    *,
    ctx: TrainContext,
    resume: bool = False,
    progress: bool = True,
) -> Trained:
    """Mimic the teacher on the transfer set (jittered afresh each epoch if asked); validation
    fidelity to the teacher picks the best epoch."""
    from .transfer import jitter

    t = time.perf_counter()
    sigma = float(cfg.sections["transfer"].get("jitter") or 0.0)
    fixed = EpochData(
        data.shaped(x_transfer),
        torch.from_numpy(labels.transfer_hard.astype(np.int64)),
        log_probs(labels.transfer),
    )

    def epoch_data(epoch: int) -> EpochData:
        if sigma <= 0:
            return fixed
        # sigma is in normalized units: the noise is drawn there and mapped back to raw rows
        norm = data.normalizer
        xj = norm.inverse(jitter(norm(x_transfer), sigma, np.random.default_rng([cfg.seed, epoch])))
        pj = np.asarray(teacher.predict_proba(xj), dtype=np.float32)
        return EpochData(
            data.shaped(xj), torch.from_numpy(pj.argmax(1).astype(np.int64)), log_probs(pj)
        )

    torch.manual_seed(cfg.seed)
    model = data.make_student(cfg.sections["student"])
    p_val = torch.from_numpy(labels.val)
    result = fit(
        model,
        epoch_data,
        lambda lg: fidelity_score(lg, p_val),
        data.shaped(data.x_val),
        cfg.train,
        checkpoint=cfg.work / "checkpoints" / "student.pt",
        fingerprint=cfg.fingerprint(teacher, "student"),
        resume=resume,
        ctx=ctx,
        desc="student",
        progress=progress,
    )
    return Trained(model, result, cfg.train, time.perf_counter() - t)


def baseline_rows(
    cfg: Config, data: Data, x_transfer: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """The rows the hard-label baseline trains on, their labels, and the card's words for them.

    A fair baseline sees what the student sees (issue 36): where the transfer generator's
    rows have a known origin (``original``; ``shift_mix``, whose every synthetic row is one
    training row shifted, perhaps blended with a lighter partner) it trains on the whole
    transfer set, each row labelled with its origin's label, so the gain measured is the
    teacher's soft targets and nothing else. Other generators (MUNGE, RANDOM, NBE) make rows
    with no single origin: there it trains on the training rows, as in Bucilua et al. 2006.
    """
    from .shift_mix import shift_mix_origins
    from .transfer import resolve, transfer_seed

    ds, n = data.dataset, len(data.x_train)
    method = resolve(cfg.recipe.get("transfer"), ds.image_shape)["method"]
    same = (
        x_transfer is not None
        and len(x_transfer) >= n
        and np.array_equal(x_transfer[:n], np.asarray(data.x_train, dtype=x_transfer.dtype))
    )
    if same and method in ("original", "shift_mix"):
        seed = transfer_seed(cfg.sections["transfer"], cfg.seed)  # the rows' own seed
        origin = shift_mix_origins(n, len(x_transfer) - n, seed)
        y = np.concatenate([ds.y_train, ds.y_train[origin]]).astype(np.int64)
        return (
            x_transfer,
            y,
            f"the student's {len(x_transfer)} transfer rows, each labelled with the label of "
            "the training row it was made from",
        )
    return data.x_train, ds.y_train, f"the {n} training rows ({method} rows have no single origin)"


def train_baseline(
    cfg: Config,
    data: Data,
    teacher: Any,
    x_transfer: np.ndarray | None = None,
    *,
    ctx: TrainContext,
    resume: bool = False,
    progress: bool = True,
) -> Trained | None:
    """The same architecture, seed and schedule on hard labels of the same rows as the student
    (:func:`baseline_rows`); None when ``train.baseline`` is off."""
    if not cfg.train["baseline"]:
        return None
    t = time.perf_counter()
    bcfg = {**cfg.train, "loss": "hard"}
    ds = data.dataset
    x, y, rows = baseline_rows(cfg, data, x_transfer)
    fixed = EpochData(data.shaped(x), torch.from_numpy(y), None)
    torch.manual_seed(cfg.seed)
    model = data.make_student(cfg.sections["student"])
    y_val = torch.from_numpy(ds.y_val)
    role = "baseline" if x is data.x_train else "baseline-transfer-rows"
    result = fit(
        model,
        lambda epoch: fixed,
        lambda lg: accuracy_score(lg, y_val),
        data.shaped(data.x_val),
        bcfg,
        checkpoint=cfg.work / "checkpoints" / "baseline.pt",
        fingerprint=cfg.fingerprint(teacher, role),
        resume=resume,
        ctx=ctx,
        desc="baseline",
        progress=progress,
    )
    return Trained(model, result, {**bcfg, "rows": rows}, time.perf_counter() - t)


def run(
    recipe: dict | str | Path,
    run_dir: str | Path,
    *,
    force: bool = False,
    resume: bool = False,
    seed: int | None = None,
    epochs: int | None = None,
    trust_pickles: bool = False,
    members: list | None = None,
    command: str | None = None,
    progress: bool = True,
    ctx: TrainContext | None = None,
    dist_ctx: Any = None,
    teacher_cache: str | Path | None = None,
) -> DistillResult:
    """Run the distill stage and write ``run_dir/student`` per docs/run-directory.md.

    ``members`` adds Python-API teacher members (e.g. ``SklearnMember(name, fitted_estimator)``)
    to those the recipe names. ``seed``/``epochs`` override ``train.seed``/``train.epochs``.
    ``dist_ctx`` (a ``distill.distributed.DistContext``, as under torchrun) shards the teacher
    labelling across ranks and trains with DDP; only rank 0 writes ``student/``.
    ``teacher_cache``: a folder of teacher outputs shared with other runs (keyed by content, so
    a run with another teacher or transfer set misses); default the run's own ``.work/cache``.
    """
    from .distributed import DistContext, train_context

    t0 = time.perf_counter()
    cfg = configure(recipe, run_dir, force=force, seed=seed, epochs=epochs)
    if teacher_cache is not None:
        cfg.teacher_cache = Path(teacher_cache)
    dist_ctx = dist_ctx or DistContext()
    ctx = ctx or (train_context(dist_ctx) if dist_ctx.distributed else TrainContext())
    # one writer per run directory from before the first file (.work/, student/) is touched, so
    # a second distill is refused at once instead of sharing .work/ (issue 41); only rank 0
    # writes there, so only it locks (the other ranks read the teacher cache it writes)
    lock = rundir.locked(cfg.out) if ctx.is_main else contextlib.nullcontext()
    with lock:
        if ctx.is_main:  # a full disk is refused now, not after the training
            space.require(cfg.out, ("student",))
        opts = {"ctx": ctx, "resume": resume, "progress": progress}
        return _steps(cfg, opts, dist_ctx, members, trust_pickles, force, command, t0)


def _steps(
    cfg: Config,
    opts: dict,
    dist_ctx: Any,
    members: list | None,
    trust_pickles: bool,
    force: bool,
    command: str | None,
    t0: float,
) -> DistillResult:
    """The steps of :func:`run` in order, each timed (called with the run directory locked)."""
    clock, ctx = _Clock(), opts["ctx"]
    data = clock("data", load_data, cfg)
    teacher = clock("teacher", build_teacher, cfg, data, members, trust_pickles)
    x_transfer = clock("transfer_and_labels", make_transfer_set, cfg, data)
    labels = clock("transfer_and_labels", label, cfg, data, teacher, x_transfer, dist_ctx)
    student = clock("student", train_student, cfg, data, teacher, x_transfer, labels, **opts)
    baseline = clock("baseline", train_baseline, cfg, data, teacher, x_transfer, **opts)
    if not ctx.is_main:
        return DistillResult(cfg.out, {}, clock.timings)
    exported = clock("evaluate_and_write", export_student, cfg, data, student)
    clock("decision", choose_for_student, cfg, data, student.model, opts["progress"])
    metrics = clock(
        "evaluate_and_write", evaluate, data, teacher, labels, exported, student, baseline
    )
    lineage = Lineage(command, dist_ctx, clock.timings, t0)
    card = clock(
        "evaluate_and_write",
        write_student_dir,
        cfg, data, teacher, len(x_transfer), labels, exported, student, baseline, metrics,
        force=force, lineage=lineage,
    )  # fmt: skip
    clock.timings["total"] = time.perf_counter() - t0
    return DistillResult(cfg.out, card, clock.timings)


# ---------------------------------------------------------------- helpers


class _Clock:
    """Times each step by name (steps sharing a name add up)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def __call__(self, name: str, step, *args, **kwargs):
        t = time.perf_counter()
        try:
            return step(*args, **kwargs)
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t
