"""MCU latency per named inference stack, fitted on published runs with costs shared across stacks.

A stack (TFLite Micro + CMSIS-NN, X-CUBE-AI, microTVM + CMSIS-NN, ...) is cheaper or dearer per
multiply-accumulate, but the rest of what an int8 layer costs is the same code on every stack: a
fully-connected layer at batch 1 streams each weight once (a vector x matrix loop without weight
reuse), and every output element of a conv or FC layer is requantized (fixed-point multiply, shift,
offset, clamp, store) whatever MAC kernel produced it. On board ``b``::

    cycles = (mac_cycles[stack] x conv MACs + fc_cycles x FC MACs
              + output_cycles x conv/FC output elements + elementwise_cycles x elements) / peak_b
             + n_ops x op_cycles
    latency = cycles / clock_b

"conv MACs" are the dense, pointwise (1x1) and depthwise MACs; ``peak_b`` is the board's int8
MACs/cycle (fp32 MACs/cycle for float models: an extrapolation, since every published run is int8)
times its issue width (catalog ``issue_width``: the M7 issues two instructions a cycle on one MAC
pipe, so its kernels run about twice the M4's work per cycle at the same 2 MACs/cycle peak),
so the costs are in cycles at a peak of one MAC per cycle: the per-output work is integer code
that issues on the same pipes as the MACs (the M7's dual issue speeds both). Only ``mac_cycles``
belongs to a stack; ``fc_cycles``, ``output_cycles``, ``elementwise_cycles`` and ``op_cycles`` are
shared by every stack and fitted jointly, by least squares on log latency, on all the stacks'
published MLPerf Tiny runs (catalog ``stacks:``). Six parameters for 20 runs, where one efficiency
per operator kind per stack (mcu-stack-v1) needed 18: with four models that each exercise a
different kind (DS-CNN's depthwise/pointwise pairs, the autoencoder's FC layers, ResNet-8's dense
3x3 convs, MobileNet's narrow layers), per-kind efficiencies of one stack were fitted on one model
each and a held-out model was predicted from nothing. Why these features: the published cycles per
MAC fall with the MACs per output element (ResNet-8's 145 < DS-CNN's 37 < MobileNet's 32 on every
stack), and the FC autoencoder runs at 3.4-4.6 cycles per MAC on the L4R5 on all three stacks,
whereas their convolutions differ 2.5x. Elementwise work (under 1% of the published models') and
the per-op overhead have weak priors (``PRIOR``, chosen, not measured; weight ``PRIOR_WEIGHT``), and
``fc_cycles`` is pulled weakly toward the stacks' mean ``mac_cycles`` (``FC_TIE``) so that a fit
without FC-heavy runs still has a value. A board with no run of a stack gets its costs through its
own peak x clock: said in the record, with whether its core family (catalog ``core_family``)
matches a board the stack ran on.

Checks (``evaluate``; ``benchmarks/mlperf_tiny_estimates.py`` prints them): leave-one-model-out
(LOMO: the model's runs on this stack left out; the other stacks' runs of it stay, as published
facts about other stacks), LOMO on every stack (the model left out of every stack's runs: a model
no one has published), and leave-one-board-out (LOBO: the stack's runs on that board left out).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from .analysis import Analysis
from .catalog import Catalog, Device

COST_KINDS = ("conv", "pointwise", "depthwise", "fc", "elementwise")
CONV_KINDS = ("conv", "pointwise", "depthwise")
SHARED = ("fc_cycles", "output_cycles", "elementwise_cycles", "op_cycles")
PRIOR = {"elementwise_cycles": 20.0, "op_cycles": 2000.0}
PRIOR_WEIGHT = 0.3
FC_TIE = 0.1
MODEL_NAME = (
    "tinyship mcu-stack-v2: (mac_cycles[stack] x conv MACs + fc_cycles x FC MACs + output_cycles x "
    "conv/FC outputs + elementwise_cycles x elements) / peak(dtype) + n_ops x op_cycles, over clock"
)


@dataclass
class Work:
    """What a model asks of the core: work per cost kind, conv/FC output elements, operators."""

    by_kind: dict[str, int]
    n_ops: int
    dtype: str = "int8"
    outputs: int = 0  # output elements of conv/pointwise/depthwise/FC ops (each requantized once)


def work_of(a: Analysis) -> Work:
    """Work per cost kind from a file's analysis; the dtype is int8 unless a matmul op runs fp32."""
    by_kind = dict.fromkeys(COST_KINDS, 0)
    for op in a.ops:
        by_kind[op.cost_kind] += op.work
    mm = [op for op in a.ops if op.cost_kind != "elementwise"]
    dtype = "fp32" if mm and all(op.dtype == "fp32" for op in mm) else "int8"
    return Work(by_kind, a.n_ops, dtype, sum(op.out_elems for op in mm))


