"""The verdicts step: whether each artifact runs on each device, its RAM, flash and latency, and
whether they fit the device's budget.
"""

from __future__ import annotations

import dataclasses

from ground.errors import UserError

from . import analysis as _analysis
from . import budgets as _budgets
from . import estimate as _estimate
from . import frontend as _frontend
from . import latency_bands as _bands
from . import stacks as _stacks
from .catalog import Device
from .records import HOST, Estimator, Measured, Plan, Record
from .runners import Measurement
from .runners import get as get_runner


def facts(art: dict) -> tuple[str, list[str], dict[str, str]]:
    """An artifact's format facts from exports.json: runtime family, device classes it runs on,
    and why it does not run on the others (the export stage knows its formats; devices does not)."""
    fam, runs_on = art.get("runtime_family"), art.get("runs_on")
    if not isinstance(fam, str) or not isinstance(runs_on, list):
        raise UserError(
            f"exports.json artifact '{art.get('file')}' has no format facts (runtime_family, runs_on); "
            "it was written by an older export stage. Re-run the export stage with --force."
        )
    return fam, runs_on, dict(art.get("not_on") or {})


def runnable_reason(dev: Device, art: dict, a: _analysis.Analysis | None = None) -> str | None:
    """None if the artifact can run on catalog device ``dev``; else why not (devices/README.md).

    On MCU/PDA classes the file's own operators and tensor dtypes decide too (``a.tflm_refusal``,
    or TFLite Micro's refusal recorded by ``profile FILE``), whatever its precision label says.
    """
    if dev.cls in ("mcu", "pda") and a is not None and a.tflm_refusal is not None:
        return f"not runnable on TFLite Micro: {a.tflm_refusal}"
    fam, runs_on, not_on = facts(art)
    if dev.cls not in runs_on:
        return not_on.get(dev.cls) or f"{fam} does not run on {dev.cls} class devices"
    if art["format"] not in dev.formats:
        return (
            f"no {art['format']} runtime for {dev.cls} class '{dev.name}' "
            f"(runnable formats: {', '.join(dev.formats)})"
        )
    return None


MICRO_CLASSES = ("mcu", "pda")  # TFLite Micro: int8 and float kernels, no hybrid, no fp16


def file_reason(dev: Device, art: dict, a: _analysis.Analysis) -> str | None:
    """Why the file itself, from its operators and tensor types, cannot run on ``dev``; None if it can.

    Whatever the label says: an 'int8' file whose every op computes in float is not int8,
    and a hybrid file (int8 weights, float activations) is refused by TFLite Micro.
    """
    label = art["precision"]
    if not a.ops:
        return None
    dtypes = {o.dtype for o in a.ops}
    if label.startswith("int8") and not dtypes & {"int8", "hybrid"}:
        return (
            f"labelled '{label}' but every one of its {len(a.ops)} ops computes in float: the file "
            "is not int8 (re-export it; it is not shipped under an int8 name)"
        )
    if dev.cls in MICRO_CLASSES:
        hybrid = sorted({o.op for o in a.ops if o.dtype == "hybrid"})
        if hybrid:
            return (
                f"TFLite Micro has no hybrid kernels (int8 weights, float activations) and this file's "
                f"{', '.join(hybrid[:3])} ops are hybrid, whatever its label '{label}'"
            )
        fp16 = {k for k in a.weight_bytes_by_dtype if "16" in k and "int" not in k}
        if fp16:
            return f"TFLite Micro cannot dequantize {', '.join(sorted(fp16))} weights (file holds them)"
    return None


def _judged_devices(p: Plan) -> list[tuple[str, str, Device, bool]]:
    """(name, class, device whose budget and memory model apply, in the catalog?) per judged device."""
    rows = [(d.name, d.cls, d, True) for d in p.devices]
    for t in p.targets:
        if t.runner != HOST:
            r = get_runner(t.runner)
            rows.append((t.device, r.device_class, p.catalog.get(r.reference_device), False))
    return rows


