"""The emulated-cycles model's error against published latencies, per core, out of sample.

A core with no published ``tflm-cmsis-nn`` run gets a transferred band (:func:`transferred`), wider
by construction and said so.

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

    key = (
        [[r["model"], r["board"], r["inferences_per_s"]] for r in runs]
        + [
            MODEL_NAME,
            repr(TABLES[core_name]),
            "transferred-v1",  # the transferred band reads every stack's runs and the other cores' tables
            repr(
                sorted(
                    (n, r["model"], r["board"], r["inferences_per_s"])
                    for n, st in catalog.stacks.items()
                    for r in st.runs
                )
            ),
            repr(sorted(TABLES.items())),
        ]
    )
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
    if not ratios:
        out["transferred"] = transferred(catalog, core_name)
    rundir.atomic_write_json(cache, {"key": key, "band": out})
    return out


def _emulated_ms(catalog, model: str, board: str) -> float | None:
    """The cycle-model latency of a reference model's file on ``board`` (its core, clock, wait
    states), or None where the file or the board's figures are missing or the firmware refuses it."""
    from .emulate import emulate

    path, dev = reference_file(catalog, model), catalog.devices.get(board)
    if path is None or dev is None or dev.clock_hz is None or not dev.emulation:
        return None
    ws = (dev.emulation.get("flash_wait_states") or {}).get("value")
    try:
        rec, _ = emulate(
            path, get_core(dev.emulation["core"]), clock_hz=dev.clock_hz, wait_states=ws, n_random=4
        )
    except UserError:
        return None
    return rec.get("latency_ms")


def transferred(catalog, core_name: str) -> dict:
    """The band of a core with no published ``tflm-cmsis-nn`` run, carried over from a core that has
    one through the published runs of another stack on both cores' boards, said so.

    For a stack with runs of model m on board c (this core) and board r (a core with its own band):
    ``t = (published_c / published_r) / (emulated_c / emulated_r)``, the timing model's error in the
    speed ratio of the two boards (assumption: a stack's speed ratio between two boards holds for
    TFLite Micro too). The truth on c is then ``emulated_c x band_r x t``, so the band is
    ``[band_r.low x min t, band_r.high x max t]`` (true / emulated), always at least as wide as
    band_r. A core no stack has run on gets no figure here (``rows`` empty): the record says so."""
    rows = []
    for sname, st in catalog.stacks.items():
        by_model: dict[str, dict] = {}
        for r in st.runs:
            dev = catalog.devices.get(r["board"])
            core = (dev.emulation or {}).get("core") if dev else None
            if core is not None:
                by_model.setdefault(r["model"], {})[core] = r
        for model, cores in by_model.items():
            if core_name not in cores:
                continue
            for ref_core, ref_run in cores.items():
                if ref_core == core_name:
                    continue
                ref = band(catalog, ref_core)
                if ref.get("ratio_min") is None:
                    continue
                run = cores[core_name]
                e_c, e_r = (
                    _emulated_ms(catalog, model, run["board"]),
                    _emulated_ms(catalog, model, ref_run["board"]),
                )
                if not e_c or not e_r:
                    continue
                t = (ref_run["inferences_per_s"] / run["inferences_per_s"]) / (e_c / e_r)
                via = [round(1 / ref["ratio_max"], 4), round(1 / ref["ratio_min"], 4)]
                rows.append({
                    "stack": sname, "model": model, "board": run["board"], "via": ref_run["board"],
                    "via_core": ref_core, "emulated_ms": round(e_c, 3), "via_emulated_ms": round(e_r, 3),
                    "t": round(t, 4), "via_true_over_emulated": via,
                })  # fmt: skip
    if not rows:
        why = f"no stack has published runs on a {core_name} board and on a core with its own band"
        return {"rows": [], "ratio_low": None, "ratio_high": None, "note": why}
    lo = min(r["via_true_over_emulated"][0] * r["t"] for r in rows)
    hi = max(r["via_true_over_emulated"][1] * r["t"] for r in rows)
    lo, hi = (
        min(lo, *(r["via_true_over_emulated"][0] for r in rows)),
        max(hi, *(r["via_true_over_emulated"][1] for r in rows)),
    )
    return {
        "rows": rows, "ratio_low": round(lo, 4), "ratio_high": round(hi, 4),
        "note": f"transferred: no published {STACK} run on {core_name}; the band of "
        f"{', '.join(sorted({r['via_core'] for r in rows}))} carried over through {len(rows)} published "
        f"runs of {', '.join(sorted({r['stack'] for r in rows}))} on both cores' boards (true / emulated)",
    }  # fmt: skip
