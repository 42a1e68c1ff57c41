"""MCU latency per named stack as two factors on the zoo's TFLite Micro cycles (mcu-stack-v3).

mcu-stack-v2 (devices/stacks.py) splits a stack's cost between MACs and outputs from the published
runs alone; with ResNet-8 (ic) withheld no published model has dense convolutions, and the split
extrapolates there (issue 37: 1.43 and 1.53 true/estimated). v3 takes the shape of a model's cost
from the zoo estimator instead (devices/zoo_fit.py, fitted on emulated TFLM + CMSIS-NN cycles of 48
generated models, dense convs among them, and on no published run), and fits only how much faster or
slower a stack is than that, per op class. On board ``b`` with emulated core ``c_b``::

    latency = (k_conv[stack] x T_conv(model, c_b) + k_fc[stack] x T_fc(model, c_b))
              / (issue_width_b x clock_b)

``T_fc`` is the zoo estimate's fully-connected terms (``FC_FEATURES``), ``T_conv`` all its other
terms (conv, pointwise, depthwise, pooling, elementwise, per op, per invoke): the published runs show
a stack's speed relative to TFLM differing between FC layers and convolutions (the FC autoencoder
against the conv models), and similar across conv models. ``issue_width`` is the catalog's sourced
figure: the emulated cycles use the Cortex-M4 timing table on the M7 too (devices/firmware/timing.py:
dual issue not modelled). Each stack is fitted alone, by least squares on log(estimate / published)
over its published runs, with a weak tie (``FC_TIE``) of log k_fc to log k_conv so that a fit with no
FC run keeps k_fc = k_conv. A board with no emulated core or no zoo fit for it, a model whose layers
are unknown, or an fp32 model (the zoo is int8) has no v3 estimate (None, said by the caller).

Designed after seeing v2's misses (benchmarks/RESULTS.notes.md, issue 37 task B: the rule V37 fixed
before any v3 figure); ``benchmarks/estimator_validation.py`` scores it beside v2. V37 failed (with
the autoencoder withheld, the only FC model, k_fc has no run to be fitted on: 0.74-1.66 true /
estimated), so no record uses v3; it stays here so the benchmark reproduces that verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .catalog import Catalog, Device
from .zoo_fit import CoreFit

ESTIMATOR = "mcu-stack-v3"
MODEL_NAME = (
    "tinyship mcu-stack-v3: (k_conv[stack] x T_conv + k_fc[stack] x T_fc) / (issue_width x clock), "
    "T = zoo-cycles-v2 TFLM cycles on the board's emulated core, T_fc its fully-connected terms"
)
FC_FEATURES = frozenset({"fc", "fc_out", "fc_iters"})
FC_TIE = 0.1
RULES = {  # held-out rule -> (stack's run, scored run) -> leave the run out of the fit
    "lomo_everywhere": lambda r, run: r["model"] == run["model"],
    "lobo_everywhere": lambda r, run: r["board"] == run["board"],
    "lomo_lobo_everywhere": lambda r, run: r["model"] == run["model"] or r["board"] == run["board"],
}


def split_cycles(cf: CoreFit, x: Mapping[str, float]) -> tuple[float, float]:
    """(conv-like, fully-connected) cycles of the zoo estimate ``cf`` for feature values ``x``."""
    conv = sum(th * float(x.get(f, 0.0)) for f, th in cf.theta.items() if f not in FC_FEATURES)
    fc = sum(th * float(x.get(f, 0.0)) for f, th in cf.theta.items() if f in FC_FEATURES)
    return conv, fc


def base_s(
    dev: Device, x: Mapping[str, float], fits: Mapping[str, CoreFit]
) -> tuple[float, float] | None:
    """(T_conv, T_fc) in seconds at factor 1 on ``dev``; None without its core's fit or clock."""
    cf = fits.get((dev.emulation or {}).get("core") or "")
    clock = dev.clock_hz
    if cf is None or not clock:
        return None
    per_s = float(dev.value("issue_width") or 1) * clock
    conv, fc = split_cycles(cf, x)
    return conv / per_s, fc / per_s


