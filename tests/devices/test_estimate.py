import dataclasses

import pytest

from devices import analyse, estimate
from devices.catalog import Figure, load_catalog

CAT = load_catalog()


def test_fit_recovers_latencies_generated_by_the_model(shared_data, exported_run):
    """Latencies made by known parameters are reproduced by the fit (in-sample) to within 2 %."""
    host = CAT.get("host")
    truth = estimate.Fit(
        {
            **estimate.PRIOR,
            "eff_litert_int8": 0.3,
            "eff_onnxruntime_fp32": 0.5,
            "ovh_litert": 800.0,
            "ovh_onnxruntime": 2000.0,
        },
        0,
        "host",
    )
    files = sorted(
        p for p in (exported_run / "export").iterdir() if p.suffix in (".onnx", ".tflite")
    )
    files += [
        shared_data / "mlperf_tiny" / "kws_ref_model.tflite",
        shared_data / "mlperf_tiny" / "ad01_int8.tflite",
    ]
    samples = []
    for f in files:
        a = analyse(f)
        fam = "onnxruntime" if f.suffix == ".onnx" else "litert"
        samples.append((a, fam, truth.predict_s(a, host, fam)))
    fit = estimate.fit(samples, host)
    for a, fam, y in samples:
        assert fit.predict_s(a, host, fam) == pytest.approx(y, rel=0.02)


def test_fitted_efficiencies_never_exceed_the_peak(shared_data):
    """Host latencies faster than the catalog's peak allows (truth efficiency 3.0) fit at most
    1.0: a share of the peak above 1 would transfer to other devices as an impossible speed."""
    host = CAT.get("host")
    truth = estimate.Fit({**estimate.PRIOR, "eff_litert_int8": 3.0}, 0, "host")
    samples = []
    for name in ("kws_ref_model.tflite", "ad01_int8.tflite"):
        a = analyse(shared_data / "mlperf_tiny" / name)
        samples.append((a, "litert", truth.predict_s(a, host, "litert")))
    fit = estimate.fit(samples, host)
    effs = {k: v for k, v in fit.params.items() if k.startswith("eff_")}
    assert max(effs.values()) <= 1.0 + 1e-9, effs
    assert fit.params["eff_litert_int8"] == pytest.approx(1.0, abs=1e-6)  # pinned at the bound


def test_transfer_scales_with_clock_and_macs_per_cycle(shared_data):
    a = analyse(shared_data / "mlperf_tiny" / "kws_ref_model.tflite")
    fit = estimate.Fit(dict(estimate.PRIOR), 0, "host")
    m4 = fit.predict_s(a, CAT.get("cortex-m4f-stm32l4r5"), "litert")
    m7 = fit.predict_s(a, CAT.get("cortex-m7-stm32h7a3"), "litert")
    assert m4 > m7 > 0  # 2 MAC/cycle at 120 MHz is slower than 4 MAC/cycle at 280 MHz
    pda = CAT.get("pda-pxa270")
    assert (
        0 < fit.predict_s(a, pda, "litert") < m4
    )  # 2 MAC/cycle (WMADD) at 624 MHz vs 2 at 120 MHz
    blind = dataclasses.replace(
        pda, figures={**pda.figures, "int8_macs_per_cycle": Figure(None, "not found")}
    )
    assert fit.predict_s(a, blind, "litert") is None  # no MACs/cycle figure: no guess


def test_loo_needs_three_measurements(shared_data):
    a = analyse(shared_data / "mlperf_tiny" / "ad01_int8.tflite")
    r = estimate.leave_one_out([(a, "litert", 1e-3)], ["x"], CAT.get("host"))
    assert r.median_ape is None and "needs >= 3" in r.note
