"""The distill stage as named steps: recipe -> teacher -> transfer set -> student -> ``student/``.

Bucilua et al. 2006 §3: fit a cumbersome ensemble, grow a transfer set around the training
data (MUNGE), label it with the ensemble and train a small net to mimic it; Hinton et al.
2015 §2 supplies the soft-target loss. A same-architecture student trained on the hard
labels of the original training data alone is the baseline that shows what the teacher
added. Everything is evaluated on the same holdout split, which nothing was tuned on.

:func:`run` is the steps in order: ``configure -> load_data -> build_teacher ->
make_transfer_set -> label -> train_student -> train_baseline -> evaluate ->
write_student_dir``; each takes and returns plain records, so each is testable alone.
Only :func:`write_student_dir` writes ``student/``: built in a temp folder and swapped in
when complete (``ground.rundir.staged_dir``); checkpoints and teacher-output caches live
in ``out/.work`` so a killed run resumes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ground import rundir
from ground.errors import InternalError, UserError
from ground.probs import softmax
from ground.recipe import load_recipe, validate

from . import data as data_mod
from .card import Lineage, build_card, holdout_metrics
from .students import (
    RawInput,
    build_student,
    count_params_macs,
    student_input_shape,
    validate_spec,
)
from .train import (
    EpochData,
    FitResult,
    TrainContext,
    accuracy_score,
    fidelity_score,
    fit,
    log_probs,
    predict_logits,
    train_config,
)

CALIBRATION_ROWS = 1024


@dataclass
class DistillResult:
    """What the stage produced: the card (as written) and where, plus wall-clock timings."""

    run_dir: Path
    card: dict
    timings_s: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------- step records


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


@dataclass
class FittedLibrary:
    """A recipe's ``teacher.library`` fitted as :func:`run` fits it, and the data it was fitted on."""

    data: Data
    members: list  # raw rows in (each wraps the data's normalization): pass as run(members=...)
    seconds: float


