"""The error band every latency record carries, by how its latency was found (issue 37).

A band is ``{low_ms, high_ms, ratio_low, ratio_high, source, n, note}`` with ``ratio = true /
stated``: the truth is taken to lie in ``[latency x ratio_low, latency x ratio_high]``. Each kind of
latency earns its own band and none is borrowed from another kind:

- measured: the run-to-run spread of the timed runs on that machine (p50 less half the IQR, or
  less one standard deviation, up to p90);
- emulated (firmware in QEMU, cycle model): the cycle model against the published runs of its core
  (devices/firmware/bands.py), or, on a core with none, that band carried over through another
  stack's runs on both cores (transferred, wider), or, on a core no stack has run on, the envelope
  of the measured cores' bands (said so);
- estimated on an MCU (a named stack): the fast estimator's held-out band for (core, stack, op mix,
  dtype, transferred) from devices/estimator_bands.py; an fp32 extrapolation gets its fp32 band;
- estimated through the host fit (Raspberry Pi, phones): the host fit's out-of-sample error on this
  host (devices/host_calibration.py ``validation``), widened for the transfer to another device.

A verdict judges the band's upper edge (devices/budgets.py ``verdict``): ``fits`` only when it is
within budget, ``fits within error`` when only the central figure is.
"""

from __future__ import annotations

from typing import Any

from .catalog import Device

KEYS = ("low_ms", "high_ms", "ratio_low", "ratio_high", "source", "n", "note")


def make(latency_ms: float, lo: float, hi: float, source: str, n: int, note: str = "") -> dict:
    """A band around ``latency_ms`` from its ratio edges (true / stated)."""
    lo, hi = min(lo, hi), max(lo, hi)
    return {
        "low_ms": latency_ms * lo,
        "high_ms": latency_ms * hi,
        "ratio_low": lo,
        "ratio_high": hi,
        "source": source,
        "n": int(n),
        "note": note,
    }


def measured(latency_ms: float, m: dict) -> dict:
    """The timed runs' own spread: p50 - IQR/2 (or - std) up to p90, over the runs timed."""
    p50, p90 = float(m["p50_ms"]), float(m.get("p90_ms") or m["p50_ms"])
    half = float(m.get("spread_ms") or 0.0) / (2 if m.get("spread_kind") == "iqr" else 1)
    lo = max(p50 - half, 0.0) / p50 if p50 > 0 else 1.0
    hi = max(p90, p50) / p50 if p50 > 0 else 1.0
    kind = "IQR/2" if m.get("spread_kind") == "iqr" else "one standard deviation"
    note = (
        "qemu-user on an x86 CPU: not a device timing" if m.get("extra", {}).get("emulated") else ""
    )
    return make(
        latency_ms,
        lo,
        hi,
        f"measured: p50 - {kind} to p90 of {m.get('runs')} timed runs on {m.get('target')}",
        int(m.get("runs") or 0),
        note,
    )


def _envelope(error_band: dict) -> tuple[float, float] | None:
    """(low, high) true/emulated over every measured core band the record's band names, or None."""
    own = error_band.get("ratio_min"), error_band.get("ratio_max")
    if None not in own:
        return 1 / own[1], 1 / own[0]
    tr = error_band.get("transferred") or {}
    if tr.get("ratio_low") is not None:
        return tr["ratio_low"], tr["ratio_high"]
    return None


