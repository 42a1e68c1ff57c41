"""A generalist plus specialists on confusable classes (Hinton, Vinyals, Dean 2015, §5).

§5.2 — the confusable subsets: cluster the covariance matrix of the generalist's
predicted probabilities; each class is the point given by its column of that matrix, and
classes that are often predicted together land in one cluster (k-means; the paper used
an online k-means, we use scikit-learn's batch KMeans). The clusters partition the classes.
One choice the paper does not spell out: the diagonal (each class's own variance) is set
to zero before clustering. Left in, it dominates every column and k-means splits off the
most frequent classes one by one (on UCI Letter: {L}, {W}, {M}, ... and one 21-class
rest); without it the clusters are the confusable groups ({B,D,H,O,R}, {C,G,Q}, ...).

§5.1 — a specialist per subset S^m: initialised from the generalist's weights, its softmax
has |S^m| + 1 outputs (the classes of S^m plus one *dustbin* for every other class), and it
trains on data enriched with its subset: half of each epoch's examples come from S^m, half
at random from the rest. Afterwards the dustbin logit is shifted by the log of the odds by
which the subset was oversampled, undoing the skewed class prior of that training set.

§5.3 — inference: take the generalist's top-n classes k; the active specialists A_k are
those whose subset meets k; find the full distribution q that minimises
KL(p^g || q) + sum_{m in A_k} KL(p^m || q^m), where q^m is q with every class outside S^m
summed into the dustbin. q is parameterised by logits z (q = softmax z) and found by a few
gradient steps from z = log p^g. With no active specialist the minimum is q = p^g exactly.

The combined model is a teacher *member* (``SpecialistsMember``, the Member protocol of
``distill.ensemble``): the specialists make the teacher better, the small student ships.
§5.2 is in :mod:`distill.confusable`, §5.3 in :mod:`distill.specialist_combine`; both are
re-exported here.
"""

from __future__ import annotations

import copy
import io
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ground.errors import UserError
from ground.recipe import Field, validate

from .confusable import confusable_subsets
from .specialist_combine import (
    active_specialists,
    combine,
    kl_objective,
    objective,
    to_specialist_space,
)
from .students import build_student, student_input_shape
from .train import EpochData, fit_epochs, train_config

__all__ = [
    "SPECIALIST_FIELDS",
    "SpecialistEnsemble",
    "SpecialistsMember",
    "SpecialistsReport",
    "active_specialists",
    "build_student",
    "combine",
    "confusable_subsets",
    "dustbin_labels",
    "evaluate",
    "fit_specialists",
    "kl_objective",
    "member_from_recipe",
    "objective",
    "specialist_from",
    "to_specialist_space",
    "train_generalist",
    "train_specialist",
]


def _student_spec(v: Any) -> str | None:
    if not isinstance(v, dict) or "kind" not in v:
        return "must be a student spec mapping with a 'kind' key, e.g. {kind: mlp, hidden: [128]}"
    return None


SPECIALIST_FIELDS: dict[str, Field] = {
    "n_specialists": Field(
        int, 3, min=1, max=1000, doc="number of class clusters = specialists (§5.2)"
    ),
    "top_n": Field(
        int, 2, min=1, doc="generalist's top-n classes that pick the active specialists (§5.3)"
    ),
    "generalist": Field(
        dict,
        {"kind": "mlp", "hidden": [128]},
        check=_student_spec,
        doc="architecture of the generalist (a student spec); specialists copy it",
    ),
    "generalist_epochs": Field(int, 30, min=1, doc="epochs for the generalist"),
    "epochs": Field(int, 10, min=1, doc="epochs per specialist"),
    "lr": Field(
        float, 1e-3, min=1e-6, max=1.0, doc="Adam learning rate for generalist and specialists"
    ),
    "batch_size": Field(int, 128, min=1, doc="batch size for generalist and specialists"),
    "subset_fraction": Field(
        float,
        0.5,
        min=0.05,
        max=0.95,
        doc="share of a specialist's training examples drawn from its subset (§5.1: half)",
    ),
    "combine_steps": Field(int, 200, min=0, doc="gradient steps on q's logits at inference (§5.3)"),
    "combine_lr": Field(float, 0.05, min=1e-4, max=10.0, doc="step size of those steps (§5.3)"),
}

# ---- §5.1: training ------------------------------------------------------------------------


def dustbin_labels(y: np.ndarray, subset: list[int]) -> np.ndarray:
    """Map class labels to a specialist's outputs: position within ``subset``, or ``len(subset)`` (dustbin)."""
    table = np.full(int(max(max(subset), int(y.max(initial=0)))) + 1, len(subset), dtype=np.int64)
    table[np.asarray(subset)] = np.arange(len(subset))
    return table[y]


def _last_linear(model: nn.Module) -> tuple[nn.Module, str]:
    name = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not name:
        raise UserError(
            "the generalist must end in a Linear classifier layer (student kinds mlp, cnn, dscnn do)."
        )
    parent_name, _, attr = name[-1].rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    return parent, attr


