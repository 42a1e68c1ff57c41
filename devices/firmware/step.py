"""The profile stage's emulate step: every MCU/PDA file x device with an emulation entry, in firmware.

Runs after ``measure`` when ``profile(..., emulate=True)`` (``--emulate``): for each artifact that
the verdicts would not already refuse on an MCU/PDA device, the firmware is built and emulated once
per (file, core) on the run's holdout rows (all of them up to ``MAX_ROWS``; random rows for a file
with no run behind it), and each device gets the cycle-model latency at its own clock and flash wait
states, with the core's error band (devices/firmware/bands.py). Returns
``{(artifact, device): record}``; a record with ``refused`` says why a file was not emulated there
(``kind``: ``not_runnable`` when the file cannot run on the core, e.g. an op TFLite Micro lacks;
``not_emulated`` for a float file, which is not built into MCU firmware; ``failed`` when the build or
run failed; in the last two the estimate stands).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ground import rundir
from ground.errors import UserError

from . import bands, emulate, model_ops, tree
from .cores import get as get_core

MAX_ROWS = 300  # the keyword spotter's test clips; every holdout row of the demo's 360 up to this


def _rows(run_dir: Path, path: Path) -> tuple[np.ndarray | None, str]:
    hold = run_dir / rundir.HOLDOUT
    if not hold.is_file():
        return None, ""
    x = rundir.read_npz(hold, "holdout.npz", ("x",))["x"][:MAX_ROWS]
    if len(x) < emulate.MIN_ROWS:
        return None, ""
    ops = model_ops.read(path)
    if emulate.refusal(ops) or not ops.inputs[0]["dtype"].startswith(("int", "uint")):
        return None, ""  # emulate() refuses the file itself
    return emulate.quantize_rows(ops, x), f"{len(x)} holdout rows (student/holdout.npz), quantized"


def emulate_step(p, analyses: dict, runnable) -> dict[tuple[str, str], dict]:
    """``runnable(dev, art, analysis) -> reason or None`` is the verdicts' own refusal (judging)."""
    if not getattr(p, "emulate", False):
        return {}
    tree.require_tools()
    tree.tflm_dir()
    out: dict[tuple[str, str], dict] = {}
    per_core: dict[tuple[str, str], tuple[dict, object] | dict] = {}
    for art, path in p.artifacts:
        for dev in p.devices:
            if dev.cls not in ("mcu", "pda") or runnable(dev, art, analyses[art["file"]]):
                continue
            if not dev.emulation:
                out[(art["file"], dev.name)] = {
                    "refused": f"the catalog gives '{dev.name}' no emulation entry"
                }
                continue
            core = get_core(dev.emulation["core"])
            key = (art["file"], core.name)
            if key not in per_core:
                per_core[key] = _emulate_once(p.run_dir, path, core)
            got = per_core[key]
            if "refused" in got:
                out[(art["file"], dev.name)] = got
                continue
            rec, counts = got
            ws = (dev.emulation.get("flash_wait_states") or {}).get("value")
            timed = {} if counts is None else emulate.latency(core, counts, dev.clock_hz, ws)
            rec = {**rec, "latency_ms": None, **timed, "device": dev.name}
            rec["clock_mhz"] = dev.value("clock_mhz")
            rec["error_band"] = _band(p.catalog, core.name)
            rec["published"] = published(p.catalog, path, dev.name, rec.get("latency_ms"))
            out[(art["file"], dev.name)] = rec
    return out


def _emulate_once(run_dir: Path, path: Path, core) -> dict | tuple[dict, object]:
    try:
        rows, source = _rows(run_dir, path)
        return emulate.emulate(path, core, rows, source)
    except UserError as exc:
        return {"refused": str(exc), "kind": _kind(str(exc)), "core": core.name}


def _kind(msg: str) -> str:
    """not_runnable: TFLite Micro lacks an op (the file cannot run on the core); not_emulated: a file
    the firmware builder does not take (float, several inputs; the estimate stands); failed: the
    build or the run failed (the estimate stands, the record says why)."""
    if msg.startswith("TFLite Micro ("):
        return "not_runnable"
    if msg.startswith(("the file computes in float", "the firmware harness feeds")):
        return "not_emulated"
    return "failed"


def published(catalog, path: Path, device: str, ms: float | None) -> dict | None:
    """The published latency of this very file on this board (a reference model whose md5 the
    catalog names, with a ``tflm-cmsis-nn`` run on the board), set against the emulated one."""
    import hashlib

    if ms is None:
        return None
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    st = catalog.stacks.get(bands.STACK)
    for model, ref in catalog.reference_models.items():
        if md5 not in str(ref.get("source", "")):
            continue
        for run in st.runs if st else []:
            if run["model"] == model and run["board"] == device:
                pub = 1e3 / run["inferences_per_s"]
                return {"model": model, "stack": bands.STACK, "published_ms": pub,
                        "ratio": ms / pub, "source": run["source"]}  # fmt: skip
    return None


def _band(catalog, core: str) -> dict:
    try:
        return bands.band(catalog, core)
    except UserError as exc:
        return {"ratio_min": None, "ratio_max": None, "note": f"band not computed: {exc}"}