def emulated(latency_ms: float, error_band: dict | None, others: list[dict]) -> dict:
    """The cycle model's band on this core (``error_band`` from devices/firmware/bands.py); a core
    with neither its own nor a transferred band takes the envelope of ``others`` (the bands of the
    cores that have one), which the note says is not measured on this core."""
    eb = error_band or {}
    own = eb.get("ratio_min"), eb.get("ratio_max")
    if None not in own:
        return make(
            latency_ms,
            1 / own[1],
            1 / own[0],
            "emulated cycles vs published runs on this core (devices/firmware/bands.py)",
            len([r for r in eb.get("runs", []) if "ratio" in r]),
            eb.get("note", ""),
        )
    tr = eb.get("transferred") or {}
    if tr.get("ratio_low") is not None:
        return make(
            latency_ms,
            tr["ratio_low"],
            tr["ratio_high"],
            "emulated cycles, transferred band (devices/firmware/bands.py transferred)",
            len(tr.get("rows", [])),
            tr.get("note", ""),
        )
    env = [e for e in (_envelope(o) for o in others) if e is not None]
    if not env:
        return make(
            latency_ms, 0.1, 10.0, "chosen fallback: no core has a measured band", 0,
            "no published run on any emulated core: a chosen 0.1-10x range, not measured",
        )  # fmt: skip
    return make(
        latency_ms,
        min(e[0] for e in env),
        max(e[1] for e in env),
        "emulated cycles, no published run of any stack on this core: the envelope of the "
        "measured and transferred bands of the other cores",
        0,
        f"{eb.get('note', '')}; not measured on this core (its timing table is not validated)",
    )


def stack_estimate(latency_ms: float, detail: dict, dev: Device, transferred: bool) -> dict:
    """The fast MCU estimator's held-out band for this core, stack, op mix and dtype."""
    from . import estimator_bands

    core = (dev.emulation or {}).get("core") or dev.name
    mix = estimator_bands.op_mix(detail.get("work_by_kind") or {})
    dtype = str(detail.get("dtype") or "int8")
    b = estimator_bands.band_for(core, detail["stack"], mix, dtype, transferred)
    note = f"{b['note']} (core {core}, op mix {mix}, {dtype.split()[0]}"
    note += ", transferred board)" if transferred else ")"
    return make(
        latency_ms, b["ratio_low"], b["ratio_high"], f"estimator bands: {b['source']}", b["n"], note
    )


def host_fit(
    latency_ms: float, validation: dict | None, transfer: dict | None, device: str, family: str = ""
) -> dict:
    """The host fit's out-of-sample band (host ``validation``) for the file's runtime family (all
    families where that one has no row), widened on any other device by the measured error of
    transferring an estimate between boards through MACs/cycle x clock."""
    v = dict(validation or {})
    fam = (v.get("by_family") or {}).get(family)
    if fam:
        v.update(fam, note=f"{family} files only: {fam['n']} of {v.get('note', '')}")
    if v.get("ratio_low") is None:
        return make(
            latency_ms, 0.1, 10.0, "chosen fallback: the host fit has no validation", 0,
            f"{v.get('note', 'no validation of the host fit')}: a chosen 0.1-10x range, not measured",
        )  # fmt: skip
    lo, hi, note = v["ratio_low"], v["ratio_high"], v.get("note", "")
    if device != "host":
        t = transfer or {}
        if t.get("ratio_low") is None:
            return make(
                latency_ms, 0.1, 10.0, "chosen fallback: no transfer check", 0, t.get("note", "")
            )
        lo, hi = lo * min(t["ratio_low"], 1.0), hi * max(t["ratio_high"], 1.0)
        note += f"; transferred to {device}: widened by {t['note']}"
    return make(latency_ms, lo, hi, "host fit, out of sample on this host", v.get("n", 0), note)


def record_band(
    lat: float | None, method: str, detail: dict | None, dev: Device, ctx: dict[str, Any]
) -> dict | None:
    """The band of one record's latency (None only where there is no latency)."""
    if lat is None:
        return None
    d = detail or {}
    if method == "measured":
        return measured(lat, d)
    if method == "emulated":
        return emulated(lat, d.get("error_band"), ctx.get("emulated_bands", []))
    if "transfer" in d and "work_by_kind" in d:  # a named MCU stack (devices/stacks.py)
        return stack_estimate(lat, d, dev, d["transfer"].startswith("no published"))
    fam = str(d.get("runtime_family") or "")
    return host_fit(lat, ctx.get("host_validation"), ctx.get("host_transfer"), dev.name, fam)
