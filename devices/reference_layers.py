"""The MLPerf Tiny reference models as operator lists, for the estimators that read layers.

The zoo estimator (devices/zoo_fit.py) and the stack model built on it (devices/stacks_v3.py) read a
model's operators, not its totals. Two of the four reference models have files here
(``../shared/data/mlperf_tiny``: kws, ad) and are analysed as any file is; ic and vww are not shipped,
so the catalog knows them by totals counted from their layer shapes (catalog ``reference_models``).
This module writes those same layer shapes down as operators (``OpCost``, the analysis's own record),
so the estimators see what they would see in the files:

- ic, ResNet-8: mlcommons/tiny benchmark/training/image_classification/keras_model.py
  ``resnet_v1_eembc`` (16 filters): 3x3 conv to 32x32x16; three stacks of two 3x3 convs with an add,
  the 2nd and 3rd strided with a 1x1 strided shortcut conv (16x16x32, 8x8x64); an 8x8 average pool,
  flatten, a 64->10 FC and softmax. The activations are fused into the convs and adds.
- vww, MobileNetV1 alpha 0.25 at 96x96x3 (mlcommons/tiny .../visual_wake_words/vww_model.py, as the
  MLPerf Tiny paper describes it): a strided 3x3 conv to 48x48x8, 13 depthwise 3x3 + pointwise
  blocks (strides 1,2,1,2,1,2,1,1,1,1,1,2,1; 16,32,32,64,64,128 x6,256,256 channels), a 3x3 average
  pool, flatten, a 256->2 FC and softmax.
- kws, DS-CNN: written the same way only to check the builder against the file (tests).

Padding is 'same' (out = ceil(in / stride)); an op's MACs are counted over its whole kernel, as the
analysis counts them. The totals these lists give must equal the catalog's ``reference_models``
figures (checked by ``check_totals`` and in tests/devices/test_stacks_v3.py).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from ground.errors import UserError

from .graph_costs import OpCost

Shape = tuple[int, int, int]  # height, width, channels


class _Net:
    """A small builder: each call appends one int8 operator and returns its output shape."""

    def __init__(self) -> None:
        self.ops: list[OpCost] = []

    def _add(self, op: str, kind: str, macs: int, w_bytes: int, in_b: int, out: int,
             kernel: int = 0, co: int = 0) -> None:  # fmt: skip
        self.ops.append(
            OpCost(len(self.ops), op, kind, "int8", macs, w_bytes, in_b, out, kernel, out, co)
        )

    def conv(self, x: Shape, co: int, kh: int, kw: int | None = None, stride: int = 1) -> Shape:
        kw = kh if kw is None else kw
        h, w, ci = x
        y = (-(-h // stride), -(-w // stride), co)
        n = y[0] * y[1] * co
        self._add("CONV_2D", "conv", n * kh * kw * ci, kh * kw * ci * co + 4 * co, h * w * ci, n,
                  kh * kw, co)  # fmt: skip
        return y

    def dw(self, x: Shape, k: int = 3, stride: int = 1) -> Shape:
        h, w, c = x
        y = (-(-h // stride), -(-w // stride), c)
        n = y[0] * y[1] * c
        self._add("DEPTHWISE_CONV_2D", "depthwise_conv", n * k * k, k * k * c + 4 * c, h * w * c, n,
                  k * k, c)  # fmt: skip
        return y

    def add(self, x: Shape) -> Shape:
        n = x[0] * x[1] * x[2]
        self._add("ADD", "elementwise", n, 0, 2 * n, n)
        return x

    def avgpool(self, x: Shape, kh: int, kw: int) -> Shape:
        y = (x[0] // kh, x[1] // kw, x[2])
        n = y[0] * y[1] * y[2]
        self._add("AVERAGE_POOL_2D", "pool", n * kh * kw, 0, x[0] * x[1] * x[2], n)
        return y

    def flatten(self, x: Shape) -> int:
        n = x[0] * x[1] * x[2]
        self.ops.append(OpCost(len(self.ops), "RESHAPE", "other", "int8", 0, 0, n, n, 0, n, 0))
        return n

    def fc(self, n_in: int, n_out: int) -> int:
        self._add("FULLY_CONNECTED", "fully_connected", n_in * n_out, n_in * n_out + 4 * n_out,
                  n_in, n_out)  # fmt: skip
        return n_out

    def softmax(self, n: int) -> None:
        self._add("SOFTMAX", "elementwise", n, 0, n, n)


def _resnet8() -> list[OpCost]:
    net = _Net()
    x = net.conv((32, 32, 3), 16, 3)
    for co, stride in ((16, 1), (32, 2), (64, 2)):
        y = net.conv(net.conv(x, co, 3, stride=stride), co, 3)
        if stride != 1:
            net.conv(x, co, 1, stride=stride)  # the strided 1x1 shortcut
        x = net.add(y)
    net.softmax(net.fc(net.flatten(net.avgpool(x, 8, 8)), 10))
    return net.ops


MOBILENET_BLOCKS = ((1, 16), (2, 32), (1, 32), (2, 64), (1, 64), (2, 128), *((1, 128),) * 5,
                    (2, 256), (1, 256))  # fmt: skip


def _mobilenet_v1_025() -> list[OpCost]:
    net = _Net()
    x = net.conv((96, 96, 3), 8, 3, stride=2)
    for stride, co in MOBILENET_BLOCKS:
        x = net.conv(net.dw(x, 3, stride), co, 1)
    net.softmax(net.fc(net.flatten(net.avgpool(x, x[0], x[1])), 2))
    return net.ops


def _ds_cnn() -> list[OpCost]:
    """kws_ref_model.tflite's layers (49x10 MFCC in, 10x4 strided conv, 4 DS blocks of 64)."""
    net = _Net()
    x = net.conv((49, 10, 1), 64, 10, 4, stride=2)
    for _ in range(4):
        x = net.conv(net.dw(x, 3), 64, 1)
    net.softmax(net.fc(net.flatten(net.avgpool(x, x[0], x[1])), 12))
    return net.ops


