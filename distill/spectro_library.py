"""Library models for image-shaped rows such as MFCC / log-mel maps (keyword spotting).

Two families, so ensemble selection has diverse members to draw from (Caruana et al. 2004):

- conv nets (``spec_cnn_*``, ``spec_dscnn_*``): the registered students' own architectures at
  teacher widths, each with its own seed, trained with random time shifts of up to
  ``MAX_SHIFT`` frames, at most an eighth of the window (a word's position in it is arbitrary);
- models on summary features (``summary_*``): per coefficient, the mean, standard deviation,
  minimum, maximum and mean absolute frame-to-frame change over time, then a scikit-learn
  classifier. They see none of the word's time structure and err differently from the nets.

Every factory gets ``input_shape`` ([C, H, W], time along W) from the data set. Each is a
module-level name that ``distill.library`` lists by dotted path; this module does not import
the registry.
"""

from __future__ import annotations

import numpy as np

from .members import Member, SklearnMember, TorchMember

MAX_SHIFT = 4  # frames
EPOCHS = 12
BATCH = 64

CONV_SPECS: dict[str, dict] = {
    "spec_cnn_w32": {"kind": "cnn", "channels": [32, 64], "batchnorm": True, "hidden": 64},
    "spec_cnn_w16": {"kind": "cnn", "channels": [16, 32], "batchnorm": True, "hidden": 64},
    "spec_dscnn_w48": {"kind": "dscnn", "channels": 48, "blocks": 3, "first_stride": 2},
    "spec_dscnn_w64": {"kind": "dscnn", "channels": 64, "blocks": 4, "first_stride": 2},
}


def time_shift(x, max_shift: int, generator):
    """Roll each row of [n, C, H, W] along W by its own shift in [-max_shift, max_shift]."""
    import torch

    if max_shift <= 0:
        return x
    shifts = torch.randint(-max_shift, max_shift + 1, (len(x),), generator=generator)
    w = x.shape[-1]
    idx = (torch.arange(w)[None, :] - shifts[:, None]) % w  # [n, W]
    return torch.gather(x, 3, idx[:, None, None, :].expand_as(x))


def train_conv(
    spec: dict, x: np.ndarray, y: np.ndarray, seed: int, nc: int, input_shape, epochs: int = EPOCHS
):
    """distill.train's loop on hard labels (AdamW, cosine) for a fixed number of epochs, each
    epoch on freshly time-shifted rows. Nothing is selected on held-out data here: ensemble
    selection does that on the validation split."""
    import torch

    from .students import build_student
    from .train import EpochData, fit_epochs, train_config

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = build_student(spec, input_shape, nc)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).reshape(len(x), *input_shape)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    shift = min(MAX_SHIFT, input_shape[-1] // 8)

    def shifted(epoch: int) -> EpochData:
        return EpochData(time_shift(xt, shift, g), yt, None)

    cfg = train_config(
        {"epochs": epochs, "batch_size": BATCH, "lr": 3e-3, "weight_decay": 1e-4, "loss": "hard"}
        | {"schedule": "cosine", "seed": seed, "baseline": False}
    )
    fit_epochs(model, shifted, cfg, desc=spec["kind"])
    return model


def _conv_factory(name: str, spec: dict, offset: int):
    def factory(x, y, seed, nc, input_shape):
        model = train_conv(spec, x, y, seed * 1000 + offset, nc, input_shape, epochs=EPOCHS)
        return TorchMember(name, model, output="logits", input_shape=input_shape)

    factory.__doc__ = f"{spec['kind']} {spec['channels']} on the feature map, own seed"
    return factory


spec_cnn_w32, spec_cnn_w16, spec_dscnn_w48, spec_dscnn_w64 = (
    _conv_factory(_name, _spec, _i + 1) for _i, (_name, _spec) in enumerate(CONV_SPECS.items())
)


# Full-conv nets for speaker-independent teachers: 3x3 convs with BN, two of them stride 2, a
# global average pool over the whole map, dropout and a Linear. Trained as measured on FSDD's
# leave-one-speaker-out folds (RESULTS.notes.md, session 26): one-cycle lr, label smoothing 0.1,
# fresh time shifts per batch, a fixed number of epochs. The four names are one net at four seeds.
FCN_EPOCHS = 20
FCN_SPEC = {"widths": (32, 32, 64, 64), "strides": (2, 1, 2, 1), "dropout": 0.2}
FCN_NAMES = ("spec_fcn_w32", "spec_fcn_w32_b", "spec_fcn_w32_c", "spec_fcn_w32_d")
# The same net at twice the widths (4x the MACs, about 28M on 13 x 49): does the teacher's size
# hold the stream ceiling back? (rule T36t, RESULTS.notes.md). Two seeds, for the fit's time.
FCN_WIDE_SPEC = FCN_SPEC | {"widths": (64, 64, 128, 128)}
FCN_WIDE_NAMES = ("spec_fcn_w64", "spec_fcn_w64_b")


def build_fcn(spec: dict, input_shape, nc: int):
    from torch import nn

    layers: list = []
    c = input_shape[0]
    for w, s in zip(spec["widths"], spec["strides"], strict=True):
        layers += [nn.Conv2d(c, w, 3, stride=s, padding=1, bias=False), nn.BatchNorm2d(w)]
        layers.append(nn.ReLU())
        c = w
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(spec["dropout"]), nn.Linear(c, nc)]
    return nn.Sequential(*layers, *head)