def specialist_from(generalist: nn.Module, subset: list[int]) -> nn.Module:
    """Copy the generalist, its classifier cut to the subset's rows plus a dustbin row.

    The dustbin row starts as the log-sum-exp-like average of the other classes' rows
    (mean weights, bias + log of their count), so its first outputs are sensible.
    """
    model = copy.deepcopy(generalist)
    parent, attr = _last_linear(model)
    old: nn.Linear = getattr(parent, attr)
    new = nn.Linear(old.in_features, len(subset) + 1)
    others = [c for c in range(old.out_features) if c not in set(subset)]
    with torch.no_grad():
        new.weight[: len(subset)] = old.weight[subset]
        new.bias[: len(subset)] = old.bias[subset]
        if others:
            new.weight[-1] = old.weight[others].mean(0)
            new.bias[-1] = old.bias[others].mean() + float(np.log(len(others)))
    setattr(parent, attr, new)
    return model


def _hard_cfg(epochs: int, lr: float, batch_size: int, seed: int) -> dict:
    """distill.train's loop on hard labels: Adam without decay, constant rate (the paper's SGD
    details are not given; this is what trains a generalist or a specialist well on our sets)."""
    return train_config(
        {"epochs": epochs, "lr": lr, "batch_size": batch_size, "weight_decay": 0.0}
        | {"loss": "hard", "schedule": "none", "seed": seed, "baseline": False}
    )


