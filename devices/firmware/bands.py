"""The emulated-cycles model's error against published latencies, per core, out of sample.

For every published run of the ``tflm-cmsis-nn`` stack (catalog ``stacks:``) whose reference model
file is here (``reference_models.<m>.source`` names it under ``mlperf_tiny/``) and whose board has an
emulation entry, the model file is emulated on that board's core and its cycle-model latency at the
board's clock is set against the published one: ``ratio = emulated / published``. Nothing of the
timing model is fitted on these runs, so the ratios are its out-of-sample error; a core with no such
run has no band, and the record says so. Results are cached in ``build/firmware/bands-<lib>.json``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ground import rundir
from ground.errors import UserError

from . import tree
from .cores import get as get_core

STACK = "tflm-cmsis-nn"
DATA = tree.REPO.parent / "shared" / "data"


def reference_file(catalog, model: str) -> Path | None:
    src = str((catalog.reference_models.get(model) or {}).get("source", ""))
    m = re.search(r"(mlperf_tiny/\S+?\.tflite)", src)
    if not m:
        return None
    p = DATA / m.group(1)
    return p if p.is_file() else None


def band(catalog, core_name: str) -> dict:
    """{runs: [...], ratio_min, ratio_max, note} for ``core_name`` (cached per library and catalog)."""
    from .emulate import emulate
    from .library import folder

    core = get_core(core_name)
    cache = tree.REPO / "build" / "firmware" / f"bands-{folder(tree.tflm_dir(), core).name}.json"
    st = catalog.stacks.get(STACK)
    runs = [
        r for r in (st.runs if st else [])
        if (catalog.devices.get(r["board"]) and (catalog.devices[r["board"]].emulation or {}).get("core") == core_name)
    ]  # fmt: skip
    from .timing import MODEL_NAME, TABLES

    key = [[r["model"], r["board"], r["inferences_per_s"]] for r in runs] + [
        MODEL_NAME,
        repr(TABLES[core_name]),
    ]
    if cache.is_file():
        doc = rundir.read_json(cache, "emulated error band cache")
        if doc.get("key") == key:
            return doc["band"]
    rows = []
    for r in runs:
        path = reference_file(catalog, r["model"])
        dev = catalog.devices[r["board"]]
        if path is None or dev.clock_hz is None:
            continue
        ws = (dev.emulation.get("flash_wait_states") or {}).get("value")
        try:
            rec, _ = emulate(path, core, clock_hz=dev.clock_hz, wait_states=ws, n_random=4)
        except UserError as exc:
            rows.append({"model": r["model"], "board": r["board"], "error": str(exc)})
            continue
        if rec.get("latency_ms") is None:
            rows.append({"model": r["model"], "board": r["board"], "error": "not counted"})
            continue
        published = 1e3 / r["inferences_per_s"]
        rows.append({
            "model": r["model"], "board": r["board"], "file": path.name,
            "published_ms": round(published, 3), "emulated_ms": round(rec["latency_ms"], 3),
            "emulated_upper_ms": round(rec["latency_upper_ms"], 3),
            "ratio": round(rec["latency_ms"] / published, 4),
            "instructions": rec["instructions"]["instructions"], "source": r["source"],
        })  # fmt: skip
    ratios = [x["ratio"] for x in rows if "ratio" in x]
    out = {
        "stack": STACK,
        "runs": rows,
        "ratio_min": min(ratios) if ratios else None,
        "ratio_max": max(ratios) if ratios else None,
        "note": (
            f"emulated / published over {len(ratios)} published {STACK} runs on this core, not fitted on "
            "them (the published runs used TFLite Micro v2.3.1 and its CMSIS-NN; this tree is newer)"
            if ratios
            else f"no published {STACK} run on a {core_name} board with its model file here: no error band"
        ),
    }
    rundir.atomic_write_json(cache, {"key": key, "band": out})
    return out
