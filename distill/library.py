"""The model library that ensemble selection draws from (Caruana et al. 2004 §2).

Caruana's libraries hold thousands of models of many kinds (trees, boosting, kNN,
SVMs, neural nets, logistic regression); ours holds one CPU-friendly model per
name, looked up in a registry, so a recipe can say ``library: [rf, knn, svm]``.
Every factory fits its model on the training split and returns a teacher member.
On sklearn digits the whole library fits in well under a minute on one core.

The registry (:data:`MODELS`) holds this module's flat-row models, registered with
:func:`register`, and lists the models for image-shaped rows in
:mod:`distill.spectro_library` by dotted path, imported the first time one is fitted.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

from ground.errors import UserError
from ground.lazy import LazyRegistry

from .members import Member, SklearnMember, TorchMember

Factory = Callable[..., Member]
MODELS: LazyRegistry[Factory] = LazyRegistry()
SHAPED: set[str] = set()  # factories that also take input_shape=[C, H, W] (conv nets, summaries)


def add_model(name: str, factory: Factory | str, shaped: bool = False) -> None:
    """Add a model factory ``(x, y, seed, num_classes) -> fitted Member`` under ``name``, given
    as the function or its dotted path ``"package.module:attr"`` (imported on first use);
    ``shaped`` factories also get ``input_shape`` (the rows' [C, H, W]) and need it."""
    MODELS[name] = factory
    if shaped:
        SHAPED.add(name)


def register(name: str, shaped: bool = False) -> Callable[[Factory], Factory]:
    """Decorator form of :func:`add_model` for a factory defined in the registering module."""

    def deco(fn: Factory) -> Factory:
        add_model(name, fn, shaped)
        return fn

    return deco


def _sk(name: str, est, x: np.ndarray, y: np.ndarray, nc: int) -> Member:
    est.fit(x, y)
    return SklearnMember(name, est, nc)


@register("rf")
def random_forest(x, y, seed, nc):
    from sklearn.ensemble import RandomForestClassifier

    return _sk(
        "rf", RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1), x, y, nc
    )


@register("extra_trees")
def extra_trees(x, y, seed, nc):
    from sklearn.ensemble import ExtraTreesClassifier

    return _sk(
        "extra_trees", ExtraTreesClassifier(n_estimators=100, random_state=seed, n_jobs=1), x, y, nc
    )


@register("hgb")
def hist_gradient_boosting(x, y, seed, nc):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return _sk(
        "hgb",
        HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=seed),
        x,
        y,
        nc,
    )


@register("knn")
def k_nearest_neighbours(x, y, seed, nc):
    from sklearn.neighbors import KNeighborsClassifier

    return _sk("knn", KNeighborsClassifier(n_neighbors=10, weights="distance"), x, y, nc)


@register("svm")
def support_vector_machine(x, y, seed, nc):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    # SVC(probability=True) is deprecated in scikit-learn 1.9; this is its documented replacement.
    est = CalibratedClassifierCV(
        SVC(C=10.0, gamma="scale", random_state=seed), ensemble=False, cv=3
    )
    return _sk("svm", est, x, y, nc)


@register("logreg")
def logistic_regression(x, y, seed, nc):
    from sklearn.linear_model import LogisticRegression

    return _sk("logreg", LogisticRegression(C=1.0, max_iter=1000), x, y, nc)


def _sk_mlp(name: str, hidden: tuple[int, ...]) -> Factory:
    def factory(x, y, seed, nc):
        from sklearn.neural_network import MLPClassifier

        est = MLPClassifier(
            hidden_layer_sizes=hidden,
            alpha=1e-3,
            max_iter=300,
            early_stopping=True,
            n_iter_no_change=15,
            random_state=seed,
        )
        return _sk(name, est, x, y, nc)

    return factory


for _name, _hidden in {"mlp_small": (32,), "mlp_medium": (128,), "mlp_large": (256, 128)}.items():
    register(_name)(_sk_mlp(_name, _hidden))


@register("torch_mlp")
def torch_mlp(x, y, seed, nc, epochs: int = 40, hidden: int = 128):
    """A small torch MLP trained in-process (distill.train's loop on hard labels), kept as a
    torch member."""
    import torch
    from torch import nn

    from .train import EpochData, fit_epochs, train_config

    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(x.shape[1], hidden),
        nn.ReLU(),
        nn.Dropout(0.1),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, nc),
    )
    data = EpochData(
        torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
        torch.from_numpy(np.asarray(y, dtype=np.int64)),
        None,
    )
    cfg = train_config(
        {"epochs": epochs, "batch_size": 128, "lr": 2e-3, "weight_decay": 1e-4, "loss": "hard"}
        | {"schedule": "none", "seed": seed, "baseline": False}
    )
    fit_epochs(model, lambda epoch: data, cfg, desc="torch_mlp")
    return TorchMember("torch_mlp", model, output="logits", width=x.shape[1])


# Models for image-shaped rows (MFCC / log-mel maps): listed by path, imported on first use.
SPECTRO_MODELS = {
    "spec_cnn_w32": "distill.spectro_library:spec_cnn_w32",
    "spec_cnn_w16": "distill.spectro_library:spec_cnn_w16",
    "spec_dscnn_w48": "distill.spectro_library:spec_dscnn_w48",
    "spec_dscnn_w64": "distill.spectro_library:spec_dscnn_w64",
    "spec_fcn_w32": "distill.spectro_library:spec_fcn_w32",
    "spec_fcn_w32_b": "distill.spectro_library:spec_fcn_w32_b",
    "spec_fcn_w32_c": "distill.spectro_library:spec_fcn_w32_c",
    "spec_fcn_w32_d": "distill.spectro_library:spec_fcn_w32_d",
    "spec_fcn_w64": "distill.spectro_library:spec_fcn_w64",
    "spec_fcn_w64_b": "distill.spectro_library:spec_fcn_w64_b",
    "summary_logreg": "distill.spectro_library:summary_logreg",
    "summary_svm": "distill.spectro_library:summary_svm",
}
for _name, _path in SPECTRO_MODELS.items():
    add_model(_name, _path, shaped=True)


def build_library(
    names: list[str],
    x: np.ndarray,
    y: np.ndarray,
    seed: int,
    num_classes: int | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> dict[str, Member]:
    """Fit each named model on ``(x, y)``; returns members in the order given (progress on stderr)."""
    from tqdm import tqdm

    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise UserError(
            f"teacher library model(s) {unknown} are not known; allowed: {', '.join(MODELS)}."
        )
    shaped = [n for n in names if n in SHAPED]
    if shaped and (input_shape is None or len(input_shape) != 3):
        raise UserError(
            f"teacher library model(s) {shaped} need image-shaped rows ([C, H, W], e.g. audio "
            f"features from data.name: audio_folder); this data set's rows are flat."
        )
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(y).astype(np.int64)
    nc = num_classes or int(y.max()) + 1
    out: dict[str, Member] = {}
    bar = tqdm(names, desc="teacher library", unit="model", file=sys.stderr, disable=None)
    for name in bar:
        bar.set_postfix_str(name)
        t0 = time.perf_counter()
        kw = {"input_shape": tuple(input_shape)} if name in SHAPED else {}
        member = MODELS[name](x, y, seed, nc, **kw)
        member.fit_seconds = round(time.perf_counter() - t0, 3)
        out[name] = member
    return out
