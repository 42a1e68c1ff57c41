"""Latency estimates for devices that are not reachable: a per-layer roofline-style cost model.

Per operator: compute time = MACs / (MACs-per-cycle(dtype) x clock x efficiency(dtype));
memory time = bytes moved / bandwidth (only where the catalog has a bandwidth figure,
else 0); op time = max(compute, memory).
Latency = per-inference call overhead + sum over ops of (op time + per-op overhead).
Efficiency is fitted per runtime family (onnxruntime, LiteRT) and dtype for conv/depthwise/FC
ops and once per family for vector ops (pooling, elementwise). Overheads are kept in cycles so
they scale with the clock.

The efficiencies and overheads are fitted on host measurements of the fixed calibration set
(devices/host_calibration.py; never the run's artifacts), by least squares on log latency with
a weak prior so a parameter with no data stays at its prior (hybrid: no model in the set), then
transferred to a device through its own MACs/cycle x clock. The fit's error is measured
leave-one-out across the calibration set and always reported.

A host's SIMD units reach a larger share of their peak than a microcontroller's
(MLPerf Tiny: host-transferred estimates were 2.4-3.3x too fast on Cortex-M4F/M7), so
microcontrollers do not use this model: their estimates come from a named inference
stack fitted on published runs (devices/stacks.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .analysis import Analysis
from .catalog import Device

MODEL_NAME = (
    "tinyship roofline-v2: call_cycles/clock + sum_op [max(MACs/(peak(dtype)*clock*eff(kind,dtype)), "
    "bytes/bw) + overhead_cycles/clock]"
)
DTYPES = ("fp32", "int8", "hybrid")
FAMILIES = ("onnxruntime", "litert")
MATMUL_KINDS = ("conv", "depthwise_conv", "fully_connected")
PRIOR = {
    **{
        f"eff_{fam}_{dt}": 0.2
        for fam in ("onnxruntime", "litert")
        for dt in ("fp32", "int8", "hybrid")
    },
    "eff_vector_onnxruntime": 0.1,
    "eff_vector_litert": 0.1,
    "ovh_onnxruntime": 3000.0,
    "ovh_litert": 3000.0,
    "call_onnxruntime": 5000.0,
    "call_litert": 5000.0,
}
PRIOR_WEIGHT = 0.05
EFF_MAX = 1.0  # an efficiency is a share of the peak (fit bound; part of the cached fit's tag)


def efficiency_source(dev: Device) -> str:
    """Where a (non-MCU) device's efficiency comes from, for the record beside each estimate."""
    return "host fit, transferred through the device's MACs/cycle x clock"


def family(runtime: str) -> str:
    return "onnxruntime" if "onnxruntime" in runtime else "litert"


@dataclass
class Fit:
    params: dict[str, float]
    n: int
    host: str

    def predict_s(self, a: Analysis, dev: Device, fam: str) -> float | None:
        """Seconds per inference on ``dev`` with the host-fitted efficiencies and overheads."""
        clock = dev.clock_hz
        if clock is None or a.macs is None or fam not in FAMILIES:
            return None  # no clock, no MAC count, or a runtime family nothing was fitted for
        bw = dev.value("mem_bw_bytes_per_s")
        total = 0.0
        for op in a.ops:
            peak = dev.macs_per_cycle(op.dtype)
            if peak is None:
                return None
            if op.kind not in MATMUL_KINDS:
                eff = self.params[f"eff_vector_{fam}"]
            else:
                eff = self.params[f"eff_{fam}_{op.dtype}"]
            compute = op.work / (peak * clock * eff)
            memory = (op.weight_bytes + op.in_bytes + op.out_bytes) / bw if bw else 0.0
            total += max(compute, memory)
        return total + (a.n_ops * self.params[f"ovh_{fam}"] + self.params[f"call_{fam}"]) / clock


def _theta_names() -> list[str]:
    return list(PRIOR)


def fit(samples: list[tuple[Analysis, str, float]], host: Device) -> Fit:
    """Fit efficiencies/overheads so host estimates match host measurements (seconds), log-space LSQ."""
    from scipy.optimize import least_squares

    names = _theta_names()
    theta0 = np.log([PRIOR[n] for n in names])

    def resid(theta):
        f = Fit(dict(zip(names, np.exp(theta))), len(samples), host.name)
        r = [math.log(max(f.predict_s(a, host, fam), 1e-12)) - math.log(y) for a, fam, y in samples]
        return np.concatenate([np.asarray(r), PRIOR_WEIGHT * (theta - theta0)])

    # an efficiency is a share of the peak: at most 1. Unbounded, the host's int8 TFLite runs fitted
    # 1.07 (its XNNPACK kernels beat the catalog's nominal int8 MACs/cycle), and a device the fit is
    # transferred to was then estimated faster than its own peak.
    upper = np.array([math.log(EFF_MAX) if n.startswith("eff_") else np.inf for n in names])
    sol = least_squares(resid, theta0, method="trf", bounds=(np.full(len(names), -np.inf), upper))
    return Fit(dict(zip(names, (float(v) for v in np.exp(sol.x)))), len(samples), host.name)


@dataclass
class LooResult:
    per_artifact: list[dict] = field(default_factory=list)
    median_ape: float | None = None
    n: int = 0
    note: str = ""


def leave_one_out(
    samples: list[tuple[Analysis, str, float]], labels: list[str], host: Device
) -> LooResult:
    """Fit on all but one measured artifact, predict it, report its absolute percentage error."""
    if len(samples) < 3:
        return LooResult(note=f"leave-one-out needs >= 3 host measurements; got {len(samples)}")
    rows = []
    for i in range(len(samples)):
        f = fit(samples[:i] + samples[i + 1 :], host)
        a, fam, y = samples[i]
        pred = f.predict_s(a, host, fam)
        ape = abs(pred - y) / y * 100
        rows.append(
            {
                "artifact": labels[i],
                "runtime_family": fam,
                "measured_ms": y * 1e3,
                "predicted_ms": pred * 1e3,
                "ape_pct": ape,
            }
        )
    return LooResult(
        rows,
        float(np.median([r["ape_pct"] for r in rows])),
        len(rows),
        "fit on all other host measurements, predict this one (absolute percentage error)",
    )