def reference_work(catalog: Catalog, model: str) -> Work:
    ref = catalog.reference_models[model]
    return Work(
        {k: int(ref["work"].get(k, 0)) for k in COST_KINDS},
        int(ref["n_ops"]),
        outputs=int(ref.get("outputs", 0)),
    )


@dataclass
class StackFit:
    """One stack's costs (cycles at a peak of one MAC/cycle) and the runs of the joint fit."""

    stack: str
    mac_cycles: float
    fc_cycles: float
    output_cycles: float
    elementwise_cycles: float
    op_cycles: float
    runs: list[dict]  # this stack's runs in the fit
    boards: list[str]
    models: list[str]
    n_runs_all: int = 0  # runs of every stack in the joint fit

    @property
    def eff(self) -> dict[str, float]:
        """Share of the peak per cost kind (1 / cycles per unit of work)."""
        return {
            **{k: 1 / self.mac_cycles for k in CONV_KINDS},
            "fc": 1 / self.fc_cycles,
            "elementwise": 1 / self.elementwise_cycles,
        }

    def costs(self) -> dict[str, float]:
        return {"mac_cycles": self.mac_cycles, **{k: getattr(self, k) for k in SHARED}}

    def predict_s(self, work: Work, dev: Device) -> float | None:
        """Seconds per inference on ``dev``; None when the catalog lacks its clock or peak."""
        clock, peak = dev.clock_hz, dev.throughput(work.dtype)
        if clock is None or not peak:
            return None
        w = work.by_kind
        cycles = (
            self.mac_cycles * sum(w.get(k, 0) for k in CONV_KINDS)
            + self.fc_cycles * w.get("fc", 0)
            + self.output_cycles * work.outputs
            + self.elementwise_cycles * w.get("elementwise", 0)
        ) / peak + work.n_ops * self.op_cycles
        return cycles / clock


Exclude = Callable[[str, dict], bool]  # (stack, run) -> leave this run out of the fit
_CACHE: dict[str, dict[str, StackFit]] = {}


def _usable(catalog: Catalog, run: dict) -> bool:
    return run["board"] in catalog.devices and run["model"] in catalog.reference_models


def _key(catalog: Catalog, tag: str) -> str:
    boards = {
        r["board"] for s in catalog.stacks.values() for r in s.runs if r["board"] in catalog.devices
    }
    return json.dumps(
        [
            tag,
            {n: s.runs for n, s in catalog.stacks.items()},
            catalog.reference_models,
            {
                b: [catalog.devices[b].clock_hz, catalog.devices[b].throughput("int8")]
                for b in sorted(boards)
            },
        ],
        sort_keys=True,
        default=str,
    )


def fit_all(
    catalog: Catalog, exclude: Exclude | None = None, tag: str = "all"
) -> dict[str, StackFit]:
    """Fit every stack jointly on its published runs (less the excluded ones); stacks left with no
    run are absent from the result. ``tag`` names ``exclude`` for the cache."""
    key = _key(catalog, tag)
    if key in _CACHE:
        return _CACHE[key]
    import numpy as np
    from scipy.optimize import least_squares

    runs = {
        name: [r for r in st.runs if _usable(catalog, r) and not (exclude and exclude(name, r))]
        for name, st in catalog.stacks.items()
    }
    names = [n for n, rs in runs.items() if rs]
    if not names:
        _CACHE[key] = {}
        return {}
    data = [
        (names.index(n), reference_work(catalog, r["model"]), catalog.devices[r["board"]], r)
        for n in names
        for r in runs[n]
    ]
    ns = len(names)

    def unpack(theta) -> dict[str, StackFit]:
        shared = dict(zip(SHARED, (float(v) for v in np.exp(theta[ns:]))))
        return {
            n: StackFit(
                n,
                float(np.exp(theta[i])),
                **shared,
                runs=runs[n],
                boards=sorted({r["board"] for r in runs[n]}),
                models=sorted({r["model"] for r in runs[n]}),
                n_runs_all=len(data),
            )
            for i, n in enumerate(names)
        }

    def resid(theta):
        fits = unpack(theta)
        r = [
            math.log(fits[names[i]].predict_s(w, d) * run["inferences_per_s"])
            for i, w, d, run in data
        ]
        fc = ns + SHARED.index("fc_cycles")
        r.append(FC_TIE * (theta[fc] - float(np.mean(theta[:ns]))))
        for k, v in PRIOR.items():
            r.append(PRIOR_WEIGHT * (theta[ns + SHARED.index(k)] - math.log(v)))
        return np.asarray(r)

    theta0 = np.log([8.0] * ns + [8.0, 50.0, PRIOR["elementwise_cycles"], PRIOR["op_cycles"]])
    out = unpack(least_squares(resid, theta0, method="trf").x)
    _CACHE[key] = out
    return out


