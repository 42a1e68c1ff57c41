"""MCU latency per named inference stack: per-operator-kind efficiencies fitted on published runs.

A stack (TFLite Micro + CMSIS-NN, X-CUBE-AI, microTVM + CMSIS-NN, ...) reaches a different share
of a core's peak on each kind of operator: dense convolutions, pointwise (1x1) convolutions,
depthwise convolutions, fully-connected layers and elementwise/pooling ops. On board ``b``::

    latency = sum_k work_k / (peak_b x clock_b x eff[stack, k]) + n_ops x op_cycles[stack] / clock_b

``work_k`` is MACs for the four matmul kinds and elements touched for elementwise ops; ``peak_b``
is the board's int8 MACs/cycle (fp32 MACs/cycle for float models: an extrapolation, since every
published run is int8). The efficiencies are fitted per stack, by least squares on log latency,
on that stack's published MLPerf Tiny runs (catalog ``stacks:``) across every board it ran on.
Few runs pin five efficiencies, so each kind's log-efficiency is pulled toward one shared
efficiency of the stack (weight ``SHRINK``); the elementwise efficiency and the per-op overhead
have weak priors (``PRIOR``, chosen, not measured; weight ``PRIOR_WEIGHT``) because the published
models spend under 1% of their work there. A board with no run of the stack gets the stack's
efficiencies through its own peak x clock: said in the record, with whether its core family
(catalog ``core_family``) matches a board the stack ran on.

The fit is checked leave-one-model-out (each model predicted from the stack's runs of the other
models only) and leave-one-board-out (each board predicted from the stack's runs on the other
boards only); ``evaluate`` returns both and ``benchmarks/mlperf_tiny_estimates.py`` prints them.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from .analysis import Analysis
from .catalog import Catalog, Device

COST_KINDS = ("conv", "pointwise", "depthwise", "fc", "elementwise")
SHRINK = 0.5
PRIOR = {"elementwise": 0.05, "op_cycles": 2000.0}
PRIOR_WEIGHT = 0.3
MODEL_NAME = (
    "tinyship mcu-stack-v1: sum_kind work/(peak(dtype) x clock x eff[stack, kind]) "
    "+ n_ops x op_cycles[stack]/clock"
)


@dataclass
class Work:
    """What a model asks of the core: work per cost kind and the number of operators."""

    by_kind: dict[str, int]
    n_ops: int
    dtype: str = "int8"


def work_of(a: Analysis) -> Work:
    """Work per cost kind from a file's analysis; the dtype is int8 unless a matmul op runs fp32."""
    by_kind = dict.fromkeys(COST_KINDS, 0)
    for op in a.ops:
        by_kind[op.cost_kind] += op.work
    mm = [op.dtype for op in a.ops if op.cost_kind != "elementwise"]
    dtype = "fp32" if mm and all(d == "fp32" for d in mm) else "int8"
    return Work(by_kind, a.n_ops, dtype)


def reference_work(catalog: Catalog, model: str) -> Work:
    ref = catalog.reference_models[model]
    return Work({k: int(ref["work"].get(k, 0)) for k in COST_KINDS}, int(ref["n_ops"]))


@dataclass
class StackFit:
    stack: str
    eff: dict[str, float]  # share of the peak per cost kind
    shared_eff: float
    op_cycles: float
    runs: list[dict]  # the runs it was fitted on
    boards: list[str]
    models: list[str]

    def predict_s(self, work: Work, dev: Device) -> float | None:
        """Seconds per inference on ``dev``; None when the catalog lacks its clock or peak."""
        clock, peak = dev.clock_hz, dev.macs_per_cycle(work.dtype)
        if clock is None or not peak:
            return None
        compute = sum(w / (peak * clock * self.eff[k]) for k, w in work.by_kind.items() if w)
        return compute + work.n_ops * self.op_cycles / clock


def fit(
    catalog: Catalog,
    stack: str,
    exclude_model: str | None = None,
    exclude_board: str | None = None,
) -> StackFit | None:
    """Fit one stack on its published runs, leaving out a model or a board; None without runs."""
    import numpy as np
    from scipy.optimize import least_squares

    st = catalog.stack(stack)
    runs = [
        r
        for r in st.runs
        if r["model"] != exclude_model
        and r["board"] != exclude_board
        and r["board"] in catalog.devices
    ]
    if not runs:
        return None
    data = [(reference_work(catalog, r["model"]), catalog.devices[r["board"]], r) for r in runs]
    n = len(COST_KINDS)

    def unpack(theta) -> StackFit:
        eff = dict(zip(COST_KINDS, (float(v) for v in np.exp(theta[:n]))))
        return StackFit(
            stack,
            eff,
            float(np.exp(theta[n])),
            float(np.exp(theta[n + 1])),
            runs,
            sorted({r["board"] for r in runs}),
            sorted({r["model"] for r in runs}),
        )

    def resid(theta):
        f = unpack(theta)
        r = [math.log(f.predict_s(w, d) * run["inferences_per_s"]) for w, d, run in data]
        shared = theta[n]
        r += [SHRINK * (theta[i] - shared) for i in range(n - 1)]
        r += [
            PRIOR_WEIGHT * (theta[n - 1] - math.log(PRIOR["elementwise"])),
            PRIOR_WEIGHT * (theta[n + 1] - math.log(PRIOR["op_cycles"])),
        ]
        return np.asarray(r)

    theta0 = np.log([0.1] * n + [0.1, PRIOR["op_cycles"]])
    return unpack(least_squares(resid, theta0, method="trf").x)