def fit_library(recipe: dict | str | Path, *, seed: int | None = None) -> FittedLibrary:
    """The library members :func:`run` would fit for ``recipe`` (same data, splits,
    normalization and seed), for a driver that distils many students from one teacher: it
    passes them as ``members=`` with ``teacher.library`` emptied, so each run labels its
    transfer set with the same models instead of refitting them."""
    from .building import fit_library as fit

    cfg = configure(recipe, None, seed=seed)
    data = load_data(cfg)
    ds = data.dataset
    t = time.perf_counter()
    members = fit(
        cfg.sections["teacher"]["library"],
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
    import hashlib
    import json

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


def train_baseline(
    cfg: Config,
    data: Data,
    teacher: Any,
    *,
    ctx: TrainContext,
    resume: bool = False,
    progress: bool = True,
) -> Trained | None:
    """The same architecture, seed and budget on hard labels of the original data only (None
    when ``train.baseline`` is off)."""
    if not cfg.train["baseline"]:
        return None
    t = time.perf_counter()
    bcfg = {**cfg.train, "loss": "hard"}
    ds = data.dataset
    fixed = EpochData(data.shaped(data.x_train), torch.from_numpy(ds.y_train), None)
    torch.manual_seed(cfg.seed)
    model = data.make_student(cfg.sections["student"])
    y_val = torch.from_numpy(ds.y_val)
    result = fit(
        model,
        lambda epoch: fixed,
        lambda lg: accuracy_score(lg, y_val),
        data.shaped(data.x_val),
        bcfg,
        checkpoint=cfg.work / "checkpoints" / "baseline.pt",
        fingerprint=cfg.fingerprint(teacher, "baseline"),
        resume=resume,
        ctx=ctx,
        desc="baseline",
        progress=progress,
    )
    return Trained(model, result, bcfg, time.perf_counter() - t)


def export_student(cfg: Config, data: Data, student: Trained) -> Exported:
    """torch.export the student (dynamic batch) into the work folder, reload it, check it
    reproduces the eager predictions; its holdout probabilities are what the card reports."""
    path = cfg.work / "student.pt2"
    path.parent.mkdir(parents=True, exist_ok=True)
    x_ho = data.shaped(data.x_holdout)
    probs = _export_and_check(student.model, x_ho, predict_logits(student.model, x_ho), path)
    return Exported(path, probs)


def evaluate(
    data: Data,
    teacher: Any,
    labels: Labels,
    exported: Exported,
    student: Trained,
    baseline: Trained | None,
) -> dict[str, Any]:
    """Teacher, members, student (the exported program) and baseline on the same holdout split."""
    baseline_probs = None
    if baseline is not None:
        baseline_probs = _probs(predict_logits(baseline.model, data.shaped(data.x_holdout)))
    return holdout_metrics(
        data.dataset.y_holdout,
        labels.holdout,
        teacher.member_probas(data.x_holdout),
        teacher.describe(),
        exported.probs,
        student.fit,
        baseline_probs,
        baseline.fit if baseline is not None else None,
    )


def write_student_dir(
    cfg: Config,
    data: Data,
    teacher: Any,
    n_transfer: int,
    labels: Labels,
    exported: Exported,
    student: Trained,
    baseline: Trained | None,
    metrics: dict[str, Any],
    *,
    force: bool,
    lineage: Lineage,
) -> dict:
    """Write student/ (student.pt2, calibration.npz, holdout.npz, then card.json), swapped in
    only when complete; returns the card."""
    with rundir.staged_dir(cfg.out, "student", force=force) as folder:
        shutil.copy2(exported.path, folder / "student.pt2")
        rng = np.random.default_rng(cfg.seed)
        n_cal = min(CALIBRATION_ROWS, len(data.x_train))
        cal_idx = np.sort(rng.choice(len(data.x_train), size=n_cal, replace=False))
        rundir.atomic_write_npz(
            folder / "calibration.npz", x=data.shaped(data.x_train[cal_idx]).numpy()
        )
        rundir.atomic_write_npz(
            folder / "holdout.npz",
            x=data.shaped(data.x_holdout).numpy(),
            y=data.dataset.y_holdout.astype(np.int64),
            teacher_probs=labels.holdout.astype(np.float32),
            student_probs=exported.probs.astype(np.float32),
        )
        card = build_card(
            cfg,
            data,
            teacher.describe(),
            count_params_macs(student.model.net, data.net_shape),
            rundir.path_bytes(folder / "student.pt2"),
            metrics,
            n_transfer=n_transfer,
            student=student,
            baseline=baseline,
            lineage=lineage,
        )
        card["sha256"] = {
            n: rundir.sha256_file(folder / n)
            for n in ("student.pt2", "calibration.npz", "holdout.npz")
        }
        rundir.atomic_write_json(folder / "card.json", card)
    return card


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
    clock = _Clock()
    cfg = configure(recipe, run_dir, force=force, seed=seed, epochs=epochs)
    if teacher_cache is not None:
        cfg.teacher_cache = Path(teacher_cache)
    dist_ctx = dist_ctx or DistContext()
    ctx = ctx or (train_context(dist_ctx) if dist_ctx.distributed else TrainContext())

    data = clock("data", load_data, cfg)
    teacher = clock("teacher", build_teacher, cfg, data, members, trust_pickles)
    x_transfer = clock("transfer_and_labels", make_transfer_set, cfg, data)
    labels = clock("transfer_and_labels", label, cfg, data, teacher, x_transfer, dist_ctx)
    opts = {"ctx": ctx, "resume": resume, "progress": progress}
    student = clock("student", train_student, cfg, data, teacher, x_transfer, labels, **opts)
    baseline = clock("baseline", train_baseline, cfg, data, teacher, **opts)
    if not ctx.is_main:
        return DistillResult(cfg.out, {}, clock.timings)
    exported = clock("evaluate_and_write", export_student, cfg, data, student)
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


def _probs(logits: torch.Tensor) -> np.ndarray:
    return softmax(logits.double().numpy()).astype(np.float32)


def _export_and_check(
    model: torch.nn.Module, x_ho: torch.Tensor, eager_logits: torch.Tensor, path: Path
) -> np.ndarray:
    """torch.export with a dynamic batch, save, reload, and check it reproduces the eager
    predictions exactly; returns the reloaded program's holdout probabilities."""
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=65536)
    example = (x_ho[:2].clone(),)  # a clone: a view would save the whole holdout storage
    try:
        program = torch.export.export(model, example, dynamic_shapes=({0: batch},))
    except Exception as exc:  # an unsupported op in a student is our bug, not the user's
        raise InternalError(f"torch.export failed for the student: {exc}") from exc
    torch.export.save(program, path)
    reloaded = torch.export.load(path).module()
    with torch.no_grad():
        logits = torch.cat([reloaded(x_ho[i : i + 2048]) for i in range(0, len(x_ho), 2048)])
    if not torch.equal(logits.argmax(1), eager_logits.argmax(1)):
        n = int((logits.argmax(1) != eager_logits.argmax(1)).sum())
        raise InternalError(
            f"the reloaded student.pt2 disagrees with the trained student on {n} holdout rows"
        )
    return _probs(logits)