def _latency(
    art: dict,
    dev: Device,
    a: _analysis.Analysis,
    m: Measurement | None,
    est: Estimator,
    listed: bool,
    p: Plan | None = None,
) -> tuple[float | None, dict | None, str]:
    """(latency ms, how it was found, method): measured when a measurement exists, else estimated."""
    if m is not None:
        detail = dataclasses.asdict(m)
        if m.extra.get("emulated"):  # e.g. the pi-sim: qemu-user on an x86 CPU
            detail["timing"] = "emulated, not a device timing"
        return m.p50_ms, detail, "measured"
    if not listed:
        return None, None, "none"
    if dev.cls == "mcu" and p is not None:  # a named inference stack fitted on published runs
        detail = _stacks.estimate(a, dev, p.catalog, p.stack)
        ms = detail["estimate_ms"]
        return ms, detail, "estimated" if ms is not None else "none"
    if est.fitted is None:
        return None, None, "none"
    fam = facts(art)[0]
    s = est.fitted.predict_s(a, dev, fam)
    if s is None:
        why = (
            f"no host fit for the runtime family '{str(fam)[:40]}' (fitted: "
            f"{', '.join(_estimate.FAMILIES)})"
            if fam not in _estimate.FAMILIES
            else "catalog lacks this device's clock or MACs/cycle for the model's dtype (figure "
            "'not found')"
        )
        return None, {"estimate_ms": None, "why": why}, "none"
    detail = {
        "estimate_ms": s * 1e3,
        "model": _estimate.MODEL_NAME,
        "stack": f"{fam} (host fit, transferred)",
        "runtime_family": fam,
        "efficiency": _estimate.efficiency_source(dev),
        "loo_median_ape_pct": est.loo.median_ape,
        "loo_n": est.loo.n,
    }
    return s * 1e3, detail, "estimated"


def verdicts(
    p: Plan,
    analyses: dict[str, _analysis.Analysis],
    measured: list[Measured],
    est: Estimator,
    emulated: dict[tuple[str, str], dict] | None = None,
) -> list[Record]:
    """Judge every artifact on every device against its budget (fits / misses / unknown / not runnable).

    ``emulated``: the emulate step's records (devices/firmware/step.py); where the firmware built and
    ran, its flash, RAM and cycle-model latency replace the estimates."""
    emulated = emulated or {}
    ctx = _band_context(p, est, emulated)
    allow = bool(_budgets.recipe_devices_section(p.card)["allow_within_error"])
    by_key = {(m.artifact, m.device): m.measurement for m in measured if m.measurement is not None}
    refused = {(m.artifact, m.device): m.refused for m in measured if m.refused}
    records = []
    for art, _ in p.artifacts:
        a = analyses[art["file"]]
        for name, cls, dev, listed in _judged_devices(p):
            budget = {**dev.budget, **p.budgets.get(name, {})}
            why = runnable_reason(dev, art, a) if listed else _target_reason(name, art)
            why = why or refused.get((art["file"], name)) or file_reason(dev, art, a)
            em = emulated.get((art["file"], name))
            why = why or _emulation_reason(em)
            ram, rm, flash, fm = _memory(dataclasses.asdict(a), dev)
            if _emulated_ok(em):
                ram, rm, flash, fm = _emulated_memory(em)
            fe_card = (p.card.get("input") or {}).get("frontend")
            fe_ram = _frontend.frontend_memory(fe_card, p.frontend_mode)
            ram, rm, counted = _with_frontend(ram, rm, fe_ram, dev)
            lat, detail, method = None, None, "none"
            if why is None:
                m = by_key.get((art["file"], name))
                lat, detail, method = _latency(art, dev, a, m, est, listed, p)
                if _emulated_ok(em) and em.get("latency_ms") is not None:
                    lat, detail, method = _emulated_latency(em, detail)
                elif em is not None:  # not emulated there: the estimate stands, and says why
                    detail = {**(detail or {}), "emulation": em}
                fe = _frontend.frontend_estimate(fe_card, dev, p.frontend_mode)
                if fe is not None:  # an audio front-end runs before every inference window
                    detail = {**(detail or {}), "network_ms": lat, "frontend": fe}
                    if lat is not None and fe["ms"] is not None:
                        lat += fe["ms"]  # the verdict is for the whole window: features + network
            qemu_user = bool(detail and str(detail.get("timing", "")).startswith("emulated"))
            band = _bands.record_band(lat, method, detail, dev, ctx) if why is None else None
            judged = None if qemu_user else lat
            v, reasons = _budgets.verdict(
                judged, ram, flash, why, budget, None if qemu_user else band
            )
            if counted:
                reasons = _split_ram_reasons(reasons, ram, fe_ram)
            records.append(
                Record(
                    art["file"],
                    art["format"],
                    art["precision"],
                    name,
                    cls,
                    method,
                    lat,
                    detail,
                    ram,
                    rm,
                    flash,
                    fm,
                    budget,
                    v,
                    reasons,
                    None if fe_ram is None else {**fe_ram, "in_ram_bytes": counted},
                    _emulated_summary(em),
                    band,
                    allow,
                )  # fmt: skip
            )
    return records