def _check(catalog: Catalog, stack: str, leave: str) -> list[dict]:
    """Leave one model (or board) out: fit without it, predict each of its runs."""
    st = catalog.stack(stack)
    groups = sorted({r[leave] for r in st.runs})
    rows = []
    for g in groups:
        f = fit(catalog, stack, **{f"exclude_{leave}": g})
        for r in (r for r in st.runs if r[leave] == g):
            pub_ms = 1e3 / r["inferences_per_s"]
            est = (
                None
                if f is None
                else f.predict_s(reference_work(catalog, r["model"]), catalog.devices[r["board"]])
            )
            rows.append(
                {
                    "stack": stack,
                    "model": r["model"],
                    "board": r["board"],
                    "published_ms": pub_ms,
                    "estimate_ms": None if est is None else est * 1e3,
                    "ratio": None if est is None else est * 1e3 / pub_ms,
                    "left_out": leave,
                    "note": None if f is not None else f"no other {leave}: nothing to fit on",
                }
            )
    return rows


def leave_one_model_out(catalog: Catalog, stack: str) -> list[dict]:
    return _check(catalog, stack, "model")


def leave_one_board_out(catalog: Catalog, stack: str) -> list[dict]:
    return _check(catalog, stack, "board")


def summarise(rows: list[dict]) -> dict[str, dict]:
    """Per board: median and worst absolute error (percent) of the rows that have an estimate."""
    out: dict[str, dict] = {}
    for b in sorted({r["board"] for r in rows}):
        errs = sorted(abs(r["ratio"] - 1) * 100 for r in rows if r["board"] == b and r["ratio"])
        out[b] = {
            "n": len(errs),
            "median_abs_err_pct": float(statistics.median(errs)) if errs else None,
            "max_abs_err_pct": max(errs) if errs else None,
        }
    return out


def transfer_note(catalog: Catalog, stack: str, dev: Device) -> str:
    """Where a board's estimate for ``stack`` comes from: its own runs, or a transfer (said so)."""
    st = catalog.stack(stack)
    boards = sorted({r["board"] for r in st.runs})
    if dev.name in boards:
        others = ", ".join(b for b in boards if b != dev.name) or "no other board"
        return f"calibrated on published {stack} runs on this board and on {others}"
    fams = {catalog.devices[b].core_family for b in boards if b in catalog.devices}
    if dev.core_family and dev.core_family in fams:
        return (
            f"no published {stack} run on this board: transferred from {', '.join(boards)} "
            f"(same {dev.core_family} core family) through MACs/cycle x clock"
        )
    return (
        f"no published {stack} run on this board or its core family ({dev.core_family or 'unknown'}): "
        f"transferred across core families from {', '.join(boards)} through MACs/cycle x clock; "
        "treat as a rough figure"
    )


def estimate(a: Analysis, dev: Device, catalog: Catalog, stack: str | None = None) -> dict:
    """The record's ``latency`` dict for one analysed file on one MCU board under a named stack."""
    st = catalog.stack(stack)
    f = fit(catalog, st.name)
    work = work_of(a)
    s = None if f is None else f.predict_s(work, dev)
    lomo = summarise(leave_one_model_out(catalog, st.name)).get(dev.name)
    return {
        "estimate_ms": None if s is None else s * 1e3,
        "model": MODEL_NAME,
        "stack": st.name,
        "stack_title": st.title,
        "calibrated_on": st.calibration,
        "transfer": transfer_note(catalog, st.name, dev),
        "efficiency": None
        if f is None
        else f"{st.name}: {transfer_note(catalog, st.name, dev)}; share of peak per kind: "
        + ", ".join(f"{k} {v:.3f}" for k, v in f.eff.items()),
        "efficiency_by_kind": None if f is None else {**f.eff, "shared": f.shared_eff},
        "op_cycles": None if f is None else f.op_cycles,
        "dtype": work.dtype
        + (
            " (fp32 on the fp32 peak with the int8 efficiencies: an extrapolation)"
            if work.dtype == "fp32"
            else ""
        ),
        "work_by_kind": work.by_kind,
        "lomo_on_this_board": lomo,
        **({} if s is not None else {"why": "catalog lacks this board's clock or MACs/cycle"}),
    }


def evaluate(catalog: Catalog) -> dict[str, dict]:
    """LOMO and LOBO rows and per-board summaries for every stack in the catalog."""
    out = {}
    for name in catalog.stacks:
        lomo, lobo = leave_one_model_out(catalog, name), leave_one_board_out(catalog, name)
        f = fit(catalog, name)
        out[name] = {
            "fit": None
            if f is None
            else {"eff": f.eff, "shared_eff": f.shared_eff, "op_cycles": f.op_cycles},
            "lomo": lomo,
            "lobo": lobo,
            "lomo_summary": summarise(lomo),
            "lobo_summary": summarise(lobo),
        }
    return out
