"""The int8 fallback: layer errors name the outlier layers, which are kept float until the gate passes."""

from __future__ import annotations

import pytest
from export_helpers import copy_run, outlier_mlp

import export
from export.registry import formats

FALLBACK = [(f.name, p) for f in formats().values() for p in f.fallback_precisions]


def test_channel_error_sees_channels_crushed_by_one_outlier():
    """Per-tensor int8 with one huge channel: the others lose nearly every level, yet the
    whole-tensor relative error stays tiny (the outlier dominates the norm). The ONNX fallback
    ranks layers by the per-channel error, so it blames that layer, not its neighbours."""
    import numpy as np

    from export.formats.common import channel_error, relative_error

    rng = np.random.default_rng(0)
    ref = rng.normal(size=(64, 8))
    ref[:, 0] = 2000.0 + ref[:, 0]
    scale = np.abs(ref).max() / 127
    got = np.round(ref / scale) * scale  # per-tensor symmetric int8
    assert relative_error(ref, got) < 0.01
    assert channel_error(ref, got) > 0.5
    assert channel_error(ref, ref) == 0.0
    dead = ref.copy()
    dead[:, 3] = 0.0  # a dead unit, exactly reproduced: no error, no division by zero
    assert channel_error(dead, dead) == 0.0


@pytest.fixture(scope="module")
def outlier_run(fixture_runs, tmp_path_factory):
    return outlier_mlp(copy_run(fixture_runs["mlp"], tmp_path_factory.mktemp("outlier")))


@pytest.mark.parametrize("fmt,precision", FALLBACK)
def test_outlier_layer_is_kept_float_and_recorded(outlier_run, tmp_path, fmt, precision):
    run = copy_run(outlier_run, tmp_path / "run")
    # the gate at 0.97, not the default 0.99: the fixture MLP's weights depend on the CPU's
    # vector kernels (benchmarks/RESULTS.notes.md, T36m), and on an AVX2 CPU its first layer's
    # own int8 noise flips about 1.5% of the holdout rows, so at 0.99 the fallback rightly kept
    # every layer float there; the outlier's first attempt (about 0.11) fails either gate
    report = export.run(
        run, formats=[fmt], precisions=[precision], thresholds={"int8": 0.97}, progress=False
    )
    rec = report.artifact(f"{fmt}:{precision}")
    assert rec.passed and rec.parity.agreement >= 0.97
    assert rec.layer_errors and rec.layer_errors[0]["error"] > 0.5  # the first attempt was far off
    assert rec.layer_errors == sorted(rec.layer_errors, key=lambda e: -e["error"])
    assert rec.excluded_layers and rec.excluded_layers[0] == rec.layer_errors[0]["layer"]
    # some layers stayed int8: not a float file called int8
    if fmt == "onnx":
        import onnx

        model = onnx.load(str(run / "export" / rec.file))
        assert any(i.data_type == onnx.TensorProto.INT8 for i in model.graph.initializer)
        # the first layer and its ReLU (no outlier) stayed quantized
        assert not {"node_linear", "node_relu"} & set(rec.excluded_layers), rec.excluded_layers
    assert any("first attempt agreement" in n and "gate passed" in n for n in rec.notes)
    if fmt == "tflite":
        assert (
            rec.input.dtype == "int8" and "0" not in rec.excluded_layers
        )  # first layer stayed int8
        assert rec.tflm_arena_bytes and rec.tflm_parity.passed


def test_threshold_too_high_for_any_exclusion_still_fails_with_all_layers_tried(
    fixture_runs, tmp_path
):
    run = copy_run(fixture_runs["mlp"], tmp_path / "run")
    report = export.run(
        run,
        formats=["onnx"],
        precisions=["int8"],
        thresholds={"int8": 1.0},
        keep_going=True,
        progress=False,
    )
    rec = report.artifact("onnx:int8")
    if (
        rec.parity.agreement < 1.0
    ):  # the first attempt misses at least one example: the fallback must have run
        assert rec.excluded_layers and rec.layer_errors
    if rec.error:  # every layer ended float: a float file is never recorded as int8
        assert "kept every one of the" in rec.error and rec.passed is False
        # the refusal states the agreement it reached and the threshold (issue 34)
        assert f"agreement {rec.parity.agreement:.4f}" in rec.error
        assert "threshold 1.0" in rec.error
        assert not (run / "export" / rec.file).exists()
    else:
        assert rec.passed == (rec.parity.agreement >= 1.0)
