"""Student networks, looked up by name (timm-style registry).

Every student is built from plain layers (Conv2d, Linear, ReLU, BatchNorm2d, pooling,
Flatten) so that it exports with ``torch.export`` and converts cleanly to ONNX, TFLite
and Core ML. ``build_student(spec, input_shape, num_classes)`` validates the spec
(``ground.recipe.validate``) and checks it against the data's shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ground.errors import UserError
from ground.recipe import Field, validate

# a layer wider than this, or a student with more parameters, is not a small student: refused
# before anything is allocated (issue 41: hidden [1000000000000] failed in the allocator)
MAX_WIDTH = 1 << 16
MAX_LAYERS = 64
MAX_PARAMS = 1 << 28


def _positive_ints(v: Any) -> str | None:
    if (
        not isinstance(v, list)
        or not v
        or len(v) > MAX_LAYERS
        or not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i <= MAX_WIDTH for i in v)
    ):
        return (
            f"must be a non-empty list of at most {MAX_LAYERS} integers in [1, {MAX_WIDTH}], "
            "e.g. [64, 32]"
        )
    return None


@dataclass(frozen=True)
class StudentKind:
    """A registered student: its recipe fields, the input layout it needs, and its builder."""

    name: str
    layout: str  # "NC" (flat features) or "NCHW" (images, spectrograms)
    fields: dict[str, Field]
    build: Callable[[dict, tuple[int, ...], int], nn.Module]
    doc: str


STUDENTS: dict[str, StudentKind] = {}


def register(kind: StudentKind) -> StudentKind:
    STUDENTS[kind.name] = kind
    return kind


# ---- MLP ---------------------------------------------------------------------------------


def _build_mlp(spec: dict, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()] if len(input_shape) > 1 else []
    width = 1
    for s in input_shape:
        width *= s
    for h in spec["hidden"]:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if spec["dropout"] > 0:
            layers.append(nn.Dropout(spec["dropout"]))
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


_DROPOUT = "dropout before the classifier (training only)"


register(
    StudentKind(
        "mlp",
        "NC",
        {
            "kind": Field(str, doc="mlp"),
            "hidden": Field(list, [64], check=_positive_ints, doc="hidden layer widths"),
            "dropout": Field(
                float, 0.0, min=0.0, max=0.9, doc="dropout after each hidden layer (training only)"
            ),
        },
        _build_mlp,
        "fully connected: Linear+ReLU per hidden width, then a Linear classifier",
    )
)


# ---- small CNN ---------------------------------------------------------------------------


def _build_cnn(spec: dict, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    c, h, w = input_shape
    k = spec["kernel"]
    pool = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}[spec["pool"]]
    layers: list[nn.Module] = []
    for ch in spec["channels"]:
        layers += [nn.Conv2d(c, ch, k, padding=k // 2)]
        if spec["batchnorm"]:
            layers.append(nn.BatchNorm2d(ch))
        layers.append(nn.ReLU())
        if h >= 2 and w >= 2:
            layers.append(pool(2))
            h, w = h // 2, w // 2
        c = ch
    layers.append(nn.Flatten())
    width = c * h * w
    if spec["hidden"]:
        layers += [nn.Linear(width, spec["hidden"]), nn.ReLU()]
        width = spec["hidden"]
    return nn.Sequential(*layers, *_head(width, spec["dropout"], num_classes))


register(
    StudentKind(
        "cnn",
        "NCHW",
        {
            "kind": Field(str, doc="cnn"),
            "channels": Field(list, [8, 16], check=_positive_ints, doc="channels per conv block"),
            "kernel": Field(int, 3, choices=(1, 3, 5), doc="conv kernel size"),
            "pool": Field(str, "max", choices=("max", "avg"), doc="2x2 pooling after each block"),
            "batchnorm": Field(bool, False, doc="BatchNorm2d after each conv"),
            "hidden": Field(
                int, 0, min=0, max=MAX_WIDTH, doc="width of an extra Linear layer; 0 = none"
            ),
            "dropout": Field(float, 0.0, min=0.0, max=0.9, doc=_DROPOUT),
        },
        _build_cnn,
        "conv [+BN] + ReLU + 2x2 pool per block, flatten, [Linear+ReLU], Linear",
    )
)


def _head(width: int, dropout: float, num_classes: int) -> list[nn.Module]:
    """[Dropout,] Linear to the classes: the same classifier head for the conv students."""
    return ([nn.Dropout(dropout)] if dropout > 0 else []) + [nn.Linear(width, num_classes)]


# ---- DS-CNN (MLPerf Tiny keyword-spotting shape) -------------------------------------------


def _build_dscnn(spec: dict, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    c = input_shape[0]
    ch = spec["channels"]
    k = spec["first_kernel"]
    layers: list[nn.Module] = [
        nn.Conv2d(c, ch, k, stride=spec["first_stride"], padding=k // 2, bias=False),
        nn.BatchNorm2d(ch),
        nn.ReLU(),
    ]
    for _ in range(spec["blocks"]):
        layers += [
            nn.Conv2d(ch, ch, 3, stride=spec["block_stride"], padding=1, groups=ch, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(),
            nn.Conv2d(ch, ch, 1, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(),
        ]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers, *_head(ch, spec["dropout"], num_classes))


register(
    StudentKind(
        "dscnn",
        "NCHW",
        {
            "kind": Field(str, doc="dscnn"),
            "channels": Field(int, 32, min=1, max=MAX_WIDTH, doc="channels of every block"),
            "blocks": Field(int, 3, min=1, max=16, doc="depthwise-separable blocks"),
            "first_kernel": Field(int, 3, choices=(1, 3, 5), doc="kernel of the first (full) conv"),
            "first_stride": Field(int, 1, choices=(1, 2), doc="stride of the first conv"),
            "block_stride": Field(
                int,
                1,
                choices=(1, 2),
                doc="stride of every block's depthwise conv. 1 keeps the map's size (MLPerf "
                "Tiny's shape: the pool then averages local patches); 2 halves it per block, so "
                "the pool sees the whole window at a fraction of the MACs",
            ),
            "dropout": Field(float, 0.0, min=0.0, max=0.9, doc=_DROPOUT),
        },
        _build_dscnn,
        "conv+BN+ReLU, then [depthwise 3x3 (stride block_stride)+BN+ReLU, pointwise 1x1+BN+ReLU] "
        "x blocks, global average pool, Linear (MLPerf Tiny KWS DS-CNN at block_stride 1)",
    )
)


# ---- public API --------------------------------------------------------------------------


def validate_spec(spec: dict) -> tuple[StudentKind, dict]:
    """Look up ``spec['kind']`` in the registry and validate the other keys against it."""
    if not isinstance(spec, dict) or "kind" not in spec:
        raise UserError(
            f"recipe section 'student' must be a mapping with a 'kind' key, one of {', '.join(STUDENTS)}; "
            f"got {spec!r}."
        )
    kind = spec["kind"]
    if kind not in STUDENTS:
        raise UserError(
            f"recipe key 'student.kind' must be one of {', '.join(repr(k) for k in STUDENTS)}; got {kind!r}."
        )
    entry = STUDENTS[kind]
    # student.search is the search driver's (tinyship.search): distill trains the student as given.
    given = {k: v for k, v in spec.items() if k != "search"}
    return entry, validate("student", given, entry.fields)


def student_input_shape(
    spec: dict, n_features: int, image_shape: tuple[int, ...] | None
) -> tuple[int, ...]:
    """The input shape the student sees: [d] for flat students, the data's [C, H, W] for conv ones."""
    entry, _ = validate_spec(spec)
    if entry.layout == "NC":
        return (n_features,)
    if image_shape is None:
        raise UserError(
            f"student kind '{entry.name}' needs image-shaped data (layout NCHW), but this data set is "
            f"flat with {n_features} features. Use student.kind: mlp for tabular data."
        )
    return tuple(image_shape)