@dataclass
class StackFitV3:
    """One stack's two factors on the zoo's TFLM cycles and what they were fitted on."""

    stack: str
    k_conv: float
    k_fc: float
    models: list[str]
    boards: list[str]
    n_runs: int

    def predict_s(
        self, x: Mapping[str, float], dev: Device, fits: Mapping[str, CoreFit]
    ) -> float | None:
        """Seconds per inference on ``dev`` of a model with zoo features ``x``."""
        b = base_s(dev, x, fits)
        return None if b is None else self.k_conv * b[0] + self.k_fc * b[1]

    def costs(self) -> dict[str, float]:
        return {"k_conv": self.k_conv, "k_fc": self.k_fc}


def reference_features(catalog: Catalog) -> dict[str, dict[str, float]]:
    """Zoo features of each catalog reference model whose layers are known: from its file where it is
    here, else from its layer shapes (devices/reference_layers.py)."""
    from . import reference_layers, zoo_fit
    from .firmware.bands import reference_file

    out = {}
    for m in catalog.reference_models:
        path = reference_file(catalog, m)
        if path is None and m not in reference_layers.BUILDERS:
            continue
        out[m] = zoo_fit.features(reference_layers.reference_analysis(catalog, m, path))
    return out


def fit_stack(
    catalog: Catalog,
    stack: str,
    fits: Mapping[str, CoreFit],
    feats: Mapping[str, Mapping[str, float]],
    exclude: Callable[[dict], bool] | None = None,
) -> StackFitV3 | None:
    """The stack's factors from its published runs less the excluded ones; None when none is left."""
    import numpy as np
    from scipy.optimize import least_squares

    rows = []
    for r in catalog.stack(stack).runs:
        dev = catalog.devices.get(r["board"])
        if dev is None or r["model"] not in feats or (exclude and exclude(r)):
            continue
        b = base_s(dev, feats[r["model"]], fits)
        if b is not None and b[0] + b[1] > 0:
            rows.append((b, float(r["inferences_per_s"]), r))
    if not rows:
        return None

    def resid(theta):
        kc, kf = np.exp(theta)
        r = [math.log(kc * b[0] + kf * b[1]) + math.log(ips) for b, ips, _ in rows]
        return np.asarray([*r, FC_TIE * (theta[1] - theta[0])])

    k0 = math.log(float(np.median([1 / (ips * (b[0] + b[1])) for b, ips, _ in rows])))
    kc, kf = (float(v) for v in np.exp(least_squares(resid, [k0, k0], method="trf").x))
    return StackFitV3(stack, kc, kf, sorted({r["model"] for *_, r in rows}),
                      sorted({r["board"] for *_, r in rows}), len(rows))  # fmt: skip


def held_out(
    catalog: Catalog,
    fits: Mapping[str, CoreFit],
    feats: Mapping[str, Mapping[str, float]],
) -> list[dict]:
    """One row per published run with its true/estimated ratio under each of ``RULES`` (None: no
    estimate). Each stack is fitted alone, so withholding a model "everywhere" is withholding it
    from its stack's fit; ``lobo_this_stack`` is therefore ``lobo_everywhere``."""
    rows = []
    for name, st in catalog.stacks.items():
        for run in st.runs:
            dev = catalog.devices.get(run["board"])
            if dev is None or run["model"] not in feats:
                continue
            pub_s = 1 / float(run["inferences_per_s"])
            row = {"stack": name, "model": run["model"], "board": run["board"],
                   "published_ms": pub_s * 1e3}  # fmt: skip
            for rule, leave in RULES.items():
                f = fit_stack(
                    catalog, name, fits, feats, lambda r, run=run, leave=leave: leave(r, run)
                )
                est = None if f is None else f.predict_s(feats[run["model"]], dev, fits)
                row[rule] = None if not est else pub_s / est
            row["lobo_this_stack"] = row["lobo_everywhere"]
            rows.append(row)
    return rows
