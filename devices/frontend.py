"""The audio front-end's cost per inference on a device, added to the network's latency.

A keyword spotter pays for its features on every window: the card's ``input.frontend``
(written by the distill stage's audio loader) counts the FFT, power spectrum, mel
filterbank and DCT work as fp32 flops plus the logs. Cost model (an assumption, not a
measurement): flops / (2 x fp32 MACs per cycle x ``FLOP_EFFICIENCY``) + ``LOG_CYCLES`` per
log, at the catalog clock. ``FLOP_EFFICIENCY`` 0.5 puts a 256-point real FFT at ~5k cycles
on a Cortex-M4F, the order CMSIS-DSP's ``arm_rfft_fast_f32`` is reported at; no board run
calibrates it here, and each record says so.

Its working memory sits next to the network's arena on a microcontroller (:func:`frontend_memory`):
the window of int16 samples the features of one inference are computed from, and the fp32 buffers
of one frame (windowed frame, FFT output, power spectrum, mel energies, MFCCs). Tables that do not
change (Hann window, mel weights, DCT) are constants in flash, and the int8 feature map is the
model's input tensor, which the arena already holds; neither is counted here.
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


RAM_MODEL = (
    "front-end RAM: int16 window of clip_samples + fp32 frame (n_fft) + fp32 FFT output (n_fft, "
    "CMSIS-DSP arm_rfft_fast_f32 packs n_fft/2 complex bins) + fp32 power (n_fft/2 + 1) + fp32 mel "
    "(n_mels) [+ fp32 MFCCs (n_mfcc)] [+ fp32 feature map (coefficients x frames) when "
    "utterance_norm needs the window's mean first]; constant tables in flash and the int8 feature "
    "map (the model's input tensor, in the arena) not counted"
)


def frontend_memory(frontend: dict | None) -> dict | None:
    """Working memory (bytes) of the card's front-end for one inference window; None without one.

    Derived from the front-end's parameters (the card's ``input.frontend``) as a C front-end on an
    MCU would hold them: every frame of the window is computed before each inference (the same
    assumption as :func:`frontend_estimate`'s cost), so the whole window's samples are kept.
    """
    if not frontend:
        return None
    need = ("clip_samples", "n_fft", "n_mels", "features")
    missing = [k for k in need if frontend.get(k) is None]
    if missing:
        return {
            "bytes": None,
            "why": f"card input.frontend lacks {', '.join(missing)}; front-end RAM not included",
        }
    n_fft = int(frontend["n_fft"])
    buffers = {
        "window_int16": 2 * int(frontend["clip_samples"]),
        "frame_fp32": 4 * n_fft,
        "fft_out_fp32": 4 * n_fft,
        "power_fp32": 4 * (n_fft // 2 + 1),
        "mel_fp32": 4 * int(frontend["n_mels"]),
    }
    if frontend["features"] == "mfcc":
        buffers["mfcc_fp32"] = 4 * int(frontend.get("n_mfcc") or 0)
    if frontend.get("utterance_norm"):
        coeffs = int(frontend.get("coefficients") or frontend.get("n_mfcc") or frontend["n_mels"])
        buffers["feature_map_fp32"] = 4 * coeffs * int(frontend.get("frames") or 0)
    return {"bytes": sum(buffers.values()), "buffers": buffers, "model": RAM_MODEL}
