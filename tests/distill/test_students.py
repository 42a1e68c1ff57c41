"""Students: parameter and MAC counts by hand; every registered student exports with a dynamic batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill.students import STUDENTS, build_student, count_params_macs, student_input_shape
from ground.errors import UserError

SHAPES = {"NC": (64,), "NCHW": (1, 8, 8)}
SMALL = {
    "mlp": {"kind": "mlp", "hidden": [32]},
    "cnn": {"kind": "cnn", "channels": [4]},
    "dscnn": {"kind": "dscnn", "channels": 8, "blocks": 1},
}


def test_every_registered_student_has_a_small_spec_here():
    assert set(SMALL) == set(STUDENTS)


def test_mlp_counts_by_hand():
    c = count_params_macs(build_student(SMALL["mlp"], (64,), 10), (64,))
    assert c.params == 64 * 32 + 32 + 32 * 10 + 10 == 2410
    assert c.macs == 64 * 32 + 32 * 10 == 2368


def test_cnn_counts_by_hand():
    # conv 1->4, 3x3, pad 1 on 8x8: 4*9+4 params, 4*8*8 outputs x 9 MACs; maxpool -> 4x4x4; linear 64->10
    c = count_params_macs(build_student(SMALL["cnn"], (1, 8, 8), 10), (1, 8, 8))
    assert c.params == (4 * 9 + 4) + (64 * 10 + 10) == 690
    assert c.macs == 4 * 64 * 9 + 64 * 10 == 2944


def test_dscnn_counts_by_hand():
    # conv 1->8 3x3 (no bias) + BN; depthwise 8x3x3 + BN; pointwise 8x8 + BN; linear 8->10
    c = count_params_macs(build_student(SMALL["dscnn"], (1, 8, 8), 10), (1, 8, 8))
    assert c.params == 72 + 16 + 72 + 16 + 64 + 16 + 90 == 346
    assert c.macs == 8 * 64 * 9 + 8 * 64 * 9 + 8 * 64 * 8 + 80 == 13392
    assert [layer["type"] for layer in c.layers] == ["Conv2d", "Conv2d", "Conv2d", "Linear"]


def test_dscnn_block_stride_halves_the_map_per_block():
    # block_stride 2: the depthwise conv strides 8x8 -> 4x4, so it and the pointwise conv see a
    # quarter of the positions; the weights are the same
    spec = {**SMALL["dscnn"], "block_stride": 2}
    c = count_params_macs(build_student(spec, (1, 8, 8), 10), (1, 8, 8))
    assert c.params == 346
    assert c.macs == 8 * 64 * 9 + 8 * 16 * 9 + 8 * 16 * 8 + 80 == 6864
    with pytest.raises(UserError, match=r"block_stride"):
        build_student({**spec, "block_stride": 3}, (1, 8, 8), 10)


@pytest.mark.parametrize("kind", sorted(STUDENTS))
def test_student_exports_with_dynamic_batch(kind, tmp_path):
    shape = SHAPES[STUDENTS[kind].layout]
    torch.manual_seed(0)
    model = build_student(SMALL[kind], shape, 10).eval()
    batch = torch.export.Dim("batch", min=1, max=65536)
    ep = torch.export.export(model, (torch.randn(2, *shape),), dynamic_shapes=({0: batch},))
    torch.export.save(ep, tmp_path / "s.pt2")
    prog = torch.export.load(tmp_path / "s.pt2").module()
    for n in (1, 7):
        x = torch.randn(n, *shape)
        with torch.no_grad():
            out, ref = prog(x), model(x)
        assert out.shape == (n, 10)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_unknown_student_kind_names_the_choices():
    with pytest.raises(
        UserError, match=r"student.kind' must be one of 'mlp', 'cnn', 'dscnn'; got 'resnet'"
    ):
        build_student({"kind": "resnet"}, (64,), 10)


def test_unknown_student_key_suggests_the_right_one():
    with pytest.raises(UserError, match=r"student.chanels' is not known. Did you mean 'channels'"):
        build_student({"kind": "cnn", "chanels": [8]}, (1, 8, 8), 10)


def test_bad_student_value():
    with pytest.raises(
        UserError,
        match=r"student.hidden': must be a non-empty list of at most 64 integers in \[1, 65536\]",
    ):
        build_student({"kind": "mlp", "hidden": [0]}, (64,), 10)


def test_conv_student_on_flat_data_is_refused():
    with pytest.raises(
        UserError, match=r"student kind 'cnn' needs image-shaped data .* 14 features"
    ):
        student_input_shape({"kind": "cnn"}, 14, None)


def test_raw_input_folds_normalization_and_one_hot_into_the_graph():
    """student.pt2 takes raw rows: (x - mean) / std and the one-hot of codes are graph ops."""
    import numpy as np

    from distill.students import RawInput

    torch.manual_seed(0)
    mean, std = np.array([10.0, 0.0, 5.0], np.float32), np.array([2.0, 1.0, 4.0], np.float32)
    shape = RawInput.encoded_shape((3,), {1: 3})
    assert shape == (5,)
    net = torch.nn.Linear(5, 2)
    model = RawInput(net, (3,), mean, std, {1: 3}).eval()
    x = torch.tensor([[12.0, 2.0, 1.0], [8.0, 0.0, 9.0], [10.0, 7.0, 5.0]])  # code 7 is unseen
    want = torch.cat(
        [
            (x[:, [0, 2]] - torch.tensor([10.0, 5.0])) / torch.tensor([2.0, 4.0]),
            torch.tensor([[0.0, 0, 1], [1, 0, 0], [0, 0, 0]]),
        ],
        1,
    )
    torch.testing.assert_close(model(x), net(want))
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (x[:2].clone(),), dynamic_shapes=({0: batch},))
    torch.testing.assert_close(program.module()(x), net(want))


def test_raw_input_applies_the_training_normalization():
    """x * scale + shift (the form int8 quantizers annotate) is (x - mean) / std, per column too."""
    import torch

    from distill.students import RawInput

    net = torch.nn.Identity()
    mean, std = np.array([1.0, -2.0, 3.0], np.float32), np.array([2.0, 0.5, 4.0], np.float32)
    x = torch.tensor([[3.0, -1.0, 7.0], [1.0, -2.0, 3.0]])
    for m, s in ((mean, std), (2.0, 4.0)):
        got = RawInput(net, (3,), m, s)(x)
        want = (x - torch.as_tensor(m)) / torch.as_tensor(s)
        torch.testing.assert_close(got, want)
    assert set(RawInput(net, (3,), mean, std).state_dict()) == {"mean", "std"}