def _split_ram_reasons(reasons: list[str], ram: int, fe_ram: dict) -> list[str]:
    """Say how much of a RAM miss is the audio front-end's."""
    fe = fe_ram["bytes"]
    return [
        f"{x} (model {(ram - fe) / 1024:.1f} + front-end {fe / 1024:.1f})"
        if x.startswith("RAM ")
        else x
        for x in reasons
    ]


def _target_reason(device: str, art: dict) -> str | None:
    """Why a measured target (``ssh:...``, ``adb:...``) does not run this artifact, or None."""
    runner = get_runner(device.split(":", 1)[0])
    fam, runs_on, not_on = facts(art)
    if fam not in runner.runtimes or runner.device_class not in runs_on:
        return not_on.get(runner.device_class) or f"{device} runner does not run {art['format']}"
    return None


def _memory(a: dict, dev: Device) -> tuple[int | None, str, int | None, str]:
    """(RAM bytes, how, flash bytes, how) of one analysed artifact on one device."""
    peak = a.get("peak_activation_bytes")
    tflm = a.get("tflm_arena_bytes")
    deq = a.get("dequantized_weight_bytes") or 0
    ovh = (dev.runtime.get("ram_overhead_bytes") or {}).get("value")
    code = (dev.runtime.get("flash_overhead_bytes") or {}).get("value")
    if peak is None:
        return None, "not analysed", a["bytes"], "file bytes"
    if dev.cls in ("mcu", "pda"):  # an interpreter with one arena (TFLite Micro)
        tail = a.get("tflm_tail_estimate_bytes")
        arena = tflm or (peak + (tail or 0))
        ram = arena + deq + (ovh or 0)
        if tflm:
            rm = "TFLite Micro arena measured (head: activations + scratch; tail: persistent buffers)"
        elif tail:
            rm = (
                "arena plan of the activations + TFLM persistent tail estimated (TFLite Micro did not "
                "run; scratch buffers not included)"
            )
        else:
            rm = "arena plan of the activations (TFLite Micro did not run: scratch/persistent not included)"
        rm += " + dequantized weights" if deq else ""
        rm += " + runtime overhead" if ovh else "; runtime RAM overhead not found, not included"
        flash = a["bytes"] + (code or 0)
        fm = "model flatbuffer bytes"
        fm += " + runtime code" if code else "; runtime code size not found, not included"
        return int(ram), rm, int(flash), fm
    ram = peak + (a.get("weight_bytes") or 0) + deq + (ovh or 0)
    rm = "arena plan + weights loaded in RAM" + (" + dequantized weights" if deq else "")
    rm += "" if ovh else "; runtime overhead not found, not included"
    return int(ram), rm, int(a["bytes"]), "file bytes (storage)"