def train_generalist(
    spec: dict,
    x: np.ndarray,
    y: np.ndarray,
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> nn.Module:
    """The generalist: the student architecture of ``spec`` trained on hard labels."""
    torch.manual_seed(seed)
    model = build_student(spec, input_shape, num_classes)
    data = EpochData(torch.from_numpy(x.reshape(len(x), *input_shape)), torch.from_numpy(y), None)
    fit_epochs(
        model, lambda epoch: data, _hard_cfg(epochs, lr, batch_size, seed), desc="generalist"
    )
    return model


def train_specialist(
    generalist: nn.Module,
    subset: list[int],
    x: np.ndarray,
    y: np.ndarray,
    *,
    input_shape: tuple[int, ...],
    epochs: int,
    lr: float,
    batch_size: int,
    subset_fraction: float,
    seed: int,
) -> tuple[nn.Module, float]:
    """Train one specialist on subset-enriched data (§5.1); returns it and its dustbin logit correction."""
    torch.manual_seed(seed)
    model = specialist_from(generalist, subset)
    target = dustbin_labels(y, subset)
    inside = np.flatnonzero(target < len(subset))
    outside = np.flatnonzero(target == len(subset))
    rng = np.random.default_rng(seed)
    n_out = (
        0
        if len(outside) == 0
        else int(round(len(inside) * (1 - subset_fraction) / subset_fraction))
    )
    xt, yt = torch.from_numpy(x.reshape(len(x), *input_shape)), torch.from_numpy(target)

    def enriched(epoch: int) -> EpochData:
        """This epoch's rows: the whole subset and a fresh draw from outside it."""
        rows = inside
        if n_out:
            rows = np.concatenate(
                [inside, rng.choice(outside, size=n_out, replace=n_out > len(outside))]
            )
        idx = torch.from_numpy(rows)
        return EpochData(xt[idx], yt[idx], None)

    fit_epochs(model, enriched, _hard_cfg(epochs, lr, batch_size, seed), desc="specialist")
    # prior shift: trained with subset:dustbin odds s/(1-s), true odds pi/(1-pi) -> add log of their ratio
    pi = len(inside) / len(y)
    train_share = len(inside) / (len(inside) + n_out) if n_out else 1.0
    correction = 0.0
    if 0 < pi < 1 and train_share < 1:
        correction = float(np.log((1 - pi) / pi) - np.log((1 - train_share) / train_share))
    return model, correction


# ---- the combined model --------------------------------------------------------------------


@dataclass
class SpecialistEnsemble:
    """Generalist + specialists + the §5.3 combination; predict_proba on model-ready flat rows."""

    generalist: nn.Module
    specialists: list[nn.Module]
    subsets: list[list[int]]
    corrections: list[float]
    input_shape: tuple[int, ...]
    top_n: int
    combine_steps: int = 200
    combine_lr: float = 0.05

    @torch.no_grad()
    def _probs(self, model: nn.Module, x: np.ndarray, correction: float = 0.0) -> np.ndarray:
        model.eval()
        logits = model(
            torch.from_numpy(np.ascontiguousarray(x, np.float32)).reshape(len(x), *self.input_shape)
        )
        if correction:
            logits[:, -1] += correction
        return torch.softmax(logits.double(), 1).numpy()

    def generalist_proba(self, x: np.ndarray) -> np.ndarray:
        return self._probs(self.generalist, x).astype(np.float32)

    def parts(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """Generalist probabilities, each specialist's (dustbin-corrected) probabilities, the active mask."""
        pg = self._probs(self.generalist, x)
        pms = [self._probs(m, x, c) for m, c in zip(self.specialists, self.corrections)]
        return pg, pms, active_specialists(pg, self.subsets, self.top_n)

    def predict_proba(self, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        out = []
        for start in range(0, len(x), batch_size):
            pg, pms, act = self.parts(x[start : start + batch_size])
            out.append(
                combine(pg, pms, self.subsets, act, steps=self.combine_steps, lr=self.combine_lr)
            )
        q = np.concatenate(out) if out else np.zeros((0, len(self.corrections)), np.float64)
        return (q / q.sum(1, keepdims=True)).astype(np.float32)

    def state_bytes(self) -> int:
        buf = io.BytesIO()
        torch.save(
            {
                "generalist": self.generalist.state_dict(),
                "specialists": [m.state_dict() for m in self.specialists],
            },
            buf,
        )
        return buf.getbuffer().nbytes


@dataclass
class SpecialistsMember:
    """The combined model as a teacher member (the Member protocol of distill.members)."""

    ensemble: SpecialistEnsemble
    name: str = "specialists"
    kind: str = "torch"

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.ensemble.predict_proba(x)

    def serialized_bytes(self) -> tuple[int, str]:
        n = len(self.ensemble.specialists)
        return (
            self.ensemble.state_bytes(),
            f"torch.save of the state_dicts of the generalist and {n} specialists",
        )


@dataclass
class SpecialistsReport:
    """What the recipe's specialists section produced, measured on the split it was given."""

    subsets: list[list[int]]
    corrections: list[float]
    n: int
    generalist_accuracy: float
    combined_accuracy: float
    active_mean: float = 0.0
    settings: dict = field(default_factory=dict)


def fit_specialists(
    section: dict | None,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    seed: int,
    progress: bool = False,
) -> SpecialistEnsemble:
    """Validate the recipe's ``specialists`` section and build generalist + specialists (§5.1-5.2)."""
    cfg = validate("specialists", section, SPECIALIST_FIELDS)
    if cfg["top_n"] > num_classes:
        raise UserError(
            f"recipe key 'specialists.top_n' must be at most the number of classes ({num_classes}); "
            f"got {cfg['top_n']}."
        )
    if cfg["n_specialists"] > num_classes:
        raise UserError(
            f"recipe key 'specialists.n_specialists' must be between 1 and the number of classes "
            f"({num_classes}); got {cfg['n_specialists']}."
        )
    x_train = np.ascontiguousarray(x_train, np.float32).reshape(len(x_train), -1)
    generalist = train_generalist(
        cfg["generalist"],
        x_train,
        y_train,
        input_shape=tuple(input_shape),
        num_classes=num_classes,
        epochs=cfg["generalist_epochs"],
        lr=cfg["lr"],
        batch_size=cfg["batch_size"],
        seed=seed,
    )
    ens = SpecialistEnsemble(
        generalist,
        [],
        [],
        [],
        tuple(input_shape),
        cfg["top_n"],
        cfg["combine_steps"],
        cfg["combine_lr"],
    )
    subsets = confusable_subsets(ens.generalist_proba(x_train), cfg["n_specialists"], seed=seed)
    it = subsets
    if progress:
        from tqdm import tqdm

        it = tqdm(subsets, desc="specialists", file=sys.stderr)
    for m, s in enumerate(it):
        model, corr = train_specialist(
            generalist,
            s,
            x_train,
            y_train,
            input_shape=tuple(input_shape),
            epochs=cfg["epochs"],
            lr=cfg["lr"],
            batch_size=cfg["batch_size"],
            subset_fraction=cfg["subset_fraction"],
            seed=seed + 1 + m,
        )
        ens.specialists.append(model)
        ens.corrections.append(corr)
    ens.subsets = subsets
    return ens


def evaluate(
    ens: SpecialistEnsemble, x: np.ndarray, y: np.ndarray, settings: dict | None = None
) -> SpecialistsReport:
    """Generalist vs combined accuracy on (x, y), with the subsets found (for cards and benchmarks)."""
    pg, _, act = ens.parts(x)
    q = ens.predict_proba(x)
    return SpecialistsReport(
        subsets=ens.subsets,
        corrections=[round(c, 4) for c in ens.corrections],
        n=len(y),
        generalist_accuracy=float((pg.argmax(1) == y).mean()),
        combined_accuracy=float((q.argmax(1) == y).mean()),
        active_mean=float(act.sum(1).mean()) if act.size else 0.0,
        settings=settings or {},
    )


def member_from_recipe(
    section: dict | None,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    n_features: int,
    image_shape: tuple[int, ...] | None,
    num_classes: int,
    seed: int,
    progress: bool = False,
) -> SpecialistsMember:
    """The recipe's ``specialists`` section -> a fitted teacher member (what distill.run adds to the teacher)."""
    cfg = validate("specialists", section, SPECIALIST_FIELDS)
    shape = student_input_shape(cfg["generalist"], n_features, image_shape)
    return SpecialistsMember(
        fit_specialists(
            section,
            x_train,
            y_train,
            input_shape=shape,
            num_classes=num_classes,
            seed=seed,
            progress=progress,
        )
    )