def build_student(
    spec: dict, input_shape: tuple[int, ...] | list[int], num_classes: int
) -> nn.Module:
    """Build the registered student named by ``spec['kind']`` for inputs ``[batch, *input_shape]``."""
    entry, spec = validate_spec(spec)
    input_shape = tuple(int(s) for s in input_shape)
    if entry.layout == "NCHW" and len(input_shape) != 3:
        raise UserError(
            f"student kind '{entry.name}' needs input shape [C, H, W]; got {list(input_shape)}. "
            f"Use student.kind: mlp for flat features."
        )
    if num_classes < 2:
        raise UserError(f"a classifier needs at least 2 classes; the data has {num_classes}.")
    with torch.device("meta"):  # shapes only: the size is known before any memory is taken
        n = sum(p.numel() for p in entry.build(spec, input_shape, num_classes).parameters())
    if n > MAX_PARAMS:
        raise UserError(
            f"recipe section 'student' ({entry.name}) gives {n:,} parameters on inputs "
            f"{list(input_shape)}; tinyship's students are small (at most {MAX_PARAMS:,}). "
            "Use fewer or narrower layers."
        )
    return entry.build(spec, input_shape, num_classes)


# ---- raw inputs in: the shipped graph --------------------------------------------------


class RawInput(nn.Module):
    """The shipped student: features exactly as in the data file in, logits out.

    The normalization fitted on the training split (``(x - mean) / std``) and the one-hot
    encoding of nominal columns (integer codes -> one column per category) are the first
    ops of the graph, so ``student.pt2`` and every export take raw rows and an application
    feeds what it reads. A code outside ``0..K-1`` (a category never seen) one-hots to zeros.
    """

    def __init__(
        self,
        net: nn.Module,
        input_shape: tuple[int, ...],
        mean: Any,
        std: Any,
        nominal_sizes: dict[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        shape = tuple(int(s) for s in input_shape)
        mean_t = torch.as_tensor(mean, dtype=torch.float32)
        std_t = torch.as_tensor(std, dtype=torch.float32)
        if mean_t.ndim:  # per feature column: one value per element of a row
            mean_t, std_t = mean_t.reshape(shape), std_t.reshape(shape)
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)
        # The same map as (x - mean) / std, written as x * scale + shift: PT2E quantizers annotate
        # mul and add (not sub and div), so a full-int8 export keeps int8 input (raw-space scale).
        self.register_buffer("scale", 1.0 / std_t, persistent=False)
        self.register_buffer("shift", -mean_t / std_t, persistent=False)
        sizes = dict(sorted((nominal_sizes or {}).items()))
        if sizes and len(shape) != 1:
            raise UserError(
                f"nominal columns need flat inputs [d]; the student input is {list(shape)}."
            )
        width = shape[0] if len(shape) == 1 else 0
        self.continuous = [j for j in range(width) if j not in sizes]
        self.nominal = list(sizes)
        for j, k in sizes.items():
            self.register_buffer(f"codes_{j}", torch.arange(k, dtype=torch.float32))

    @staticmethod
    def encoded_shape(
        input_shape: tuple[int, ...], nominal_sizes: dict[int, int]
    ) -> tuple[int, ...]:
        """The shape the inner network sees: continuous columns plus one column per category."""
        if not nominal_sizes:
            return tuple(input_shape)
        return (int(input_shape[0]) - len(nominal_sizes) + sum(nominal_sizes.values()),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x * self.scale + self.shift
        if self.nominal:
            parts = [z[:, self.continuous]] + [
                (x[:, j : j + 1] == getattr(self, f"codes_{j}")).to(x.dtype) for j in self.nominal
            ]
            z = torch.cat(parts, dim=1)
        return self.net(z)


@dataclass
class Complexity:
    """Parameter count and multiply-accumulates for one sample, per layer and in total."""

    params: int
    macs: int
    layers: list[dict]


def count_params_macs(model: nn.Module, input_shape: tuple[int, ...]) -> Complexity:
    """Count parameters and MACs of one forward pass (batch 1) with forward hooks.

    MACs counted for Conv2d (out elements x in_channels/groups x kernel area) and Linear
    (in x out); BatchNorm, activations and pooling are not multiply-accumulates and are left out.
    """
    layers: list[dict] = []

    def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            macs = out.numel() * (mod.in_channels // mod.groups) * kh * kw
        else:
            macs = mod.in_features * mod.out_features * (out.numel() // out.shape[-1])
        layers.append(
            {
                "layer": names[mod],
                "type": type(mod).__name__,
                "macs": int(macs),
                "params": sum(p.numel() for p in mod.parameters()),
                "out_shape": list(out.shape[1:]),
            }
        )

    names = {m: n for n, m in model.named_modules()}
    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return Complexity(
        params=sum(p.numel() for p in model.parameters()),
        macs=sum(layer["macs"] for layer in layers),
        layers=layers,
    )
