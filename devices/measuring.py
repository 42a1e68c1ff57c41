"""The steps that find each artifact's figures before it is judged: analyse (read the file),
measure (run it through the registered runners, host first), emulate (firmware in QEMU for MCU/PDA
devices, with ``--emulate``) and estimate (the host cost model).
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

from ground import rundir
from ground.errors import UserError

from . import analysis as _analysis
from . import estimate as _estimate
from . import host_calibration as _hostcal
from .judging import facts, file_reason, runnable_reason
from .records import HOST, Estimator, Measured, Plan
from .runners import get as get_runner


def analyse(p: Plan) -> dict[str, _analysis.Analysis]:
    """Static analysis of every artifact: params, MACs, weight bytes, arena plan."""
    out = {}
    for art, path in _progress(p.artifacts, "analyse"):
        a = _analyse_isolated(path, art.get("tflm_arena_bytes"))
        if art.get("tflm_refusal"):  # TFLite Micro itself refused the file (profile FILE ran it)
            a.tflm_refusal = art["tflm_refusal"]
        out[art["file"]] = a
    return out


def _analyse_dict(path: Path, tflm: int | None) -> dict:
    return dataclasses.asdict(_analysis.analyse(path, tflm))


def _analyse_isolated(path: Path, tflm: int | None) -> _analysis.Analysis:
    """Parse the (untrusted) model file in a child process: a parser crash is a UserError."""
    from ground import isolate

    d = isolate.in_child(_analyse_dict, path, tflm, what=f"model '{path}'")
    d["ops"] = [_analysis.OpCost(**o) for o in d.get("ops") or []]
    return _analysis.Analysis(**d)


def measure(p: Plan) -> list[Measured]:
    """Run every artifact on every target whose runner runs its runtime family (host first)."""
    out: list[Measured] = []
    host = p.catalog.get(HOST)
    with tempfile.TemporaryDirectory(prefix="tinyship-profile-") as tmpd:
        settings = {**p.settings, "input_npy": _input_npy(p.run_dir, Path(tmpd))}
        for t in p.targets:
            runner = get_runner(t.runner)
            for art, path in _progress(p.artifacts, t.device):
                if facts(art)[0] not in runner.runtimes:
                    continue
                if t.runner == HOST and runnable_reason(host, art) is not None:
                    continue
                try:
                    m = runner.run(path, t.address, t.options, settings)
                except UserError as exc:
                    if t.runner != HOST:
                        raise
                    # the host runtime refuses the file (e.g. an op it lacks): a verdict, not a crash
                    out.append(
                        Measured(
                            art["file"], t.device, None, f"the host runtime could not run it: {exc}"
                        )
                    )
                    continue
                out.append(Measured(art["file"], t.device, m))
    return out


def emulate(p: Plan, analyses: dict[str, _analysis.Analysis]) -> dict[tuple[str, str], dict]:
    """Firmware for every MCU/PDA file x device the verdicts would not refuse, run in QEMU:
    ``{(artifact, device): record}`` (devices/firmware/step.py); empty unless ``p.emulate``."""
    if not p.emulate:
        return {}
    from .firmware.step import emulate_step

    def refusal(dev, art, a):
        return runnable_reason(dev, art, a) or file_reason(dev, art, a)

    return emulate_step(p, analyses, refusal)


def estimate(
    p: Plan, analyses: dict[str, _analysis.Analysis], measured: list[Measured]
) -> Estimator:
    """Fit the host cost model on the fixed calibration set (never on this run's artifacts, so a file's
    estimate does not depend on the other files); the run's host measurements are a check on it."""
    host = p.catalog.get(HOST)
    fitted, loo, cal = _hostcal.host_fit(host)
    family = {art["file"]: facts(art)[0] for art, _ in p.artifacts}
    check_rows = []
    for m in measured:
        if m.device != HOST or m.measurement is None:
            continue
        fam = family[m.artifact]
        pred = fitted.predict_s(analyses[m.artifact], host, fam)
        if pred is not None:
            meas = m.measurement.p50_ms
            check_rows.append(
                {
                    "artifact": m.artifact,
                    "runtime_family": fam,
                    "measured_ms": meas,
                    "predicted_ms": pred * 1e3,
                    "ape_pct": abs(pred * 1e3 - meas) / meas * 100,
                }
            )
    record = {
        "model": _estimate.MODEL_NAME,
        "calibrated_on": f"tinyship host calibration set ({len(cal.measured)} generated models, "
        f"devices/host_calibration.py, set v{_hostcal.SET_VERSION}), host p50s measured {cal.created}, "
        f"cached in {cal.path}",
        "params": fitted.params,
        "n_measurements": len(cal.measured),
        "loo": dataclasses.asdict(loo),
        # a fraction, for tinyship.summary
        "loo_mape": None if loo.median_ape is None else loo.median_ape / 100.0,
        "check_on_run": {
            "per_artifact": check_rows,
            "median_ape": float(np.median([r["ape_pct"] for r in check_rows]))
            if check_rows
            else None,
            "note": "this run's host measurements vs the estimate (not fitted on)",
        },
        "transfer": "non-MCU device estimate = same efficiencies and per-op overhead cycles, with the "
        "device's own MACs/cycle and clock; MCU estimates come from a named stack fitted on published "
        "runs (latency.stack)",
        "stack": p.stack,
    }
    return Estimator(fitted, loo, record)


def _input_npy(run_dir: Path, tmp: Path) -> Path | None:
    cal = run_dir / rundir.CALIBRATION
    if not cal.is_file():
        return None
    x = rundir.read_npz(cal, "calibration.npz", ("x",))["x"]
    path = tmp / "input.npy"
    # the first row is the timed input; up to 16 rows let remote boards check parity with the host
    np.save(path, x[:16].astype(np.float32), allow_pickle=False)
    return path


def _progress(items, desc: str):
    try:
        from tqdm import tqdm

        return tqdm(items, desc=desc, file=sys.stderr, leave=False)
    except ImportError:
        return items
