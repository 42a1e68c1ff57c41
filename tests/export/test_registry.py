"""The format registry: a format registered from outside the package goes through export.

The toy format is real, not a mock: it stores the MLP student's weights as an .npz
(no pickles) and runs them with numpy, so its parity with the torch student is a
measured figure.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from export_helpers import copy_run

import export
from export import registry
from export.records import ArtifactRecord, TensorSpec
from ground.errors import InternalError


def _convert(program, card, calibration, precision, out_path: Path, *, card_sha256="", exclude=()):
    """Linear/ReLU stacks only: each Linear's weight and bias, in graph order."""
    sd = {k: v.detach().numpy() for k, v in program.state_dict.items()}
    weights = sorted(k for k in sd if k.endswith(".weight"))
    arrays = {}
    for i, w in enumerate(weights):
        arrays[f"w{i}"] = sd[w]
        arrays[f"b{i}"] = sd[w[: -len("weight")] + "bias"]
    with open(out_path, "wb") as fh:
        np.savez(fh, **arrays)
    return ArtifactRecord(
        file=out_path.name,
        format="npz-mlp",
        precision=precision,
        input=TensorSpec([1, arrays["w0"].shape[1]], "float32"),
        output=TensorSpec([1, arrays[f"w{len(weights) - 1}"].shape[0]], "float32", kind="logits"),
    )


def _predict(path: Path, x: np.ndarray) -> np.ndarray:
    with np.load(path, allow_pickle=False) as z:
        n = len(z.files) // 2
        h = x.reshape(len(x), -1).astype(np.float32)
        for i in range(n):
            h = h @ z[f"w{i}"].T + z[f"b{i}"]
            if i < n - 1:
                h = np.maximum(h, 0.0)
    return h.astype(np.float32)


TOY = registry.Format(
    name="npz-mlp",
    ext="npz",
    precisions=("fp32",),
    convert=_convert,
    predict=_predict,
    runtime=lambda: f"numpy {np.__version__}",
    runtime_family="numpy",
    device_runtimes=(registry.DeviceRuntime(("host",), "numpy"),),
)


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setattr(registry, "FORMATS", dict(registry.formats()))
    registry.register(TOY)
    return TOY


def test_a_format_registered_from_outside_goes_through_export(
    toy_registered, fixture_runs, tmp_path
):
    run = copy_run(fixture_runs["mlp"], tmp_path / "run")
    report = export.run(run, formats=["npz-mlp"], progress=False)
    (art,) = report.artifacts
    assert art.file == "model.fp32.npz" and art.passed is True
    assert art.parity.agreement == 1.0 and art.parity.max_abs_prob_err < 1e-4
    doc = json.loads((run / "export" / "exports.json").read_text())
    (rec,) = doc["artifacts"]
    assert rec["runtime_family"] == "numpy" and rec["runs_on"] == ["host"]
    assert rec["not_on"]["mcu"] == "no numpy runtime on this device class"


def test_registration_order_is_the_rank_then_registration(toy_registered):
    names = list(registry.formats())
    assert names[:3] == ["onnx", "tflite", "coreml"] and names[-1] == "npz-mlp"


def test_registries_refuse_a_duplicate_name(toy_registered):
    with pytest.raises(InternalError, match="export format 'npz-mlp' registered twice"):
        registry.register(TOY)


def test_every_format_writes_its_facts():
    for fmt in registry.formats().values():
        for precision in fmt.precisions:
            f = fmt.facts(precision)
            assert f["runtime_family"] and f["runs_on"]
            assert set(f["runs_on"]) | set(f["not_on"]) == set(registry.DEVICE_CLASSES)


def test_tflite_facts_name_tflite_micro_precisions():
    tfl = registry.get("tflite")
    assert "mcu" in tfl.facts("int8-full")["runs_on"]
    assert tfl.facts("int8-dynamic")["not_on"]["mcu"] == (
        "TFLite Micro has no kernels for 'int8-dynamic' (runs fp32, int8-full)"
    )