def train_fcn(
    x: np.ndarray,
    y: np.ndarray,
    seed: int,
    nc: int,
    input_shape,
    epochs: int,
    spec: dict = FCN_SPEC,
):
    """One-cycle AdamW on label-smoothed hard labels, a fresh time shift per row per batch; the
    last weights are kept (nothing held out is looked at; selection judges the member)."""
    import sys

    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = build_fcn(spec, input_shape, nc)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).reshape(len(x), *input_shape)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    shift = min(MAX_SHIFT, input_shape[-1] // 8)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=1e-4)
    per_epoch = (len(xt) + BATCH - 1) // BATCH
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 5e-3, total_steps=epochs * per_epoch)
    for _ in tqdm(range(epochs), desc="fcn", file=sys.stderr, leave=False, disable=None):
        model.train()
        perm = torch.randperm(len(xt), generator=g)
        for b in range(0, len(xt), BATCH):
            i = perm[b : b + BATCH]
            out = model(time_shift(xt[i], shift, g))
            loss = F.cross_entropy(out, yt[i], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def _fcn_factory(name: str, offset: int, spec: dict = FCN_SPEC):
    def factory(x, y, seed, nc, input_shape):
        model = train_fcn(x, y, seed * 1000 + offset, nc, input_shape, FCN_EPOCHS, spec)
        return TorchMember(name, model, output="logits", input_shape=input_shape)

    factory.__doc__ = f"full-conv net {spec['widths']}, global average pool, own seed"
    return factory


spec_fcn_w32, spec_fcn_w32_b, spec_fcn_w32_c, spec_fcn_w32_d = (
    _fcn_factory(_name, 101 + _i) for _i, _name in enumerate(FCN_NAMES)
)
spec_fcn_w64, spec_fcn_w64_b = (
    _fcn_factory(_name, 201 + _i, FCN_WIDE_SPEC) for _i, _name in enumerate(FCN_WIDE_NAMES)
)


def summarize(x: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Per coefficient (H) over time (W): mean, std, min, max, mean |delta| -> [n, 5 * C * H]."""
    m = np.asarray(x, dtype=np.float32).reshape(len(x), shape[0] * shape[1], shape[2])
    delta = np.abs(np.diff(m, axis=2)).mean(axis=2) if shape[2] > 1 else np.zeros(m.shape[:2])
    return np.concatenate([m.mean(2), m.std(2), m.min(2), m.max(2), delta], axis=1)


def _summary_member(name: str, clf, x, y, nc, input_shape) -> Member:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    pipe = make_pipeline(
        FunctionTransformer(summarize, kw_args={"shape": tuple(input_shape)}), StandardScaler(), clf
    )
    pipe.fit(x, y)
    return SklearnMember(name, pipe, nc)


def summary_logreg(x, y, seed, nc, input_shape):
    from sklearn.linear_model import LogisticRegression

    return _summary_member(
        "summary_logreg", LogisticRegression(C=1.0, max_iter=2000), x, y, nc, input_shape
    )


def summary_svm(x, y, seed, nc, input_shape):
    from sklearn.svm import SVC

    clf = SVC(C=10.0, gamma="scale", probability=True, random_state=seed)
    return _summary_member("summary_svm", clf, x, y, nc, input_shape)