BUILDERS = {"ic": _resnet8, "vww": _mobilenet_v1_025, "kws": _ds_cnn}


def ops_from_shapes(model: str) -> list[OpCost]:
    """The operators of reference model ``model`` built from its layer shapes."""
    if model not in BUILDERS:
        raise UserError(
            f"no layer shapes for reference model {model!r}; known: {', '.join(BUILDERS)} (the "
            "others are analysed from their files in ../shared/data/mlperf_tiny)"
        )
    return BUILDERS[model]()


def totals(ops: list[OpCost]) -> dict:
    """The catalog's ``reference_models`` figures of an operator list: work per cost kind,
    conv/FC outputs and the op count."""
    work = dict.fromkeys(("conv", "pointwise", "depthwise", "fc", "elementwise"), 0)
    for op in ops:
        work[op.cost_kind] += op.work
    outs = sum(op.out_elems for op in ops if op.cost_kind != "elementwise")
    return {"work": work, "outputs": outs, "n_ops": len(ops)}


def check_totals(catalog, model: str, ops: list[OpCost]) -> None:
    """UserError when the operator list disagrees with the catalog's counted totals of ``model``."""
    ref = catalog.reference_models.get(model) or {}
    got = totals(ops)
    want = {"work": {k: int(ref.get("work", {}).get(k, 0)) for k in got["work"]},
            "outputs": int(ref.get("outputs", -1)), "n_ops": int(ref.get("n_ops", -1))}  # fmt: skip
    if got != want:
        raise UserError(
            f"the layer shapes of reference model {model!r} give {got}, the catalog's "
            f"reference_models.{model} says {want}: fix the one that is wrong"
        )


def reference_analysis(catalog, model: str, file: Path | None = None):
    """What the estimators read of reference model ``model``: the file's analysis where the file is
    here, else an object with the ``ops`` and ``n_ops`` built from its layer shapes (checked against
    the catalog's totals)."""
    if file is not None:
        from .analysis import analyse

        return analyse(file)
    ops = ops_from_shapes(model)
    check_totals(catalog, model, ops)
    return SimpleNamespace(ops=ops, n_ops=len(ops), file=f"{model} (layer shapes)")