def _with_frontend(
    ram: int | None, how: str, fe: dict | None, dev: Device
) -> tuple[int | None, str, bool]:
    """(RAM, how, counted): an audio front-end's buffers are added on MCU/PDA classes, where the
    firmware holds them beside the arena; elsewhere (an OS, a front-end of the app's choosing) they
    are said, not counted."""
    if fe is None:
        return ram, how, False
    if fe.get("bytes") is None:
        return ram, f"{how}; {fe['why']}", False
    if dev.cls not in MICRO_CLASSES:
        return (
            ram,
            f"{how}; audio front-end buffers ({fe['bytes']:,} B on an MCU) not included",
            False,
        )
    if ram is None:
        return ram, how, False
    return ram + fe["bytes"], f"{how} + audio front-end buffers {fe['bytes']:,} B", True


def _emulated_ok(em: dict | None) -> bool:
    return bool(em) and "refused" not in em and em["bit_exact"]["identical"]


def _emulation_reason(em: dict | None) -> str | None:
    """Why the file cannot run on the device, from its firmware: TFLite Micro or the harness refused
    it, or its outputs differ from the host interpreter's (a difference fails the file there)."""
    if not em:
        return None
    if em.get("kind") == "not_runnable":
        return f"not runnable in firmware on {em['core']}: {em['refused']}"
    bx = em.get("bit_exact")
    if bx and not bx["identical"]:
        return (
            f"the firmware on {em['measured']} differs from the host TFLite Micro interpreter on "
            f"{bx['differing_inputs']} of {bx['inputs']} inputs (first: input {bx['first_difference']})"
        )
    return None


def _emulated_memory(em: dict) -> tuple[int, str, int, str]:
    r = em["ram"]
    how = (
        f"{em['measured']}: .data {r['data']:,} + .bss {r['bss']:,} + arena used {r['arena_used']:,} "
        f"(arena_used_bytes() on the 32-bit core) + stack high-water {r['stack_high_water']:,} (painted)"
    )
    fm = (
        f"{em['measured']}: .text + .rodata + .data of the linked firmware (model "
        f"{em['flash']['model_bytes']:,} B, TFLite Micro {em['kernels']} and start-up code)"
    )
    return int(em["ram_bytes"]), how, int(em["flash_bytes"]), fm


def _emulated_latency(em: dict, estimate: dict | None) -> tuple[float | None, dict, str]:
    """(ms, detail, method) from the firmware's counted instructions and the core's timing table."""
    detail = {
        "source": "emulated cycles",
        "measured": em["measured"],
        "instructions_per_inference": em["instructions"]["instructions"],
        "cycles": em["cycles"],
        "clock_mhz": em.get("clock_mhz"),
        "upper_ms": em.get("latency_upper_ms"),
        "error_band": em.get("error_band"),
        "estimate_ms": (estimate or {}).get("estimate_ms"),  # the stack estimate, for comparison
    }
    ms = em.get("latency_ms")
    return ms, detail, "emulated" if ms is not None else "none"


def _band_context(p: Plan, est: Estimator, emulated: dict) -> dict:
    """What the bands of this run's records are read from, computed once per run: the host fit's
    out-of-sample validation and the measured board-transfer error (only when a record uses the host
    fit), and the emulated cores' own bands (for a core that has none)."""
    ctx: dict = {
        "emulated_bands": [
            em["error_band"] for em in emulated.values() if em and em.get("error_band")
        ]
    }
    if est.fitted is not None and any(d.cls not in ("mcu", "host") for d in p.devices):
        from . import host_calibration as _hostcal

        ctx["host_validation"] = _hostcal.validation(p.catalog.get(HOST), est.fitted, est.loo)
        ctx["host_transfer"] = _stacks.transfer_check(p.catalog)
        est.record["validation"] = ctx["host_validation"]  # profile.json's estimator says it too
        est.record["transfer_check"] = ctx["host_transfer"]
    return ctx


def _emulated_summary(em: dict | None) -> dict | None:
    """What profile.json keeps of an emulation: its refusal, or its figures (the ship step builds
    the firmware folder from its ``elf``)."""
    return dict(em) if em else None
