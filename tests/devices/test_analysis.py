import pytest
import torch

from devices.analysis import analyse
from devices.arena import Buffer, plan_arena
from ground.errors import UserError

MODELS = {
    # (module, input shape, MACs, params) counted by hand
    "linear": (lambda: torch.nn.Linear(4, 3), (1, 4), 4 * 3, 4 * 3 + 3),
    "conv": (
        lambda: torch.nn.Conv2d(2, 4, 3),
        (1, 2, 5, 5),
        (4 * 3 * 3) * (2 * 3 * 3),
        4 * 2 * 3 * 3 + 4,
    ),
}


def _onnx(module, shape, path):
    torch.onnx.export(module.eval(), (torch.randn(*shape),), str(path), dynamo=True)
    return path


def _tflite(module, shape, path):
    import litert_torch

    litert_torch.convert(module.eval(), (torch.randn(*shape),)).export(str(path))
    return path


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
@pytest.mark.parametrize("name", list(MODELS))
def test_hand_counted_macs_and_params(tmp_path, fmt, name):
    make, shape, macs, params = MODELS[name]
    torch.manual_seed(0)
    path = (_onnx if fmt == "onnx" else _tflite)(make(), shape, tmp_path / f"m.{fmt}")
    a = analyse(path)
    assert a.macs == macs  # headline MACs: conv/depthwise/FC only
    assert a.other_work == sum(o.work for o in a.ops if o.kind not in ("conv", "fully_connected"))
    assert a.params == params
    assert a.weight_bytes >= params * 4 - 64  # fp32 weights (+ maybe a shape constant)


def test_arena_planner_known_optimum():
    # A(100) alive 0-1, B(50) 1-2, C(100) 2-3: A and C never overlap in time, so they share offset 0;
    # B overlaps both. Optimum = 150 bytes; a naive sum would be 250.
    bufs = [Buffer("A", 100, 0, 1), Buffer("B", 50, 1, 2), Buffer("C", 100, 2, 3)]
    plan = plan_arena(bufs, alignment=1)
    assert plan.arena_bytes == 150
    assert plan.offsets["A"] == plan.offsets["C"] == 0 and plan.offsets["B"] == 100
    assert plan.peak_live_bytes == 150


def test_arena_planner_alignment():
    plan = plan_arena([Buffer("a", 10, 0, 0), Buffer("b", 10, 0, 0)], alignment=16)
    assert plan.arena_bytes == 32


@pytest.mark.parametrize(
    "name,macs,params",
    [("kws_ref_model.tflite", 2_656_768, 22_604), ("ad01_int8.tflite", 264_192, 265_864)],
)
def test_real_mlperf_tiny_models(shared_data, name, macs, params):
    a = analyse(shared_data / "mlperf_tiny" / name)
    # reference counts: our own count of these files, checked against the layer shapes by hand
    # (KWS: conv 10x4 + 4 dw/pw blocks of 64ch on 25x5 + FC; AD: 10 dense layers 640-128-...-640)
    assert a.macs == macs and a.params == params
    # pooling/softmax/reshape work is reported beside the headline, not inside it
    assert a.other_work == (8_076 if name.startswith("kws") else 0)
    assert a.tensor_dtypes == ["int8"] and a.tflm_refusal is None
    assert a.input["dtype"] == "int8" and a.input["quantization"]["scale"] > 0
    assert 0 < a.peak_activation_bytes <= a.activation_bytes
    assert a.weight_bytes_by_dtype["int8"] > 0


def test_arena_compared_with_tflm(exported_run):
    import json

    ex = json.loads((exported_run / "export" / "exports.json").read_text())
    art = next(a for a in ex["artifacts"] if a["file"] == "model.int8-full.tflite")
    a = analyse(exported_run / "export" / art["file"], art["tflm_arena_bytes"])
    assert a.tflm_arena_bytes == art["tflm_arena_bytes"]
    assert a.arena_delta_bytes == a.tflm_arena_bytes - a.peak_activation_bytes


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_corrupt_model_is_a_user_error(tmp_path, suffix):
    p = tmp_path / f"broken{suffix}"
    p.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(UserError, match="broken"):
        analyse(p)


def test_missing_and_unknown_suffix(tmp_path):
    with pytest.raises(UserError, match="not found"):
        analyse(tmp_path / "nope.tflite")
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(UserError, match="analysable: .onnx, .tflite, .mlpackage"):
        analyse(tmp_path / "m.pt")


def test_arena_ties_break_as_tflm_does():
    """TFLM sorts aligned sizes with a stable sort of the list filled in reverse order of addition:
    among equal sizes the buffer added last is placed first (greedy_memory_planner.cc)."""
    # a (added first) and b (added second) are equal size and alive together: b goes first, at 0
    plan = plan_arena([Buffer("a", 32, 0, 1, 0), Buffer("b", 32, 0, 1, 1)])
    assert plan.offsets["b"] == 0 and plan.offsets["a"] == 32
    # 20 and 30 bytes both align to 32: a tie for TFLM, so order decides, not the raw size
    plan = plan_arena([Buffer("x", 30, 0, 0, 0), Buffer("y", 20, 0, 0, 1)])
    assert plan.offsets["y"] == 0 and plan.offsets["x"] == 32
