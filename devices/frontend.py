"""The audio front-end's cost per inference on a device, added to the network's latency.

A keyword spotter pays for its features on every window: the card's ``input.frontend``
(written by the distill stage's audio loader) counts the FFT, power spectrum, mel
filterbank and DCT work as fp32 flops plus the logs. Cost model (an assumption, not a
measurement): flops / (2 x fp32 MACs per cycle x ``FLOP_EFFICIENCY``) + ``LOG_CYCLES`` per
log, at the catalog clock. ``FLOP_EFFICIENCY`` 0.5 puts a 256-point real FFT at ~5k cycles
on a Cortex-M4F, the order CMSIS-DSP's ``arm_rfft_fast_f32`` is reported at; no board run
calibrates it here, and each record says so.
"""

from __future__ import annotations

from .catalog import Device

FLOP_EFFICIENCY = 0.5
LOG_CYCLES = 40
MODEL = (
    "front-end: flops / (2 * fp32_macs_per_cycle * 0.5) + 40 cycles per log, at the catalog clock "
    "(assumed, not calibrated on a board)"
)


def frontend_estimate(frontend: dict | None, dev: Device) -> dict | None:
    """Estimated ms of the card's front-end on ``dev``; None when the card has no front-end."""
    if not frontend or not frontend.get("ops_per_inference"):
        return None
    ops = frontend["ops_per_inference"]
    clock, fp32 = dev.clock_hz, dev.macs_per_cycle("fp32")
    if not clock or not isinstance(fp32, (int, float)) or fp32 <= 0:
        return {
            "ms": None,
            "flops": ops["flops"],
            "why": f"catalog has no fp32 MACs/cycle or clock for {dev.name} (no FPU figure); "
            "front-end cost not included in the latency",
        }
    cycles = ops["flops"] / (2 * fp32 * FLOP_EFFICIENCY) + ops["logs"] * LOG_CYCLES
    return {
        "ms": cycles / clock * 1e3,
        "cycles": int(cycles),
        "flops": ops["flops"],
        "logs": ops["logs"],
        "model": MODEL,
    }