def fit(
    catalog: Catalog,
    stack: str,
    exclude_model: str | None = None,
    exclude_board: str | None = None,
) -> StackFit | None:
    """The stack's costs from the joint fit, leaving out its runs of a model or on a board (the other
    stacks' runs stay); None when the stack has no run left."""
    fits = fit_all(
        catalog,
        lambda s, r: s == stack and (r["model"] == exclude_model or r["board"] == exclude_board),
        f"{stack}|{exclude_model}|{exclude_board}",
    )
    return fits.get(stack)


def _check(catalog: Catalog, stack: str, leave: str, everywhere: bool = False) -> list[dict]:
    """Leave one model (or board) out: fit without it, predict each of its runs."""
    st = catalog.stack(stack)
    rows = []
    for g in sorted({r[leave] for r in st.runs if _usable(catalog, r)}):
        if everywhere:
            f = fit_all(catalog, lambda s, r, g=g: r[leave] == g, f"*|{leave}={g}").get(stack)
        else:
            f = fit(catalog, stack, **{f"exclude_{leave}": g})
        for r in (r for r in st.runs if r[leave] == g and _usable(catalog, r)):
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
                    "left_out": f"{leave} on every stack" if everywhere else leave,
                    "note": None if f is not None else f"no other {leave}: nothing to fit on",
                }
            )
    return rows


def leave_one_model_out(catalog: Catalog, stack: str, everywhere: bool = False) -> list[dict]:
    """Each model's runs on ``stack`` predicted from a fit without them (``everywhere``: without that
    model's runs on any stack)."""
    return _check(catalog, stack, "model", everywhere)


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
    note = transfer_note(catalog, st.name, dev)
    return {
        "estimate_ms": None if s is None else s * 1e3,
        "model": MODEL_NAME,
        "stack": st.name,
        "stack_title": st.title,
        "calibrated_on": st.calibration,
        "transfer": note,
        "efficiency": None
        if f is None
        else f"{st.name}: {note}; share of peak per kind: "
        + ", ".join(f"{k} {v:.3f}" for k, v in f.eff.items())
        + f"; {f.output_cycles:.0f} peak-cycles per conv/FC output; fc, output, elementwise and "
        f"per-op costs shared by the {len(catalog.stacks)} stacks ({f.n_runs_all} published runs)",
        "efficiency_by_kind": None if f is None else f.eff,
        "costs": None if f is None else f.costs(),
        "op_cycles": None if f is None else f.op_cycles,
        "dtype": work.dtype
        + (
            " (fp32 on the fp32 peak with the int8 costs: an extrapolation)"
            if work.dtype == "fp32"
            else ""
        ),
        "work_by_kind": work.by_kind,
        "outputs": work.outputs,
        "lomo_on_this_board": lomo,
        **({} if s is not None else {"why": "catalog lacks this board's clock or MACs/cycle"}),
    }


def evaluate(catalog: Catalog) -> dict[str, dict]:
    """LOMO (this stack; every stack) and LOBO rows and per-board summaries for every stack."""
    out = {}
    for name in catalog.stacks:
        lomo, lobo = leave_one_model_out(catalog, name), leave_one_board_out(catalog, name)
        lomo_all = leave_one_model_out(catalog, name, everywhere=True)
        f = fit(catalog, name)
        out[name] = {
            "fit": None if f is None else {"eff": f.eff, **f.costs()},
            "lomo": lomo,
            "lomo_everywhere": lomo_all,
            "lobo": lobo,
            "lomo_summary": summarise(lomo),
            "lomo_everywhere_summary": summarise(lomo_all),
            "lobo_summary": summarise(lobo),
        }
    return out


def transfer_check(catalog: Catalog) -> dict:
    """The measured error of carrying an estimate to a board it was not fitted on through MACs/cycle
    x clock: ``true / estimated`` over every stack's leave-one-board-out rows (published runs)."""
    rows = [r for name in catalog.stacks for r in leave_one_board_out(catalog, name) if r["ratio"]]
    if not rows:
        return {
            "ratio_low": None,
            "ratio_high": None,
            "n": 0,
            "note": "no board-out check possible",
        }
    ratios = [1 / r["ratio"] for r in rows]
    return {
        "ratio_low": min(ratios),
        "ratio_high": max(ratios),
        "n": len(ratios),
        "note": (
            f"the leave-one-board-out error of the MCU stacks' published runs, {min(ratios):.2f}-"
            f"{max(ratios):.2f}x true/estimated over {len(ratios)} runs (the only measured check of "
            "the MACs/cycle x clock transfer; no run on this device exists)"
        ),
    }
